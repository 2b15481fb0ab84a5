/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

/* One RDN of a distinguished name, as protocol-v1 spells it: an OpenSSL
 * short name (or a dotted OID) and the UTF-8 text of the value. */
typedef struct NamePair {
	char *attribute;
	char *value;
} NamePair;

typedef struct Name {
	NamePair *pairs;
	size_t n_pairs;
} Name;

void name_clear(Name *name);
int name_copy(const Name *source, Name *ret);
int name_from_x509(const X509_NAME *x509_name, Name *ret);
bool name_equal(const Name *a, const Name *b);

/* Hex of the serial number's magnitude, lowercase, no leading zeros ("0"
 * for zero). */
int serial_to_hex(const ASN1_INTEGER *serial, char **ret);

/* Seconds since the epoch, UTC. */
int asn1_time_to_unix(const ASN1_TIME *t, int64_t *ret);

/* Lowercase hex SHA-256 of the certificate's DER. */
int x509_sha256_hex(X509 *x509, char **ret);
