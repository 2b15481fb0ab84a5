/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An activation journal (the bytes of one file in
 * $STATE_DIRECTORY/activations) → the daemon's reading of it:
 * journal_load_all() as at start and after each check, journal_load() as an
 * activation resumes, and the members the daemon reads from what they
 * return. What is loaded must keep journal.h's contract, and a journal the
 * daemon saves again must load again, the same.
 *
 * The file is named as journal_save() names it, after the token and the
 * action it holds (when the action is a valid id), so that journal_load()
 * finds it; the same bytes go under a name of another token too. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>
#include <sys/stat.h>

#include "ca/ca-client.h"
#include "ca/ca-v1-pending.h"
#include "fuzz.h"
#include "hex.h"
#include "state/journal.h"
#include "log/log.h"
#include "macro.h"
#include "state-folder.h"
#include "util.h"

static char *activations;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Unusable journals are set aside with a warning: noise at this rate. */
	log_set_max_level(LOG_CRIT);
	activations = path_join(state_folder_setup(), "activations");
	if (!activations)
		abort();
	return 0;
}

static void check_pem(json_t *pem)
{
	BIO *bio = json_is_string(pem) ? BIO_new_mem_buf(json_string_value(pem), -1) : NULL;
	X509 *x509 = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	X509_free(x509);
	BIO_free(bio);
	ERR_clear_error();
}

/* What the daemon reads from a loaded journal: main.c and bus-*.c (token,
 * action_id, step, withdrawn), activation.c on resume (old_serial, the key
 * ids as at most 256 bytes, the action, the certificate and its chain). */
static void check_loaded(json_t *journal)
{
	json_t *action = json_object_get(journal, "action");
	const char *bad = NULL, *key_id;
	unsigned char id[256];
	size_t id_size, i;
	int64_t not_before, not_after;
	ActivationStep step;
	json_t *pem;
	char *message;

	fuzz_check(json_is_object(journal));
	fuzz_check(json_is_string(json_object_get(journal, "token")));
	fuzz_check(json_is_string(json_object_get(journal, "action_id")));
	fuzz_check(journal_check(journal, NULL, &bad) == 0);

	step = journal_step(journal);
	fuzz_check(step <= STEP_CONFIRMED);
	fuzz_check(activation_step_from_name(activation_step_name(step)) == step);
	(void)json_is_true(json_object_get(journal, "withdrawn"));
	(void)json_string_value(json_object_get(journal, "old_serial"));
	key_id = json_string_value(json_object_get(journal, "new_key_id"));
	if (key_id)
		(void)hex_decode(key_id, id, sizeof(id), &id_size);
	key_id = json_string_value(json_object_get(journal, "old_key_id"));
	if (key_id)
		(void)hex_decode(key_id, id, sizeof(id), &id_size);

	(void)ca_action_supported(action, NULL);
	(void)ca_action_validity(action, &not_before, &not_after);
	message = ca_action_message_for_display(action);
	free(message);
	(void)ca_v1_action_id_valid(json_string_value(json_object_get(action, "id")));

	check_pem(json_object_get(journal, "certificate"));
	json_array_foreach(json_object_get(journal, "chain"), i, pem)
	{
		check_pem(pem);
	}
}

/* Saved again, as each step does, it loads again, the same; removed, it
 * is gone. */
static void check_round_trip(json_t *journal)
{
	const char *token = json_string_value(json_object_get(journal, "token"));
	const char *action_id = json_string_value(json_object_get(journal, "action_id"));
	json_t *again = NULL;
	int r;

	r = journal_save(journal);
	if (r < 0)
		return; /* a name too long for the file system, say */
	r = journal_load(token, action_id, &again);
	fuzz_check(r == 0 || r == -ENOMEM);
	if (r < 0)
		return;
	fuzz_check(json_equal(journal, again));
	json_decref(again);
	fuzz_check(journal_remove(journal) == 0);
	fuzz_check(journal_load(token, action_id, &again) == -ENOENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *named = NULL, *other = NULL;
	json_t *lenient, *all = NULL, *journal, *loaded = NULL, *found = NULL;
	const char *token = NULL, *action_id = NULL;
	size_t i;
	int r;

	/* past the 256 KiB limit, but not much */
	if (size > 300 * 1024)
		return 0;
	state_folder_empty();
	if (mkdir(activations, 0700) < 0)
		abort();

	/* The name, from the members as a lenient reader sees them. */
	lenient = json_loadb((const char *)data, size, 0, NULL);
	token = json_string_value(json_object_get(lenient, "token"));
	action_id = json_string_value(json_object_get(lenient, "action_id"));
	if (token && ca_v1_action_id_valid(action_id)) {
		named = journal_path(token, action_id);
		if (!named)
			abort();
		if (state_folder_write(named, data, size) < 0) {
			free(named);
			named = NULL;
		}
	}
	other = path_join(activations, "66757a7a.fuzz.json");
	if (!other || state_folder_write(other, data, size) < 0)
		abort();

	r = journal_load_all(&all);
	fuzz_check(r == 0 || r == -ENOMEM);
	if (r < 0) {
		json_decref(lenient);
		return 0;
	}
	fuzz_check(json_is_array(all) && json_array_size(all) <= 2);
	json_array_foreach(all, i, journal)
	{
		check_loaded(journal);
		if (streq_ptr(json_string_value(json_object_get(journal, "token")), token) &&
		    streq_ptr(json_string_value(json_object_get(journal, "action_id")), action_id))
			found = journal;
	}

	/* What one reader took, the other takes too. */
	if (named) {
		r = journal_load(token, action_id, &loaded);
		fuzz_check(r == 0 || r == -ENOMEM || !found);
		if (r == 0) {
			fuzz_check(!found || json_equal(found, loaded));
			check_loaded(loaded);
			check_round_trip(loaded);
			json_decref(loaded);
		}
	}
	json_decref(all);
	json_decref(lenient);
	return 0;
}
