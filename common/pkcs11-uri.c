/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pkcs11-uri.h"

#include <ctype.h>
#include <strings.h>

#include "macro.h"

#define URI_MAX 4096

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return tolower((unsigned char)c) - 'a' + 10;
}

static int unescape(const char *s, size_t len, char **ret)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
		    !isxdigit((unsigned char)s[i + 2]) || (s[i + 1] == '0' && s[i + 2] == '0')) {
			free(out);
			return -EINVAL;
		}
		*o++ = (char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
		i += 2;
	}
	*o = 0;
	*ret = out;
	return 0;
}

void pkcs11_uri_clear(Pkcs11Uri *uri)
{
	free(uri->token);
	free(uri->serial);
	free(uri->manufacturer);
	free(uri->model);
	*uri = (Pkcs11Uri){};
}

int pkcs11_uri_parse(const char *text, Pkcs11Uri *ret)
{
	Pkcs11Uri uri = {};
	const char *p;
	size_t left;

	if (strncasecmp(text, "pkcs11:", 7) != 0 || strlen(text) > URI_MAX)
		return -EINVAL;
	p = text + 7;
	left = strcspn(p, "?");
	while (left > 0) {
		size_t len = strcspn(p, ";");
		const char *eq;
		char **field = NULL;
		int r;

		if (len > left)
			len = left;
		eq = memchr(p, '=', len);
		if (!eq || eq == p) {
			pkcs11_uri_clear(&uri);
			return -EINVAL;
		}
#define IS(name) ((size_t)(eq - p) == strlen(name) && strncmp(p, name, (size_t)(eq - p)) == 0)
		if (IS("token"))
			field = &uri.token;
		else if (IS("serial"))
			field = &uri.serial;
		else if (IS("manufacturer"))
			field = &uri.manufacturer;
		else if (IS("model"))
			field = &uri.model;
#undef IS
		if (!field) {
			/* Attributes we do not use (id, object, …) must still be
			 * well-formed; %00 is fine in those. */
			for (const char *q = eq + 1; q < p + len; q++)
				if (*q == '%' &&
				    (q + 2 >= p + len || !isxdigit((unsigned char)q[1]) ||
				     !isxdigit((unsigned char)q[2]))) {
					pkcs11_uri_clear(&uri);
					return -EINVAL;
				}
		} else {
			if (*field) { /* an attribute may appear once */
				pkcs11_uri_clear(&uri);
				return -EINVAL;
			}
			r = unescape(eq + 1, len - (size_t)(eq + 1 - p), field);
			if (r < 0) {
				pkcs11_uri_clear(&uri);
				return r;
			}
		}
		p += len;
		left -= len;
		if (left > 0) {
			p++;
			left--;
		}
	}
	*ret = uri;
	return 0;
}
