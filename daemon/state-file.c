/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state-file.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "util.h"

static int fsync_directory_of(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_close_ int fd = -1;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

static int write_all(int fd, const char *data, size_t size)
{
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		size -= (size_t)n;
	}
	return 0;
}

int state_file_write(const char *path, json_t *value)
{
	_cleanup_free_ char *text = json_dumps(value, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	_cleanup_free_ char *temporary = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (!text || asprintf(&temporary, "%s.tmp", path) < 0)
		return -ENOMEM;
	fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, text, strlen(text));
	if (r >= 0)
		r = write_all(fd, "\n", 1);
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && rename(temporary, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(temporary);
		return r;
	}
	return fsync_directory_of(path);
}

int state_file_read(const char *path, size_t max, json_t **ret)
{
	_cleanup_free_ char *text = NULL;
	json_t *value;
	int r;

	r = read_small_file(path, max, &text);
	if (r < 0)
		return r;
	value = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(value)) {
		json_decref(value);
		return -EBADMSG;
	}
	*ret = value;
	return 0;
}

int state_file_remove(const char *path)
{
	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : -errno;
	return fsync_directory_of(path);
}

int state_directory_ensure(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}
