/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "state/history.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "state/config.h"
#include "log/log.h"
#include "macro.h"
#include "state/state-file.h"
#include "time-util.h"
#include "util.h"

#define HISTORY_MAX_SIZE (4 * 1024 * 1024)
#define HISTORY_MAX_ENTRIES 1000
#define HISTORY_MAX_AGENCIES 64

/* Threads of one process take the mutex, processes (the daemon, its
 * workers) an flock on <state>/history.lock as well. */
static pthread_mutex_t history_lock = PTHREAD_MUTEX_INITIALIZER;
static int history_lock_fd = -1;
/* Under history_lock. */
static history_observer_t observer;
static void *observer_userdata;
/* The last load found the file damaged: set aside once is one change, not
 * one on every read while it cannot be moved. */
static bool damaged;

void history_set_observer(history_observer_t fn, void *userdata)
{
	pthread_mutex_lock(&history_lock);
	observer = fn;
	observer_userdata = userdata;
	pthread_mutex_unlock(&history_lock);
}

void history_tell_changed(void)
{
	history_observer_t fn;
	void *userdata;

	pthread_mutex_lock(&history_lock);
	fn = observer;
	userdata = observer_userdata;
	pthread_mutex_unlock(&history_lock);
	if (fn)
		fn(userdata);
}

static void lock_history(void)
{
	pthread_mutex_lock(&history_lock);
	history_lock_fd = state_lock("history.lock");
	if (history_lock_fd < 0)
		log_warning_errno(history_lock_fd, "Cannot lock the history: %m");
}

/* Under history_lock, when what history_read() returns has changed; the
 * observer is told once the lock is let go. */
static void unlock_and_tell(bool changed)
{
	history_observer_t fn = changed ? observer : NULL;
	void *userdata = observer_userdata;

	if (history_lock_fd >= 0)
		close(history_lock_fd);
	history_lock_fd = -1;
	pthread_mutex_unlock(&history_lock);
	if (fn)
		fn(userdata);
}

static char *history_path(void)
{
	return path_join(state_directory(), "history.json");
}

static const StateField entry_fields[] = {
    {"action", STATE_ID, 0, true, false},
    {"type", STATE_TEXT, 32, false, true},
    {"token", STATE_TEXT, STATE_TOKEN_TEXT_MAX, true, false},
    {"old_serial", STATE_SERIAL, 128, true, false},
    {"new_serial", STATE_SERIAL, 128, true, false},
    {"completed", STATE_TEXT, 32, false, true},
    {"agencies", STATE_ARRAY, HISTORY_MAX_AGENCIES, true, false},
    {"removed_certificate", STATE_PEM, 64 * 1024, false, false},
    {"previous_removed", STATE_BOOL, 0, false, false},
};

static const StateField agency_fields[] = {
    {"id", STATE_ID, 0, true, false},
    {"name", STATE_TEXT, 1024, true, false},
    {"url", STATE_TEXT, 2048, false, true}, /* null: the profile names none */
    {"done", STATE_BOOL, 0, true, false},
};

static int check(json_t *history, const char *path, const char **ret_bad)
{
	json_t *activations = json_object_get(history, "activations"), *entry, *agency;
	size_t i, k;

	if (!json_is_array(activations) || json_array_size(activations) > HISTORY_MAX_ENTRIES) {
		*ret_bad = "activations";
		return -EBADMSG;
	}
	json_array_foreach(activations, i, entry)
	{
		if (state_check(entry, entry_fields, ELEMENTSOF(entry_fields), ret_bad) < 0)
			return -EBADMSG;
		json_array_foreach(json_object_get(entry, "agencies"), k, agency)
		{
			if (state_check(agency, agency_fields, ELEMENTSOF(agency_fields), ret_bad) <
			    0)
				return -EBADMSG;
		}
	}
	return 0;
}

static int load(json_t **ret, bool *changed)
{
	_cleanup_free_ char *path = history_path();
	json_t *history = NULL;
	int r;

	if (!path)
		return -ENOMEM;
	r = state_file_load(path, HISTORY_MAX_SIZE, check, "The history", &history);
	/* A history that cannot be used is kept aside for the user (said
	 * there), and a new one begins. */
	if (r == -EBADMSG && !damaged)
		*changed = true;
	if (r != -ENOMEM)
		damaged = r == -EBADMSG;
	if (r == -ENOENT || r == -EBADMSG) {
		history = json_pack("{s:[]}", "activations");
		r = history ? 0 : -ENOMEM;
	}
	if (r < 0)
		return r;
	*ret = history;
	return 0;
}

