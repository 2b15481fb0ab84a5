/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/evp.h>
#include <stddef.h>

#include "x509-util.h"

/* Signs data with the key on the token, as token_session_sign() does. */
typedef int (*csr_sign_t)(void *userdata, const unsigned char *data, size_t size,
			  unsigned char **ret_signature, size_t *ret_size);

/* A PKCS#10 request (DER) for public_key with exactly this subject, signed
 * with SHA-256 by the token (alg "RS256" or "ES256"). Values are
 * UTF8String except the attributes whose type the standards fix. */
int csr_build(const Name *subject, EVP_PKEY *public_key, const char *alg, csr_sign_t sign,
	      void *userdata, unsigned char **ret_der, size_t *ret_size);

/* The X509_NAME protocol-v1 asks for (exported for the tests). */
int csr_name_from_pairs(const Name *subject, X509_NAME **ret);
