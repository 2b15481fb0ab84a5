/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a token can do for an activation, read before anything is asked of
 * it: which key pairs its module can make (C_GetMechanismList and
 * C_GetMechanismInfo) and whether it takes new objects (CKF_WRITE_PROTECTED).
 * A module that does not answer tells us nothing, and nothing is refused
 * on its account. */

#include <jansson.h>
#include <p11-kit/pkcs11.h>
#include <stdbool.h>

typedef struct TokenCapabilities {
	bool known; /* the mechanism list was read */
	bool write_protected;
	bool rsa_generate;
	unsigned long rsa_min_bits, rsa_max_bits; /* 0: not said */
	bool ec_generate;
	unsigned long ec_min_bits, ec_max_bits;
} TokenCapabilities;

/* Reads the slot's mechanisms; token_flags are CK_TOKEN_INFO's. Never
 * fails: a module that cannot list them leaves known false. */
void token_capabilities_read(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, CK_FLAGS token_flags,
			     TokenCapabilities *ret);

/* Whether the token can carry out an action with this "key" member
 * (protocol-v1's {"generate", "type", "bits" | "curve"}): NULL when it
 * can (or cannot be known), otherwise why not, in the reader's language
 * (malloc'ed). */
char *token_capabilities_refusal(const TokenCapabilities *caps, json_t *key);

json_t *token_capabilities_to_json(const TokenCapabilities *caps);
int token_capabilities_from_json(json_t *json, TokenCapabilities *ret);
