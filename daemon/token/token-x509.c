/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/token-x509.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "x509-util.h"

int certificate_entry_from_x509(X509 *x509, CertificateEntry *entry)
{
	unsigned char *der = NULL;
	int size, r;

	r = serial_to_hex(X509_get0_serialNumber(x509), &entry->serial);
	if (r < 0)
		return r;
	r = name_from_x509(X509_get_subject_name(x509), &entry->subject);
	if (r < 0)
		return r;
	r = name_from_x509(X509_get_issuer_name(x509), &entry->issuer);
	if (r < 0)
		return r;
	r = asn1_time_to_unix(X509_get0_notBefore(x509), &entry->not_before);
	if (r < 0)
		return r;
	r = asn1_time_to_unix(X509_get0_notAfter(x509), &entry->not_after);
	if (r < 0)
		return r;
	r = x509_sha256_hex(x509, &entry->sha256);
	if (r < 0)
		return r;
	size = i2d_X509(x509, &der);
	if (size <= 0)
		return -ENOMEM;
	entry->der = malloc((size_t)size);
	if (entry->der) {
		memcpy(entry->der, der, (size_t)size);
		entry->der_size = (size_t)size;
	}
	OPENSSL_free(der);
	return entry->der ? 0 : -ENOMEM;
}

int x509_from_der(const unsigned char *der, size_t size, X509 **ret)
{
	const unsigned char *p = der;
	X509 *x509;

	if (!der || size == 0 || size > LONG_MAX)
		return -EBADMSG;
	x509 = d2i_X509(NULL, &p, (long)size);
	if (!x509 || p != der + size) {
		X509_free(x509);
		ERR_clear_error();
		return -EBADMSG;
	}
	*ret = x509;
	return 0;
}
