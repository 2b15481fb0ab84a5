/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hex.h"
#include "macro.h"
#include "pki.h"
#include "x509-util.h"

/* Code points of a UTF-8 string as big-endian units of width 2 (BMPString)
 * or 4 (UniversalString). */
static unsigned char *utf8_to_ucs(const char *s, int width, int *ret_len)
{
	size_t n = strlen(s);
	unsigned char *out = calloc(n, (size_t)width), *o = out;
	const unsigned char *p = (const unsigned char *)s;

	assert_non_null(out);
	while (*p) {
		uint32_t c;
		if (p[0] < 0x80)
			c = *p++;
		else if ((p[0] & 0xe0) == 0xc0) {
			c = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
			p += 2;
		} else if ((p[0] & 0xf0) == 0xe0) {
			c = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
			    (p[2] & 0x3f);
			p += 3;
		} else {
			c = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
			    (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
			p += 4;
		}
		for (int i = width - 1; i >= 0; i--)
			*o++ = (unsigned char)(c >> (8 * i));
	}
	*ret_len = (int)(o - out);
	return out;
}

/* Adds one RDN holding exactly these bytes with this ASN.1 string type. */
static void add_raw(X509_NAME *name, const char *attribute, int type, const void *bytes, int len)
{
	ASN1_OBJECT *object = OBJ_txt2obj(attribute, 0);

	assert_non_null(object);
	assert_int_equal(X509_NAME_add_entry_by_OBJ(name, object, type,
						    (const unsigned char *)bytes, len, -1, 0),
			 1);
	ASN1_OBJECT_free(object);
}

static void add_text(X509_NAME *name, const char *attribute, int type, const char *text)
{
	if (type == V_ASN1_BMPSTRING || type == V_ASN1_UNIVERSALSTRING) {
		int len;
		unsigned char *ucs = utf8_to_ucs(text, type == V_ASN1_BMPSTRING ? 2 : 4, &len);
		add_raw(name, attribute, type, ucs, len);
		free(ucs);
	} else
		add_raw(name, attribute, type, text, (int)strlen(text));
}

/* Encodes and decodes again, so the test sees what a certificate's DER
 * gives. */
static X509_NAME *der_roundtrip(X509_NAME *name)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int len = i2d_X509_NAME(name, &der);
	X509_NAME *decoded;

	assert_true(len > 0);
	p = der;
	decoded = d2i_X509_NAME(NULL, &p, len);
	assert_non_null(decoded);
	OPENSSL_free(der);
	X509_NAME_free(name);
	return decoded;
}

static void assert_pairs(const Name *name, const char *const *expected, size_t n)
{
	assert_int_equal(name->n_pairs, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(name->pairs[i].attribute, expected[2 * i]);
		assert_string_equal(name->pairs[i].value, expected[2 * i + 1]);
	}
}

static void test_name_order_and_short_names(void **state)
{
	/* Not the usual order: the DER order is what counts. */
	static const char *const expected[] = {
	    "CN",
	    "Nguyễn Văn Ánh",
	    "C",
	    "VN",
	    "ST",
	    "Hà Nội",
	    "L",
	    "Cầu Giấy",
	    "O",
	    "CÔNG TY TNHH AN PHÁT",
	    "OU",
	    "Kế toán",
	    "title",
	    "Giám đốc",
	    "UID",
	    "MST:0101234567",
	    "serialNumber",
	    "CMND:012345678",
	    "emailAddress",
	    "ke.toan@example.vn",
	    "DC",
	    "example",
	    "organizationIdentifier",
	    "VATVN-0101234567",
	    "CN",
	    "second CN",
	};
	X509_NAME *x = X509_NAME_new();
	Name name = {};

	assert_non_null(x);
	add_text(x, "CN", V_ASN1_UTF8STRING, "Nguyễn Văn Ánh");
	add_text(x, "C", V_ASN1_PRINTABLESTRING, "VN");
	add_text(x, "ST", V_ASN1_UTF8STRING, "Hà Nội");
	add_text(x, "L", V_ASN1_UTF8STRING, "Cầu Giấy");
	add_text(x, "O", V_ASN1_UTF8STRING, "CÔNG TY TNHH AN PHÁT");
	add_text(x, "OU", V_ASN1_UTF8STRING, "Kế toán");
	add_text(x, "title", V_ASN1_UTF8STRING, "Giám đốc");
	add_text(x, "UID", V_ASN1_UTF8STRING, "MST:0101234567");
	add_text(x, "serialNumber", V_ASN1_PRINTABLESTRING, "CMND:012345678");
	add_text(x, "emailAddress", V_ASN1_IA5STRING, "ke.toan@example.vn");
	add_text(x, "DC", V_ASN1_IA5STRING, "example");
	add_text(x, "2.5.4.97", V_ASN1_UTF8STRING, "VATVN-0101234567");
	add_text(x, "CN", V_ASN1_UTF8STRING, "second CN");
	x = der_roundtrip(x);

	assert_int_equal(name_from_x509(x, &name), 0);
	assert_pairs(&name, expected, ELEMENTSOF(expected) / 2);
	name_clear(&name);
	assert_int_equal(name.n_pairs, 0);
	assert_null(name.pairs);
	X509_NAME_free(x);
}

