/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/token-session.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/x509.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "macro.h"
#include "token/p11-error.h"
#include "token/p11-guard.h"

#define MAX_SLOTS 256
#define MAX_OBJECTS 256
#define MAX_ATTRIBUTE_SIZE (64 * 1024)

/* DER of the OID prime256v1 (1.2.840.10045.3.1.7), CKA_EC_PARAMS. */
static const unsigned char p256_params[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
					    0xce, 0x3d, 0x03, 0x01, 0x07};
/* DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1). */
static const unsigned char sha256_digest_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
						   0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
						   0x01, 0x05, 0x00, 0x04, 0x20};

static size_t blank_trimmed_length(const unsigned char *s, size_t size)
{
	while (size > 0 && (s[size - 1] == ' ' || s[size - 1] == 0))
		size--;
	return size;
}

static bool serial_matches(const CK_TOKEN_INFO *info, const char *serial)
{
	const unsigned char *s = info->serialNumber;
	size_t size = sizeof(info->serialNumber);

	while (size > 0 && *s == ' ') {
		s++;
		size--;
	}
	size = blank_trimmed_length(s, size);
	return strlen(serial) == size && memcmp(s, serial, size) == 0;
}

int token_session_open_slot(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, bool rw,
			    TokenSession *ret)
{
	TokenSession t = {.functions = functions, .slot = slot};
	CK_RV rv;

	rv = P11(functions, C_OpenSession, slot, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0),
		 NULL, NULL, &t.session);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	t.session_open = true;
	*ret = t;
	return 0;
}

bool token_info_serial_is(const CK_TOKEN_INFO *info, const char *serial)
{
	return serial_matches(info, serial);
}

int token_session_open(CK_FUNCTION_LIST_PTR functions, const char *serial, TokenSession *ret)
{
	CK_SLOT_ID slots[MAX_SLOTS], found = 0;
	CK_ULONG n_slots = MAX_SLOTS, n_found = 0;
	CK_RV rv;

	if (!functions)
		return -ELIBACC;
	rv = P11(functions, C_GetSlotList, CK_TRUE, slots, &n_slots);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	for (CK_ULONG i = 0; i < n_slots; i++) {
		CK_TOKEN_INFO info;
		if (P11(functions, C_GetTokenInfo, slots[i], &info) != CKR_OK)
			continue;
		if ((info.flags & CKF_TOKEN_INITIALIZED) && serial_matches(&info, serial)) {
			found = slots[i];
			n_found++;
		}
	}
	if (n_found == 0)
		return -ENODEV;
	/* Two tokens with one serial (a CAC emulation gives every card the
	 * same): a job could land on the wrong one. */
	if (n_found > 1)
		return -ENOTUNIQ;
	return token_session_open_slot(functions, found, true, ret);
}

void token_session_close(TokenSession *t)
{
	if (!t->functions)
		return;
	if (t->logged_in)
		(void)P11(t->functions, C_Logout, t->session);
	if (t->session_open)
		(void)P11(t->functions, C_CloseSession, t->session);
	*t = (TokenSession){};
}

int token_session_pin_flags(TokenSession *t, TokenPinFlags *ret)
{
	CK_TOKEN_INFO info;
	CK_RV rv = P11(t->functions, C_GetTokenInfo, t->slot, &info);

	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	*ret = (TokenPinFlags){
	    .count_low = info.flags & CKF_USER_PIN_COUNT_LOW,
	    .final_try = info.flags & CKF_USER_PIN_FINAL_TRY,
	    .locked = info.flags & CKF_USER_PIN_LOCKED,
	    .must_change = info.flags & CKF_USER_PIN_TO_BE_CHANGED,
	    .min_pin_len = info.ulMinPinLen,
	    .max_pin_len = info.ulMaxPinLen,
	};
	return 0;
}

bool token_session_present(TokenSession *t)
{
	/* OpenSC keeps answering C_GetTokenInfo from its cache after a pull,
	 * and the slot shows the card gone only once pcscd has polled the
	 * reader (up to about half a second later): the slot's flag and the
	 * session are watched for a while. */
	for (int i = 0; i < 15; i++) {
		CK_SLOT_INFO slot;
		CK_SESSION_INFO session;

		if (P11(t->functions, C_GetSlotInfo, t->slot, &slot) != CKR_OK ||
		    !(slot.flags & CKF_TOKEN_PRESENT) ||
		    P11(t->functions, C_GetSessionInfo, t->session, &session) != CKR_OK)
			return false;
		(void)nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
	}
	return true;
}

