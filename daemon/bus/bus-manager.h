/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/context.h"
#include "token/token-info.h"

int bus_manager_register(Context *context);

/* Brings the token objects in line with a finished scan: new tokens
 * appear (TokenAdded), gone ones leave (TokenRemoved), the rest update.
 * Takes ownership of list's items. */
void manager_apply_scan(Context *context, TokenList *list);

/* The job queue's handler: hands a job's progress and end to its token,
 * then forgets a pulled token with nothing left to show. */
void manager_job_event(Job *job, JobEventKind kind, json_t *state, void *userdata);

/* Lists the tokens that interrupted activations name but that are not
 * plugged in. */
int manager_add_absent_tokens(Context *context);

void manager_set_hotplug(Context *context, bool enabled);
void manager_clear(Context *context);