static void test_name_string_types(void **state)
{
	static const int types[] = {V_ASN1_UTF8STRING, V_ASN1_BMPSTRING, V_ASN1_UNIVERSALSTRING};
	static const char *const values[] = {
	    "CÔNG TY TNHH AN PHÁT",
	    "Thuế điện tử (Tổng cục Thuế)",
	    "Nguyễn Thị Hồng Nhung",
	    /* outside the BMP: UniversalString and UTF8String only */
	    "𝐀",
	};
	Name reference = {};

	for (size_t v = 0; v < ELEMENTSOF(values); v++)
		for (size_t t = 0; t < ELEMENTSOF(types); t++) {
			X509_NAME *x;
			Name name = {};

			if (v == 3 && types[t] == V_ASN1_BMPSTRING)
				continue;
			x = X509_NAME_new();
			assert_non_null(x);
			add_text(x, "O", types[t], values[v]);
			x = der_roundtrip(x);
			assert_int_equal(name_from_x509(x, &name), 0);
			assert_int_equal(name.n_pairs, 1);
			assert_string_equal(name.pairs[0].attribute, "O");
			assert_string_equal(name.pairs[0].value, values[v]);
			if (t == 0) {
				name_clear(&reference);
				assert_int_equal(name_copy(&name, &reference), 0);
			} else
				/* the ASN.1 string type does not count */
				assert_true(name_equal(&name, &reference));
			name_clear(&name);
			X509_NAME_free(x);
		}
	name_clear(&reference);
}

static void test_name_single_byte_types(void **state)
{
	X509_NAME *x = X509_NAME_new();
	Name name = {};
	static const char *const expected[] = {
	    "UID", "MST:0101234567", "C", "VN", "L", "Phát", "emailAddress", "a@b.vn",
	};

	assert_non_null(x);
	add_text(x, "UID", V_ASN1_PRINTABLESTRING, "MST:0101234567");
	add_text(x, "C", V_ASN1_PRINTABLESTRING, "VN");
	/* TeletexString is read as Latin-1 */
	add_raw(x, "L", V_ASN1_T61STRING, "Ph\xe1t", 4);
	add_text(x, "emailAddress", V_ASN1_IA5STRING, "a@b.vn");
	x = der_roundtrip(x);
	assert_int_equal(name_from_x509(x, &name), 0);
	assert_pairs(&name, expected, ELEMENTSOF(expected) / 2);
	name_clear(&name);
	X509_NAME_free(x);
}

