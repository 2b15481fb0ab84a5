/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "macro.h"
#include "time-util.h"

#define DAY INT64_C(86400)

static void test_format_rfc3339(void **state)
{
	static const struct {
		int64_t t;
		const char *text;
	} cases[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {1, "1970-01-01T00:00:01Z"},
	    {-1, "1969-12-31T23:59:59Z"},
	    {1796083200, "2026-12-01T00:00:00Z"},
	    {1735689599, "2024-12-31T23:59:59Z"},
	    {951782400, "2000-02-29T00:00:00Z"},
	    {-631152000, "1950-01-01T00:00:00Z"},
	    {2524607999, "2049-12-31T23:59:59Z"},
	    {INT64_C(253402300799), "9999-12-31T23:59:59Z"},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char buf[32];
		/* The test runs with TZ set far from UTC: the result must not
		 * depend on it. */
		assert_ptr_equal(format_rfc3339(buf, sizeof(buf), cases[i].t), buf);
		assert_string_equal(buf, cases[i].text);
	}
}

static void test_format_rfc3339_small_buffer(void **state)
{
	char buf[32];

	assert_null(format_rfc3339(buf, 10, 0));
	/* "1970-01-01T00:00:00Z" is 20 characters and a NUL */
	assert_null(format_rfc3339(buf, 20, 0));
	assert_non_null(format_rfc3339(buf, 21, 0));
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
}

/* RFC 3339 has four-digit years only: a time outside 0000–9999 cannot be
 * shown and must give NULL, never a string that is not RFC 3339. */
static void test_format_rfc3339_after_9999(void **state)
{
	char buf[32];

	assert_null(format_rfc3339(buf, sizeof(buf), INT64_MAX));
	assert_null(format_rfc3339(buf, sizeof(buf), INT64_C(253402300800))); /* 10000-01-01 */
}

static void test_format_rfc3339_before_1000(void **state)
{
	char buf[32];
	char *r;

	/* 0999-01-01T00:00:00Z: a certificate's GeneralizedTime can say this
	 * (fuzz/corpus/x509-name/generalizedtime-year-0999.der). */
	r = format_rfc3339(buf, sizeof(buf), INT64_C(-30641760000));
	if (r)
		assert_string_equal(r, "0999-01-01T00:00:00Z");
	/* 0001-01-01T00:00:00Z */
	r = format_rfc3339(buf, sizeof(buf), INT64_C(-62135596800));
	if (r)
		assert_string_equal(r, "0001-01-01T00:00:00Z");
}

static void test_days_until(void **state)
{
	const int64_t now = 1796083200;
	static const struct {
		int64_t delta;
		int64_t days;
	} cases[] = {
	    {0, 0},
	    {1, 0},
	    {DAY - 1, 0},
	    {DAY, 1},
	    {DAY + 1, 1},
	    {30 * DAY, 30},
	    {30 * DAY - 1, 29},
	    /* floor division: 1 s past not_after is day -1, not 0 */
	    {-1, -1},
	    {-DAY + 1, -1},
	    {-DAY, -1},
	    {-DAY - 1, -2},
	    {-2 * DAY, -2},
	    {-365 * DAY, -365},
	    {-365 * DAY - 1, -366},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		int64_t d = days_until(now + cases[i].delta, now * 1000000);
		if (d != cases[i].days)
			fail_msg("days_until(now%+" PRId64 ", now) = %" PRId64
				 ", expected %" PRId64,
				 cases[i].delta, d, cases[i].days);
	}
}

static void test_days_until_wide(void **state)
{
	/* certificate times span 1950 to 9999 */
	assert_int_equal(days_until(INT64_C(253402300799), 0), 2932896);
	assert_int_equal(days_until(-631152000, 0), -7305);
	assert_int_equal(days_until(-631152000 - 1, 0), -7306);
	assert_int_equal(days_until(0, INT64_C(253402300799) * 1000000), -2932897);
	assert_int_equal(days_until(INT64_MAX, 0), INT64_MAX / DAY);
}

static void test_days_until_subsecond(void **state)
{
	const int64_t now = 1796083200;

	/* Ten days minus a fraction of a second left: nine whole days. */
	assert_int_equal(days_until(now + 10 * DAY, now * 1000000 + 1), 9);
	assert_int_equal(days_until(now + 10 * DAY, now * 1000000 + 999999), 9);
	assert_int_equal(days_until(now + 10 * DAY, now * 1000000), 10);
	/* Half a second past the end is already day -1. */
	assert_int_equal(days_until(now, now * 1000000 + 500000), -1);
	assert_int_equal(days_until(now, now * 1000000), 0);
	/* Before 1970 the fraction still counts the same way. */
	assert_int_equal(days_until(-DAY, -DAY * 1000000 - 1), 0);
	assert_int_equal(days_until(-DAY, -DAY * 1000000 + 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_format_rfc3339),
	    cmocka_unit_test(test_format_rfc3339_small_buffer),
	    cmocka_unit_test(test_format_rfc3339_after_9999),
	    cmocka_unit_test(test_format_rfc3339_before_1000),
	    cmocka_unit_test(test_days_until),
	    cmocka_unit_test(test_days_until_wide),
	    cmocka_unit_test(test_days_until_subsecond),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
