/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JWS that protocol v1's signed requests carry, checked from the
 * outside: every part decoded again, the header's members exact, and the
 * signature verified with OpenSSL against the certificate in x5c. Also the
 * base64 forms it is built from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base64.h"
#include "ca/jws.h"
#include "macro.h"

#define URL "https://ra.example.vn/activation/v1/actions/r-7f3a9c/issue"
#define NONCE "oFvnlFP1wIhRlYS2jTaXbA"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)

typedef struct Key {
	EVP_PKEY *pkey;
	X509 *certificate;
} Key;

static X509 *self_signed(EVP_PKEY *pkey)
{
	X509 *x509 = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x509);
	assert_non_null(name);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						    (const unsigned char *)"Công ty thử", -1, -1,
						    0),
			 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x509), 0x5401a3), 1);
	assert_int_equal(X509_set_subject_name(x509, name), 1);
	assert_int_equal(X509_set_issuer_name(x509, name), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x509), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x509), 86400));
	assert_int_equal(X509_set_pubkey(x509, pkey), 1);
	assert_true(X509_sign(x509, pkey, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return x509;
}

static int digest_sign(EVP_PKEY *pkey, const unsigned char *data, size_t size, unsigned char **ret,
		       size_t *ret_size)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *signature;
	size_t len = 0;

	if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &len, data, size) != 1)
		return -EIO;
	signature = malloc(len);
	if (!signature)
		return -ENOMEM;
	if (EVP_DigestSign(ctx, signature, &len, data, size) != 1) {
		free(signature);
		return -EIO;
	}
	*ret = signature;
	*ret_size = len;
	return 0;
}

/* RS256: PKCS#1 v1.5 with SHA-256, what EVP_DigestSign does for RSA. */
static int sign_rs256(void *userdata, const unsigned char *data, size_t size,
		      unsigned char **ret_signature, size_t *ret_size)
{
	Key *key = userdata;

	return digest_sign(key->pkey, data, size, ret_signature, ret_size);
}

/* ES256: OpenSSL gives DER; JWS wants R||S, 32 bytes each. */
static int sign_es256(void *userdata, const unsigned char *data, size_t size,
		      unsigned char **ret_signature, size_t *ret_size)
{
	Key *key = userdata;
	_cleanup_free_ unsigned char *der = NULL;
	_cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = NULL;
	const unsigned char *p;
	unsigned char *rs;
	size_t len;
	int r;

	r = digest_sign(key->pkey, data, size, &der, &len);
	if (r < 0)
		return r;
	p = der;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	if (!sig)
		return -EIO;
	rs = malloc(64);
	if (!rs)
		return -ENOMEM;
	if (BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32) != 32) {
		free(rs);
		return -EIO;
	}
	*ret_signature = rs;
	*ret_size = 64;
	return 0;
}

/* A signer that forgets the conversion: ES256 with a DER signature. */
static int sign_es256_der(void *userdata, const unsigned char *data, size_t size,
			  unsigned char **ret_signature, size_t *ret_size)
{
	Key *key = userdata;

	return digest_sign(key->pkey, data, size, ret_signature, ret_size);
}

static int sign_fails(void *userdata, const unsigned char *data, size_t size,
		      unsigned char **ret_signature, size_t *ret_size)
{
	return -EACCES;
}

static bool base64url_text(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

static json_t *decode_json_part(const char *part)
{
	_cleanup_free_ unsigned char *text = NULL;
	size_t size = 0;
	json_t *json;

	assert_true(base64url_text(part));
	assert_int_equal(base64url_decode(part, strlen(part), &text, &size), 0);
	json = json_loadb((const char *)text, size, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(json);
	return json;
}

/* x5c is standard base64 (RFC 7515 §4.1.6), decoded here by OpenSSL. */
static void assert_x5c_is(const char *b64, X509 *certificate)
{
	_cleanup_free_ unsigned char *decoded = NULL;
	unsigned char *der = NULL;
	size_t len = strlen(b64);
	int n, der_len;

	assert_int_equal(len % 4, 0);
	decoded = malloc(len / 4 * 3 + 1);
	assert_non_null(decoded);
	n = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)len);
	assert_true(n > 0);
	/* EVP_DecodeBlock counts padding as zero bytes. */
	if (len >= 1 && b64[len - 1] == '=')
		n--;
	if (len >= 2 && b64[len - 2] == '=')
		n--;
	der_len = i2d_X509(certificate, &der);
	assert_int_equal(n, der_len);
	assert_memory_equal(decoded, der, (size_t)der_len);
	OPENSSL_free(der);
}

