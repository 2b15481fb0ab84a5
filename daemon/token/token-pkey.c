/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Foreign RSA and EC key methods: OpenSSL 3.0 keeps a key with a method
 * of its own out of its providers and calls the method's sign for
 * EVP_DigestSign and friends, so a CMP message is signed on the token. */
#include "token/token-pkey.h"

#include <errno.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The legacy RSA and EC_KEY calls are what a foreign key is made of. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

typedef struct TokenKey {
	token_pkey_sign_t sign;
	void *userdata;
	int last_error;
} TokenKey;

static pthread_once_t methods_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *rsa_method;
static EC_KEY_METHOD *ec_method;
static int rsa_index = -1, ec_index = -1;

static void free_token_key(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			   void *argp)
{
	free(ptr);
}

static TokenKey *rsa_token_key(const RSA *rsa)
{
	return RSA_get_ex_data(rsa, rsa_index);
}

static int rsa_sign(int type, const unsigned char *m, unsigned int m_length, unsigned char *sigret,
		    unsigned int *siglen, const RSA *rsa)
{
	TokenKey *k = rsa_token_key(rsa);
	unsigned char *signature = NULL;
	size_t size = 0;
	int r;

	if (!k)
		return 0;
	r = k->sign(k->userdata, type, m, m_length, &signature, &size);
	if (r < 0 || size > (size_t)RSA_size(rsa)) {
		k->last_error = r < 0 ? r : -EBADMSG;
		free(signature);
		return 0;
	}
	memcpy(sigret, signature, size);
	*siglen = (unsigned)size;
	free(signature);
	return 1;
}

static TokenKey *ec_token_key(const EC_KEY *ec)
{
	return EC_KEY_get_ex_data(ec, ec_index);
}

static ECDSA_SIG *ec_sign_sig(const unsigned char *dgst, int dgst_len, const BIGNUM *kinv,
			      const BIGNUM *rp, EC_KEY *ec)
{
	TokenKey *k = ec_token_key(ec);
	unsigned char *signature = NULL;
	const unsigned char *p;
	size_t size = 0;
	ECDSA_SIG *sig;
	int r;

	if (!k)
		return NULL;
	r = k->sign(k->userdata, NID_undef, dgst, (size_t)dgst_len, &signature, &size);
	if (r < 0) {
		k->last_error = r;
		return NULL;
	}
	p = signature;
	sig = d2i_ECDSA_SIG(NULL, &p, (long)size);
	if (!sig)
		k->last_error = -EBADMSG;
	free(signature);
	return sig;
}

static int ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
		   unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	ECDSA_SIG *s = ec_sign_sig(dgst, dlen, kinv, r, ec);
	int n;

	if (!s)
		return 0;
	n = i2d_ECDSA_SIG(s, &sig);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return 0;
	*siglen = (unsigned)n;
	return 1;
}

static void methods_init(void)
{
	int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

	rsa_index = RSA_get_ex_new_index(0, NULL, NULL, NULL, free_token_key);
	ec_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, free_token_key);
	rsa_method = RSA_meth_dup(RSA_get_default_method());
	if (rsa_method) {
		RSA_meth_set1_name(rsa_method, "safecad token");
		RSA_meth_set_sign(rsa_method, rsa_sign);
	}
	ec_method = EC_KEY_METHOD_new(EC_KEY_get_default_method());
	if (ec_method) {
		EC_KEY_METHOD_get_sign(ec_method, NULL, &sign_setup, NULL);
		EC_KEY_METHOD_set_sign(ec_method, ec_sign, sign_setup, ec_sign_sig);
	}
}

static TokenKey *token_key_new(token_pkey_sign_t sign, void *userdata)
{
	TokenKey *k = calloc(1, sizeof(TokenKey));

	if (k) {
		k->sign = sign;
		k->userdata = userdata;
	}
	return k;
}

static EVP_PKEY *rsa_key(const RSA *public, token_pkey_sign_t sign, void *userdata)
{
	RSA *rsa = RSA_new();
	BIGNUM *n = BN_dup(RSA_get0_n(public)), *e = BN_dup(RSA_get0_e(public));
	TokenKey *k = token_key_new(sign, userdata);
	EVP_PKEY *key = NULL;

	if (!rsa || !n || !e || !k || RSA_set_method(rsa, rsa_method) != 1 ||
	    RSA_set0_key(rsa, n, e, NULL) != 1)
		goto fail;
	n = e = NULL;
	if (RSA_set_ex_data(rsa, rsa_index, k) != 1)
		goto fail;
	k = NULL;
	key = EVP_PKEY_new();
	if (!key || EVP_PKEY_assign_RSA(key, rsa) != 1)
		goto fail;
	return key;
fail:
	EVP_PKEY_free(key);
	RSA_free(rsa);
	BN_free(n);
	BN_free(e);
	free(k);
	return NULL;
}

static EVP_PKEY *ec_key(const EC_KEY *public, token_pkey_sign_t sign, void *userdata)
{
	EC_KEY *ec = EC_KEY_new();
	TokenKey *k = token_key_new(sign, userdata);
	EVP_PKEY *key = NULL;

	if (!ec || !k || EC_KEY_set_method(ec, ec_method) != 1 ||
	    EC_KEY_set_group(ec, EC_KEY_get0_group(public)) != 1 ||
	    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(public)) != 1 ||
	    EC_KEY_set_ex_data(ec, ec_index, k) != 1)
		goto fail;
	k = NULL;
	key = EVP_PKEY_new();
	if (!key || EVP_PKEY_assign_EC_KEY(key, ec) != 1)
		goto fail;
	return key;
fail:
	EVP_PKEY_free(key);
	EC_KEY_free(ec);
	free(k);
	return NULL;
}

EVP_PKEY *token_pkey_new(EVP_PKEY *public_key, token_pkey_sign_t sign, void *userdata)
{
	pthread_once(&methods_once, methods_init);
	if (!public_key || !rsa_method || !ec_method || rsa_index < 0 || ec_index < 0)
		return NULL;
	switch (EVP_PKEY_get_base_id(public_key)) {
	case EVP_PKEY_RSA:
		return rsa_key(EVP_PKEY_get0_RSA(public_key), sign, userdata);
	case EVP_PKEY_EC:
		return ec_key(EVP_PKEY_get0_EC_KEY(public_key), sign, userdata);
	default:
		return NULL;
	}
}

int token_pkey_last_error(EVP_PKEY *key)
{
	TokenKey *k = NULL;

	if (!key)
		return 0;
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
		k = rsa_token_key(EVP_PKEY_get0_RSA(key));
	else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC)
		k = ec_token_key(EVP_PKEY_get0_EC_KEY(key));
	return k ? k->last_error : 0;
}
