/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "macro.h"
#include "pkcs11-uri.h"
#include "pki.h"
#include "token/token-info-json.h"
#include "token/token-info.h"
#include "token/token-x509.h"

#define DAY INT64_C(86400)
#define T0 INT64_C(1796083200) /* 2026-12-01T00:00:00Z */

typedef struct Spec {
	const char *serial;
	int64_t not_before;
	int64_t not_after;
	bool has_key;
} Spec;

/* A token holding these certificates, in this order. */
static TokenInfo make_info(const Spec *specs, size_t n)
{
	TokenInfo info = {
	    .serial = strdup("0123456789abcdef"),
	    .label = strdup("token"),
	    .manufacturer = strdup("SoftHSM project"),
	    .model = strdup("SoftHSM v2"),
	    .module = strdup("/usr/lib/softhsm/libsofthsm2.so"),
	    .certificates = calloc(n ? n : 1, sizeof(CertificateEntry)),
	    .n_certificates = n,
	};

	assert_non_null(info.certificates);
	for (size_t i = 0; i < n; i++) {
		CertificateEntry *c = &info.certificates[i];
		c->serial = strdup(specs[i].serial);
		c->label = strdup(specs[i].serial);
		assert_true(asprintf(&c->key_id, "%02zx", i) > 0);
		assert_true(asprintf(&c->sha256, "%064zx", i) > 0);
		c->not_before = specs[i].not_before;
		c->not_after = specs[i].not_after;
		c->has_key = specs[i].has_key;
		assert_non_null(c->serial);
		assert_non_null(c->label);
	}
	return info;
}

static void assert_order(const TokenInfo *info, const char *const *serials)
{
	for (size_t i = 0; i < info->n_certificates; i++)
		if (!streq(info->certificates[i].serial, serials[i]))
			fail_msg("position %zu: \"%s\", expected \"%s\"", i,
				 info->certificates[i].serial, serials[i]);
}

/* Sorts every rotation of specs and expects the same order each time. */
static void check_sort(const Spec *specs, size_t n, const char *const *expected)
{
	Spec rotated[16];

	assert_true(n <= ELEMENTSOF(rotated));
	for (size_t start = 0; start < n; start++) {
		for (size_t reverse = 0; reverse < 2; reverse++) {
			TokenInfo info;
			for (size_t i = 0; i < n; i++)
				rotated[i] =
				    specs[reverse ? (n - 1 - (start + i) % n) : (start + i) % n];
			info = make_info(rotated, n);
			token_info_sort_certificates(&info);
			assert_order(&info, expected);
			token_info_clear(&info);
		}
	}
}

static void test_sort_not_after(void **state)
{
	static const Spec specs[] = {
	    {"a", T0 - 400 * DAY, T0 - 35 * DAY, true},
	    {"b", T0 - 30 * DAY, T0 + 335 * DAY, true},
	    {"c", T0 - 365 * DAY, T0, true},
	    {"d", T0 + 10 * DAY, T0 + 730 * DAY, false},
	};
	static const char *const expected[] = {"d", "b", "c", "a"};

	check_sort(specs, ELEMENTSOF(specs), expected);
}

static void test_sort_ties(void **state)
{
	/* equal not_after: later not_before first; equal both: greater serial,
	 * where a longer hex serial is greater and case does not count */
	static const Spec specs[] = {
	    {"ff", T0, T0 + 365 * DAY, true},
	    {"100", T0, T0 + 365 * DAY, true},
	    {"5401a3", T0 - DAY, T0 + 365 * DAY, true},
	    {"0", T0, T0 + 365 * DAY, true},
	    {"ABD", T0, T0 + 365 * DAY, true},
	    {"abc", T0, T0 + 365 * DAY, true},
	    {"1", T0 + DAY, T0 + 365 * DAY, false},
	    {"7fffffffffffffffffffffffffffffffffffffff", T0 - 2 * DAY, T0 + 365 * DAY, true},
	};
	static const char *const expected[] = {
	    "1",  "ABD", "abc",	   "100",
	    "ff", "0",	 "5401a3", "7fffffffffffffffffffffffffffffffffffffff",
	};

	check_sort(specs, ELEMENTSOF(specs), expected);
}

static void test_sort_trivial(void **state)
{
	static const Spec one[] = {{"1", T0, T0 + DAY, true}};
	TokenInfo info = make_info(NULL, 0);

	token_info_sort_certificates(&info);
	assert_int_equal(info.n_certificates, 0);
	token_info_clear(&info);
	info = make_info(one, 1);
	token_info_sort_certificates(&info);
	assert_string_equal(info.certificates[0].serial, "1");
	token_info_clear(&info);
}