int token_session_capabilities(TokenSession *t, TokenCapabilities *ret)
{
	CK_TOKEN_INFO info;
	CK_RV rv = P11(t->functions, C_GetTokenInfo, t->slot, &info);

	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	token_capabilities_read(t->functions, t->slot, info.flags, ret);
	return 0;
}

int token_session_login(TokenSession *t, const char *pin, size_t pin_size)
{
	CK_RV rv;

	rv = P11(t->functions, C_Login, t->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin_size);
	if (rv == CKR_USER_ALREADY_LOGGED_IN) {
		/* Left from an earlier job: the PIN was not checked, so log
		 * out and check this one. */
		(void)P11(t->functions, C_Logout, t->session);
		rv = P11(t->functions, C_Login, t->session, CKU_USER, (CK_UTF8CHAR_PTR)pin,
			 pin_size);
	}
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	t->logged_in = true;
	return 0;
}

int token_session_find(TokenSession *t, CK_ATTRIBUTE *template, CK_ULONG n_template,
		       CK_OBJECT_HANDLE *objects, CK_ULONG max, CK_ULONG *ret_n)
{
	CK_RV rv = P11(t->functions, C_FindObjectsInit, t->session, template, n_template);

	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	rv = P11(t->functions, C_FindObjects, t->session, objects, max, ret_n);
	(void)P11(t->functions, C_FindObjectsFinal, t->session);
	return rv == CKR_OK ? 0 : p11_rv_to_errno(rv);
}

int token_session_find_private_key(TokenSession *t, const unsigned char *id, size_t id_size,
				   CK_OBJECT_HANDLE *ret)
{
	CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE template[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},
	    {CKA_ID, (void *)id, id_size},
	};
	CK_OBJECT_HANDLE objects[2];
	CK_ULONG n = 0;
	int r = token_session_find(t, template, ELEMENTSOF(template), objects, 2, &n);

	if (r < 0)
		return r;
	if (n == 0)
		return -ENOENT;
	*ret = objects[0];
	return 0;
}

int token_session_attribute(TokenSession *t, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type,
			    unsigned char **ret, size_t *ret_size)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	unsigned char *buf;
	CK_RV rv;

	rv = P11(t->functions, C_GetAttributeValue, t->session, object, &a, 1);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > MAX_ATTRIBUTE_SIZE)
		return -EBADMSG;
	buf = malloc(a.ulValueLen ? a.ulValueLen : 1);
	if (!buf)
		return -ENOMEM;
	a.pValue = buf;
	rv = P11(t->functions, C_GetAttributeValue, t->session, object, &a, 1);
	if (rv != CKR_OK) {
		free(buf);
		return p11_rv_to_errno(rv);
	}
	*ret = buf;
	*ret_size = a.ulValueLen;
	return 0;
}

static int rsa_public_key(const unsigned char *n, size_t n_size, const unsigned char *e,
			  size_t e_size, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn_n = BN_bin2bn(n, (int)n_size, NULL), *bn_e = BN_bin2bn(e, (int)e_size, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	int r = -EBADMSG;

	if (bld && bn_n && bn_e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) &&
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) &&
	    EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1) {
		*ret = key;
		r = 0;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return r;
}

static int ec_public_key(const unsigned char *point, size_t size, EVP_PKEY **ret)
{
	const unsigned char *p = point;
	ASN1_OCTET_STRING *octets = NULL;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	int r = -EBADMSG;

	/* CKA_EC_POINT is a DER OCTET STRING around the point; a few
	 * modules give the bare point. */
	if (size > 0 && point[0] == 0x04 && size != 65)
		octets = d2i_ASN1_OCTET_STRING(NULL, &p, (long)size);
	if (octets) {
		point = ASN1_STRING_get0_data(octets);
		size = (size_t)ASN1_STRING_length(octets);
	}
	params[0] =
	    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, size);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) &&
	    EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1) {
		*ret = key;
		r = 0;
	}
	EVP_PKEY_CTX_free(ctx);
	ASN1_OCTET_STRING_free(octets);
	return r;
}

