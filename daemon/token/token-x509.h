/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Certificates parsed, for the token workers: the daemon gets the fields
 * already read (token-info-json.h) and never parses a certificate. */

#include <openssl/x509.h>

#include "token/token-info.h"

/* Fills the fields that come from the certificate itself, its DER
 * included. */
int certificate_entry_from_x509(X509 *x509, CertificateEntry *entry);

/* Exactly one DER certificate: -EBADMSG for anything else. */
int x509_from_der(const unsigned char *der, size_t size, X509 **ret);