static void test_name_unknown_attribute(void **state)
{
	X509_NAME *x = X509_NAME_new();
	Name name = {};

	assert_non_null(x);
	add_raw(x, "1.3.6.1.4.1.55555.1.2", V_ASN1_UTF8STRING, "x", 1);
	add_raw(x, "2.999.1", V_ASN1_PRINTABLESTRING, "y", 1);
	add_raw(x, "0.9.2342.19200300.100.1.1", V_ASN1_UTF8STRING, "z", 1);
	x = der_roundtrip(x);
	assert_int_equal(name_from_x509(x, &name), 0);
	assert_int_equal(name.n_pairs, 3);
	assert_string_equal(name.pairs[0].attribute, "1.3.6.1.4.1.55555.1.2");
	assert_string_equal(name.pairs[0].value, "x");
	assert_string_equal(name.pairs[1].attribute, "2.999.1");
	assert_string_equal(name.pairs[1].value, "y");
	assert_string_equal(name.pairs[2].attribute, "UID");
	name_clear(&name);
	X509_NAME_free(x);
}

static void test_name_long_oid(void **state)
{
	/* A dotted OID longer than any buffer: the exact text or a refusal,
	 * never a cut one. */
	char oid[512] = "1.3.6.1.4.1";
	X509_NAME *x = X509_NAME_new();
	Name name = {.n_pairs = 77};
	int r;

	assert_non_null(x);
	for (int i = 0; i < 40; i++)
		strcat(oid, ".4294967295");
	add_raw(x, oid, V_ASN1_UTF8STRING, "v", 1);
	x = der_roundtrip(x);
	r = name_from_x509(x, &name);
	if (r == 0) {
		assert_int_equal(name.n_pairs, 1);
		assert_string_equal(name.pairs[0].attribute, oid);
		name_clear(&name);
	} else {
		assert_true(r < 0);
		assert_int_equal(name.n_pairs, 77);
	}
	X509_NAME_free(x);
}

static void test_name_long_value(void **state)
{
	/* longer than X.520's upper bound of 64: CAs issue such names */
	char value[1024];
	X509_NAME *x = X509_NAME_new();
	Name name = {};
	size_t len = 0;

	assert_non_null(x);
	value[0] = 0;
	while (len + strlen("CÔNG TY TNHH ") < sizeof(value) - 1) {
		strcat(value, "CÔNG TY TNHH ");
		len = strlen(value);
	}
	add_text(x, "O", V_ASN1_UTF8STRING, value);
	x = der_roundtrip(x);
	assert_int_equal(name_from_x509(x, &name), 0);
	assert_string_equal(name.pairs[0].value, value);
	name_clear(&name);
	X509_NAME_free(x);
}

static void test_name_embedded_nul(void **state)
{
	static const unsigned char bmp_nul[] = {0x00, 'a', 0x00, 0x00, 0x00, 'b'};
	X509_NAME *x;
	Name name = {.n_pairs = 77};

	x = X509_NAME_new();
	assert_non_null(x);
	add_text(x, "CN", V_ASN1_UTF8STRING, "fine");
	add_raw(x, "O", V_ASN1_UTF8STRING, "good\0evil", 9);
	assert_int_equal(name_from_x509(x, &name), -EBADMSG);
	assert_int_equal(name.n_pairs, 77);
	x = der_roundtrip(x);
	assert_int_equal(name_from_x509(x, &name), -EBADMSG);
	assert_int_equal(name.n_pairs, 77);
	X509_NAME_free(x);

	x = X509_NAME_new();
	assert_non_null(x);
	add_raw(x, "CN", V_ASN1_BMPSTRING, bmp_nul, sizeof(bmp_nul));
	assert_int_equal(name_from_x509(x, &name), -EBADMSG);
	X509_NAME_free(x);

	x = X509_NAME_new();
	assert_non_null(x);
	add_raw(x, "CN", V_ASN1_PRINTABLESTRING, "a\0", 2);
	assert_int_equal(name_from_x509(x, &name), -EBADMSG);
	assert_int_equal(name.n_pairs, 77);
	X509_NAME_free(x);
}

