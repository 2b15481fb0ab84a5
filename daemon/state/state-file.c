/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/state-file.h"

#include <sys/file.h>

#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "state/config.h"
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

	/* State files are ours alone: a symbolic link there was not made
	 * by us, and is not followed. */
	r = read_small_file_flags(path, max, O_NOFOLLOW, &text);
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

int state_file_set_aside(const char *path, char **ret_new_path)
{
	_cleanup_free_ char *aside = NULL;
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
		return -EINVAL;
	if (asprintf(&aside, "%s.damaged-%s", path, stamp) < 0)
		return -ENOMEM;
	/* Never over an earlier one: that is evidence too. */
	for (unsigned i = 1; access(aside, F_OK) == 0 || errno != ENOENT; i++) {
		free(aside);
		aside = NULL;
		if (i > 99 || asprintf(&aside, "%s.damaged-%s-%u", path, stamp, i) < 0)
			return i > 99 ? -EEXIST : -ENOMEM;
	}
	if (rename(path, aside) < 0)
		return -errno;
	(void)fsync_directory_of(path);
	if (ret_new_path)
		*ret_new_path = TAKE_PTR(aside);
	return 0;
}

static bool text_ok(const char *s, bool pem)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (pem) {
			if (*p != '\n' && (*p < 0x20 || *p > 0x7e))
				return false;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f)
			return false;
		/* C1 controls, U+0080..U+009F: C2 80..C2 9F in UTF-8. */
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return false;
	}
	return true;
}

static bool field_ok(json_t *value, const StateField *field)
{
	const char *s = json_string_value(value);
	size_t len = s ? json_string_length(value) : 0;

	if (json_is_null(value))
		return field->nullable;
	switch (field->kind) {
	case STATE_TEXT:
	case STATE_PEM:
		return s && len <= field->max && strlen(s) == len &&
		       text_ok(s, field->kind == STATE_PEM);
	case STATE_ID:
		return s && len >= 1 && len <= 64 &&
		       strspn(s,
			      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
			   len;
	case STATE_HEX:
		return s && len <= field->max && len % 2 == 0 &&
		       strspn(s, "0123456789abcdefABCDEF") == len;
	case STATE_SERIAL:
		return s && len >= 1 && len <= field->max &&
		       strspn(s, "0123456789abcdefABCDEF") == len;
	case STATE_BOOL:
		return json_is_boolean(value);
	case STATE_INTEGER:
		return json_is_integer(value);
	case STATE_OBJECT:
		return json_is_object(value);
	case STATE_ARRAY:
		return json_is_array(value) && json_array_size(value) <= field->max;
	}
	return false;
}

int state_check(json_t *object, const StateField *fields, size_t n_fields, const char **ret_bad)
{
	if (!json_is_object(object)) {
		*ret_bad = "(the whole file)";
		return -EBADMSG;
	}
	for (size_t i = 0; i < n_fields; i++) {
		json_t *value = json_object_get(object, fields[i].name);
		if (value ? !field_ok(value, &fields[i]) : fields[i].required) {
			*ret_bad = fields[i].name;
			return -EBADMSG;
		}
	}
	return 0;
}

int state_file_load(const char *path, size_t max, state_check_t check, const char *what,
		    json_t **ret)
{
	_cleanup_free_ char *aside = NULL;
	json_t *value = NULL;
	const char *bad = NULL;
	int r, k;

	r = state_file_read(path, max, &value);
	if (r == -ENOENT || r == -ENOMEM)
		return r;
	if (r >= 0)
		r = check(value, path, &bad);
	if (r >= 0) {
		*ret = value;
		return 0;
	}
	json_decref(value);
	if (r == -ENOMEM)
		return r;
	/* The decision is made here, so it is said here. */
	k = state_file_set_aside(path, &aside);
	if (k < 0)
		log_warning("%s %s cannot be used (%s%s) nor set aside (%s), ignoring it.", what,
			    path, bad ? "bad member " : "", bad ? bad : file_error(r),
			    strerror(-k));
	else
		log_warning("%s %s cannot be used (%s%s); it is kept as %s.", what, path,
			    bad ? "bad member " : "", bad ? bad : file_error(r), aside);
	return -EBADMSG;
}

int state_lock(const char *name)
{
	_cleanup_free_ char *path = path_join(state_directory(), name);
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
