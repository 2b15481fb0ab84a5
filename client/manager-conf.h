/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* The Token Manager's per-user settings, a key file both the window
 * (which writes it) and the agent (which reads it) know:
 * $XDG_CONFIG_HOME/safecad/manager.conf, else ~/.config/safecad/.
 *
 *   [manager]
 *   open_on_insert=true|false
 */
#define MANAGER_CONF_GROUP "manager"
#define MANAGER_CONF_OPEN_ON_INSERT "open_on_insert"
/* Larger than anything the window writes, by far. */
#define MANAGER_CONF_MAX (16 * 1024)

/* The key file's path, or NULL when neither XDG_CONFIG_HOME nor HOME is an
 * absolute path (or out of memory). */
char *manager_conf_path(void);

/* Whether text says open_on_insert=true in its [manager] group. Anything
 * else (no such key, another value, a broken file) is false: the default. */
bool manager_conf_open_on_insert(const char *text);
