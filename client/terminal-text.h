/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* safectl's words for people pass through one filter on their way to the
 * terminal, so that nothing a token, a certificate or a CA says can drive
 * it: C0 controls but newline and tab (ESC, BEL, CR...), DEL, C1 controls,
 * bidirectional controls and bytes that are not UTF-8 are dropped. The
 * filter keeps state across calls, so a character split between two
 * writes is judged whole. */
typedef struct TerminalText {
	unsigned char pending[4];
	size_t n_pending;
	size_t needed;
} TerminalText;

/* Filters n bytes of in into out (room for n + 3 bytes); returns how many
 * bytes it wrote. */
size_t terminal_text_filter(TerminalText *state, const char *in, size_t n, char *out);

/* Sends what stdout (unless raw_stdout) and stderr print through the
 * filter from now on. */
int terminal_text_install(bool raw_stdout);