static void test_name_undecodable(void **state)
{
	static const struct {
		int type;
		const char *bytes;
		int len;
	} cases[] = {
	    {V_ASN1_UTF8STRING, "\xff\xfe", 2},
	    {V_ASN1_UTF8STRING, "abc\xc3", 4},
	    {V_ASN1_UTF8STRING, "\xed\xa0\x80", 3}, /* a UTF-16 surrogate */
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		X509_NAME *x = X509_NAME_new();
		Name name = {.n_pairs = 77};
		int r;

		assert_non_null(x);
		add_raw(x, "CN", cases[i].type, cases[i].bytes, cases[i].len);
		r = name_from_x509(x, &name);
		if (r != -EBADMSG)
			fail_msg("case %zu: name_from_x509() = %d, expected -EBADMSG", i, r);
		assert_int_equal(name.n_pairs, 77);
		X509_NAME_free(x);
	}
}

static void test_name_empty(void **state)
{
	X509_NAME *x = X509_NAME_new();
	Name name = {}, copy = {};

	assert_non_null(x);
	x = der_roundtrip(x);
	assert_int_equal(name_from_x509(x, &name), 0);
	assert_int_equal(name.n_pairs, 0);
	assert_true(name_equal(&name, &name));
	assert_int_equal(name_copy(&name, &copy), 0);
	assert_int_equal(copy.n_pairs, 0);
	assert_true(name_equal(&name, &copy));
	name_clear(&copy);
	name_clear(&name);
	name_clear(NULL);
	X509_NAME_free(x);
}

static void test_name_pair_limit(void **state)
{
	X509_NAME *x = X509_NAME_new();
	Name name = {};

	assert_non_null(x);
	for (int i = 0; i < 64; i++)
		add_text(x, "OU", V_ASN1_UTF8STRING, "unit");
	assert_int_equal(name_from_x509(x, &name), 0);
	assert_int_equal(name.n_pairs, 64);
	name_clear(&name);

	add_text(x, "OU", V_ASN1_UTF8STRING, "one too many");
	name.n_pairs = 77;
	assert_int_equal(name_from_x509(x, &name), -E2BIG);
	assert_int_equal(name.n_pairs, 77);
	X509_NAME_free(x);
}

static Name make_name(const char *const *pairs, size_t n)
{
	Name name = {.pairs = calloc(n ? n : 1, sizeof(NamePair)), .n_pairs = n};

	assert_non_null(name.pairs);
	for (size_t i = 0; i < n; i++) {
		name.pairs[i].attribute = strdup(pairs[2 * i]);
		name.pairs[i].value = strdup(pairs[2 * i + 1]);
		assert_non_null(name.pairs[i].attribute);
		assert_non_null(name.pairs[i].value);
	}
	return name;
}

static void test_name_equal(void **state)
{
	static const char *const base[] = {
	    "C", "VN", "O", "CÔNG TY TNHH AN PHÁT", "UID", "MST:0101234567"};
	static const char *const reordered[] = {"O",   "CÔNG TY TNHH AN PHÁT", "C", "VN",
						"UID", "MST:0101234567"};
	static const char *const other_value[] = {
	    "C", "VN", "O", "CÔNG TY TNHH AN PHAT", "UID", "MST:0101234567"};
	static const char *const other_case[] = {
	    "C", "VN", "O", "Công ty TNHH An Phát", "UID", "MST:0101234567"};
	/* "Ô" as O + COMBINING CIRCUMFLEX ACCENT, "Á" as A + COMBINING ACUTE */
	static const char *const decomposed[] = {
	    "C", "VN", "O", "CO\xcc\x82NG TY TNHH AN PHA\xcc\x81T", "UID", "MST:0101234567"};
	static const char *const other_attribute[] = {
	    "C", "VN", "OU", "CÔNG TY TNHH AN PHÁT", "UID", "MST:0101234567"};
	static const char *const trailing_blank[] = {
	    "C", "VN", "O", "CÔNG TY TNHH AN PHÁT ", "UID", "MST:0101234567"};
	Name a = make_name(base, 3), b = make_name(base, 3);
	Name shorter = make_name(base, 2), empty = make_name(base, 0);
	Name r = make_name(reordered, 3), v = make_name(other_value, 3);
	Name c = make_name(other_case, 3), d = make_name(decomposed, 3);
	Name t = make_name(other_attribute, 3), w = make_name(trailing_blank, 3);

	assert_true(name_equal(&a, &b));
	assert_true(name_equal(&b, &a));
	assert_false(name_equal(&a, &shorter));
	assert_false(name_equal(&shorter, &a));
	assert_false(name_equal(&a, &empty));
	assert_true(name_equal(&empty, &empty));
	assert_false(name_equal(&a, &r));
	assert_false(name_equal(&a, &v));
	assert_false(name_equal(&a, &c));
	/* no Unicode normalization */
	assert_false(name_equal(&a, &d));
	assert_false(name_equal(&a, &t));
	assert_false(name_equal(&a, &w));

	Name *all[] = {&a, &b, &shorter, &empty, &r, &v, &c, &d, &t, &w};
	for (size_t i = 0; i < ELEMENTSOF(all); i++)
		name_clear(all[i]);
}

