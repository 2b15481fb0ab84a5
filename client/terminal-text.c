/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "terminal-text.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool shown(uint32_t c)
{
	if (c < 0x20)
		return c == '\n' || c == '\t';
	if (c == 0x7f || (c >= 0x80 && c <= 0x9f))
		return false;
	/* Bidirectional marks, embeddings, overrides and isolates: they make
	 * text read other than it is (a serial, a name). */
	if (c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069))
		return false;
	return true;
}

/* The code point of a whole sequence, or UINT32_MAX when it is not
 * well-formed UTF-8 (overlong, a surrogate, past U+10FFFF). */
static uint32_t decode(const unsigned char *s, size_t n)
{
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	uint32_t c = s[0] & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);

	for (size_t i = 1; i < n; i++)
		c = c << 6 | (s[i] & 0x3f);
	if (c < min[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return UINT32_MAX;
	return c;
}

size_t terminal_text_filter(TerminalText *t, const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)in[i];

		if (t->n_pending > 0) {
			if ((b & 0xc0) == 0x80) {
				t->pending[t->n_pending++] = b;
				if (t->n_pending < t->needed)
					continue;
				uint32_t c = decode(t->pending, t->n_pending);
				if (c != UINT32_MAX && shown(c)) {
					memcpy(out + o, t->pending, t->n_pending);
					o += t->n_pending;
				}
				t->n_pending = 0;
				continue;
			}
			/* Cut short: the lead byte goes, this one is judged
			 * on its own. */
			t->n_pending = 0;
		}
		if (b < 0x80) {
			if (shown(b))
				out[o++] = (char)b;
		} else if (b >= 0xc2 && b <= 0xf4) {
			t->needed = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
			t->pending[0] = b;
			t->n_pending = 1;
		}
	}
	return o;
}

typedef struct FilteredStream {
	int fd;
	TerminalText state;
} FilteredStream;

static ssize_t filtered_write(void *cookie, const char *buf, size_t size)
{
	FilteredStream *f = cookie;
	char out[4096 + 3];
	size_t done = 0;

	while (done < size) {
		size_t chunk = size - done < 4096 ? size - done : 4096;
		size_t n = terminal_text_filter(&f->state, buf + done, chunk, out);

		for (size_t w = 0; w < n;) {
			ssize_t k = write(f->fd, out + w, n - w);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return done > 0 ? (ssize_t)done : -1;
			w += (size_t)k;
		}
		done += chunk;
	}
	return (ssize_t)size;
}

static FILE *filtered_stream(FilteredStream *f, int fd, int buffering)
{
	FILE *stream;

	f->fd = fd;
	stream = fopencookie(f, "w", (cookie_io_functions_t){.write = filtered_write});
	if (stream)
		setvbuf(stream, NULL, buffering, BUFSIZ);
	return stream;
}

int terminal_text_install(bool raw_stdout)
{
	/* For the whole run: exit() flushes them. */
	static FilteredStream out_state, err_state;
	FILE *err, *out = NULL;

	fflush(stdout);
	fflush(stderr);
	err = filtered_stream(&err_state, STDERR_FILENO, _IONBF);
	if (!err)
		return -errno;
	if (!raw_stdout) {
		out = filtered_stream(&out_state, STDOUT_FILENO,
				      isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF);
		if (!out) {
			fclose(err);
			return -errno;
		}
		stdout = out;
	}
	stderr = err;
	return 0;
}
