/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The checks protocol v1 puts on a /pending answer, apart from the network
 * so the unit tests reach them. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The contract's bounds on what a CA sends. */
#define CA_V1_MAX_PENDING 64
#define CA_V1_MAX_SUBJECT_PAIRS 64
#define CA_V1_MAX_ID_LENGTH 64
#define CA_V1_MAX_MESSAGE_CHARS 1024

/* Takes the parsed 200 answer to /pending and the serials (hex) the client
 * sent. On success *ret is a new array holding, in order and verbatim
 * (referenced, not copied), the entries that keep the contract: at most
 * CA_V1_MAX_PENDING are considered, an entry that breaks the contract or
 * repeats an earlier id is dropped with a warning naming it and ca_name.
 * Returns -EBADMSG with *ret_what set when the answer as a whole is not an
 * object with a "pending" array. */
int ca_v1_pending_validate(const char *ca_name, json_t *answer, char *const *sent_serials,
			   size_t n_sent, json_t **ret, const char **ret_what);

/* Whether s is an action id: 1 to 64 characters of [A-Za-z0-9_-]. */
bool ca_v1_action_id_valid(const char *s);

/* RFC 3339 in UTC with a Z suffix ("2026-12-01T00:00:00Z"); fractional
 * seconds are accepted and dropped. -EINVAL for anything else. */
int ca_v1_parse_time(const char *s, int64_t *ret);

/* A copy of size bytes of UTF-8 text from the CA, cut after max_chars
 * characters, with control characters (C0, DEL, C1) and bidirectional
 * overrides removed. With multiline, newline is kept; without, newline and
 * tab become a space, so that words stay apart on one line. Invalid UTF-8
 * bytes are dropped. NULL when out of memory. */
char *ca_v1_text_clean(const char *s, size_t size, size_t max_chars, bool multiline);
