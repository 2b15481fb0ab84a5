/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* $STATE_DIRECTORY/history.json → history_read() and what reads it: the
 * GetHistory text, RemovePrevious's look for a token's latest activation,
 * the agent's "every agency ticked"; then the calls that read it to change
 * it (tick, completed, a member, a new entry). Whatever was on disk, what
 * the daemon writes it must read back. */
#include <string.h>

#include "fuzz.h"
#include "history-json.h"
#include "state/history.h"
#include "log/log.h"
#include "macro.h"
#include "state-folder.h"
#include "util.h"

static char *history_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* An unusable history is set aside with a warning: noise at this rate. */
	log_set_max_level(LOG_CRIT);
	history_file = path_join(state_folder_setup(), "history.json");
	if (!history_file)
		abort();
	return 0;
}

static json_t *find(json_t *history, const char *token, const char *action)
{
	size_t i;
	json_t *entry;

	json_array_foreach(json_object_get(history, "activations"), i, entry)
	{
		if (streq_ptr(json_string_value(json_object_get(entry, "token")), token) &&
		    (!action ||
		     streq_ptr(json_string_value(json_object_get(entry, "action")), action)))
			return entry;
	}
	return NULL;
}

/* history_read() answers, and what its callers read of the answer. */
static json_t *read_history(void)
{
	json_t *history = NULL, *again, *entry;
	_cleanup_free_ char *text = NULL;
	size_t i;
	int r;

	r = history_read(&history);
	if (r < 0) {
		fuzz_check(!history);
		return NULL;
	}
	fuzz_check(json_is_object(history));
	fuzz_check(json_is_array(json_object_get(history, "activations")));
	fuzz_check(json_array_size(json_object_get(history, "activations")) <= 1000);

	/* GetHistory's text, which safectl and the agent parse */
	text = json_dumps(history, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fuzz_check(text);
	again = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	fuzz_check(again && json_equal(again, history));
	json_decref(again);

	json_array_foreach(json_object_get(history, "activations"), i, entry)
	{
		(void)history_agencies_done(entry);
		(void)json_string_value(json_object_get(entry, "old_serial"));
	}
	return history;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"tax", "customs"};
	json_t *history, *first, *entry, *after;
	_cleanup_free_ char *token = NULL, *action = NULL;
	int r;

	/* past the 4 MiB limit, but not much */
	if (size > 4 * 1024 * 1024 + 64 * 1024)
		return 0;
	state_folder_empty();
	if (state_folder_write(history_file, data, size) < 0)
		abort();

	history = read_history();
	first = json_array_get(json_object_get(history, "activations"), 0);
	if (json_is_string(json_object_get(first, "token")))
		token = strdup(json_string_value(json_object_get(first, "token")));
	if (json_is_string(json_object_get(first, "action")))
		action = strdup(json_string_value(json_object_get(first, "action")));
	json_decref(history);

	/* The writers read it first; each works on what is there now. */
	(void)history_tick_agencies(NULL, ids, ELEMENTSOF(ids));
	if (token && action) {
		json_t *yes = json_true();

		(void)history_tick_agencies(action, ids, 1);
		(void)history_set_completed(token, action, 1796083200);
		(void)history_set_member(token, action, "previous_removed", yes);
		json_decref(yes);
	}

	/* A new entry, as activation.c records one, is there to read. */
	entry = json_pack("{s:s,s:s,s:s,s:s,s:s,s:n,s:[{s:s,s:s,s:s,s:b}]}", "action", "r-fuzz",
			  "type", "renew", "token", "fuzz-token", "old_serial", "5401a3",
			  "new_serial", "5404ce", "completed", "agencies", "id", "tax", "name",
			  "Thuế điện tử", "url", "https://thuedientu.gdt.gov.vn", "done", 0);
	if (!entry)
		abort();
	r = history_add(entry);
	json_decref(entry);
	fuzz_check(r == 0 || r == -ENOMEM);
	after = read_history();
	fuzz_check(after || r < 0);
	fuzz_check(r < 0 || find(after, "fuzz-token", "r-fuzz"));
	json_decref(after);
	return 0;
}