static const char *current_serial(const Spec *specs, size_t n, int64_t now)
{
	static char serial[64];
	TokenInfo info = make_info(specs, n);
	const CertificateEntry *c;

	token_info_sort_certificates(&info);
	c = token_info_current(&info, now);
	if (c) {
		assert_true(c >= info.certificates && c < info.certificates + info.n_certificates);
		snprintf(serial, sizeof(serial), "%s", c->serial);
	}
	token_info_clear(&info);
	return c ? serial : NULL;
}

static void assert_current(const Spec *specs, size_t n, int64_t now, const char *expected)
{
	const char *got = current_serial(specs, n, now);

	if (!streq_ptr(got, expected))
		fail_msg("at now=T0%+lld s: current is %s, expected %s", (long long)(now - T0),
			 got ? got : "none", expected ? expected : "none");
}

static void test_current_basic(void **state)
{
	static const Spec one[] = {{"1", T0 - 365 * DAY, T0 + 365 * DAY, true}};
	static const Spec no_key[] = {{"1", T0 - 365 * DAY, T0 + 365 * DAY, false}};

	assert_current(NULL, 0, T0, NULL);
	assert_current(one, 1, T0, "1");
	/* has_key is required, whatever else */
	assert_current(no_key, 1, T0, NULL);
	/* when none is valid now: the latest not_after */
	assert_current(one, 1, T0 + 400 * DAY, "1");
	assert_current(one, 1, T0 - 400 * DAY, "1");
}

static void test_current_boundaries(void **state)
{
	/* "1" ends at T0, "2" starts at T0 and ends later: at T0 both are
	 * valid and "2" has the later not_after */
	static const Spec specs[] = {
	    {"1", T0 - 365 * DAY, T0 + 10, true},
	    {"2", T0 + 10, T0 + 365 * DAY, true},
	};
	static const Spec old_only_key[] = {
	    {"1", T0 - 365 * DAY, T0 + 10, true},
	    {"2", T0 + 10, T0 + 365 * DAY, false},
	};

	assert_current(specs, 2, T0 + 9, "1");
	assert_current(specs, 2, T0 + 10, "2");
	assert_current(specs, 2, T0 + 11, "2");
	/* not_after is inclusive */
	assert_current(old_only_key, 2, T0 + 10, "1");
	/* 1 s after: none with a key is valid, the latest not_after with a
	 * key is "1" */
	assert_current(old_only_key, 2, T0 + 11, "1");
}

static void test_current_renewal(void **state)
{
	/* A renewed certificate that starts in the future becomes current when
	 * it starts, not before. */
	static const Spec specs[] = {
	    {"01", T0 - 335 * DAY, T0 + 30 * DAY, true},
	    {"02", T0 + 5 * DAY, T0 + 400 * DAY, true},
	};

	assert_current(specs, 2, T0, "01");
	assert_current(specs, 2, T0 + 5 * DAY - 1, "01");
	assert_current(specs, 2, T0 + 5 * DAY, "02");
	assert_current(specs, 2, T0 + 31 * DAY, "02");
	/* after both: the latest not_after */
	assert_current(specs, 2, T0 + 401 * DAY, "02");
}

static void test_current_skips_keyless(void **state)
{
	static const Spec specs[] = {
	    {"10", T0 - DAY, T0 + 700 * DAY, false}, /* latest, no key */
	    {"11", T0 - DAY, T0 + 300 * DAY, true},
	    {"12", T0 - 100 * DAY, T0 + 200 * DAY, true},
	    {"13", T0 - 900 * DAY, T0 - 500 * DAY, true},
	};
	static const Spec expired[] = {
	    {"20", T0 - 900 * DAY, T0 - 10 * DAY, false},
	    {"21", T0 - 900 * DAY, T0 - 20 * DAY, true},
	    {"22", T0 - 900 * DAY, T0 - 30 * DAY, true},
	};
	static const Spec future_and_expired[] = {
	    {"30", T0 + 10 * DAY, T0 + 400 * DAY, true},
	    {"31", T0 - 400 * DAY, T0 - 1, true},
	};

	assert_current(specs, 4, T0, "11");
	assert_current(specs, 4, T0 - 50 * DAY, "12");
	assert_current(expired, 3, T0, "21");
	/* none valid now: the latest not_after among those with keys */
	assert_current(future_and_expired, 2, T0, "30");
}