int token_session_public_key(TokenSession *t, CK_OBJECT_HANDLE private_key, const unsigned char *id,
			     size_t id_size, EVP_PKEY **ret)
{
	CK_OBJECT_CLASS klass = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE template[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},
	    {CKA_ID, (void *)id, id_size},
	};
	CK_OBJECT_HANDLE objects[2];
	CK_ULONG n = 0;
	_cleanup_free_ unsigned char *a = NULL, *b = NULL, *type_buf = NULL;
	size_t a_size, b_size, type_size;
	CK_KEY_TYPE key_type;
	int r;

	r = token_session_find(t, template, ELEMENTSOF(template), objects, 2, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return -ENOENT;
	r = token_session_attribute(t, objects[0], CKA_KEY_TYPE, &type_buf, &type_size);
	if (r < 0)
		return r;
	if (type_size != sizeof(CK_KEY_TYPE))
		return -EBADMSG;
	memcpy(&key_type, type_buf, sizeof(key_type));
	if (key_type == CKK_RSA) {
		r = token_session_attribute(t, objects[0], CKA_MODULUS, &a, &a_size);
		if (r >= 0)
			r = token_session_attribute(t, objects[0], CKA_PUBLIC_EXPONENT, &b,
						    &b_size);
		if (r < 0)
			return r;
		return rsa_public_key(a, a_size, b, b_size, ret);
	}
	if (key_type == CKK_EC) {
		r = token_session_attribute(t, objects[0], CKA_EC_PARAMS, &b, &b_size);
		if (r < 0)
			return r;
		if (b_size != sizeof(p256_params) || memcmp(b, p256_params, b_size) != 0)
			return -EOPNOTSUPP;
		r = token_session_attribute(t, objects[0], CKA_EC_POINT, &a, &a_size);
		if (r < 0)
			return r;
		return ec_public_key(a, a_size, ret);
	}
	return -EOPNOTSUPP;
}

int token_session_generate(TokenSession *t, const char *key_type, unsigned bits,
			   const unsigned char *id, size_t id_size, const char *label,
			   CK_OBJECT_HANDLE *ret_private)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG modulus_bits = bits;
	CK_BYTE exponent[] = {0x01, 0x00, 0x01};
	bool rsa = streq(key_type, "rsa");
	CK_MECHANISM mechanism = {rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE public_template[8] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &no, sizeof(no)},
	    {CKA_VERIFY, &yes, sizeof(yes)},
	    {CKA_ID, (void *)id, id_size},
	    {CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_ULONG n_public = 5;
	/* What PRODUCT.md asks of a key made on the token, spelled out:
	 * SoftHSM and others make keys extractable unless told. */
	CK_ATTRIBUTE private_template[] = {
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &yes, sizeof(yes)},
	    {CKA_SENSITIVE, &yes, sizeof(yes)},
	    {CKA_EXTRACTABLE, &no, sizeof(no)},
	    {CKA_SIGN, &yes, sizeof(yes)},
	    {CKA_ID, (void *)id, id_size},
	    {CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_OBJECT_HANDLE public_key, private_key;
	CK_RV rv;

	if (rsa) {
		if (bits != 2048 && bits != 3072 && bits != 4096)
			return -EOPNOTSUPP;
		public_template[n_public++] =
		    (CK_ATTRIBUTE){CKA_MODULUS_BITS, &modulus_bits, sizeof(modulus_bits)};
		public_template[n_public++] =
		    (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)};
	} else if (streq(key_type, "ec"))
		public_template[n_public++] =
		    (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params)};
	else
		return -EOPNOTSUPP;

	rv = P11(t->functions, C_GenerateKeyPair, t->session, &mechanism, public_template, n_public,
		 private_template, ELEMENTSOF(private_template), &public_key, &private_key);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	*ret_private = private_key;
	return 0;
}

static int sign_raw(TokenSession *t, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE type,
		    const unsigned char *data, size_t size, unsigned char **ret, size_t *ret_size)
{
	CK_MECHANISM mechanism = {type, NULL, 0};
	CK_ULONG length = 0;
	unsigned char *signature;
	CK_RV rv;

	rv = P11(t->functions, C_SignInit, t->session, &mechanism, key);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	rv = P11(t->functions, C_Sign, t->session, (CK_BYTE_PTR)data, size, NULL, &length);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	if (length == 0 || length > 1024)
		return -EBADMSG;
	signature = malloc(length);
	if (!signature)
		return -ENOMEM;
	rv = P11(t->functions, C_Sign, t->session, (CK_BYTE_PTR)data, size, signature, &length);
	if (rv != CKR_OK) {
		free(signature);
		return p11_rv_to_errno(rv);
	}
	*ret = signature;
	*ret_size = length;
	return 0;
}

