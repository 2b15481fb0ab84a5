/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <openssl/x509.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base64.h"
#include "i18n.h"
#include "macro.h"
#include "notify.h"
#include "util.h"
#include "x509-util.h"

extern char **environ;

/* XDG_DOCUMENTS_DIR from user-dirs.dirs: a quoted path, "$HOME/..." or
 * absolute (xdg-user-dirs writes nothing else). */
static char *user_dirs_documents(const char *home)
{
	const char *config = getenv("XDG_CONFIG_HOME");
	_cleanup_free_ char *path = NULL, *text = NULL;
	char *line, *save = NULL;

	if (isempty(config) || config[0] != '/') {
		if (asprintf(&path, "%s/.config/user-dirs.dirs", home) < 0)
			return NULL;
	} else if (asprintf(&path, "%s/user-dirs.dirs", config) < 0)
		return NULL;
	if (read_small_file(path, 64 * 1024, &text) < 0)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *value;
		size_t size;
		char *out;

		line += strspn(line, " \t");
		if (strncmp(line, "XDG_DOCUMENTS_DIR=\"", 19) != 0)
			continue;
		value = line + 19;
		size = strcspn(value, "\"");
		if (value[size] != '"')
			return NULL;
		if (strncmp(value, "$HOME", 5) == 0 && (size == 5 || value[5] == '/')) {
			if (asprintf(&out, "%s%.*s", home, (int)(size - 5), value + 5) < 0)
				return NULL;
		} else if (value[0] == '/') {
			out = strndup(value, size);
		} else {
			return NULL;
		}
		return out;
	}
	return NULL;
}

