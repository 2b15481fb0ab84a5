/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "macro.h"
#include "tmpdir.h"
#include "util.h"

static void test_parse_unsigned_accepts(void **state)
{
	static const struct {
		const char *text;
		unsigned value;
	} cases[] = {
	    {"0", 0},	    {"7", 7},	{" 42", 42},	{"42 ", 42},
	    {"\t42\n", 42}, {"007", 7}, {"3660", 3660}, {"4294967295", 4294967295u},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		unsigned v = 12345;
		assert_int_equal(parse_unsigned(cases[i].text, 0, 4294967295u, &v), 0);
		assert_int_equal(v, cases[i].value);
	}
}

static void test_parse_unsigned_refuses(void **state)
{
	static const struct {
		const char *text;
		int error;
	} cases[] = {
	    {"", -EINVAL},
	    {"   ", -EINVAL},
	    {"-1", -EINVAL},
	    {"+1", -EINVAL},
	    {"- 1", -EINVAL},
	    {"1x", -EINVAL},
	    {"0x10", -EINVAL},
	    {"1 2", -EINVAL},
	    {"1,2", -EINVAL},
	    {"1.5", -EINVAL},
	    {"abc", -EINVAL},
	    {"4294967296", -ERANGE},
	    {"99999999999999999999999999", -ERANGE},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		unsigned v = 12345;
		int r = parse_unsigned(cases[i].text, 0, 4294967295u, &v);
		if (r != cases[i].error)
			fail_msg("parse_unsigned(\"%s\") = %d, expected %d", cases[i].text, r,
				 cases[i].error);
		/* ret_* stays untouched on failure */
		assert_int_equal(v, 12345);
	}
}

static void test_parse_unsigned_bounds(void **state)
{
	unsigned v = 99;

	assert_int_equal(parse_unsigned("1", 1, 600, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_unsigned("600", 1, 600, &v), 0);
	assert_int_equal(v, 600);
	v = 99;
	assert_int_equal(parse_unsigned("0", 1, 600, &v), -ERANGE);
	assert_int_equal(parse_unsigned("601", 1, 600, &v), -ERANGE);
	assert_int_equal(v, 99);
}

static void test_strdup_strip(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"", ""},		{"   ", ""},	    {"a", "a"},
	    {"  a b  ", "a b"}, {"\t\na\r\n", "a"}, {"Thuế điện tử ", "Thuế điện tử"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *s = strdup_strip(cases[i].in);
		assert_non_null(s);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

static int setup_dir(void **state)
{
	*state = tmpdir_new();
	return 0;
}

static int teardown_dir(void **state)
{
	tmpdir_remove(*state);
	return 0;
}

static void test_read_small_file(void **state)
{
	const char *dir = *state;
	char *path = tmpdir_write_string(dir, "f", "hello\nworld\n");
	char *text = NULL;

	assert_int_equal(read_small_file(path, 1024, &text), 0);
	assert_string_equal(text, "hello\nworld\n");
	free(text);
	free(path);

	path = tmpdir_write_string(dir, "empty", "");
	text = NULL;
	assert_int_equal(read_small_file(path, 1024, &text), 0);
	assert_non_null(text);
	assert_string_equal(text, "");
	free(text);
	free(path);
}

static void test_read_small_file_limits(void **state)
{
	const char *dir = *state;
	char data[100];
	char *path, *text = NULL;

	memset(data, 'x', sizeof(data));
	path = tmpdir_write(dir, "f", data, sizeof(data));

	/* Exactly max bytes is fine, one more is too big. */
	assert_int_equal(read_small_file(path, 100, &text), 0);
	assert_int_equal(strlen(text), 100);
	free(text);
	text = NULL;
	assert_int_equal(read_small_file(path, 99, &text), -EFBIG);
	assert_null(text);
	assert_int_equal(read_small_file(path, 0, &text), -EFBIG);
	assert_null(text);
	free(path);

	path = tmpdir_write(dir, "nul", "ab\0cd", 5);
	assert_int_equal(read_small_file(path, 100, &text), -EBADMSG);
	assert_null(text);
	free(path);

	path = tmpdir_write(dir, "nul-last", "abc\0", 4);
	assert_int_equal(read_small_file(path, 100, &text), -EBADMSG);
	assert_null(text);
	free(path);
}

static void test_read_small_file_errors(void **state)
{
	const char *dir = *state;
	char *missing = NULL, *text = NULL;

	assert_true(asprintf(&missing, "%s/missing", dir) > 0);
	assert_int_equal(read_small_file(missing, 100, &text), -ENOENT);
	assert_int_equal(read_small_file(dir, 100, &text), -EISDIR);
	assert_null(text);
	free(missing);
}

static void test_path_join(void **state)
{
	static const struct {
		const char *a, *b, *out;
	} cases[] = {
	    {"/etc/safecad", "ca.d", "/etc/safecad/ca.d"},
	    {"/etc/safecad/", "ca.d", "/etc/safecad/ca.d"},
	    {"/etc/safecad", "/abs/file.pem", "/abs/file.pem"},
	    {"", "ca.d", "ca.d"},
	    {NULL, "ca.d", "ca.d"},
	    {"/", "x", "/x"},
	    {"rel", "x/y", "rel/x/y"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *s = path_join(cases[i].a, cases[i].b);
		assert_non_null(s);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_unsigned_accepts),
	    cmocka_unit_test(test_parse_unsigned_refuses),
	    cmocka_unit_test(test_parse_unsigned_bounds),
	    cmocka_unit_test(test_strdup_strip),
	    cmocka_unit_test_setup_teardown(test_read_small_file, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_read_small_file_limits, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_read_small_file_errors, setup_dir, teardown_dir),
	    cmocka_unit_test(test_path_join),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
