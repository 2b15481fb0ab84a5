/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "macro.h"
#include "pkcs11-uri.h"

static void assert_field(const char *got, const char *expected)
{
	if (!expected)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, expected);
	}
}

static void test_parse(void **state)
{
	static const struct {
		const char *uri;
		const char *token, *serial, *manufacturer, *model;
	} cases[] = {
	    {"pkcs11:", NULL, NULL, NULL, NULL},
	    {"pkcs11:token=My%20Token;serial=a1b2c3;manufacturer=SoftHSM%20project;"
	     "model=SoftHSM%20v2",
	     "My Token", "a1b2c3", "SoftHSM project", "SoftHSM v2"},
	    {"pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=a1b2c3;"
	     "token=My%20Token",
	     "My Token", "a1b2c3", "SoftHSM project", "SoftHSM v2"},
	    {"pkcs11:serial=0123456789abcdef", NULL, "0123456789abcdef", NULL, NULL},
	    /* the scheme is case-insensitive (RFC 3986) */
	    {"PKCS11:token=a", "a", NULL, NULL, NULL},
	    /* percent-decoding, either case of hex digit */
	    {"pkcs11:token=a%3Bb%3bc%25d%3Fe", "a;b;c%d?e", NULL, NULL, NULL},
	    {"pkcs11:token=Thu%E1%BA%BF%20%C4%91i%E1%BB%87n%20t%E1%BB%AD", "Thuế điện tử", NULL,
	     NULL, NULL},
	    /* a value may hold '=' (RFC 7512 pk11-res-avail) */
	    {"pkcs11:token=a=b", "a=b", NULL, NULL, NULL},
	    {"pkcs11:token=:[]@!$'()*+,=&", ":[]@!$'()*+,=&", NULL, NULL, NULL},
	    /* empty values are values */
	    {"pkcs11:token=;serial=", "", "", NULL, NULL},
	    /* the query part is ignored */
	    {"pkcs11:token=a?pin-value=1234&module-name=softhsm2", "a", NULL, NULL, NULL},
	    {"pkcs11:token=a;serial=b?serial=c", "a", "b", NULL, NULL},
	    {"pkcs11:?token=a", NULL, NULL, NULL, NULL},
	    /* other attributes are ignored, %00 too: CKA_ID bytes are binary */
	    {"pkcs11:token=t;object=my%20key;type=private;id=%00%01%ff", "t", NULL, NULL, NULL},
	    {"pkcs11:slot-id=1;token=t;library-manufacturer=x", "t", NULL, NULL, NULL},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Pkcs11Uri uri = {};
		int r = pkcs11_uri_parse(cases[i].uri, &uri);
		if (r != 0)
			fail_msg("pkcs11_uri_parse(\"%s\") = %d", cases[i].uri, r);
		assert_field(uri.token, cases[i].token);
		assert_field(uri.serial, cases[i].serial);
		assert_field(uri.manufacturer, cases[i].manufacturer);
		assert_field(uri.model, cases[i].model);
		pkcs11_uri_clear(&uri);
		assert_null(uri.token);
	}
}

static void test_parse_malformed(void **state)
{
	static const char *const cases[] = {
	    "",
	    "pkcs11",
	    "token=a",
	    "pkcs:token=a",
	    "file:///etc/passwd",
	    "pkcs11:token",
	    "pkcs11:=a",
	    "pkcs11:token=a;serial",
	    "pkcs11:token=a;;serial=b",
	    "pkcs11:;token=a",
	    /* broken percent-encoding */
	    "pkcs11:token=%",
	    "pkcs11:token=%4",
	    "pkcs11:token=a%",
	    "pkcs11:token=a%2",
	    "pkcs11:token=%zz",
	    "pkcs11:token=%g0",
	    "pkcs11:token=%0g",
	    "pkcs11:token=% 1",
	    "pkcs11:token=%2;serial=1",
	    "pkcs11:token=%2?x",
	    /* a NUL would cut the value short */
	    "pkcs11:token=%00",
	    "pkcs11:token=ab%00cd",
	    "pkcs11:serial=%00",
	    /* each attribute at most once */
	    "pkcs11:token=a;token=a",
	    "pkcs11:token=a;serial=s;token=b",
	    "pkcs11:serial=1;serial=1",
	    "pkcs11:manufacturer=m;manufacturer=m",
	    "pkcs11:model=m;model=n",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Pkcs11Uri uri = {.token = (char *)"untouched"};
		int r = pkcs11_uri_parse(cases[i], &uri);
		if (r != -EINVAL)
			fail_msg("pkcs11_uri_parse(\"%s\") = %d, expected -EINVAL", cases[i], r);
		/* ret stays untouched on failure */
		assert_string_equal(uri.token, "untouched");
		assert_null(uri.serial);
	}
}

/* A URI with broken percent-encoding is malformed as a whole (RFC 3986
 * pct-encoded), whichever attribute carries it. */
static void test_parse_malformed_other_attribute(void **state)
{
	static const char *const cases[] = {
	    "pkcs11:token=a;object=%zz",
	    "pkcs11:object=%4;token=a",
	    "pkcs11:token=a;id=%",
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Pkcs11Uri uri = {};
		int r = pkcs11_uri_parse(cases[i], &uri);
		if (r != -EINVAL) {
			pkcs11_uri_clear(&uri);
			fail_msg("pkcs11_uri_parse(\"%s\") = %d, expected -EINVAL", cases[i], r);
		}
	}
}

static void test_parse_length_limit(void **state)
{
	/* 4096 characters in all are accepted, more are not */
	size_t total = 4096;
	char *uri = malloc(total + 2);
	Pkcs11Uri parsed = {};

	assert_non_null(uri);
	memcpy(uri, "pkcs11:token=", 13);
	memset(uri + 13, 'x', total - 13);
	uri[total] = 0;
	assert_int_equal(pkcs11_uri_parse(uri, &parsed), 0);
	assert_int_equal(strlen(parsed.token), total - 13);
	pkcs11_uri_clear(&parsed);

	uri[total] = 'x';
	uri[total + 1] = 0;
	assert_int_equal(pkcs11_uri_parse(uri, &parsed), -EINVAL);
	assert_null(parsed.token);
	free(uri);
}

static void test_clear_twice(void **state)
{
	Pkcs11Uri uri = {};

	assert_int_equal(pkcs11_uri_parse("pkcs11:token=a;model=b", &uri), 0);
	pkcs11_uri_clear(&uri);
	pkcs11_uri_clear(&uri);
	assert_null(uri.token);
	assert_null(uri.model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_parse_malformed_other_attribute),
	    cmocka_unit_test(test_parse_length_limit),
	    cmocka_unit_test(test_clear_twice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