static int save(json_t *history)
{
	_cleanup_free_ char *path = history_path();
	int r;

	if (!path)
		return -ENOMEM;
	r = state_directory_ensure(state_directory());
	if (r < 0)
		return r;
	return state_file_write(path, history);
}

static json_t *find(json_t *activations, const char *token, const char *action)
{
	size_t i;
	json_t *entry;

	json_array_foreach(activations, i, entry)
	{
		if ((!token ||
		     streq_ptr(json_string_value(json_object_get(entry, "token")), token)) &&
		    (!action ||
		     streq_ptr(json_string_value(json_object_get(entry, "action")), action)))
			return entry;
	}
	return NULL;
}

int history_add(json_t *entry)
{
	const char *token = json_string_value(json_object_get(entry, "token"));
	const char *action = json_string_value(json_object_get(entry, "action"));
	json_t *history = NULL, *activations;
	bool changed = false;
	int r;

	lock_history();
	r = load(&history, &changed);
	if (r >= 0) {
		activations = json_object_get(history, "activations");
		if (!find(activations, token, action)) {
			json_array_insert(activations, 0, entry);
			while (json_array_size(activations) > HISTORY_MAX_ENTRIES)
				json_array_remove(activations, json_array_size(activations) - 1);
			r = save(history);
			changed = changed || r >= 0;
		}
	}
	unlock_and_tell(changed);
	json_decref(history);
	return r;
}

int history_set_completed(const char *token, const char *action, int64_t t)
{
	json_t *history = NULL, *entry;
	char buf[32];
	bool changed = false;
	int r;

	lock_history();
	r = load(&history, &changed);
	if (r >= 0) {
		entry = find(json_object_get(history, "activations"), token, action);
		if (!entry)
			r = -ENOENT;
		else if (json_is_null(json_object_get(entry, "completed")) ||
			 !json_object_get(entry, "completed")) {
			json_object_set_new(entry, "completed",
					    json_string(format_rfc3339(buf, sizeof(buf), t)));
			r = save(history);
			changed = changed || r >= 0;
		}
	}
	unlock_and_tell(changed);
	json_decref(history);
	return r;
}

int history_set_member(const char *token, const char *action, const char *key, json_t *value)
{
	json_t *history = NULL, *entry;
	bool changed = false;
	int r;

	lock_history();
	r = load(&history, &changed);
	if (r >= 0) {
		entry = find(json_object_get(history, "activations"), token, action);
		if (!entry)
			r = -ENOENT;
		else {
			bool same = json_equal(json_object_get(entry, key), value);
			json_object_set(entry, key, value);
			r = save(history);
			changed = changed || (r >= 0 && !same);
		}
	}
	unlock_and_tell(changed);
	json_decref(history);
	return r;
}

static bool agency_listed(json_t *agencies, const char *id, json_t **ret)
{
	size_t i;
	json_t *agency;

	json_array_foreach(agencies, i, agency)
	{
		if (streq_ptr(json_string_value(json_object_get(agency, "id")), id)) {
			if (ret)
				*ret = agency;
			return true;
		}
	}
	return false;
}

/* Every id is checked before any is ticked, so a typo changes nothing. */
static int tick(json_t *history, const char *action, const char *const *ids, size_t n_ids,
		bool *changed)
{
	json_t *activations = json_object_get(history, "activations");
	json_t *entry = action ? find(activations, NULL, action) : json_array_get(activations, 0);
	json_t *agencies = json_object_get(entry, "agencies");
	bool ticked = false;
	int r;

	if (!entry)
		return -ENOENT;
	for (size_t k = 0; k < n_ids; k++)
		if (!agency_listed(agencies, ids[k], NULL))
			return -ESRCH;
	for (size_t k = 0; k < n_ids; k++) {
		json_t *agency = NULL;
		if (agency_listed(agencies, ids[k], &agency) &&
		    !json_is_true(json_object_get(agency, "done"))) {
			json_object_set_new(agency, "done", json_true());
			ticked = true;
		}
	}
	r = save(history);
	*changed = *changed || (r >= 0 && ticked);
	return r;
}

int history_tick_agencies(const char *action, const char *const *ids, size_t n_ids)
{
	json_t *history = NULL;
	bool changed = false;
	int r;

	lock_history();
	r = load(&history, &changed);
	if (r >= 0)
		r = tick(history, action, ids, n_ids, &changed);
	unlock_and_tell(changed);
	json_decref(history);
	return r;
}

int history_read(json_t **ret)
{
	bool changed = false;
	int r;

	lock_history();
	r = load(ret, &changed);
	unlock_and_tell(changed);
	return r;
}

json_t *history_latest(json_t *history, const char *token_serial)
{
	/* Newest first. */
	return find(json_object_get(history, "activations"), token_serial, NULL);
}