static void test_name_copy(void **state)
{
	static const char *const pairs[] = {"CN", "Nguyễn Văn Ánh", "UID", "CCCD:001234567890"};
	Name a = make_name(pairs, 2), copy = {};

	assert_int_equal(name_copy(&a, &copy), 0);
	assert_true(name_equal(&a, &copy));
	assert_ptr_not_equal(a.pairs, copy.pairs);
	assert_ptr_not_equal(a.pairs[0].value, copy.pairs[0].value);
	name_clear(&a);
	/* the copy owns its strings */
	assert_string_equal(copy.pairs[1].value, "CCCD:001234567890");
	name_clear(&copy);
}

static ASN1_INTEGER *integer_from_hex(const char *hex, bool negative)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *i;

	assert_true(BN_hex2bn(&bn, hex) > 0);
	BN_set_negative(bn, negative);
	i = BN_to_ASN1_INTEGER(bn, NULL);
	assert_non_null(i);
	BN_free(bn);
	return i;
}

static void test_serial_to_hex(void **state)
{
	static const struct {
		const char *hex;
		bool negative;
		const char *expected;
	} cases[] = {
	    {"0", false, "0"},
	    {"00", false, "0"},
	    {"1", false, "1"},
	    {"F", false, "f"},
	    {"80", false, "80"},
	    {"100", false, "100"},
	    {"5401A3", false, "5401a3"},
	    {"005401a3", false, "5401a3"},
	    {"1000000", false, "1000000"},
	    {"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", false,
	     "7fffffffffffffffffffffffffffffffffffffff"},
	    {"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", false,
	     "ffffffffffffffffffffffffffffffffffffffffff"},
	    /* a negative serial gives its magnitude */
	    {"5401A3", true, "5401a3"},
	    {"1", true, "1"},
	    {"80", true, "80"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ASN1_INTEGER *integer = integer_from_hex(cases[i].hex, cases[i].negative);
		char *hex = NULL;

		assert_int_equal(serial_to_hex(integer, &hex), 0);
		assert_non_null(hex);
		if (!streq(hex, cases[i].expected))
			fail_msg("serial_to_hex(%s%s) = \"%s\", expected \"%s\"",
				 cases[i].negative ? "-" : "", cases[i].hex, hex,
				 cases[i].expected);
		free(hex);
		ASN1_INTEGER_free(integer);
	}
}

static void test_serial_to_hex_der(void **state)
{
	static const struct {
		const unsigned char der[8];
		long len;
		const char *expected;
	} cases[] = {
	    {{0x02, 0x01, 0x00}, 3, "0"},
	    {{0x02, 0x01, 0x05}, 3, "5"},
	    {{0x02, 0x02, 0x00, 0x80}, 4, "80"},
	    {{0x02, 0x01, 0xff}, 3, "1"},	 /* -1 */
	    {{0x02, 0x02, 0xff, 0x7f}, 4, "81"}, /* -129 */
	    {{0x02, 0x01, 0x80}, 3, "80"},	 /* -128 */
	    {{0x02, 0x03, 0x54, 0x01, 0xa3}, 5, "5401a3"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const unsigned char *p = cases[i].der;
		ASN1_INTEGER *integer = d2i_ASN1_INTEGER(NULL, &p, cases[i].len);
		char *hex = NULL;

		assert_non_null(integer);
		assert_int_equal(serial_to_hex(integer, &hex), 0);
		assert_string_equal(hex, cases[i].expected);
		free(hex);
		ASN1_INTEGER_free(integer);
	}
}

static void test_asn1_time_to_unix(void **state)
{
	static const struct {
		const char *text;
		int64_t t;
	} cases[] = {
	    {"261201000000Z", 1796083200},
	    {"20261201000000Z", 1796083200},
	    {"700101000000Z", 0},
	    {"691231235959Z", -1},
	    /* UTCTime's two-digit years: 50–99 are 19xx, 00–49 are 20xx */
	    {"500101000000Z", -631152000},
	    {"491231235959Z", 2524607999},
	    {"19500101000000Z", -631152000},
	    {"20500101000000Z", 2524608000},
	    {"99991231235959Z", INT64_C(253402300799)},
	    {"20000229120000Z", 951825600},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ASN1_TIME *t = ASN1_TIME_new();
		int64_t v = 42;

		assert_non_null(t);
		assert_int_equal(ASN1_TIME_set_string(t, cases[i].text), 1);
		assert_int_equal(asn1_time_to_unix(t, &v), 0);
		if (v != cases[i].t)
			fail_msg("%s: %lld, expected %lld", cases[i].text, (long long)v,
				 (long long)cases[i].t);
		ASN1_TIME_free(t);
	}
}

static void test_asn1_time_to_unix_invalid(void **state)
{
	static const char *const cases[] = {"garbage", "", "261301000000Z"};
	int64_t v = 42;

	assert_int_equal(asn1_time_to_unix(NULL, &v), -EBADMSG);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		ASN1_TIME *t = ASN1_STRING_type_new(V_ASN1_UTCTIME);
		assert_non_null(t);
		assert_int_equal(ASN1_STRING_set(t, cases[i], (int)strlen(cases[i])), 1);
		assert_int_equal(asn1_time_to_unix(t, &v), -EBADMSG);
		ASN1_TIME_free(t);
	}
	assert_int_equal(v, 42);
}

static void test_x509_sha256_hex(void **state)
{
	EVP_PKEY *key = pki_key_new();
	X509_NAME *subject = pki_name_cn("sha256 test");
	X509 *cert = pki_cert_new(&(PkiCert){
	    .subject = subject, .key = key, .serial = 1, .not_before = 0, .not_after = 86400});
	unsigned char *der = NULL, md[32];
	unsigned int md_len = 0;
	int len = i2d_X509(cert, &der);
	char *expected, *hex = NULL;

	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &md_len, EVP_sha256(), NULL), 1);
	assert_int_equal(md_len, 32);
	expected = hex_encode(md, md_len);
	assert_int_equal(x509_sha256_hex(cert, &hex), 0);
	assert_int_equal(strlen(hex), 64);
	assert_string_equal(hex, expected);
	for (const char *p = hex; *p; p++)
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));

	free(hex);
	free(expected);
	OPENSSL_free(der);
	X509_free(cert);
	X509_NAME_free(subject);
	EVP_PKEY_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_order_and_short_names),
	    cmocka_unit_test(test_name_string_types),
	    cmocka_unit_test(test_name_single_byte_types),
	    cmocka_unit_test(test_name_unknown_attribute),
	    cmocka_unit_test(test_name_long_oid),
	    cmocka_unit_test(test_name_long_value),
	    cmocka_unit_test(test_name_embedded_nul),
	    cmocka_unit_test(test_name_undecodable),
	    cmocka_unit_test(test_name_empty),
	    cmocka_unit_test(test_name_pair_limit),
	    cmocka_unit_test(test_name_equal),
	    cmocka_unit_test(test_name_copy),
	    cmocka_unit_test(test_serial_to_hex),
	    cmocka_unit_test(test_serial_to_hex_der),
	    cmocka_unit_test(test_asn1_time_to_unix),
	    cmocka_unit_test(test_asn1_time_to_unix_invalid),
	    cmocka_unit_test(test_x509_sha256_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
