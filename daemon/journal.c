/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "journal.h"

#include <dirent.h>
#include <string.h>

#include "config.h"
#include "hex.h"
#include "log.h"
#include "macro.h"
#include "state-file.h"
#include "util.h"

#define JOURNAL_MAX_SIZE (256 * 1024)
#define JOURNAL_MAX_FILES 256

static const char *const step_names[] = {
    [STEP_NONE] = "none",	    [STEP_ACCEPTED] = "accepted", [STEP_LOGGED_IN] = "logged-in",
    [STEP_KEY_READY] = "key-ready", [STEP_CSR_SENT] = "csr-sent", [STEP_ISSUED] = "issued",
    [STEP_VERIFIED] = "verified",   [STEP_WRITTEN] = "written",	  [STEP_CONFIRMED] = "confirmed",
};

const char *activation_step_name(ActivationStep step)
{
	return step < ELEMENTSOF(step_names) ? step_names[step] : "none";
}

ActivationStep activation_step_from_name(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(step_names); i++)
		if (streq(step_names[i], name))
			return (ActivationStep)i;
	return STEP_NONE;
}

static char *journal_directory(void)
{
	return path_join(state_directory(), "activations");
}

char *journal_path(const char *token_serial, const char *action_id)
{
	_cleanup_free_ char *dir = journal_directory();
	/* A token serial may hold any byte; hex keeps the name safe. The
	 * action id is [A-Za-z0-9_-] by contract. */
	_cleanup_free_ char *serial_hex = hex_encode(token_serial, strlen(token_serial));
	char *path;

	if (!dir || !serial_hex)
		return NULL;
	if (asprintf(&path, "%s/%s.%s.json", dir, serial_hex, action_id) < 0)
		return NULL;
	return path;
}

int journal_load(const char *token_serial, const char *action_id, json_t **ret)
{
	_cleanup_free_ char *path = journal_path(token_serial, action_id);

	if (!path)
		return -ENOMEM;
	return state_file_read(path, JOURNAL_MAX_SIZE, ret);
}

int journal_save(json_t *journal)
{
	const char *serial = json_string_value(json_object_get(journal, "token"));
	const char *action = json_string_value(json_object_get(journal, "action_id"));
	_cleanup_free_ char *dir = journal_directory();
	_cleanup_free_ char *path = NULL;
	int r;

	if (!serial || !action)
		return -EINVAL;
	path = journal_path(serial, action);
	if (!dir || !path)
		return -ENOMEM;
	r = state_directory_ensure(state_directory());
	if (r >= 0)
		r = state_directory_ensure(dir);
	if (r < 0)
		return r;
	return state_file_write(path, journal);
}

int journal_remove(json_t *journal)
{
	const char *serial = json_string_value(json_object_get(journal, "token"));
	const char *action = json_string_value(json_object_get(journal, "action_id"));
	_cleanup_free_ char *path = NULL;

	if (!serial || !action)
		return -EINVAL;
	path = journal_path(serial, action);
	if (!path)
		return -ENOMEM;
	return state_file_remove(path);
}

int journal_load_all(json_t **ret)
{
	_cleanup_free_ char *dir = journal_directory();
	json_t *all = json_array();
	struct dirent *de;
	DIR *d;
	size_t n = 0;

	if (!dir || !all) {
		json_decref(all);
		return -ENOMEM;
	}
	d = opendir(dir);
	if (!d) {
		*ret = all;
		return errno == ENOENT ? 0 : -errno;
	}
	while ((de = readdir(d)) && n < JOURNAL_MAX_FILES) {
		size_t len = strlen(de->d_name);
		_cleanup_free_ char *path = NULL;
		json_t *journal = NULL;
		int r;

		if (de->d_name[0] == '.' || len < 6 || !streq(de->d_name + len - 5, ".json"))
			continue;
		path = path_join(dir, de->d_name);
		if (!path)
			break;
		r = state_file_read(path, JOURNAL_MAX_SIZE, &journal);
		if (r < 0 || !json_is_string(json_object_get(journal, "token")) ||
		    !json_is_string(json_object_get(journal, "action_id"))) {
			log_warning("Activation journal %s cannot be read, ignoring it.", path);
			json_decref(journal);
			continue;
		}
		json_array_append_new(all, journal);
		n++;
	}
	closedir(d);
	*ret = all;
	return 0;
}

ActivationStep journal_step(json_t *journal)
{
	return activation_step_from_name(json_string_value(json_object_get(journal, "step")));
}
