/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hex.h"

#include <stdlib.h>
#include <errno.h>
#include <string.h>

char *hex_encode(const void *data, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = data;
	char *r = malloc(size * 2 + 1);

	if (!r)
		return NULL;
	for (size_t i = 0; i < size; i++) {
		r[i * 2] = digits[p[i] >> 4];
		r[i * 2 + 1] = digits[p[i] & 15];
	}
	r[size * 2] = 0;
	return r;
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *hex, unsigned char *out, size_t max, size_t *ret_size)
{
	size_t len = strlen(hex);

	if (len % 2 || len / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*ret_size = len / 2;
	return 0;
}

char *strdup_trim(const char *s, size_t max)
{
	size_t len = strnlen(s, max);

	while (len > 0 && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return strndup(s, len);
}
