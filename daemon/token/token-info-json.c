/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/token-info-json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "macro.h"

char *der_to_text(const unsigned char *der, size_t size)
{
	return base64url_encode(der, size);
}

int der_from_text(const char *text, unsigned char **ret, size_t *ret_size)
{
	size_t len = text ? strlen(text) : 0;
	int r;

	if (len == 0 || len > TOKEN_JSON_MAX_DER * 4 / 3 + 4)
		return -EBADMSG;
	r = base64url_decode(text, len, ret, ret_size);
	return r < 0 ? -EBADMSG : 0;
}

/* Bounds on a name's texts: a real one is far shorter. */
#define NAME_TEXT_MAX 1024

json_t *name_to_json(const Name *name)
{
	json_t *array = json_array();

	for (size_t i = 0; array && i < name->n_pairs; i++)
		if (json_array_append_new(array, json_pack("[ss]", name->pairs[i].attribute,
							   name->pairs[i].value)) < 0) {
			json_decref(array);
			return NULL;
		}
	return array;
}

static void name_clearp(Name *name)
{
	name_clear(name);
}

int name_from_json(json_t *json, Name *ret)
{
	_cleanup_(name_clearp) Name name = {};
	json_t *pair;
	size_t i;

	if (!json_is_array(json) || json_array_size(json) > NAME_MAX_PAIRS)
		return -EBADMSG;
	name.pairs = calloc(json_array_size(json) + 1, sizeof(NamePair));
	if (!name.pairs)
		return -ENOMEM;
	json_array_foreach(json, i, pair)
	{
		const char *attribute, *value;

		if (json_unpack(pair, "[ss]", &attribute, &value) < 0 || !*attribute ||
		    strlen(attribute) > NAME_TEXT_MAX || strlen(value) > NAME_TEXT_MAX)
			return -EBADMSG;
		name.pairs[i].attribute = strdup(attribute);
		name.pairs[i].value = strdup(value);
		name.n_pairs++;
		if (!name.pairs[i].attribute || !name.pairs[i].value)
			return -ENOMEM;
	}
	*ret = name;
	name = (Name){};
	return 0;
}

static json_t *certificate_to_json(const CertificateEntry *c)
{
	_cleanup_free_ char *der = der_to_text(c->der, c->der_size);
	json_t *subject = name_to_json(&c->subject), *issuer = name_to_json(&c->issuer);

	if (!der || !subject || !issuer) {
		json_decref(subject);
		json_decref(issuer);
		return NULL;
	}
	return json_pack("{s:s,s:s,s:b,s:s,s:s,s:o,s:o,s:I,s:I,s:s,s:s*}", "label", c->label,
			 "key_id", c->key_id, "has_key", c->has_key, "der", der, "serial",
			 c->serial, "subject", subject, "issuer", issuer, "not_before",
			 (json_int_t)c->not_before, "not_after", (json_int_t)c->not_after, "sha256",
			 c->sha256, "profile", c->profile ? c->profile->file_name : NULL);
}

json_t *token_info_to_json(const TokenInfo *info)
{
	json_t *certificates = json_array();
	json_t *json;

	for (size_t i = 0; certificates && i < info->n_certificates; i++)
		if (json_array_append_new(certificates,
					  certificate_to_json(&info->certificates[i])) < 0) {
			json_decref(certificates);
			return NULL;
		}
	json = json_pack("{s:s,s:s,s:s,s:s,s:s*,s:b,s:b,s:b,s:b,s:I,s:I,s:o,s:o}", "serial",
			 info->serial, "label", info->label, "manufacturer", info->manufacturer,
			 "model", info->model, "module", info->module, "pin_count_low",
			 info->pin_count_low, "pin_final_try", info->pin_final_try, "pin_locked",
			 info->pin_locked, "pin_must_change", info->pin_must_change,
			 "pin_min_length", (json_int_t)info->pin_min_length, "pin_max_length",
			 (json_int_t)info->pin_max_length, "certificates", certificates, "caps",
			 token_capabilities_to_json(&info->caps));
	if (json && info->same_serial > 1)
		json_object_set_new(json, "same_serial", json_integer(info->same_serial));
	return json;
}