static void test_current_ties(void **state)
{
	/* ties: the later not_before, then the greater serial */
	static const Spec by_start[] = {
	    {"a1", T0 - 20 * DAY, T0 + 100 * DAY, true},
	    {"a2", T0 - 10 * DAY, T0 + 100 * DAY, true},
	};
	static const Spec by_serial[] = {
	    {"ff", T0 - 10 * DAY, T0 + 100 * DAY, true},
	    {"100", T0 - 10 * DAY, T0 + 100 * DAY, true},
	    {"0f", T0 - 10 * DAY, T0 + 100 * DAY, true},
	};

	assert_current(by_start, 2, T0, "a2");
	assert_current(by_serial, 3, T0, "100");
}

static void test_pin_status(void **state)
{
	for (int bits = 0; bits < 8; bits++) {
		TokenInfo info = {
		    .pin_count_low = bits & 1,
		    .pin_final_try = bits & 2,
		    .pin_locked = bits & 4,
		};
		const char *expected = bits & 4	  ? "locked"
				       : bits & 2 ? "final-try"
				       : bits & 1 ? "count-low"
						  : "ok";
		assert_string_equal(token_info_pin_status(&info), expected);
	}
	/* pin_must_change does not change the status */
	assert_string_equal(token_info_pin_status(&(TokenInfo){.pin_must_change = true}), "ok");
}

static void test_uri(void **state)
{
	TokenInfo info = {
	    .serial = (char *)"a1b2c3",
	    .label = (char *)"My Token; v2",
	    .manufacturer = (char *)"SoftHSM project",
	    .model = (char *)"SoftHSM v2",
	};
	char *uri = token_info_uri(&info);

	assert_non_null(uri);
	assert_string_equal(uri, "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;"
				 "serial=a1b2c3;token=My%20Token%3B%20v2");
	free(uri);
}

static void check_uri_roundtrip(const char *serial, const char *label, const char *manufacturer,
				const char *model)
{
	TokenInfo info = {
	    .serial = (char *)serial,
	    .label = (char *)label,
	    .manufacturer = (char *)manufacturer,
	    .model = (char *)model,
	};
	char *uri = token_info_uri(&info);
	Pkcs11Uri parsed = {};

	assert_non_null(uri);
	/* Only RFC 7512's path characters are left as they are. */
	for (const char *p = uri; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "-._~:[]@!$'()*+,=&;%",
			    *p))
			fail_msg("character 0x%02x left unencoded in %s", (unsigned char)*p, uri);
	if (pkcs11_uri_parse(uri, &parsed) != 0)
		fail_msg("cannot parse %s", uri);
	assert_string_equal(parsed.serial, serial);
	assert_string_equal(parsed.token, label);
	assert_string_equal(parsed.manufacturer, manufacturer);
	assert_string_equal(parsed.model, model);
	pkcs11_uri_clear(&parsed);
	free(uri);
}

static void test_uri_roundtrip(void **state)
{
	check_uri_roundtrip("a1b2c3", "My Token", "SoftHSM project", "SoftHSM v2");
	check_uri_roundtrip("", "", "", "");
	check_uri_roundtrip("1;2", "a=b;c", "x?y#z", "100%/50%");
	check_uri_roundtrip("   ", "Chữ ký số", "Công ty Cổ phần", "ePass2003\tAuto");
	check_uri_roundtrip("\x01\x7f\xff", "a\"b<c>d\\e^f`g{h}i|j", "%00", "pkcs11:token=x");
}

