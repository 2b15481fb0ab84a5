/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state-folder.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char folder[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	/* the folder itself stays until exit */
	if (ftw->level > 0)
		(void)remove(path);
	return 0;
}

void state_folder_empty(void)
{
	if (folder[0])
		nftw(folder, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_folder(void)
{
	state_folder_empty();
	(void)rmdir(folder);
}

const char *state_folder_setup(void)
{
	struct stat st;

	if (folder[0])
		return folder;
	snprintf(folder, sizeof(folder), "%s/safecad-fuzz-state-XXXXXX",
		 stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
		     ? "/dev/shm"
		     : "/tmp");
	if (!mkdtemp(folder) || setenv("STATE_DIRECTORY", folder, 1) < 0)
		abort();
	atexit(remove_folder);
	return folder;
}

int state_folder_write(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n <= 0)
			abort();
		data += n;
		size -= (size_t)n;
	}
	close(fd);
	return 0;
}
