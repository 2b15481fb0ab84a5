/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hex.h"
#include "macro.h"

static void test_hex_encode(void **state)
{
	static const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
	char *s;

	s = hex_encode(bytes, sizeof(bytes));
	assert_non_null(s);
	/* lowercase everywhere (protocol-v1, Identifiers) */
	assert_string_equal(s, "00017f80abcdefff");
	free(s);

	s = hex_encode(bytes, 0);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);

	s = hex_encode("\x54\x01\xa3", 3);
	assert_non_null(s);
	assert_string_equal(s, "5401a3");
	free(s);
}

static void test_strdup_trim(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		const char *out;
	} cases[] = {
	    {"", 32, ""},
	    {"abc", 32, "abc"},
	    {"  abc  ", 32, "abc"},
	    {"\tabc\t", 32, "abc"},
	    {"a b c", 32, "a b c"},
	    {"                ", 16, ""},
	    /* PKCS#11 pads fixed-size fields with spaces and does not
	     * NUL-terminate them: max bounds the read. */
	    {"SoftHSM project                 XXXX", 32, "SoftHSM project"},
	    {"abcdef", 3, "abc"},
	    {"ab  cd", 4, "ab"},
	    {"Thuế   ", 32, "Thuế"},
	    /* only spaces and tabs are blanks */
	    {"\nabc\n", 32, "\nabc\n"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *s = strdup_trim(cases[i].in, cases[i].max);
		assert_non_null(s);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

static void test_strdup_trim_unterminated(void **state)
{
	/* A fixed-size field with no NUL anywhere: heap-allocated at its exact
	 * size so that ASan catches a read past the end. */
	char *field = malloc(8);
	char *s;

	assert_non_null(field);
	memcpy(field, "1234    ", 8);
	s = strdup_trim(field, 8);
	assert_non_null(s);
	assert_string_equal(s, "1234");
	free(s);
	free(field);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hex_encode),
	    cmocka_unit_test(test_strdup_trim),
	    cmocka_unit_test(test_strdup_trim_unterminated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
