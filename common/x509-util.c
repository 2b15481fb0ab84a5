/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "x509-util.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <string.h>
#include <time.h>

#include "hex.h"
#include "macro.h"

static void name_clearp(Name *n)
{
	name_clear(n);
}

static int attribute_name(const ASN1_OBJECT *object, char **ret)
{
	int nid = OBJ_obj2nid(object);
	const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
	char buf[128];

	if (sn) {
		*ret = strdup(sn);
		return *ret ? 0 : -ENOMEM;
	}
	/* An attribute OpenSSL has no name for is its dotted OID. */
	int len = OBJ_obj2txt(buf, sizeof(buf), object, 1);
	if (len <= 0 || (size_t)len >= sizeof(buf))
		return -EBADMSG;
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

int name_from_x509(const X509_NAME *x509_name, Name *ret)
{
	_cleanup_(name_clearp) Name name = {};
	int count = X509_NAME_entry_count(x509_name);

	if (count < 0 || count > NAME_MAX_PAIRS)
		return -E2BIG;
	if (count > 0) {
		name.pairs = calloc((size_t)count, sizeof(NamePair));
		if (!name.pairs)
			return -ENOMEM;
	}
	for (int i = 0; i < count; i++) {
		const X509_NAME_ENTRY *entry = X509_NAME_get_entry(x509_name, i);
		unsigned char *utf8 = NULL;
		int r, len;

		r = attribute_name(X509_NAME_ENTRY_get_object(entry), &name.pairs[i].attribute);
		if (r < 0)
			return r;
		name.n_pairs++;
		len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
		if (len < 0)
			return -EBADMSG;
		/* An embedded NUL would make the value differ from what a C
		 * string shows: refuse it rather than cut it. */
		if (memchr(utf8, 0, (size_t)len)) {
			OPENSSL_free(utf8);
			return -EBADMSG;
		}
		name.pairs[i].value = strndup((const char *)utf8, (size_t)len);
		OPENSSL_free(utf8);
		if (!name.pairs[i].value)
			return -ENOMEM;
	}
	*ret = name;
	name = (Name){};
	return 0;
}

int serial_to_hex(const ASN1_INTEGER *serial, char **ret)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *hex, *p, *r;

	if (!bn)
		return -EBADMSG;
	BN_set_negative(bn, 0);
	hex = BN_bn2hex(bn);
	BN_free(bn);
	if (!hex)
		return -ENOMEM;
	p = hex;
	while (*p == '0' && p[1])
		p++;
	r = strdup(p);
	OPENSSL_free(hex);
	if (!r)
		return -ENOMEM;
	for (p = r; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	*ret = r;
	return 0;
}

int asn1_time_to_unix(const ASN1_TIME *t, int64_t *ret)
{
	struct tm tm = {};

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -EBADMSG;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

int x509_sha256_hex(X509 *x509, char **ret)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char *hex;

	if (X509_digest(x509, EVP_sha256(), md, &len) != 1)
		return -EBADMSG;
	hex = hex_encode(md, len);
	if (!hex)
		return -ENOMEM;
	*ret = hex;
	return 0;
}
