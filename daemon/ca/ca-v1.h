/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How the v1 client reads the CA's answers, apart from the network: the
 * two callbacks libcurl hands header lines and body bytes to, and what each
 * request makes of the answer they filled. ca-v1.c's requests use exactly
 * these; the fuzz target feeds them answers of its own. */

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/ca-client.h"

#define CA_V1_MAX_NONCE_LENGTH 512

/* One answer, bounded: the body, the status and the few headers read. */
typedef struct CaV1Answer {
	long status;
	char *body;
	size_t size, allocated;
	size_t headers_size;
	bool started; /* a status line came */
	bool body_too_large;
	bool headers_too_large;
	/* libcurl stopped at a header line too long for it, unseen here */
	bool header_line_too_long;
	bool nonce_bad;
	char nonce[CA_V1_MAX_NONCE_LENGTH + 1];
	char retry_after[64];
} CaV1Answer;

void ca_v1_answer_clear(CaV1Answer *answer);

/* CURLOPT_HEADERFUNCTION (one line, the status line included) and
 * CURLOPT_WRITEFUNCTION, userdata a CaV1Answer. Either takes less than
 * size * nmemb to stop the transfer: past the limits (the answer says
 * which), or out of memory. */
size_t ca_v1_answer_header(char *line, size_t size, size_t nmemb, void *userdata);
size_t ca_v1_answer_body(char *data, size_t size, size_t nmemb, void *userdata);

/* The error for an answer stopped past a limit, or 0 when none was hit. */
int ca_v1_answer_too_large(const CaV1Answer *answer, const char *url, CaError *error);

/* An answer that is not the one the request expects: the CA's problem
 * document made into an error for people, or a break of the contract. */
int ca_v1_answer_error(const CaV1Answer *answer, const char *url, CaError *error);

/* Whether the answer is a problem document of this type. */
bool ca_v1_answer_is_problem(const CaV1Answer *answer, const char *type);

/* A 429 whose Retry-After is at most 60 s, when the wait ends before the
 * deadline (CLOCK_MONOTONIC seconds): *ret_seconds, at least 1. */
bool ca_v1_busy_wait(const CaV1Answer *answer, int64_t deadline, unsigned *ret_seconds);

/* GET /nonce: *ret the nonce (malloc'ed). */
int ca_v1_nonce_answer(const CaV1Answer *answer, const char *url, char **ret, CaError *error);

/* POST /pending: *ret the entries that keep the contract (see
 * ca_v1_pending_validate()). */
int ca_v1_pending_answer(const CaV1Answer *answer, const char *url, const char *ca_name,
			 char *const *sent_serials, size_t n_sent, json_t **ret, CaError *error);

/* POST /actions/{id}/issue: 0 with the certificate and the chain (200),
 * 1 with the seconds to wait, from 1 to 60, before asking again (202). */
int ca_v1_issue_answer(const CaV1Answer *answer, const char *url, X509 **ret_certificate,
		       STACK_OF(X509) * *ret_chain, unsigned *ret_wait, CaError *error);

/* POST /actions/{id}/confirm. */
int ca_v1_confirm_answer(const CaV1Answer *answer, const char *url, CaError *error);
