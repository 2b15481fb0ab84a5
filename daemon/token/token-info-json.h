/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tokens as a worker hands them to the daemon: plain JSON, each
 * certificate as the fields the worker read from it (serial, names,
 * validity, SHA-256), its DER (base64url) and its profile's file name, so
 * that the daemon needs no certificate parser. Everything is read back
 * with bounds, as input from outside. */

#include <jansson.h>

#include "state/profiles.h"
#include "token/token-info.h"

/* A token may list at most this many certificates, and a list this many
 * tokens; a certificate's DER is at most this long. */
#define TOKEN_JSON_MAX_CERTIFICATES 256
#define TOKEN_JSON_MAX_TOKENS 256
#define TOKEN_JSON_MAX_DER (64 * 1024)

/* base64url of der; and back (-EBADMSG for text that is not, or too long). */
char *der_to_text(const unsigned char *der, size_t size);
int der_from_text(const char *text, unsigned char **ret, size_t *ret_size);

/* A name as [[attribute, value], ...]; and back. */
json_t *name_to_json(const Name *name);
int name_from_json(json_t *json, Name *ret);

json_t *token_info_to_json(const TokenInfo *info);
/* Profiles are found by the file name the worker gave (none: NULL). */
int token_info_from_json(json_t *json, const Profiles *profiles, TokenInfo *ret);

json_t *token_list_to_json(const TokenList *list);
int token_list_from_json(json_t *json, const Profiles *profiles, TokenList *ret);
