/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>

#include "ca/ca-client.h"

/* Builds a JWS in flattened JSON serialization (RFC 7515 §7.2.2), as
 * protocol v1 wants it: the protected header is exactly
 * {"alg", "x5c": [standard base64 of signer->certificate's DER], "nonce",
 * "url"}, every part base64url without padding, signed through
 * signer->sign. *ret is the request body, compact JSON text.
 * Returns -EOPNOTSUPP for an alg other than RS256 and ES256, -EINVAL for an
 * ES256 signature that is not 64 bytes, or the signer's own error. */
int jws_build(const CaSigner *signer, const char *nonce, const char *url, const json_t *payload,
	      char **ret);
