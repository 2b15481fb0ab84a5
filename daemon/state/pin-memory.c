/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/pin-memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hex.h"
#include "macro.h"
#include "state/config.h"
#include "state/state-file.h"
#include "util.h"

static char *memory_path(const char *token_serial, char **ret_dir)
{
	_cleanup_free_ char *dir = path_join(state_directory(), "pin");
	_cleanup_free_ char *hex =
	    token_serial ? hex_encode(token_serial, strlen(token_serial)) : NULL;
	char *path;

	if (!dir || !hex || asprintf(&path, "%s/%s.json", dir, hex) < 0)
		return NULL;
	if (ret_dir)
		*ret_dir = TAKE_PTR(dir);
	return path;
}

bool pin_memory_final_try(const char *token_serial)
{
	_cleanup_free_ char *path = memory_path(token_serial, NULL);
	struct stat st;

	/* Only a regular file of ours counts; anything else is not a note. */
	return path && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int pin_memory_note_final_try(const char *token_serial)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ char *path = memory_path(token_serial, &dir);
	json_auto_t *note = NULL;
	int r;

	if (!path)
		return -ENOMEM;
	r = state_directory_ensure(dir);
	if (r < 0)
		return r;
	note = json_pack("{s:s,s:b,s:I}", "token", token_serial, "final_try", 1, "noted",
			 (json_int_t)time(NULL));
	return note ? state_file_write(path, note) : -ENOMEM;
}

int pin_memory_forget(const char *token_serial)
{
	_cleanup_free_ char *path = memory_path(token_serial, NULL);
	struct stat st;

	if (!path)
		return -ENOMEM;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return state_file_remove(path);
}
