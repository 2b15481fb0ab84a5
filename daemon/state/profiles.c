/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/profiles.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <ini.h>
#include <libgen.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>

#include "ini-check.h"
#include "log/log.h"
#include "macro.h"
#include "util.h"

#define PROFILE_MAX_FILE_SIZE (64 * 1024)
#define PROFILE_MAX_FILES 256
#define PROFILE_MAX_AGENCIES 64
#define PROFILE_MAX_VALUE INI_LINE_MAX

DEFINE_TRIVIAL_CLEANUP_FUNC(Profile *, profile_free)

typedef struct Parser {
	Profile *profile;
	char *directory;
	char *issuers_path;
	char reason[256];
} Parser;

static void parser_clear(Parser *p)
{
	free(p->issuers_path);
	free(p->directory);
}

/* inih reports the first bad line: keep the reason of that one. */
static void set_reason(Parser *p, const char *format, ...) _printf_(2, 3);
static void set_reason(Parser *p, const char *format, ...)
{
	va_list ap;

	if (p->reason[0])
		return;
	va_start(ap, format);
	vsnprintf(p->reason, sizeof(p->reason), format, ap);
	va_end(ap);
}

static int set_string(char **field, const char *value)
{
	char *copy;

	if (strlen(value) > PROFILE_MAX_VALUE)
		return -E2BIG;
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static bool agency_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > 64)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

static Agency *agency_get(Profile *profile, const char *id)
{
	Agency *a;

	for (size_t i = 0; i < profile->n_agencies; i++)
		if (streq(profile->agencies[i].id, id))
			return &profile->agencies[i];
	if (profile->n_agencies >= PROFILE_MAX_AGENCIES)
		return NULL;
	a = realloc(profile->agencies, (profile->n_agencies + 1) * sizeof(Agency));
	if (!a)
		return NULL;
	profile->agencies = a;
	a = &profile->agencies[profile->n_agencies];
	*a = (Agency){.id = strdup(id)};
	if (!a->id)
		return NULL;
	profile->n_agencies++;
	return a;
}

static int handler(void *userdata, const char *section, const char *key, const char *value)
{
	Parser *p = userdata;
	Profile *pr = p->profile;
	int r;

	if (streq(section, "ca")) {
		if (streq(key, "name"))
			r = set_string(&pr->name, value);
		else if (streq(key, "protocol"))
			r = set_string(&pr->protocol, value);
		else if (streq(key, "url"))
			r = set_string(&pr->url, value);
		else if (streq(key, "issuers"))
			r = set_string(&p->issuers_path, value);
		else if (streq(key, "trust")) {
			_cleanup_free_ char *full = path_join(p->directory, value);
			r = full ? set_string(&pr->trust, full) : -ENOMEM;
		} else if (streq(key, "support"))
			r = set_string(&pr->support, value);
		else if (streq(key, "server_cert")) {
			_cleanup_free_ char *full = path_join(p->directory, value);
			r = full ? set_string(&pr->server_cert_path, full) : -ENOMEM;
		} else if (streq(key, "renew_days"))
			r = parse_unsigned(value, 1, 3650, &pr->renew_days);
		else if (streq(key, "key")) {
			r = streq(value, "new") || streq(value, "same") ? 0 : -EINVAL;
			pr->same_key = streq(value, "same");
		} else if (streq(key, "implicit_confirm"))
			r = parse_boolean(value, &pr->implicit_confirm);
		else {
			log_warning("%s: unknown setting [ca] %s, ignoring.", pr->path, key);
			return 1;
		}
	} else if (strncmp(section, "agency.", 7) == 0) {
		Agency *a;
		if (!agency_id_valid(section + 7)) {
			set_reason(p, "bad agency id in [%.64s]", section);
			return 0;
		}
		a = agency_get(pr, section + 7);
		if (!a) {
			set_reason(p, "too many agencies");
			return 0;
		}
		if (streq(key, "name"))
			r = set_string(&a->name, value);
		else if (streq(key, "url"))
			r = set_string(&a->url, value);
		else {
			log_warning("%s: unknown setting [%s] %s, ignoring.", pr->path, section,
				    key);
			return 1;
		}
	} else {
		log_warning("%s: unknown section [%s], ignoring.", pr->path, section);
		return 1;
	}
	if (r < 0) {
		set_reason(p, "bad value for [%.64s] %s", section, key);
		return 0;
	}
	return 1;
}

