/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <jansson.h>

/* A GVariant read from the bus by GDBus, as JSON in the shapes that
 * bus_read_json() gives safectl: a name (a(ss)) becomes [[attribute,
 * value], ...], a dictionary an object, times ("not_before", "not_after"
 * keys, type t) RFC 3339 strings. So the window reads a token with the
 * same rules (action.c, history-json.h) as safectl and the agent. key is
 * the dictionary key value sits under, or NULL. NULL when out of memory. */
json_t *variant_to_json(GVariant *value, const char *key);
