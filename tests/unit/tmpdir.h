/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A fresh folder under $TMPDIR (or /tmp); fails the test when it cannot be
 * made. Free with tmpdir_remove(), which deletes it with all it holds. */
char *tmpdir_new(void);
void tmpdir_remove(char *dir);

/* Writes size bytes to dir/name, making the folders in name; returns the
 * full path (to free). */
char *tmpdir_write(const char *dir, const char *name, const void *data, size_t size);
char *tmpdir_write_string(const char *dir, const char *name, const char *text);