int profile_parse_file(const char *path, Profile **ret, char **ret_message)
{
	_cleanup_(profile_freep) Profile *profile = NULL;
	_cleanup_free_ char *text = NULL, *dir_copy = NULL;
	_cleanup_(parser_clear) Parser p = {};
	const char *reason = NULL;
	struct stat st;
	int r;

#define FAIL(r, ...)                                                                               \
	({                                                                                         \
		if (ret_message && asprintf(ret_message, __VA_ARGS__) < 0)                         \
			*ret_message = NULL;                                                       \
		(r);                                                                               \
	})

	profile = calloc(1, sizeof(Profile));
	if (!profile)
		return -ENOMEM;
	profile->path = strdup(path);
	dir_copy = strdup(path);
	if (!profile->path || !dir_copy)
		return -ENOMEM;
	profile->file_name = strdup(basename(profile->path));
	if (!profile->file_name)
		return -ENOMEM;

	r = read_small_file(path, PROFILE_MAX_FILE_SIZE, &text);
	if (r < 0)
		return FAIL(r, "%s: cannot read: %s", path, file_error(r));

	p.profile = profile;
	/* Relative paths in a profile are relative to its folder, made
	 * absolute here: the daemon's working folder is no reference. */
	p.directory = realpath(dirname(dir_copy), NULL);
	if (!p.directory)
		return FAIL(-errno, "%s: cannot resolve its folder: %s", path, strerror(errno));
	r = ini_check(text, &reason);
	if (r > 0)
		return FAIL(-EINVAL, "%s:%d: %s", path, r, reason);
	r = ini_parse_string(text, handler, &p);
	if (r != 0)
		return FAIL(-EINVAL, "%s:%d: %s", path, r, p.reason[0] ? p.reason : "syntax error");
	if (!profile->name)
		return FAIL(-EINVAL, "%s: [ca] name is missing", path);
	if (!profile->protocol && !(profile->protocol = strdup("v1")))
		return -ENOMEM;
	if (streq(profile->protocol, "cmp"))
		profile->kind = PROFILE_CMP;
	else if (!streq(profile->protocol, "v1"))
		return FAIL(-EOPNOTSUPP, "%s: unknown protocol \"%s\"", path, profile->protocol);
	if (profile->kind != PROFILE_CMP && (profile->server_cert_path || profile->renew_days ||
					     profile->same_key || profile->implicit_confirm))
		log_warning("%s: server_cert, renew_days, key and implicit_confirm are for "
			    "protocol = cmp only, ignoring.",
			    path);
	if (!profile->renew_days)
		profile->renew_days = PROFILE_DEFAULT_RENEW_DAYS;
	if (!p.issuers_path)
		return FAIL(-EINVAL, "%s: [ca] issuers is missing", path);

	profile->issuers_path = path_join(p.directory, p.issuers_path);
	if (!profile->issuers_path)
		return -ENOMEM;
	/* The CA client opens it for every request, on a job's thread: a
	 * FIFO there would hold the token for good. (A missing file is the
	 * request's error, said then.) */
	if (profile->server_cert_path && stat(profile->server_cert_path, &st) == 0 &&
	    !S_ISREG(st.st_mode))
		return FAIL(-ENOTREGULAR, "%s: cannot use server_cert %s: %s", path,
			    profile->server_cert_path,
			    file_error(S_ISDIR(st.st_mode) ? -EISDIR : -ENOTREGULAR));
	if (profile->trust && stat(profile->trust, &st) == 0 && !S_ISREG(st.st_mode))
		return FAIL(-ENOTREGULAR, "%s: cannot use trust %s: %s", path, profile->trust,
			    file_error(S_ISDIR(st.st_mode) ? -EISDIR : -ENOTREGULAR));
	for (size_t i = 0; i < profile->n_agencies; i++)
		if (!profile->agencies[i].name)
			return FAIL(-EINVAL, "%s: [agency.%s] has no name", path,
				    profile->agencies[i].id);
#undef FAIL
	*ret = TAKE_PTR(profile);
	return 0;
}

