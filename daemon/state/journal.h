/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>

/* The activation journal: one JSON file per (token, action) in
 * $STATE_DIRECTORY/activations, rewritten atomically before each next
 * step begins. */

typedef enum ActivationStep {
	STEP_NONE = 0,
	STEP_ACCEPTED,
	STEP_LOGGED_IN,
	STEP_KEY_READY,
	STEP_CSR_SENT,
	STEP_ISSUED,
	STEP_VERIFIED,
	STEP_WRITTEN,
	STEP_CONFIRMED,
} ActivationStep;

const char *activation_step_name(ActivationStep step);
ActivationStep activation_step_from_name(const char *name);

/* The path of the journal file of this token and action (malloc'ed). */
char *journal_path(const char *token_serial, const char *action_id);

/* Loads it; -ENOENT when there is none. */
int journal_load(const char *token_serial, const char *action_id, json_t **ret);
int journal_save(json_t *journal);
int journal_remove(json_t *journal);

/* Every journal on disk, as an array (unreadable files are skipped with a
 * warning). */
int journal_load_all(json_t **ret);

ActivationStep journal_step(json_t *journal);

/* Whether journal holds every member an activation journal must, each
 * within its bounds (and, with path, is the file named after its token
 * and action). -EBADMSG with *ret_bad the first member that is not. */
int journal_check(json_t *journal, const char *path, const char **ret_bad);
