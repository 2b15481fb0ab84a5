/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "util.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "macro.h"

int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	unsigned long v;
	char *end = NULL;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == ERANGE || v > UINT_MAX)
		return -ERANGE;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

int parse_boolean(const char *s, bool *ret)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	char word[8];
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strcspn(s, " \t");
	if (n >= sizeof(word) || s[n + strspn(s + n, " \t")] != '\0')
		return -EINVAL;
	memcpy(word, s, n);
	word[n] = '\0';
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(word, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(word, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

char *strdup_strip(const char *s)
{
	size_t len;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return strndup(s, len);
}

int read_small_file_flags(const char *path, size_t max, int flags, char **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	struct stat st;

	/* O_NONBLOCK: opening a FIFO waits for a writer otherwise; nothing
	 * but a regular file is read, so a FIFO, a device or a socket where
	 * a file should be is refused at once instead of hanging us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
	if (fd < 0)
		return errno == ELOOP && (flags & O_NOFOLLOW) ? -ENOTREGULAR : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -ENOTREGULAR;
	if (st.st_size > 0 && (size_t)st.st_size > max)
		return -EFBIG;
	buf = malloc(max + 2);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + size, max + 1 - size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		size += (size_t)n;
		if (size > max)
			return -EFBIG;
	}
	if (memchr(buf, 0, size))
		return -EBADMSG;
	buf[size] = 0;
	*ret = TAKE_PTR(buf);
	return 0;
}

int read_small_file(const char *path, size_t max, char **ret)
{
	return read_small_file_flags(path, max, 0, ret);
}

const char *file_error(int r)
{
	const char *description;

	if (r == -ENOTREGULAR)
		return "not a regular file";
	/* Untranslated: the result goes into log lines, which stay English,
	 * and it is evaluated before the logger switches to the C locale
	 * (strerror() followed LC_MESSAGES here: "Là một thư mục"). */
	description = strerrordesc_np(-r);
	return description ? description : "unknown error";
}

char *path_join(const char *a, const char *b)
{
	char *r;

	if (b[0] == '/' || isempty(a))
		return strdup(b);
	if (asprintf(&r, "%s%s%s", a, a[strlen(a) - 1] == '/' ? "" : "/", b) < 0)
		return NULL;
	return r;
}
