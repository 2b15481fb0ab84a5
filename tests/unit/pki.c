/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pki.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

EVP_PKEY *pki_key_new(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");

	assert_non_null(key);
	return key;
}

X509_NAME *pki_name_cn(const char *cn)
{
	X509_NAME *name = X509_NAME_new();

	assert_non_null(name);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn, -1, -1, 0),
			 1);
	return name;
}

static void add_extension(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

X509 *pki_cert_new(const PkiCert *o)
{
	X509 *cert = X509_new();
	X509 *issuer = o->issuer ? o->issuer : cert;
	EVP_PKEY *signer = o->issuer ? o->issuer_key : o->key;
	ASN1_INTEGER *serial = ASN1_INTEGER_new();

	assert_non_null(cert);
	assert_non_null(serial);
	assert_int_equal(X509_set_version(cert, 2), 1);
	assert_int_equal(ASN1_INTEGER_set_int64(serial, o->serial), 1);
	assert_int_equal(X509_set_serialNumber(cert, serial), 1);
	ASN1_INTEGER_free(serial);
	assert_int_equal(X509_set_subject_name(cert, o->subject), 1);
	assert_int_equal(
	    X509_set_issuer_name(cert, o->issuer ? X509_get_subject_name(o->issuer) : o->subject),
	    1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)o->not_before));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)o->not_after));
	assert_int_equal(X509_set_pubkey(cert, o->key), 1);
	if (o->ca) {
		add_extension(cert, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_extension(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else
		add_extension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
	if (o->key_ids) {
		add_extension(cert, issuer, NID_subject_key_identifier, "hash");
		add_extension(cert, issuer, NID_authority_key_identifier, "keyid:always");
	}
	assert_true(X509_sign(cert, signer, EVP_sha256()) > 0);
	return cert;
}

void pki_write_pem(const char *path, X509 *const *certs, size_t n)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PEM_write_X509(f, certs[i]), 1);
	assert_int_equal(fclose(f), 0);
}

char *pki_pem(X509 *cert)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *copy;
	long len;

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509(bio, cert), 1);
	len = BIO_get_mem_data(bio, &data);
	assert_true(len > 0);
	copy = strndup(data, (size_t)len);
	assert_non_null(copy);
	BIO_free(bio);
	return copy;
}
