/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

/* Small test PKI built with OpenSSL's C API; every helper fails the test
 * instead of returning an error. */

/* A fresh P-256 key. */
EVP_PKEY *pki_key_new(void);

/* "CN=<cn>" */
X509_NAME *pki_name_cn(const char *cn);

typedef struct PkiCert {
	const X509_NAME *subject;
	EVP_PKEY *key;	      /* the certificate's public key */
	X509 *issuer;	      /* NULL: self-signed with key */
	EVP_PKEY *issuer_key; /* signs; ignored when self-signed */
	int64_t serial;
	int64_t not_before;
	int64_t not_after;
	bool ca;      /* basicConstraints CA:TRUE and keyCertSign */
	bool key_ids; /* subject and authority key identifiers */
} PkiCert;

X509 *pki_cert_new(const PkiCert *options);

/* Writes the certificates as PEM, one after another. */
void pki_write_pem(const char *path, X509 *const *certs, size_t n);

/* The PEM text of one certificate (to free). */
char *pki_pem(X509 *cert);