static void assert_signature_verifies(const char *alg, EVP_PKEY *pkey, const char *input,
				      const unsigned char *signature, size_t size)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	_cleanup_free_ unsigned char *der = NULL;
	const unsigned char *checked = signature;
	size_t checked_size = size;

	if (streq(alg, "ES256")) {
		_cleanup_(ECDSA_SIG_freep) ECDSA_SIG *sig = ECDSA_SIG_new();
		unsigned char *p = NULL;
		int len;

		assert_int_equal(size, 64);
		assert_non_null(sig);
		assert_int_equal(ECDSA_SIG_set0(sig, BN_bin2bn(signature, 32, NULL),
						BN_bin2bn(signature + 32, 32, NULL)),
				 1);
		len = i2d_ECDSA_SIG(sig, &p);
		assert_true(len > 0);
		der = malloc((size_t)len);
		assert_non_null(der);
		memcpy(der, p, (size_t)len);
		OPENSSL_free(p);
		checked = der;
		checked_size = (size_t)len;
	}
	assert_non_null(ctx);
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey), 1);
	assert_int_equal(EVP_DigestVerify(ctx, checked, checked_size, (const unsigned char *)input,
					  strlen(input)),
			 1);
}

static void check_jws(const char *alg, EVP_PKEY *pkey,
		      int (*sign)(void *, const unsigned char *, size_t, unsigned char **,
				  size_t *))
{
	_cleanup_(X509_freep) X509 *certificate = self_signed(pkey);
	Key key = {.pkey = pkey, .certificate = certificate};
	CaSigner signer = {.alg = alg, .certificate = certificate, .sign = sign, .userdata = &key};
	json_t *payload = json_pack("{s:s}", "csr", "MIIBszCCARwCAQAw");
	json_t *jws, *header, *decoded_payload, *x5c;
	_cleanup_free_ char *text = NULL, *input = NULL;
	_cleanup_free_ unsigned char *signature = NULL;
	const char *protected64, *payload64, *signature64;
	size_t signature_size = 0;

	assert_int_equal(jws_build(&signer, NONCE, URL, payload, &text), 0);
	assert_non_null(text);

	jws = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(jws);
	assert_int_equal(json_object_size(jws), 3);
	protected64 = json_string_value(json_object_get(jws, "protected"));
	payload64 = json_string_value(json_object_get(jws, "payload"));
	signature64 = json_string_value(json_object_get(jws, "signature"));
	assert_non_null(protected64);
	assert_non_null(payload64);
	assert_non_null(signature64);
	/* base64url without padding: no '=', '+' or '/' anywhere. */
	assert_true(base64url_text(protected64));
	assert_true(base64url_text(payload64));
	assert_true(base64url_text(signature64));

	header = decode_json_part(protected64);
	assert_int_equal(json_object_size(header), 4);
	assert_string_equal(json_string_value(json_object_get(header, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(header, "nonce")), NONCE);
	assert_string_equal(json_string_value(json_object_get(header, "url")), URL);
	assert_null(json_object_get(header, "crit"));
	x5c = json_object_get(header, "x5c");
	assert_true(json_is_array(x5c));
	assert_int_equal(json_array_size(x5c), 1);
	assert_non_null(json_string_value(json_array_get(x5c, 0)));
	assert_x5c_is(json_string_value(json_array_get(x5c, 0)), certificate);

	decoded_payload = decode_json_part(payload64);
	assert_true(json_equal(decoded_payload, payload));

	assert_int_equal(
	    base64url_decode(signature64, strlen(signature64), &signature, &signature_size), 0);
	assert_int_not_equal(asprintf(&input, "%s.%s", protected64, payload64), -1);
	assert_signature_verifies(alg, pkey, input, signature, signature_size);

	json_decref(decoded_payload);
	json_decref(header);
	json_decref(jws);
	json_decref(payload);
}

static void test_rs256(void **state)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = EVP_RSA_gen(2048);

	assert_non_null(pkey);
	check_jws("RS256", pkey, sign_rs256);
}

static void test_es256(void **state)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = EVP_EC_gen("P-256");

	assert_non_null(pkey);
	check_jws("ES256", pkey, sign_es256);
}

static void test_refusals(void **state)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = EVP_EC_gen("P-256");
	_cleanup_(X509_freep) X509 *certificate = NULL;
	json_t *payload = json_pack("{s:s, s:b}", "installed_serial", "5404", "keep_previous", 1);
	Key key = {.pkey = pkey};
	CaSigner signer = {.alg = "ES256", .sign = sign_es256_der, .userdata = &key};
	char *text = NULL;

	assert_non_null(pkey);
	certificate = self_signed(pkey);
	signer.certificate = certificate;
	key.certificate = certificate;

	/* A DER ECDSA signature is not what ES256 means. */
	assert_int_equal(jws_build(&signer, NONCE, URL, payload, &text), -EINVAL);
	signer.alg = "PS256";
	signer.sign = sign_es256;
	assert_int_equal(jws_build(&signer, NONCE, URL, payload, &text), -EOPNOTSUPP);
	signer.alg = "none";
	assert_int_equal(jws_build(&signer, NONCE, URL, payload, &text), -EOPNOTSUPP);
	signer.alg = "ES256";
	signer.sign = sign_fails;
	assert_int_equal(jws_build(&signer, NONCE, URL, payload, &text), -EACCES);
	signer.sign = sign_es256;
	assert_int_equal(jws_build(&signer, NULL, URL, payload, &text), -EINVAL);
	assert_null(text);
	json_decref(payload);
}

