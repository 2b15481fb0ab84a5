/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A certificate's DER (or a bare Name's) → the names, serial, times and
 * hash that status shows. */
#include <openssl/err.h>
#include <openssl/x509.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "time-util.h"
#include "x509-util.h"

static bool is_lower_hex(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static void check_name(const X509_NAME *x509_name)
{
	Name name = {}, copy = {};

	if (!x509_name || name_from_x509(x509_name, &name) < 0) {
		fuzz_check(name.n_pairs == 0 && !name.pairs);
		return;
	}
	for (size_t i = 0; i < name.n_pairs; i++) {
		fuzz_check(name.pairs[i].attribute && name.pairs[i].attribute[0]);
		fuzz_check(name.pairs[i].value);
	}
	fuzz_check(name_copy(&name, &copy) == 0);
	fuzz_check(name_equal(&name, &copy));
	name_clear(&copy);
	name_clear(&name);
}

static void check_time(const ASN1_TIME *time)
{
	int64_t t;
	char buf[32];

	if (asn1_time_to_unix(time, &t) < 0)
		return;
	/* RFC 3339, or nothing: "YYYY-MM-DDTHH:MM:SSZ" */
	if (format_rfc3339(buf, sizeof(buf), t))
		fuzz_check(strlen(buf) == 20 && buf[4] == '-' && buf[10] == 'T' && buf[19] == 'Z');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *cert;

	if (size > 64 * 1024)
		return 0;
	cert = d2i_X509(NULL, &p, (long)size);
	if (cert) {
		char *hex = NULL;

		check_name(X509_get_subject_name(cert));
		check_name(X509_get_issuer_name(cert));
		if (serial_to_hex(X509_get0_serialNumber(cert), &hex) == 0) {
			fuzz_check(is_lower_hex(hex));
			fuzz_check(hex[0] != '0' || hex[1] == 0);
			free(hex);
		}
		check_time(X509_get0_notBefore(cert));
		check_time(X509_get0_notAfter(cert));
		hex = NULL;
		if (x509_sha256_hex(cert, &hex) == 0) {
			fuzz_check(strlen(hex) == 64 && is_lower_hex(hex));
			free(hex);
		}
		X509_free(cert);
	} else {
		X509_NAME *name;

		p = data;
		name = d2i_X509_NAME(NULL, &p, (long)size);
		check_name(name);
		X509_NAME_free(name);
	}
	ERR_clear_error();
	return 0;
}