int documents_dir(char **ret)
{
	const char *home = getenv("HOME");
	_cleanup_free_ char *dir = NULL;
	struct stat st;

	if (isempty(home) || home[0] != '/')
		return -ENOENT;
	dir = user_dirs_documents(home);
	if (!dir && asprintf(&dir, "%s/Documents", home) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	*ret = TAKE_PTR(dir);
	return 0;
}

/* Writes data to path through a temporary file, so a reader never sees
 * half a certificate. */
static int write_file(const char *path, const void *data, size_t size)
{
	_cleanup_free_ char *tmp = NULL;
	int fd, r = 0;

	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, data, size) != (ssize_t)size || fchmod(fd, 0644) < 0 || fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

static char *pem_from_der(const void *der, size_t size)
{
	_cleanup_free_ char *b64 = base64_encode(der, size);
	size_t length;
	char *pem, *p;

	if (!b64)
		return NULL;
	length = strlen(b64);
	pem = malloc(length + length / 64 + 64);
	if (!pem)
		return NULL;
	p = stpcpy(pem, "-----BEGIN CERTIFICATE-----\n");
	for (size_t i = 0; i < length; i += 64) {
		size_t n = length - i < 64 ? length - i : 64;
		memcpy(p, b64 + i, n);
		p += n;
		*p++ = '\n';
	}
	stpcpy(p, "-----END CERTIFICATE-----\n");
	return pem;
}

static bool serial_is_safe(const char *serial)
{
	/* protocol-v1 serials are lowercase hex; anything else must not
	 * reach a file name. */
	return !isempty(serial) && strlen(serial) <= 64 &&
	       strspn(serial, "0123456789abcdef") == strlen(serial);
}

/* The serial of a DER certificate in protocol-v1 form: the files are
 * named after what they hold. */
static int der_serial(const void *der, size_t size, char **ret)
{
	const unsigned char *p = der;
	X509 *x509 = d2i_X509(NULL, &p, (long)size);
	int r;

	if (!x509 || p != (const unsigned char *)der + size) {
		X509_free(x509);
		return -EBADMSG;
	}
	r = serial_to_hex(X509_get0_serialNumber(x509), ret);
	X509_free(x509);
	return r;
}

int save_certificate(const char *dir, const void *der, size_t size, char **ret_pem, char **ret_der)
{
	_cleanup_free_ char *pem_path = NULL, *der_path = NULL, *pem = NULL, *serial = NULL;
	int r;

	r = der_serial(der, size, &serial);
	if (r < 0)
		return r;
	if (!serial_is_safe(serial))
		return -EINVAL;
	if (asprintf(&pem_path, "%s/certificate-%s.pem", dir, serial) < 0 ||
	    asprintf(&der_path, "%s/certificate-%s.der", dir, serial) < 0)
		return -ENOMEM;
	pem = pem_from_der(der, size);
	if (!pem)
		return -ENOMEM;
	r = write_file(pem_path, pem, strlen(pem));
	if (r >= 0)
		r = write_file(der_path, der, size);
	if (r < 0)
		return r;
	*ret_pem = TAKE_PTR(pem_path);
	*ret_der = TAKE_PTR(der_path);
	return 0;
}

static void html_escaped(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

static bool url_is_web(const char *url)
{
	return url && (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0);
}

static int write_checklist(json_t *entry, const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t size = 0, i;
	json_t *agency;
	FILE *f = open_memstream(&text, &size);
	int r;

	if (!f)
		return -ENOMEM;
	fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", f);
	html_escaped(f, _("Step 3: register the new certificate"));
	fputs("</title></head><body>\n<h1>", f);
	html_escaped(f, _("Step 3: register the new certificate"));
	fputs("</h1>\n<p>", f);
	{
		_cleanup_free_ char *line = NULL;
		if (asprintf(&line, _("Token %s now has certificate %s. Register it with:"),
			     json_string_value(json_object_get(entry, "token")),
			     json_string_value(json_object_get(entry, "new_serial"))) >= 0)
			html_escaped(f, line);
	}
	fputs("</p>\n<ul>\n", f);
	json_array_foreach(json_object_get(entry, "agencies"), i, agency)
	{
		const char *url = json_string_value(json_object_get(agency, "url"));
		bool done = json_is_true(json_object_get(agency, "done"));

		fputs(done ? "<li>☑ " : "<li>☐ ", f);
		if (url_is_web(url)) {
			fputs("<a href=\"", f);
			html_escaped(f, url);
			fputs("\">", f);
		}
		html_escaped(f, json_string_value(json_object_get(agency, "name")));
		if (url_is_web(url))
			fputs("</a>", f);
		fputs(" <code>safectl agencies done ", f);
		html_escaped(f, json_string_value(json_object_get(agency, "id")));
		fputs("</code></li>\n", f);
	}
	fputs("</ul>\n<p>", f);
	html_escaped(f, _("Tick each one when it is done: safectl agencies done ID"));
	fputs("</p>\n</body></html>\n", f);
	if (fclose(f) != 0)
		return -ENOMEM;
	r = write_file(path, text, size);
	return r;
}

/* Starts xdg-open without waiting for it (a browser it starts may run for
 * hours): an intermediate child starts it and exits at once. */
static int open_file(const char *path)
{
	pid_t child = fork();
	int status;

	if (child < 0)
		return -errno;
	if (child == 0) {
		pid_t pid;
		char *argv[] = {(char *)"xdg-open", (char *)path, NULL};
		_exit(posix_spawnp(&pid, "xdg-open", NULL, NULL, argv, environ) == 0 ? 0 : 127);
	}
	if (waitpid(child, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ENOENT;
}

int open_checklist(json_t *entry, char **ret)
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	const char *action = json_string_value(json_object_get(entry, "action"));
	_cleanup_free_ char *dir = NULL, *path = NULL;
	int r;

	/* Action ids are [A-Za-z0-9_-]{1,64} (protocol-v1). */
	if (isempty(action) || strlen(action) > 64 ||
	    strspn(action, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
		strlen(action))
		return -EINVAL;
	if (isempty(runtime) || runtime[0] != '/')
		return -ENOENT;
	if (asprintf(&dir, "%s/safecad", runtime) < 0 ||
	    asprintf(&path, "%s/checklist-%s.html", dir, action) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	r = write_checklist(entry, path);
	if (r < 0)
		return r;
	r = open_file(path);
	*ret = TAKE_PTR(path);
	return r;
}