int token_session_sign(TokenSession *t, CK_OBJECT_HANDLE key, const char *alg,
		       const unsigned char *data, size_t size, unsigned char **ret_signature,
		       size_t *ret_size)
{
	unsigned char input[sizeof(sha256_digest_info) + SHA256_DIGEST_LENGTH];
	unsigned char *digest = input + sizeof(sha256_digest_info);

	/* We hash, the token signs: many tokens lack the combined
	 * SHA-256 mechanisms but all have the raw ones. */
	SHA256(data, size, digest);
	if (streq(alg, "RS256")) {
		memcpy(input, sha256_digest_info, sizeof(sha256_digest_info));
		return sign_raw(t, key, CKM_RSA_PKCS, input, sizeof(input), ret_signature,
				ret_size);
	}
	if (streq(alg, "ES256")) {
		int r = sign_raw(t, key, CKM_ECDSA, digest, SHA256_DIGEST_LENGTH, ret_signature,
				 ret_size);
		if (r >= 0 && *ret_size != 64) {
			free(*ret_signature);
			return -EBADMSG;
		}
		return r;
	}
	return -EOPNOTSUPP;
}

int token_session_sign_digest(TokenSession *t, CK_OBJECT_HANDLE key, const char *alg, int md_nid,
			      const unsigned char *digest, size_t digest_size,
			      unsigned char **ret_signature, size_t *ret_size)
{
	if (streq(alg, "RS256")) {
		/* DigestInfo: the digest's algorithm, then the digest. */
		X509_SIG *info = X509_SIG_new();
		X509_ALGOR *algorithm;
		ASN1_OCTET_STRING *octets;
		unsigned char *der = NULL;
		int n, r;

		if (!info)
			return -ENOMEM;
		X509_SIG_getm(info, &algorithm, &octets);
		if (md_nid == NID_undef ||
		    X509_ALGOR_set0(algorithm, OBJ_nid2obj(md_nid), V_ASN1_NULL, NULL) != 1 ||
		    ASN1_OCTET_STRING_set(octets, digest, (int)digest_size) != 1 ||
		    (n = i2d_X509_SIG(info, &der)) <= 0) {
			X509_SIG_free(info);
			return -EINVAL;
		}
		X509_SIG_free(info);
		r = sign_raw(t, key, CKM_RSA_PKCS, der, (size_t)n, ret_signature, ret_size);
		OPENSSL_free(der);
		return r;
	}
	if (streq(alg, "ES256")) {
		unsigned char *raw = NULL, *der = NULL;
		size_t raw_size = 0;
		ECDSA_SIG *sig;
		BIGNUM *rr, *ss;
		int n, r;

		r = sign_raw(t, key, CKM_ECDSA, digest, digest_size, &raw, &raw_size);
		if (r < 0)
			return r;
		/* R||S, as PKCS#11 gives it, to DER. */
		sig = ECDSA_SIG_new();
		rr = raw_size == 64 ? BN_bin2bn(raw, 32, NULL) : NULL;
		ss = raw_size == 64 ? BN_bin2bn(raw + 32, 32, NULL) : NULL;
		free(raw);
		if (!sig || !rr || !ss || ECDSA_SIG_set0(sig, rr, ss) != 1) {
			BN_free(rr);
			BN_free(ss);
			ECDSA_SIG_free(sig);
			return raw_size == 64 ? -ENOMEM : -EBADMSG;
		}
		n = i2d_ECDSA_SIG(sig, &der);
		ECDSA_SIG_free(sig);
		if (n <= 0)
			return -ENOMEM;
		*ret_signature = malloc((size_t)n);
		if (*ret_signature)
			memcpy(*ret_signature, der, (size_t)n);
		OPENSSL_free(der);
		*ret_size = (size_t)n;
		return *ret_signature ? 0 : -ENOMEM;
	}
	return -EOPNOTSUPP;
}

