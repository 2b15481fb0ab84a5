/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>

/* State files are JSON, written atomically: a temporary file in the same
 * folder, fsync, rename over the old one, fsync the folder. After a crash
 * the file is either the old one or the new one, whole. */
int state_file_write(const char *path, json_t *value);

/* Reads a state file of at most max bytes; -ENOENT when there is none,
 * -EBADMSG when it is not a JSON object. */
int state_file_read(const char *path, size_t max, json_t **ret);

/* Removes a state file and makes that durable. */
int state_file_remove(const char *path);

/* Creates the folder (mode 0700) if it is not there. */
int state_directory_ensure(const char *path);
