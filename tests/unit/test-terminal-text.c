/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What safectl prints for people: nothing a token, a certificate or a CA
 * says may drive the terminal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "macro.h"
#include "terminal-text.h"

static char *filter_in_pieces(const char *in, size_t piece)
{
	static char out[1024];
	TerminalText state = {};
	size_t n = strlen(in), o = 0;

	for (size_t i = 0; i < n; i += piece)
		o += terminal_text_filter(&state, in + i, n - i < piece ? n - i : piece, out + o);
	out[o] = 0;
	return out;
}

static void check(const char *in, const char *expected)
{
	/* Whole, and split at every possible place: a character cut between
	 * two writes is judged whole. */
	for (size_t piece = 1; piece <= strlen(in) + 1; piece++) {
		const char *out = filter_in_pieces(in, piece);
		if (!streq(out, expected))
			fail_msg("\"%s\" in pieces of %zu gave \"%s\", expected \"%s\"", in, piece,
				 out, expected);
	}
}

static void test_plain_text_passes(void **state)
{
	check("Token 1234: CÔNG TY TNHH An Bình, 12 ngày\n",
	      "Token 1234: CÔNG TY TNHH An Bình, 12 ngày\n");
	check("a\tb\n", "a\tb\n");
	check("€ 𝄞 ✓", "€ 𝄞 ✓");
}

static void test_c0_controls_go(void **state)
{
	/* A label that clears the screen, retitles the window, rings, or
	 * writes over its own line. */
	check("A\x1b[2J\x1b]0;pwned\x07Z", "A[2J]0;pwnedZ");
	check("ok\rEVIL", "okEVIL");
	check("x\x7fy\x01z", "xyz");
}

static void test_c1_controls_go(void **state)
{
	/* U+009B is CSI on an 8-bit terminal, U+0085 a new line. */
	check("A\xc2\x9b"
	      "31mB\xc2\x85"
	      "C",
	      "A31mBC");
	/* A lone C1 byte is not UTF-8 either. */
	check("A\x9b"
	      "31mB",
	      "A31mB");
}

static void test_bidi_controls_go(void **state)
{
	/* RLO makes "gnp.exe" read as "exe.png"; LRM, RLM, ALM, isolates. */
	check("x\xe2\x80\xaeq\xe2\x80\xac"
	      "y",
	      "xqy");
	check("\xe2\x80\x8e"
	      "a\xe2\x80\x8f"
	      "b\xd8\x9c"
	      "c\xe2\x81\xa6"
	      "d\xe2\x81\xa9",
	      "abcd");
}

static void test_broken_utf8_goes(void **state)
{
	/* Overlong ESC (C0 9B), a surrogate, past U+10FFFF, a cut sequence,
	 * a stray continuation byte. */
	check("a\xc0\x9b"
	      "b",
	      "ab");
	check("a\xed\xa0\x80"
	      "b",
	      "ab");
	check("a\xf4\x90\x80\x80"
	      "b",
	      "ab");
	check("a\xe2\x82"
	      "b",
	      "ab");
	check("a\x80"
	      "b",
	      "ab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_text_passes), cmocka_unit_test(test_c0_controls_go),
	    cmocka_unit_test(test_c1_controls_go),    cmocka_unit_test(test_bidi_controls_go),
	    cmocka_unit_test(test_broken_utf8_goes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
