/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/config.h"

#include <ini.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "ini-check.h"
#include "log/log.h"
#include "macro.h"
#include "util.h"

#define DEFAULT_MODULE "p11-kit-proxy.so"
#define CONFIG_MAX_MODULES 32
#define CONFIG_MAX_WRITABLE_PATHS 32
#define CONFIG_MAX_FILE_SIZE (64 * 1024)

typedef struct Parser {
	Config *config;
	const char *path;
	bool modules_seen;
	char reason[256];
} Parser;

/* A comma-separated list (blank items skipped) after the items of before,
 * at most max in all; paths: each must be an absolute path. */
static int parse_list(const char *value, char *const *before, size_t max, bool paths, char ***ret)
{
	_cleanup_strv_free_ char **list = NULL;
	_cleanup_free_ char *copy = strdup(value);
	size_t n = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	list = calloc(max + 1, sizeof(char *));
	if (!list)
		return -ENOMEM;
	for (; before && *before; before++) {
		if (n >= max)
			return -E2BIG;
		list[n] = strdup(*before);
		if (!list[n++])
			return -ENOMEM;
	}
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		_cleanup_free_ char *item = strdup_strip(w);
		if (!item)
			return -ENOMEM;
		if (!*item)
			continue;
		if (paths && (item[0] != '/' || strlen(item) >= PATH_MAX))
			return -EINVAL;
		if (n >= max)
			return -E2BIG;
		list[n++] = TAKE_PTR(item);
	}
	*ret = TAKE_PTR(list);
	return 0;
}

/* "[pkcs11] modules": at least one; a repeated key adds to the list. */
static int parse_modules(const char *value, char *const *before, char ***ret)
{
	char **list = NULL;
	int r = parse_list(value, before, CONFIG_MAX_MODULES, false, &list);

	if (r < 0)
		return r;
	if (!list[0]) {
		strv_free(list);
		return -EINVAL;
	}
	*ret = list;
	return 0;
}

static int parse_warn_days(const char *value, Config *config)
{
	unsigned days[CONFIG_MAX_WARN_DAYS];
	_cleanup_free_ char *copy = strdup(value);
	size_t n = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		unsigned u;
		int r = parse_unsigned(w, 0, 3660, &u);
		if (r < 0)
			return r;
		if (n >= CONFIG_MAX_WARN_DAYS)
			return -E2BIG;
		days[n++] = u;
	}
	memcpy(config->warn_days, days, n * sizeof(unsigned));
	config->n_warn_days = n;
	return 0;
}

/* inih calls this for every key; returning 0 marks the line as bad. */
static int handler(void *userdata, const char *section, const char *key, const char *value)
{
	Parser *p = userdata;
	Config *c = p->config;
	int r = 0;

	if (streq(section, "pkcs11") && streq(key, "modules")) {
		char **modules = NULL;
		/* A long list continues on indented lines, which libinih
		 * hands over as more values of the same key. */
		r = parse_modules(value, p->modules_seen ? c->modules : NULL, &modules);
		if (r >= 0) {
			strv_free(c->modules);
			c->modules = modules;
			p->modules_seen = true;
		}
	} else if (streq(section, "expiry") && streq(key, "warn_days"))
		r = parse_warn_days(value, c);
	else if (streq(section, "pkcs11") && streq(key, "writable_paths")) {
		char **paths = NULL;

		/* Absolute folders; empty: the workers write only to the
		 * state folder. */
		r = parse_list(value, NULL, CONFIG_MAX_WRITABLE_PATHS, true, &paths);
		if (r >= 0) {
			strv_free(c->writable_paths);
			c->writable_paths = paths;
		}
	} else if (streq(section, "pkcs11") && streq(key, "call_timeout"))
		r = parse_unsigned(value, 1, 3600, &c->call_timeout_sec);
	else if (streq(section, "pkcs11") && streq(key, "keygen_timeout"))
		r = parse_unsigned(value, 1, 3600, &c->keygen_timeout_sec);
	else if (streq(section, "network") && streq(key, "connect_timeout"))
		r = parse_unsigned(value, 1, 600, &c->connect_timeout_sec);
	else if (streq(section, "network") && streq(key, "timeout"))
		r = parse_unsigned(value, 1, 3600, &c->timeout_sec);
	else if (streq(section, "activation") && streq(key, "confirm_timeout"))
		r = parse_unsigned(value, 5, 3600, &c->confirm_timeout_sec);
	else if (streq(section, "metrics") && streq(key, "textfile")) {
		/* Empty turns it off; else an absolute path ending in .prom,
		 * the only files the collector reads. */
		size_t len = strlen(value);
		free(c->metrics_textfile);
		c->metrics_textfile = NULL;
		if (len > 0 && (value[0] != '/' || len < 6 || len >= PATH_MAX ||
				!streq(value + len - 5, ".prom")))
			r = -EINVAL;
		else if (len > 0 && !(c->metrics_textfile = strdup(value)))
			r = -ENOMEM;
	} else {
		log_warning("%s: unknown setting [%s] %s, ignoring.", p->path, section, key);
		return 1;
	}
	if (r < 0) {
		if (!p->reason[0])
			snprintf(p->reason, sizeof(p->reason), "bad value for [%s] %s: \"%.64s\"",
				 section, key, value);
		return 0;
	}
	return 1;
}

