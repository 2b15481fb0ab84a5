/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/journal.h"

#include <dirent.h>
#include <string.h>

#include "state/config.h"
#include "hex.h"
#include "log/log.h"
#include "macro.h"
#include "state/state-file.h"
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

/* Every member a journal holds, as activation.c writes it. */
static const StateField journal_fields[] = {
    {"version", STATE_INTEGER, 0, true, false},
    {"token", STATE_TEXT, STATE_TOKEN_TEXT_MAX, true, false},
    {"action_id", STATE_ID, 0, true, false},
    {"action", STATE_OBJECT, 0, true, false},
    {"profile", STATE_TEXT, 255, true, false},
    {"old_serial", STATE_SERIAL, 128, true, false},
    {"old_key_id", STATE_HEX, 512, true, false},
    {"step", STATE_TEXT, 16, true, false},
    {"keep_previous", STATE_BOOL, 0, true, false},
    {"started", STATE_TEXT, 32, true, false},
    {"updated", STATE_TEXT, 32, false, false},
    {"module", STATE_TEXT, 4096, true, false},
    {"token_info", STATE_OBJECT, 0, true, false},
    {"new_key_id", STATE_HEX, 512, false, false},
    {"new_serial", STATE_SERIAL, 128, false, false},
    {"certificate", STATE_PEM, 64 * 1024, false, false},
    {"chain", STATE_ARRAY, 16, false, false},
    {"withdrawn", STATE_BOOL, 0, false, false},
    /* CMP: the certificate is written but the CA did not hear so. */
    {"unconfirmed", STATE_BOOL, 0, false, false},
    {"confirm_error", STATE_TEXT, 2048, false, false},
};

static const StateField token_info_fields[] = {
    {"label", STATE_TEXT, STATE_TOKEN_TEXT_MAX, false, false},
    {"manufacturer", STATE_TEXT, STATE_TOKEN_TEXT_MAX, false, false},
    {"model", STATE_TEXT, STATE_TOKEN_TEXT_MAX, false, false},
};

static const StateField chain_fields[] = {
    {"pem", STATE_PEM, 64 * 1024, true, false},
};

int journal_check(json_t *journal, const char *path, const char **ret_bad)
{
	_cleanup_free_ char *expected = NULL;
	const char *name;
	size_t i;
	json_t *member;
	int r;

	r = state_check(journal, journal_fields, ELEMENTSOF(journal_fields), ret_bad);
	if (r < 0)
		return r;
	r = state_check(json_object_get(journal, "token_info"), token_info_fields,
			ELEMENTSOF(token_info_fields), ret_bad);
	if (r < 0)
		return r;
	json_array_foreach(json_object_get(journal, "chain"), i, member)
	{
		json_auto_t *wrapped = json_pack("{s:O}", "pem", member);
		if (!wrapped || state_check(wrapped, chain_fields, 1, ret_bad) < 0) {
			*ret_bad = "chain";
			return -EBADMSG;
		}
	}
	name = json_string_value(json_object_get(journal, "step"));
	if (!streq(name, "none") && activation_step_from_name(name) == STEP_NONE) {
		*ret_bad = "step";
		return -EBADMSG;
	}
	if (!streq_ptr(json_string_value(json_object_get(json_object_get(journal, "action"), "id")),
		       json_string_value(json_object_get(journal, "action_id")))) {
		*ret_bad = "action";
		return -EBADMSG;
	}
	/* A journal is named after its token and action: one that says
	 * otherwise was not written by us. */
	expected = journal_path(json_string_value(json_object_get(journal, "token")),
				json_string_value(json_object_get(journal, "action_id")));
	if (!expected)
		return -ENOMEM;
	if (path && !streq(expected, path)) {
		*ret_bad = "token";
		return -EBADMSG;
	}
	return 0;
}

/* Reads and checks one journal file; one that cannot be used is set
 * aside with a warning. */
static int journal_read(const char *path, json_t **ret)
{
	return state_file_load(path, JOURNAL_MAX_SIZE, journal_check, "Activation journal", ret);
}

int journal_load(const char *token_serial, const char *action_id, json_t **ret)
{
	_cleanup_free_ char *path = journal_path(token_serial, action_id);

	if (!path)
		return -ENOMEM;
	return journal_read(path, ret);
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
		r = journal_read(path, &journal);
		if (r == -ENOMEM) {
			closedir(d);
			json_decref(all);
			return r;
		}
		if (r < 0)
			continue;
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