static bool hex_text(const char *s, size_t min, size_t max)
{
	size_t len = strlen(s);

	if (len < min || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

static int certificate_from_json(json_t *json, const Profiles *profiles, CertificateEntry *ret)
{
	const char *label = NULL, *key_id = NULL, *der = NULL, *serial = NULL, *sha256 = NULL;
	const char *profile = NULL;
	json_t *subject = NULL, *issuer = NULL;
	json_int_t not_before, not_after;
	int has_key = 0;
	int r;

	if (json_unpack(json, "{s:s,s:s,s:b,s:s,s:s,s:o,s:o,s:I,s:I,s:s,s?s}", "label", &label,
			"key_id", &key_id, "has_key", &has_key, "der", &der, "serial", &serial,
			"subject", &subject, "issuer", &issuer, "not_before", &not_before,
			"not_after", &not_after, "sha256", &sha256, "profile", &profile) < 0)
		return -EBADMSG;
	/* Hex of a serial number (at most 20 bytes, RFC 5280; some CAs use
	 * more), of a CKA_ID, of a SHA-256. */
	if (!hex_text(serial, 1, 128) || !hex_text(key_id, 0, 1024) || !hex_text(sha256, 64, 64) ||
	    strlen(label) > 1024)
		return -EBADMSG;
	r = der_from_text(der, &ret->der, &ret->der_size);
	if (r < 0)
		return r;
	r = name_from_json(subject, &ret->subject);
	if (r >= 0)
		r = name_from_json(issuer, &ret->issuer);
	if (r < 0)
		return r;
	ret->label = strdup(label);
	ret->key_id = strdup(key_id);
	ret->serial = strdup(serial);
	ret->sha256 = strdup(sha256);
	ret->has_key = has_key;
	ret->not_before = not_before;
	ret->not_after = not_after;
	if (!ret->label || !ret->key_id || !ret->serial || !ret->sha256)
		return -ENOMEM;
	ret->profile = profiles ? profiles_find(profiles, profile) : NULL;
	return 0;
}

int token_info_from_json(json_t *json, const Profiles *profiles, TokenInfo *ret)
{
	TokenInfo info = {};
	const char *serial, *label, *manufacturer, *model, *module = NULL;
	int count_low, final_try, locked, must_change;
	json_int_t min_length, max_length;
	json_t *certificates, *c, *caps = NULL;
	size_t i;
	int r = 0;

	if (json_unpack(json, "{s:s,s:s,s:s,s:s,s?s,s:b,s:b,s:b,s:b,s:I,s:I,s:o,s?o}", "serial",
			&serial, "label", &label, "manufacturer", &manufacturer, "model", &model,
			"module", &module, "pin_count_low", &count_low, "pin_final_try", &final_try,
			"pin_locked", &locked, "pin_must_change", &must_change, "pin_min_length",
			&min_length, "pin_max_length", &max_length, "certificates", &certificates,
			"caps", &caps) < 0 ||
	    (caps && token_capabilities_from_json(caps, &info.caps) < 0) ||
	    !json_is_array(certificates) ||
	    json_array_size(certificates) > TOKEN_JSON_MAX_CERTIFICATES || min_length < 0 ||
	    max_length < 0)
		return -EBADMSG;
	info.serial = strdup(serial);
	info.label = strdup(label);
	info.manufacturer = strdup(manufacturer);
	info.model = strdup(model);
	info.module = module ? strdup(module) : NULL;
	info.pin_count_low = count_low;
	info.pin_final_try = final_try;
	info.pin_locked = locked;
	info.pin_must_change = must_change;
	if (json_integer_value(json_object_get(json, "same_serial")) > 1 &&
	    json_integer_value(json_object_get(json, "same_serial")) <= TOKEN_JSON_MAX_TOKENS)
		info.same_serial =
		    (unsigned)json_integer_value(json_object_get(json, "same_serial"));
	info.pin_min_length = (unsigned long)min_length;
	info.pin_max_length = (unsigned long)max_length;
	info.certificates = calloc(json_array_size(certificates) + 1, sizeof(CertificateEntry));
	if (!info.serial || !info.label || !info.manufacturer || !info.model ||
	    (module && !info.module) || !info.certificates)
		r = -ENOMEM;
	json_array_foreach(certificates, i, c)
	{
		if (r < 0)
			break;
		r = certificate_from_json(c, profiles, &info.certificates[i]);
		info.n_certificates++;
	}
	if (r < 0) {
		token_info_clear(&info);
		return r;
	}
	token_info_sort_certificates(&info);
	*ret = info;
	return 0;
}

json_t *token_list_to_json(const TokenList *list)
{
	json_t *array = json_array();

	for (size_t i = 0; array && i < list->n_items; i++)
		if (json_array_append_new(array, token_info_to_json(&list->items[i])) < 0) {
			json_decref(array);
			return NULL;
		}
	return array;
}

int token_list_from_json(json_t *json, const Profiles *profiles, TokenList *ret)
{
	TokenList list = {};
	json_t *item;
	size_t i;

	if (!json_is_array(json) || json_array_size(json) > TOKEN_JSON_MAX_TOKENS)
		return -EBADMSG;
	list.items = calloc(json_array_size(json) + 1, sizeof(TokenInfo));
	if (!list.items)
		return -ENOMEM;
	json_array_foreach(json, i, item)
	{
		int r = token_info_from_json(item, profiles, &list.items[i]);
		if (r < 0) {
			token_list_clear(&list);
			return r;
		}
		list.n_items++;
	}
	*ret = list;
	return 0;
}
