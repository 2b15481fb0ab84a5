/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The history of activations, $STATE_DIRECTORY/history.json, newest
 * first. Safe to call from any thread. */

/* Records an activation whose certificate is written (once per token and
 * action: a second call changes nothing). entry holds action, type, token,
 * old_serial, new_serial, agencies [{id,name,url,done}]. */
int history_add(json_t *entry);

/* Marks the activation confirmed by the CA at time t. */
int history_set_completed(const char *token, const char *action, int64_t t);

/* Sets one member of an activation's entry (a borrowed value). */
int history_set_member(const char *token, const char *action, const char *key, json_t *value);

/* Ticks agencies of an activation (the latest when action is NULL).
 * -ENOENT: no such activation; -ESRCH: an id it does not list (nothing
 * is changed then). */
int history_tick_agencies(const char *action, const char *const *ids, size_t n_ids);

/* The latest activation of the token in history (borrowed), or NULL. */
json_t *history_latest(json_t *history, const char *token_serial);

/* The whole history, {"activations": [...]}. */
int history_read(json_t **ret);

/* Called after each change of what history_read() returns (an activation
 * recorded or completed, a member set, agencies ticked, a damaged history
 * set aside and begun anew), once per change, on the thread that made it
 * and outside the history's lock. NULL stops it. */
typedef void (*history_observer_t)(void *userdata);
void history_set_observer(history_observer_t fn, void *userdata);
/* Tells the observer of a change another process (a worker) made. */
void history_tell_changed(void);
