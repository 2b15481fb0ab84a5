/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/removal-journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
	_cleanup_free_ char *path = path_join(state_directory(), "removals.lock");
	int fd, r;

	if (!path)
		return -ENOMEM;
	r = state_directory_ensure(state_directory());
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			r = -errno;
			close(fd);
			return r;
		}
	return fd;
}

void removal_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
