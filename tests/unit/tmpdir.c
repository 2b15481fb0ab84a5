/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

char *tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = NULL;

	if (!base || !*base)
		base = "/tmp";
	assert_true(asprintf(&dir, "%s/safecad-unit-XXXXXX", base) > 0);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

void tmpdir_remove(char *dir)
{
	if (!dir)
		return;
	/* Depth first and without following links: only what the test made. */
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static void make_parents(const char *path)
{
	char *copy = strdup(path);

	assert_non_null(copy);
	for (char *p = strchr(copy + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		if (mkdir(copy, 0700) < 0)
			assert_true(errno == EEXIST);
		*p = '/';
	}
	free(copy);
}

char *tmpdir_write(const char *dir, const char *name, const void *data, size_t size)
{
	char *path = NULL;
	const char *p = data;
	int fd;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	make_parents(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (size > 0) {
		ssize_t n = write(fd, p, size);
		assert_true(n > 0);
		p += n;
		size -= (size_t)n;
	}
	assert_int_equal(close(fd), 0);
	return path;
}

char *tmpdir_write_string(const char *dir, const char *name, const char *text)
{
	return tmpdir_write(dir, name, text, strlen(text));
}