static void test_certificates_equal(void **state)
{
	static const Spec specs[] = {
	    {"1", T0, T0 + DAY, true},
	    {"2", T0, T0 + 2 * DAY, false},
	};
	static const Profile profile = {.name = (char *)"SAFE-CA"};
	TokenInfo a = make_info(specs, 2), b = make_info(specs, 2), shorter = make_info(specs, 1);
	TokenInfo empty1 = make_info(NULL, 0), empty2 = make_info(NULL, 0);

	assert_true(token_info_certificates_equal(&a, &b));
	assert_true(token_info_certificates_equal(&empty1, &empty2));
	assert_false(token_info_certificates_equal(&a, &shorter));
	assert_false(token_info_certificates_equal(&shorter, &a));
	assert_false(token_info_certificates_equal(&a, &empty1));

	/* the token's own fields do not count */
	free(b.label);
	b.label = strdup("another label");
	b.pin_locked = true;
	assert_true(token_info_certificates_equal(&a, &b));

	b.certificates[1].has_key = true;
	assert_false(token_info_certificates_equal(&a, &b));
	b.certificates[1].has_key = false;

	b.certificates[0].profile = &profile;
	assert_false(token_info_certificates_equal(&a, &b));
	b.certificates[0].profile = NULL;

	free(b.certificates[0].key_id);
	b.certificates[0].key_id = strdup("ff");
	assert_false(token_info_certificates_equal(&a, &b));
	free(b.certificates[0].key_id);
	b.certificates[0].key_id = strdup("00");
	assert_true(token_info_certificates_equal(&a, &b));

	free(b.certificates[1].sha256);
	b.certificates[1].sha256 = strdup("ab");
	assert_false(token_info_certificates_equal(&a, &b));
	free(b.certificates[1].sha256);
	b.certificates[1].sha256 = strdup(a.certificates[1].sha256);
	assert_true(token_info_certificates_equal(&a, &b));

	free(b.certificates[1].label);
	b.certificates[1].label = strdup("renamed");
	assert_false(token_info_certificates_equal(&a, &b));

	token_info_clear(&a);
	token_info_clear(&b);
	token_info_clear(&shorter);
	token_info_clear(&empty1);
	token_info_clear(&empty2);
	token_info_clear(NULL);
}

static void test_entry_from_x509(void **state)
{
	EVP_PKEY *ca_key = pki_key_new(), *key = pki_key_new();
	X509_NAME *ca_name = pki_name_cn("SAFE-CA"), *subject = X509_NAME_new();
	X509 *ca, *cert;
	CertificateEntry entry = {};

	assert_non_null(subject);
	assert_int_equal(X509_NAME_add_entry_by_txt(subject, "C", MBSTRING_UTF8,
						    (const unsigned char *)"VN", -1, -1, 0),
			 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
						    (const unsigned char *)"CÔNG TY TNHH AN PHÁT",
						    -1, -1, 0),
			 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(subject, "UID", MBSTRING_UTF8,
						    (const unsigned char *)"MST:0101234567", -1, -1,
						    0),
			 1);
	ca = pki_cert_new(&(PkiCert){.subject = ca_name,
				     .key = ca_key,
				     .serial = 1,
				     .not_before = T0 - 3650 * DAY,
				     .not_after = T0 + 3650 * DAY,
				     .ca = true});
	cert = pki_cert_new(&(PkiCert){.subject = subject,
				       .key = key,
				       .issuer = ca,
				       .issuer_key = ca_key,
				       .serial = 0x5401a3,
				       .not_before = T0,
				       .not_after = T0 + 365 * DAY - 1});

	assert_int_equal(certificate_entry_from_x509(cert, &entry), 0);
	assert_string_equal(entry.serial, "5401a3");
	assert_int_equal(entry.subject.n_pairs, 3);
	assert_string_equal(entry.subject.pairs[0].attribute, "C");
	assert_string_equal(entry.subject.pairs[1].value, "CÔNG TY TNHH AN PHÁT");
	assert_string_equal(entry.subject.pairs[2].attribute, "UID");
	assert_string_equal(entry.subject.pairs[2].value, "MST:0101234567");
	assert_int_equal(entry.issuer.n_pairs, 1);
	assert_string_equal(entry.issuer.pairs[0].value, "SAFE-CA");
	assert_int_equal(entry.not_before, T0);
	assert_int_equal(entry.not_after, T0 + 365 * DAY - 1);
	assert_int_equal(strlen(entry.sha256), 64);
	certificate_entry_clear(&entry);
	assert_null(entry.serial);

	X509_free(cert);
	X509_free(ca);
	X509_NAME_free(subject);
	X509_NAME_free(ca_name);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
}

static char *refusal_for(const TokenCapabilities *caps, const char *key_json)
{
	json_t *key = json_loads(key_json, 0, NULL);
	char *reason;

	assert_non_null(key);
	reason = token_capabilities_refusal(caps, key);
	json_decref(key);
	return reason;
}

#define assert_refused(caps, key, text)                                                            \
	do {                                                                                       \
		char *reason_ = refusal_for(caps, key);                                            \
		assert_non_null(reason_);                                                          \
		assert_string_equal(reason_, text);                                                \
		free(reason_);                                                                     \
	} while (0)

/* What OpenSC says of an IsoApplet card (RSA-2048 only), of a CAC (no key
 * generation) and what a module that lists nothing says. */
