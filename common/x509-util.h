/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "name.h"

int name_from_x509(const X509_NAME *x509_name, Name *ret);

/* Hex of the serial number's magnitude, lowercase, no leading zeros ("0"
 * for zero). */
int serial_to_hex(const ASN1_INTEGER *serial, char **ret);

/* Seconds since the epoch, UTC. */
int asn1_time_to_unix(const ASN1_TIME *t, int64_t *ret);

/* Lowercase hex SHA-256 of the certificate's DER. */
int x509_sha256_hex(X509 *x509, char **ret);