static void test_base64(void **state)
{
	static const struct {
		const char *data, *std, *url;
	} vectors[] = {
	    /* RFC 4648 §10 */
	    {"", "", ""},
	    {"f", "Zg==", "Zg"},
	    {"fo", "Zm8=", "Zm8"},
	    {"foo", "Zm9v", "Zm9v"},
	    {"foob", "Zm9vYg==", "Zm9vYg"},
	    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
	    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
	    /* The two characters where the alphabets differ. */
	    {"\xfb\xff\xbf", "+/+/", "-_-_"},
	};

	for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
		size_t len = strlen(vectors[i].data), size = 0;
		_cleanup_free_ char *std = base64_encode(vectors[i].data, len);
		_cleanup_free_ char *url = base64url_encode(vectors[i].data, len);
		_cleanup_free_ unsigned char *decoded = NULL;

		assert_string_equal(std, vectors[i].std);
		assert_string_equal(url, vectors[i].url);
		assert_int_equal(base64url_decode(url, strlen(url), &decoded, &size), 0);
		assert_int_equal(size, len);
		assert_memory_equal(decoded, vectors[i].data, len);
	}
}

static void test_base64url_decode_refuses(void **state)
{
	static const char *const bad[] = {
	    "Zg==",  /* padding */
	    "Zm9v+", /* standard alphabet */
	    "Zm/v",  /* idem */
	    "Zm9vY", /* 4n+1 characters */
	    "Zh",    /* non-zero trailing bits: "Zg" is the one form of "f" */
	    "Zm 9v", /* blank */
	};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		unsigned char *decoded = NULL;
		size_t size = 0;

		assert_int_equal(base64url_decode(bad[i], strlen(bad[i]), &decoded, &size),
				 -EBADMSG);
		assert_null(decoded);
	}
}

/* The journal keeps an issued certificate as PEM (OpenSSL's, 64 columns);
 * the daemon, which has no OpenSSL, hands out its DER. */
static void test_pem_certificate_to_der(void **state)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	_cleanup_(X509_freep) X509 *certificate = NULL;
	_cleanup_free_ unsigned char *der = NULL;
	unsigned char *expected = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, *text;
	size_t size = 0;
	long pem_size;
	int expected_size;

	assert_non_null(pkey);
	certificate = self_signed(pkey);
	assert_non_null(bio);
	assert_int_equal(BIO_puts(bio, "leading text\n"), 13);
	assert_int_equal(PEM_write_bio_X509(bio, certificate), 1);
	pem_size = BIO_get_mem_data(bio, &text);
	pem = strndup(text, (size_t)pem_size);
	assert_non_null(pem);
	expected_size = i2d_X509(certificate, &expected);
	assert_true(expected_size > 0);

	assert_int_equal(pem_certificate_to_der(pem, &der, &size), 0);
	assert_int_equal(size, (size_t)expected_size);
	assert_memory_equal(der, expected, size);

	/* No block, no end, a character outside base64, nothing inside. */
	free(der);
	der = NULL;
	assert_int_equal(pem_certificate_to_der("no certificate", &der, &size), -EBADMSG);
	assert_int_equal(pem_certificate_to_der(NULL, &der, &size), -EBADMSG);
	*strstr(pem, "-----END") = 0;
	assert_int_equal(pem_certificate_to_der(pem, &der, &size), -EBADMSG);
	assert_int_equal(pem_certificate_to_der("-----BEGIN CERTIFICATE-----\nMII*\n"
						"-----END CERTIFICATE-----\n",
						&der, &size),
			 -EBADMSG);
	assert_int_equal(pem_certificate_to_der("-----BEGIN CERTIFICATE-----\nMI-_\n"
						"-----END CERTIFICATE-----\n",
						&der, &size),
			 -EBADMSG);
	assert_int_equal(
	    pem_certificate_to_der("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", &der,
				   &size),
	    -EBADMSG);
	assert_null(der);
	OPENSSL_free(expected);
	free(pem);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rs256),  cmocka_unit_test(test_pem_certificate_to_der),
	    cmocka_unit_test(test_es256),  cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_base64), cmocka_unit_test(test_base64url_decode_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
