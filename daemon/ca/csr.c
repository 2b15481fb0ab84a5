/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ca/csr.h"

#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)

/* X.520, PKCS#9 and RFC 4519 fix these types; everything else is
 * UTF8String (protocol-v1, Identifiers). */
static int string_type(int nid)
{
	switch (nid) {
	case NID_countryName:
	case NID_serialNumber:
	case NID_dnQualifier:
		return V_ASN1_PRINTABLESTRING;
	case NID_pkcs9_emailAddress:
	case NID_domainComponent:
		return V_ASN1_IA5STRING;
	default:
		return V_ASN1_UTF8STRING;
	}
}

int csr_name_from_pairs(const Name *subject, X509_NAME **ret)
{
	_cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();

	if (!name)
		return -ENOMEM;
	for (size_t i = 0; i < subject->n_pairs; i++) {
		const NamePair *pair = &subject->pairs[i];
		ASN1_OBJECT *object = OBJ_txt2obj(pair->attribute, 0);
		size_t len = strlen(pair->value);
		int ok;

		if (!object || len > 4096) {
			ASN1_OBJECT_free(object);
			ERR_clear_error();
			return -EINVAL;
		}
		/* An explicit type, not MBSTRING_*: that path refuses values
		 * longer than X.520's bounds, which company names pass. */
		ok =
		    X509_NAME_add_entry_by_OBJ(name, object, string_type(OBJ_obj2nid(object)),
					       (const unsigned char *)pair->value, (int)len, -1, 0);
		ASN1_OBJECT_free(object);
		if (!ok) {
			ERR_clear_error();
			return -EINVAL;
		}
	}
	*ret = TAKE_PTR(name);
	return 0;
}

/* PKCS#11 gives R||S; X.509 wants the DER ECDSA-Sig-Value. */
static int ecdsa_raw_to_der(const unsigned char *raw, size_t size, unsigned char **ret,
			    size_t *ret_size)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r, *s;
	unsigned char *der = NULL;
	int len;

	if (!sig)
		return -ENOMEM;
	r = BN_bin2bn(raw, (int)(size / 2), NULL);
	s = BN_bin2bn(raw + size / 2, (int)(size / 2), NULL);
	if (!r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return -ENOMEM;
	}
	len = i2d_ECDSA_SIG(sig, &der);
	ECDSA_SIG_free(sig);
	if (len <= 0)
		return -ENOMEM;
	*ret = der;
	*ret_size = (size_t)len;
	return 0;
}

int csr_build(const Name *subject, EVP_PKEY *public_key, const char *alg, csr_sign_t sign,
	      void *userdata, unsigned char **ret_der, size_t *ret_size)
{
	_cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
	_cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
	_cleanup_free_ unsigned char *signature = NULL;
	unsigned char *tbs = NULL, *der = NULL, *sig_der = NULL;
	size_t signature_size = 0, sig_der_size = 0;
	X509_ALGOR *algorithm;
	ASN1_BIT_STRING *bits;
	bool ec = streq(alg, "ES256");
	int len, r;

	if (!req)
		return -ENOMEM;
	r = csr_name_from_pairs(subject, &name);
	if (r < 0)
		return r;
	if (X509_REQ_set_version(req, 0) != 1 || X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_pubkey(req, public_key) != 1)
		return -ENOMEM;

	algorithm = X509_ALGOR_new();
	if (!algorithm)
		return -ENOMEM;
	X509_ALGOR_set0(algorithm,
			OBJ_nid2obj(ec ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption),
			ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL);
	r = X509_REQ_set1_signature_algo(req, algorithm);
	X509_ALGOR_free(algorithm);
	if (r != 1)
		return -ENOMEM;

	len = i2d_re_X509_REQ_tbs(req, &tbs);
	if (len <= 0)
		return -ENOMEM;
	r = sign(userdata, tbs, (size_t)len, &signature, &signature_size);
	OPENSSL_free(tbs);
	if (r < 0)
		return r;
	if (ec) {
		r = ecdsa_raw_to_der(signature, signature_size, &sig_der, &sig_der_size);
		if (r < 0)
			return r;
	}
	bits = ASN1_BIT_STRING_new();
	if (!bits || ASN1_BIT_STRING_set(bits, ec ? sig_der : signature,
					 (int)(ec ? sig_der_size : signature_size)) != 1) {
		ASN1_BIT_STRING_free(bits);
		OPENSSL_free(sig_der);
		return -ENOMEM;
	}
	OPENSSL_free(sig_der);
	/* A signature is whole bytes: without this OpenSSL counts its
	 * trailing zero bits as unused and the encoding stops verifying. */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);

	/* What the token signed must verify with the key the CSR names:
	 * anything else is a token that signed with the wrong key. */
	if (X509_REQ_verify(req, public_key) != 1) {
		ERR_clear_error();
		return -EBADMSG;
	}
	len = i2d_X509_REQ(req, &der);
	if (len <= 0)
		return -ENOMEM;
	*ret_der = der;
	*ret_size = (size_t)len;
	return 0;
}