static void test_capabilities_refusal(void **state)
{
	TokenCapabilities iso = {
	    .known = true, .rsa_generate = true, .rsa_min_bits = 2048, .rsa_max_bits = 2048};
	TokenCapabilities cac = {.known = true};
	TokenCapabilities silent = {};
	TokenCapabilities softhsm = {.known = true,
				     .rsa_generate = true,
				     .rsa_min_bits = 512,
				     .rsa_max_bits = 16384,
				     .ec_generate = true,
				     .ec_min_bits = 112,
				     .ec_max_bits = 521};
	TokenCapabilities ec_bytes = {
	    .known = true, .ec_generate = true, .ec_min_bits = 32, .ec_max_bits = 48};
	TokenCapabilities sizes_unsaid = {.known = true, .rsa_generate = true, .ec_generate = true};
	TokenCapabilities read_only = {
	    .known = true, .write_protected = true, .rsa_generate = true};

	assert_null(refusal_for(&iso, "{\"generate\":true,\"type\":\"rsa\",\"bits\":2048}"));
	assert_refused(&iso, "{\"generate\":true,\"type\":\"rsa\",\"bits\":3072}",
		       "the token cannot make 3072-bit RSA keys (only 2048 to 2048)");
	assert_refused(&iso, "{\"generate\":true,\"type\":\"ec\",\"curve\":\"P-256\"}",
		       "the token cannot make elliptic-curve (P-256) keys");
	assert_null(refusal_for(&iso, "{\"generate\":false}"));
	assert_refused(&cac, "{\"generate\":true,\"type\":\"rsa\",\"bits\":2048}",
		       "the token cannot make RSA keys");
	assert_null(refusal_for(&cac, "{\"generate\":false}"));
	assert_null(
	    refusal_for(&silent, "{\"generate\":true,\"type\":\"ec\",\"curve\":\"P-256\"}"));
	assert_null(
	    refusal_for(&softhsm, "{\"generate\":true,\"type\":\"ec\",\"curve\":\"P-256\"}"));
	assert_null(refusal_for(&softhsm, "{\"generate\":true,\"type\":\"rsa\",\"bits\":4096}"));
	assert_null(
	    refusal_for(&ec_bytes, "{\"generate\":true,\"type\":\"ec\",\"curve\":\"P-256\"}"));
	assert_null(
	    refusal_for(&sizes_unsaid, "{\"generate\":true,\"type\":\"rsa\",\"bits\":2048}"));
	assert_refused(&read_only, "{\"generate\":false}",
		       "the token is write-protected: it cannot take a new certificate");
}

/* The capabilities travel from the scan worker to the daemon; a token
 * without them (an older worker's answer) is refused nothing. */
static void test_capabilities_json(void **state)
{
	TokenCapabilities caps = {.known = true,
				  .rsa_generate = true,
				  .rsa_min_bits = 1024,
				  .rsa_max_bits = 4096,
				  .ec_generate = true,
				  .ec_min_bits = 256,
				  .ec_max_bits = 384,
				  .write_protected = true};
	TokenCapabilities back = {};
	json_t *json = token_capabilities_to_json(&caps);
	json_t *bad;

	assert_non_null(json);
	assert_int_equal(token_capabilities_from_json(json, &back), 0);
	assert_memory_equal(&caps, &back, sizeof(caps));
	bad = json_deep_copy(json);
	json_object_set_new(bad, "rsa_max_bits", json_integer(-1));
	assert_int_equal(token_capabilities_from_json(bad, &back), -EBADMSG);
	json_object_del(bad, "rsa_max_bits");
	assert_int_equal(token_capabilities_from_json(bad, &back), -EBADMSG);
	json_decref(bad);
	json_decref(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sort_not_after),
	    cmocka_unit_test(test_sort_ties),
	    cmocka_unit_test(test_sort_trivial),
	    cmocka_unit_test(test_current_basic),
	    cmocka_unit_test(test_current_boundaries),
	    cmocka_unit_test(test_current_renewal),
	    cmocka_unit_test(test_current_skips_keyless),
	    cmocka_unit_test(test_current_ties),
	    cmocka_unit_test(test_pin_status),
	    cmocka_unit_test(test_uri),
	    cmocka_unit_test(test_uri_roundtrip),
	    cmocka_unit_test(test_certificates_equal),
	    cmocka_unit_test(test_entry_from_x509),
	    cmocka_unit_test(test_capabilities_refusal),
	    cmocka_unit_test(test_capabilities_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
