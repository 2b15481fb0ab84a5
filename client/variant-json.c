/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "variant-json.h"

#include "macro.h"
#include "time-util.h"

static json_t *time_to_json(guint64 t)
{
	char buf[64];

	return format_rfc3339(buf, sizeof(buf), (int64_t)t) ? json_string(buf) : json_null();
}

static json_t *container_to_json(GVariant *value, const char *key)
{
	bool dictionary = g_variant_is_of_type(value, G_VARIANT_TYPE("a{sv}"));
	json_t *out = dictionary ? json_object() : json_array();
	GVariantIter iter;
	GVariant *child;

	if (!out)
		return NULL;
	g_variant_iter_init(&iter, value);
	while ((child = g_variant_iter_next_value(&iter))) {
		const char *child_key = NULL;
		g_autoptr(GVariant) item = NULL;
		json_t *converted;
		int r;

		if (dictionary) {
			g_autoptr(GVariant) name = g_variant_get_child_value(child, 0);
			child_key = g_variant_get_string(name, NULL);
			item = g_variant_get_child_value(child, 1);
			converted = variant_to_json(item, child_key);
			r = converted ? json_object_set_new(out, child_key, converted) : -1;
		} else {
			converted = variant_to_json(child, key);
			r = converted ? json_array_append_new(out, converted) : -1;
		}
		g_variant_unref(child);
		if (r < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

json_t *variant_to_json(GVariant *value, const char *key)
{
	switch (g_variant_classify(value)) {
	case G_VARIANT_CLASS_VARIANT: {
		g_autoptr(GVariant) inner = g_variant_get_variant(value);
		return variant_to_json(inner, key);
	}
	case G_VARIANT_CLASS_STRING:
	case G_VARIANT_CLASS_OBJECT_PATH:
		return json_string(g_variant_get_string(value, NULL));
	case G_VARIANT_CLASS_BOOLEAN:
		return json_boolean(g_variant_get_boolean(value));
	case G_VARIANT_CLASS_INT32:
		return json_integer(g_variant_get_int32(value));
	case G_VARIANT_CLASS_UINT32:
		return json_integer(g_variant_get_uint32(value));
	case G_VARIANT_CLASS_INT64:
		return json_integer(g_variant_get_int64(value));
	case G_VARIANT_CLASS_UINT64:
		if (key && (streq(key, "not_before") || streq(key, "not_after")))
			return time_to_json(g_variant_get_uint64(value));
		return json_integer((json_int_t)g_variant_get_uint64(value));
	case G_VARIANT_CLASS_ARRAY:
	case G_VARIANT_CLASS_TUPLE:
	case G_VARIANT_CLASS_DICT_ENTRY:
		return container_to_json(value, key);
	default:
		return json_null();
	}
}
