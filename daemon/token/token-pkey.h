/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A key on the token as an OpenSSL EVP_PKEY, for libraries that sign
 * through EVP (OpenSSL's CMP client): the public half is the key's, every
 * signature is made by sign(), on the token. RSA (PKCS#1 v1.5) and EC
 * keys. */

#include <openssl/evp.h>
#include <stddef.h>

/* Signs digest (of the digest md_nid, e.g. NID_sha256): for RSA the
 * PKCS#1 v1.5 signature, for EC the DER ECDSA-Sig-Value. Returns 0 and a
 * malloc'ed signature, or a negative errno. */
typedef int (*token_pkey_sign_t)(void *userdata, int md_nid, const unsigned char *digest,
				 size_t digest_size, unsigned char **ret_signature,
				 size_t *ret_size);

/* The EVP_PKEY (free with EVP_PKEY_free()), or NULL; userdata must
 * outlive it. The last error sign() returned is kept for
 * token_pkey_last_error(). */
EVP_PKEY *token_pkey_new(EVP_PKEY *public_key, token_pkey_sign_t sign, void *userdata);

/* The negative errno of the key's last failed signature, 0 if none failed. */
int token_pkey_last_error(EVP_PKEY *key);
