/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-json.h"

#include <string.h>

#include "macro.h"
#include "safectl.h"
#include "time-util.h"

static bool is_time_key(const char *key)
{
	return key && (streq(key, "not_before") || streq(key, "not_after"));
}

static int read_dict(sd_bus_message *m, json_t **ret)
{
	_cleanup_json_ json_t *object = json_object();
	int r;

	if (!object)
		return -ENOMEM;
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		const char *key;
		json_t *value = NULL;

		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		r = bus_read_json(m, key, &value);
		if (r < 0)
			return r;
		if (json_object_set_new(object, key, value) < 0)
			return -ENOMEM;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(object);
	return 0;
}

static int read_array(sd_bus_message *m, const char *contents, const char *key, json_t **ret)
{
	_cleanup_json_ json_t *array = json_array();
	int r;

	if (!array)
		return -ENOMEM;
	r = sd_bus_message_enter_container(m, 'a', contents);
	if (r < 0)
		return r;
	for (;;) {
		json_t *item = NULL;

		r = sd_bus_message_at_end(m, false);
		if (r < 0)
			return r;
		if (r > 0)
			break;
		if (streq(contents, "(ss)")) {
			const char *a, *v;
			r = sd_bus_message_read(m, "(ss)", &a, &v);
			if (r < 0)
				return r;
			item = json_pack("[ss]", a, v);
			if (!item)
				return -EBADMSG;
		} else {
			r = bus_read_json(m, key, &item);
			if (r < 0)
				return r;
		}
		if (json_array_append_new(array, item) < 0)
			return -ENOMEM;
	}
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(array);
	return 0;
}

int bus_read_json(sd_bus_message *m, const char *key, json_t **ret)
{
	const char *contents = NULL;
	char type;
	json_t *value = NULL;
	int r;

	r = sd_bus_message_peek_type(m, &type, &contents);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENXIO;
	switch (type) {
	case 'v':
		r = sd_bus_message_enter_container(m, 'v', contents);
		if (r < 0)
			return r;
		r = bus_read_json(m, key, ret);
		if (r < 0)
			return r;
		return sd_bus_message_exit_container(m);
	case 's':
	case 'o': {
		const char *s;
		r = sd_bus_message_read_basic(m, type, &s);
		if (r < 0)
			return r;
		value = json_string(s);
		break;
	}
	case 'b': {
		int b;
		r = sd_bus_message_read_basic(m, 'b', &b);
		if (r < 0)
			return r;
		value = json_boolean(b);
		break;
	}
	case 'i': {
		int32_t i;
		r = sd_bus_message_read_basic(m, 'i', &i);
		if (r < 0)
			return r;
		value = json_integer(i);
		break;
	}
	case 'u': {
		uint32_t u;
		r = sd_bus_message_read_basic(m, 'u', &u);
		if (r < 0)
			return r;
		value = json_integer(u);
		break;
	}
	case 'x': {
		int64_t x;
		r = sd_bus_message_read_basic(m, 'x', &x);
		if (r < 0)
			return r;
		value = json_integer(x);
		break;
	}
	case 't': {
		uint64_t t;
		char buf[64];
		r = sd_bus_message_read_basic(m, 't', &t);
		if (r < 0)
			return r;
		if (is_time_key(key))
			value = format_rfc3339(buf, sizeof(buf), (int64_t)t) ? json_string(buf)
									     : json_null();
		else
			value = json_integer((json_int_t)t);
		break;
	}
	case 'a':
		if (streq(contents, "{sv}"))
			return read_dict(m, ret);
		return read_array(m, contents, key, ret);
	case 'r': {
		/* A struct becomes the array of its members. */
		_cleanup_json_ json_t *members = json_array();
		if (!members)
			return -ENOMEM;
		r = sd_bus_message_enter_container(m, 'r', contents);
		if (r < 0)
			return r;
		while ((r = sd_bus_message_at_end(m, false)) == 0) {
			json_t *item = NULL;
			r = bus_read_json(m, key, &item);
			if (r < 0)
				return r;
			if (json_array_append_new(members, item) < 0)
				return -ENOMEM;
		}
		if (r < 0)
			return r;
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
		*ret = TAKE_PTR(members);
		return 0;
	}
	default:
		r = sd_bus_message_skip(m, NULL);
		if (r < 0)
			return r;
		value = json_null();
	}
	if (!value)
		return -ENOMEM;
	*ret = value;
	return 0;
}