void profile_free(Profile *profile)
{
	if (!profile)
		return;
	free(profile->file_name);
	free(profile->path);
	free(profile->name);
	free(profile->protocol);
	free(profile->url);
	free(profile->trust);
	free(profile->support);
	free(profile->issuers_path);
	free(profile->server_cert_path);
	if (profile->issuers && profile->issuers_free)
		profile->issuers_free(profile->issuers);
	if (profile->server_cert && profile->issuers_free)
		profile->issuers_free(profile->server_cert);
	for (size_t i = 0; i < profile->n_agencies; i++) {
		free(profile->agencies[i].id);
		free(profile->agencies[i].name);
		free(profile->agencies[i].url);
	}
	free(profile->agencies);
	free(profile);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf names in dir, sorted, so profiles load in a stable order. */
static int list_conf_files(const char *dir, char ***ret, size_t *ret_n)
{
	_cleanup_strv_free_ char **names = NULL;
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;

	if (!d)
		return -errno;
	names = calloc(PROFILE_MAX_FILES + 1, sizeof(char *));
	if (!names) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || !streq(de->d_name + len - 5, ".conf"))
			continue;
		if (n >= PROFILE_MAX_FILES)
			break;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			closedir(d);
			return -ENOMEM;
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(char *), compare_strings);
	*ret = TAKE_PTR(names);
	*ret_n = n;
	return 0;
}

static int profiles_add(Profiles *profiles, Profile *profile)
{
	Profile **items;

	/* A later folder overrides a same-named file of an earlier one. */
	for (size_t i = 0; i < profiles->n_items; i++)
		if (streq(profiles->items[i]->file_name, profile->file_name)) {
			profile_free(profiles->items[i]);
			profiles->items[i] = profile;
			return 0;
		}
	items = realloc(profiles->items, (profiles->n_items + 1) * sizeof(Profile *));
	if (!items)
		return -ENOMEM;
	profiles->items = items;
	profiles->items[profiles->n_items++] = profile;
	return 0;
}

static void profiles_clearp(Profiles *p)
{
	profiles_clear(p);
}

static void profiles_remove(Profiles *profiles, const char *file_name)
{
	for (size_t i = 0; i < profiles->n_items; i++)
		if (streq(profiles->items[i]->file_name, file_name)) {
			profile_free(profiles->items[i]);
			memmove(profiles->items + i, profiles->items + i + 1,
				(profiles->n_items - i - 1) * sizeof(Profile *));
			profiles->n_items--;
			return;
		}
}

static int profiles_load_dir(Profiles *profiles, const char *dir)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0;
	int r;

	r = list_conf_files(dir, &names, &n);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return log_warning_errno(r, "Cannot read %s: %m, ignoring.", dir);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = path_join(dir, names[i]), *message = NULL;
		Profile *profile = NULL;

		if (!path)
			return log_oom();
		r = profile_parse_file(path, &profile, &message);
		if (r == -ENOMEM)
			return log_oom();
		if (r < 0) {
			log_warning("Skipping CA profile %s", message ? message : path);
			/* A broken override still replaces the shipped file
			 * of its name: the admin meant that one to go. */
			profiles_remove(profiles, names[i]);
			continue;
		}
		r = profiles_add(profiles, profile);
		if (r < 0) {
			profile_free(profile);
			return log_oom();
		}
	}
	return 0;
}

int profiles_load(const char *data_dir, const char *config_dir, Profiles *ret)
{
	_cleanup_(profiles_clearp) Profiles profiles = {};
	_cleanup_free_ char *shipped = path_join(data_dir, "ca.d");
	_cleanup_free_ char *local = path_join(config_dir, "ca.d");
	int r;

	if (!shipped || !local)
		return log_oom();
	r = profiles_load_dir(&profiles, shipped);
	if (r < 0)
		return r;
	r = profiles_load_dir(&profiles, local);
	if (r < 0)
		return r;
	*ret = profiles;
	profiles = (Profiles){};
	return 0;
}

void profiles_clear(Profiles *profiles)
{
	if (!profiles)
		return;
	for (size_t i = 0; i < profiles->n_items; i++)
		profile_free(profiles->items[i]);
	free(profiles->items);
	profiles->items = NULL;
	profiles->n_items = 0;
}

const Profile *profiles_find(const Profiles *profiles, const char *file_name)
{
	for (size_t i = 0; file_name && i < profiles->n_items; i++)
		if (streq(profiles->items[i]->file_name, file_name))
			return profiles->items[i];
	return NULL;
}
