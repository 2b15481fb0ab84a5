/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Tokens as a worker hands them to the daemon: plain JSON, certificates
 * as base64url DER, read back with every bound a token of our own would
 * be held to. Profiles are matched again by the reader. */

#include <jansson.h>
#include <openssl/x509.h>

#include "state/profiles.h"
#include "token/token-info.h"

/* A token may list at most this many certificates, and a list this many
 * tokens. */
#define TOKEN_JSON_MAX_CERTIFICATES 256
#define TOKEN_JSON_MAX_TOKENS 256

char *x509_to_text(X509 *x509);
/* -EBADMSG for text that is not exactly one DER certificate. */
int x509_from_text(const char *text, X509 **ret);

json_t *token_info_to_json(const TokenInfo *info);
int token_info_from_json(json_t *json, const Profiles *profiles, TokenInfo *ret);

json_t *token_list_to_json(const TokenList *list);
int token_list_from_json(json_t *json, const Profiles *profiles, TokenList *ret);
