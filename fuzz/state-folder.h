/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A private $STATE_DIRECTORY for a target that reads state files: made at
 * the first call (on tmpfs when there is one: the daemon fsyncs what it
 * writes), emptied before each input, removed at exit. Returns its path. */
const char *state_folder_setup(void);
void state_folder_empty(void);

/* Writes a file whole; a negative errno when it cannot be made (a name too
 * long, say). */
int state_folder_write(const char *path, const uint8_t *data, size_t size);
