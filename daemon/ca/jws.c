/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ca/jws.h"

#include <openssl/crypto.h>
#include <string.h>

#include "base64.h"
#include "macro.h"

static int certificate_base64(X509 *certificate, char **ret)
{
	unsigned char *der = NULL;
	int len = i2d_X509(certificate, &der);
	char *b64;

	if (len <= 0)
		return -EINVAL;
	b64 = base64_encode(der, (size_t)len);
	OPENSSL_free(der);
	if (!b64)
		return -ENOMEM;
	*ret = b64;
	return 0;
}

/* Compact JSON in base64url: what JWS calls BASE64URL(UTF8(JSON)). */
static int json_base64url(const json_t *value, char **ret)
{
	_cleanup_free_ char *text = json_dumps(value, JSON_COMPACT);
	char *b64;

	if (!text)
		return -ENOMEM;
	b64 = base64url_encode(text, strlen(text));
	if (!b64)
		return -ENOMEM;
	*ret = b64;
	return 0;
}

int jws_build(const CaSigner *signer, const char *nonce, const char *url, const json_t *payload,
	      char **ret)
{
	_cleanup_(json_decrefp) json_t *header = NULL, *jws = NULL;
	_cleanup_free_ char *x5c = NULL, *header64 = NULL, *payload64 = NULL, *input = NULL,
			    *signature64 = NULL;
	_cleanup_free_ unsigned char *signature = NULL;
	size_t signature_size = 0;
	char *text;
	int r;

	if (!signer || !signer->alg || !signer->certificate || !signer->sign || !nonce || !url ||
	    !payload)
		return -EINVAL;
	if (!streq(signer->alg, "RS256") && !streq(signer->alg, "ES256"))
		return -EOPNOTSUPP;

	r = certificate_base64(signer->certificate, &x5c);
	if (r < 0)
		return r;
	/* Members in this order and no others: the contract names them all,
	 * and "crit" must never appear. */
	header = json_pack("{s:s, s:[s], s:s, s:s}", "alg", signer->alg, "x5c", x5c, "nonce", nonce,
			   "url", url);
	if (!header)
		return -ENOMEM;

	r = json_base64url(header, &header64);
	if (r < 0)
		return r;
	r = json_base64url(payload, &payload64);
	if (r < 0)
		return r;
	if (asprintf(&input, "%s.%s", header64, payload64) < 0) {
		input = NULL;
		return -ENOMEM;
	}

	r = signer->sign(signer->userdata, (const unsigned char *)input, strlen(input), &signature,
			 &signature_size);
	if (r < 0)
		return r;
	/* RFC 7518 §3.4: ES256 is R||S, 32 bytes each; a DER signature here
	 * would be refused by the CA as badSignature, far from its cause. */
	if (streq(signer->alg, "ES256") && signature_size != 64)
		return -EINVAL;
	if (signature_size == 0)
		return -EINVAL;
	signature64 = base64url_encode(signature, signature_size);
	if (!signature64)
		return -ENOMEM;

	jws = json_pack("{s:s, s:s, s:s}", "protected", header64, "payload", payload64, "signature",
			signature64);
	if (!jws)
		return -ENOMEM;
	text = json_dumps(jws, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	*ret = text;
	return 0;
}
