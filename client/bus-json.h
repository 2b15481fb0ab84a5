/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <systemd/sd-bus.h>

/* Reads the next value of m (a plain type, a(ss), a{sv}, aa{sv}, or a
 * variant of these) as JSON. A name (a(ss)) becomes an array of
 * [attribute, value] pairs; times ("not_before", "not_after" keys, type t)
 * become RFC 3339 strings. */
int bus_read_json(sd_bus_message *m, const char *key, json_t **ret);
