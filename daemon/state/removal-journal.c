/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/removal-journal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"
#include "macro.h"
#include "state/config.h"
#include "state/state-file.h"
#include "util.h"

char *removals_directory(void)
{
	return path_join(state_directory(), "removals");
}

char *removal_path(const char *token_serial)
{
	_cleanup_free_ char *dir = removals_directory();
	_cleanup_free_ char *hex = hex_encode(token_serial, strlen(token_serial));
	char *path;

	if (!dir || !hex || asprintf(&path, "%s/%s.json", dir, hex) < 0)
		return NULL;
	return path;
}

bool removal_pending(const char *token_serial)
{
	_cleanup_free_ char *path = removal_path(token_serial);
	struct stat st;

	return path && lstat(path, &st) == 0;
}

int removal_lock(void)
{
	return state_lock("removals.lock");
}

void removal_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
