/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "hex.h"

#include <stdlib.h>
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