int token_session_store_certificate(TokenSession *t, X509 *x509, const unsigned char *id,
				    size_t id_size, const char *label)
{
	CK_OBJECT_CLASS klass = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE type = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	_cleanup_free_ unsigned char *der = NULL, *subject = NULL, *issuer = NULL, *serial = NULL;
	unsigned char *p;
	int der_size, subject_size, issuer_size, serial_size;
	CK_OBJECT_HANDLE object;
	CK_RV rv;

#define TO_DER(var, size, fn, arg)                                                                 \
	do {                                                                                       \
		size = fn(arg, NULL);                                                              \
		if (size <= 0 || !(var = malloc((size_t)size)))                                    \
			return -ENOMEM;                                                            \
		p = var;                                                                           \
		fn(arg, &p);                                                                       \
	} while (0)
	TO_DER(der, der_size, i2d_X509, x509);
	TO_DER(subject, subject_size, i2d_X509_NAME, X509_get_subject_name(x509));
	TO_DER(issuer, issuer_size, i2d_X509_NAME, X509_get_issuer_name(x509));
	TO_DER(serial, serial_size, i2d_ASN1_INTEGER, X509_get0_serialNumber(x509));
#undef TO_DER
	CK_ATTRIBUTE template[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},
	    {CKA_CERTIFICATE_TYPE, &type, sizeof(type)},
	    {CKA_TOKEN, &yes, sizeof(yes)},
	    {CKA_PRIVATE, &no, sizeof(no)},
	    {CKA_ID, (void *)id, id_size},
	    {CKA_LABEL, (void *)label, strlen(label)},
	    {CKA_SUBJECT, subject, (CK_ULONG)subject_size},
	    {CKA_ISSUER, issuer, (CK_ULONG)issuer_size},
	    {CKA_SERIAL_NUMBER, serial, (CK_ULONG)serial_size},
	    {CKA_VALUE, der, (CK_ULONG)der_size},
	};
	rv = P11(t->functions, C_CreateObject, t->session, template, ELEMENTSOF(template), &object);
	return rv == CKR_OK ? 0 : p11_rv_to_errno(rv);
}

/* The certificate objects with exactly this DER. */
static int find_certificates(TokenSession *t, X509 *x509, CK_OBJECT_HANDLE *objects, CK_ULONG max,
			     CK_ULONG *ret_n)
{
	CK_OBJECT_CLASS klass = CKO_CERTIFICATE;
	unsigned char *der = NULL;
	int der_size = i2d_X509(x509, &der);
	int r;

	if (der_size <= 0)
		return -ENOMEM;
	CK_ATTRIBUTE template[] = {
	    {CKA_CLASS, &klass, sizeof(klass)},
	    {CKA_VALUE, der, (CK_ULONG)der_size},
	};
	r = token_session_find(t, template, ELEMENTSOF(template), objects, max, ret_n);
	OPENSSL_free(der);
	return r;
}

static int destroy_all(TokenSession *t, const CK_OBJECT_HANDLE *objects, CK_ULONG n)
{
	for (CK_ULONG i = 0; i < n; i++) {
		CK_RV rv = P11(t->functions, C_DestroyObject, t->session, objects[i]);
		if (rv != CKR_OK)
			return p11_rv_to_errno(rv);
	}
	return (int)n;
}

int token_session_has_certificate(TokenSession *t, X509 *x509)
{
	CK_OBJECT_HANDLE objects[1];
	CK_ULONG n = 0;
	int r = find_certificates(t, x509, objects, 1, &n);

	return r < 0 ? r : n > 0;
}

int token_session_destroy_certificate(TokenSession *t, X509 *x509)
{
	CK_OBJECT_HANDLE objects[MAX_OBJECTS];
	CK_ULONG n = 0;
	int r = find_certificates(t, x509, objects, MAX_OBJECTS, &n);

	return r < 0 ? r : destroy_all(t, objects, n);
}

int token_session_destroy_objects(TokenSession *t, CK_OBJECT_CLASS object_class,
				  const unsigned char *id, size_t id_size)
{
	CK_ATTRIBUTE template[] = {
	    {CKA_CLASS, &object_class, sizeof(object_class)},
	    {CKA_ID, (void *)id, id_size},
	};
	CK_OBJECT_HANDLE objects[MAX_OBJECTS];
	CK_ULONG n = 0;
	int r = token_session_find(t, template, ELEMENTSOF(template), objects, MAX_OBJECTS, &n);

	return r < 0 ? r : destroy_all(t, objects, n);
}

const char *jws_alg_for_key(EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "RSA"))
		return "RS256";
	if (EVP_PKEY_is_a(key, "EC")) {
		char group[64];
		size_t len = 0;
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), &len) == 1 &&
		    (streq(group, "prime256v1") || streq(group, "P-256")))
			return "ES256";
	}
	return NULL;
}
