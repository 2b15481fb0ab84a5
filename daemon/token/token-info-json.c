/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/token-info-json.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "macro.h"

char *x509_to_text(X509 *x509)
{
	unsigned char *der = NULL;
	int size = i2d_X509(x509, &der);
	char *text;

	if (size <= 0)
		return NULL;
	text = base64url_encode(der, (size_t)size);
	OPENSSL_free(der);
	return text;
}

int x509_from_text(const char *text, X509 **ret)
{
	_cleanup_free_ unsigned char *der = NULL;
	const unsigned char *p;
	size_t size;
	X509 *x509;
	int r;

	if (!text)
		return -EBADMSG;
	r = base64url_decode(text, strlen(text), &der, &size);
	if (r < 0)
		return r;
	p = der;
	x509 = d2i_X509(NULL, &p, (long)size);
	if (!x509 || p != der + size) {
		X509_free(x509);
		ERR_clear_error();
		return -EBADMSG;
	}
	*ret = x509;
	return 0;
}

static json_t *certificate_to_json(const CertificateEntry *c)
{
	_cleanup_free_ char *der = x509_to_text(c->x509);

	if (!der)
		return NULL;
	return json_pack("{s:s,s:s,s:b,s:s}", "label", c->label, "key_id", c->key_id, "has_key",
			 c->has_key, "der", der);
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
	json = json_pack("{s:s,s:s,s:s,s:s,s:s*,s:b,s:b,s:b,s:b,s:I,s:I,s:o}", "serial",
			 info->serial, "label", info->label, "manufacturer", info->manufacturer,
			 "model", info->model, "module", info->module, "pin_count_low",
			 info->pin_count_low, "pin_final_try", info->pin_final_try, "pin_locked",
			 info->pin_locked, "pin_must_change", info->pin_must_change,
			 "pin_min_length", (json_int_t)info->pin_min_length, "pin_max_length",
			 (json_int_t)info->pin_max_length, "certificates", certificates);
	return json;
}

static int certificate_from_json(json_t *json, const Profiles *profiles, CertificateEntry *ret)
{
	const char *label = NULL, *key_id = NULL, *der = NULL;
	int has_key = 0;
	int r;

	if (json_unpack(json, "{s:s,s:s,s:b,s:s}", "label", &label, "key_id", &key_id, "has_key",
			&has_key, "der", &der) < 0)
		return -EBADMSG;
	r = x509_from_text(der, &ret->x509);
	if (r < 0)
		return r;
	ret->label = strdup(label);
	ret->key_id = strdup(key_id);
	ret->has_key = has_key;
	if (!ret->label || !ret->key_id)
		return -ENOMEM;
	r = certificate_entry_from_x509(ret->x509, ret);
	if (r < 0)
		return r;
	ret->profile = profiles ? profiles_match(profiles, ret->x509) : NULL;
	return 0;
}

int token_info_from_json(json_t *json, const Profiles *profiles, TokenInfo *ret)
{
	TokenInfo info = {};
	const char *serial, *label, *manufacturer, *model, *module = NULL;
	int count_low, final_try, locked, must_change;
	json_int_t min_length, max_length;
	json_t *certificates, *c;
	size_t i;
	int r = 0;

	if (json_unpack(json, "{s:s,s:s,s:s,s:s,s?s,s:b,s:b,s:b,s:b,s:I,s:I,s:o}", "serial",
			&serial, "label", &label, "manufacturer", &manufacturer, "model", &model,
			"module", &module, "pin_count_low", &count_low, "pin_final_try", &final_try,
			"pin_locked", &locked, "pin_must_change", &must_change, "pin_min_length",
			&min_length, "pin_max_length", &max_length, "certificates",
			&certificates) < 0 ||
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
