/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "base64.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char alphabet_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *encode(const void *data, size_t size, const char *alphabet, bool pad)
{
	const unsigned char *p = data;
	size_t groups = size / 3 + (size % 3 != 0);
	char *out, *o;

	if (groups > (SIZE_MAX - 1) / 4)
		return NULL;
	out = malloc(groups * 4 + 1);
	if (!out)
		return NULL;
	o = out;
	for (size_t i = 0; i < size; i += 3) {
		size_t left = size - i;
		uint32_t v = (uint32_t)p[i] << 16;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = alphabet[(v >> 18) & 63];
		*o++ = alphabet[(v >> 12) & 63];
		if (left > 1)
			*o++ = alphabet[(v >> 6) & 63];
		else if (pad)
			*o++ = '=';
		if (left > 2)
			*o++ = alphabet[v & 63];
		else if (pad)
			*o++ = '=';
	}
	*o = 0;
	return out;
}

char *base64_encode(const void *data, size_t size)
{
	return encode(data, size, alphabet_std, true);
}

char *base64url_encode(const void *data, size_t size)
{
	return encode(data, size, alphabet_url, false);
}

static int url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int base64url_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_size)
{
	unsigned char *out;
	size_t n = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	/* One character left over carries only 6 bits: no encoder writes it. */
	if (len % 4 == 1)
		return -EBADMSG;
	out = malloc(len / 4 * 3 + 3);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = url_value(s[i]);

		if (v < 0) {
			free(out);
			return -EBADMSG;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) {
		free(out);
		return -EBADMSG;
	}
	out[n] = 0;
	*ret = out;
	*ret_size = n;
	return 0;
}

int pem_certificate_to_der(const char *pem, unsigned char **ret, size_t *ret_size)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	const char *start = pem ? strstr(pem, begin) : NULL;
	const char *stop;
	char *text;
	size_t n = 0;
	int r;

	if (!start)
		return -EBADMSG;
	start += sizeof(begin) - 1;
	stop = strstr(start, end);
	if (!stop)
		return -EBADMSG;
	text = malloc((size_t)(stop - start) + 1);
	if (!text)
		return -ENOMEM;
	/* To base64url without padding or line breaks. */
	for (const char *p = start; p < stop; p++) {
		if (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t' || *p == '=')
			continue;
		text[n++] = *p == '+' ? '-' : *p == '/' ? '_' : *p == '-' || *p == '_' ? '!' : *p;
	}
	text[n] = 0;
	r = n > 0 ? base64url_decode(text, n, ret, ret_size) : -EBADMSG;
	free(text);
	return r == -ENOMEM ? r : r < 0 ? -EBADMSG : 0;
}
