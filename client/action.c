/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "action.h"

#include <string.h>
#include <strings.h>

#include "i18n.h"
#include "macro.h"

static const char *member_str(json_t *object, const char *key)
{
	const char *s = json_string_value(json_object_get(object, key));
	return s ? s : "";
}

bool action_activatable(json_t *action)
{
	const char *type = member_str(action, "type");
	json_t *key = json_object_get(action, "key");
	const char *key_type = member_str(key, "type");
	json_int_t bits = json_integer_value(json_object_get(key, "bits"));

	if (!streq(type, "renew") && !streq(type, "change"))
		return false;
	if (!json_is_true(json_object_get(key, "generate")))
		return true;
	if (streq(key_type, "rsa"))
		return bits == 2048 || bits == 3072 || bits == 4096;
	return streq(key_type, "ec") && streq(member_str(key, "curve"), "P-256");
}

char *ca_text_clean(const char *s, size_t max_chars)
{
	size_t chars = 0;
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		size_t length = 1;

		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			continue;
		/* C1 controls, U+0080..U+009F, are C2 80..C2 9F in UTF-8. */
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			p++;
			continue;
		}
		/* Bidirectional overrides (U+202A..U+202E, U+2066..U+2069)
		 * could make the text read other than it is. */
		if (*p == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
				   (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))) {
			p += 2;
			continue;
		}
		if (chars == max_chars)
			break;
		/* Copy a whole character: its lead byte and continuations. */
		if (*p >= 0xc0)
			while (length < 4 && (p[length] & 0xc0) == 0x80)
				length++;
		memcpy(o, p, length);
		o += length;
		p += length - 1;
		chars++;
	}
	*o = '\0';
	return out;
}

const char *name_get(json_t *name, const char *attribute)
{
	size_t i;
	json_t *pair;

	json_array_foreach(name, i, pair)
	{
		const char *a = json_string_value(json_array_get(pair, 0));
		if (a && streq(a, attribute))
			return json_string_value(json_array_get(pair, 1));
	}
	return NULL;
}

const ActivationStep activation_steps[ACTIVATION_STEPS] = {
    {"accepted", N_("The activation began")},
    {"logged-in", N_("Logged in to the token")},
    {"key-ready", N_("The key is ready on the token")},
    {"csr-sent", N_("The request went to the CA")},
    {"issued", N_("The CA issued the certificate")},
    {"verified", N_("The certificate passed its checks")},
    {"written", N_("The certificate is on the token")},
    {"confirmed", N_("The CA was told it is done")},
};

size_t activation_step_number(const char *step)
{
	for (size_t i = 0; step && i < ACTIVATION_STEPS; i++)
		if (streq(activation_steps[i].step, step))
			return i + 1;
	return 0;
}

json_t *certificate_find(json_t *certificates, const char *serial)
{
	size_t i;
	json_t *certificate;

	json_array_foreach(certificates, i, certificate)
	{
		if (strcasecmp(member_str(certificate, "serial"), serial) == 0)
			return certificate;
	}
	return NULL;
}