static int config_set_defaults(Config *c)
{
	static const unsigned default_warn_days[] = {30, 14, 7, 3, 1};
	static const char *const default_writable[] = {"/tmp", "/var/tmp", "/dev/shm",
						       "/var/lib/softhsm", "/dev/bus/usb"};

	*c = (Config){
	    .connect_timeout_sec = 10,
	    .timeout_sec = 60,
	    .confirm_timeout_sec = 300,
	    .call_timeout_sec = 30,
	    .keygen_timeout_sec = 180,
	    .n_warn_days = ELEMENTSOF(default_warn_days),
	};
	memcpy(c->warn_days, default_warn_days, sizeof(default_warn_days));
	c->modules = calloc(2, sizeof(char *));
	if (!c->modules)
		return -ENOMEM;
	c->modules[0] = strdup(DEFAULT_MODULE);
	if (!c->modules[0])
		return -ENOMEM;
	c->writable_paths = calloc(ELEMENTSOF(default_writable) + 1, sizeof(char *));
	if (!c->writable_paths)
		return -ENOMEM;
	for (size_t i = 0; i < ELEMENTSOF(default_writable); i++)
		if (!(c->writable_paths[i] = strdup(default_writable[i])))
			return -ENOMEM;
	return 0;
}

static void config_clearp(Config *c)
{
	config_clear(c);
}

int config_load(const char *path, Config *ret, char **ret_message)
{
	_cleanup_(config_clearp) Config c = {};
	_cleanup_free_ char *text = NULL;
	Parser p = {.config = &c, .path = path};
	const char *reason = NULL;
	int r;

	r = config_set_defaults(&c);
	if (r < 0)
		return r;
	r = read_small_file(path, CONFIG_MAX_FILE_SIZE, &text);
	if (r == -ENOENT) {
		*ret = c;
		c = (Config){};
		return 0;
	}
	if (r < 0)
		return r;
	r = ini_check(text, &reason);
	if (r > 0) {
		if (ret_message && asprintf(ret_message, "%s:%d: %s", path, r, reason) < 0)
			*ret_message = NULL;
		return -EINVAL;
	}
	r = ini_parse_string(text, handler, &p);
	if (r != 0) {
		if (ret_message && asprintf(ret_message, "%s:%d: %s", path, r,
					    p.reason[0] ? p.reason : "syntax error") < 0)
			*ret_message = NULL;
		return r > 0 ? -EINVAL : -ENOMEM;
	}
	*ret = c;
	c = (Config){};
	return 0;
}

void config_clear(Config *config)
{
	if (!config)
		return;
	strv_free(config->modules);
	config->modules = NULL;
	strv_free(config->writable_paths);
	config->writable_paths = NULL;
	free(config->metrics_textfile);
	config->metrics_textfile = NULL;
}

/* systemd may hand several colon-separated folders; ours is the first.
 * Each caller brings its own buffer. */
static const char *env_or(const char *name, const char *fallback, char *buf, size_t size)
{
	const char *e = getenv(name);
	size_t len;

	if (!e || !*e)
		return fallback;
	len = strcspn(e, ":");
	if (len == 0 || len >= size)
		return fallback;
	memcpy(buf, e, len);
	buf[len] = 0;
	return buf;
}

const char *config_directory(void)
{
	static __thread char buf[PATH_MAX];
	return env_or("CONFIGURATION_DIRECTORY", SAFECAD_CONFDIR, buf, sizeof(buf));
}

const char *state_directory(void)
{
	static __thread char buf[PATH_MAX];
	return env_or("STATE_DIRECTORY", SAFECAD_STATEDIR, buf, sizeof(buf));
}

const char *data_directory(void)
{
	static __thread char buf[PATH_MAX];
	return env_or("SAFECAD_DATADIR", SAFECAD_DATADIR, buf, sizeof(buf));
}

int config_load_all(Config *config, Profiles *profiles)
{
	_cleanup_free_ char *path = path_join(config_directory(), "safecad.conf");
	_cleanup_free_ char *message = NULL;
	int r;

	if (!path)
		return log_oom();
	r = config_load(path, config, &message);
	if (r == -EINVAL)
		return log_error_errno(r, "Failed to parse %s", message ? message : path);
	if (r < 0)
		return log_error_errno(r, "Failed to read %s: %s", path, file_error(r));
	return profiles_load(data_directory(), config_directory(), profiles);
}
