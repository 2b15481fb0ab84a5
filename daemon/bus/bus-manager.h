/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "bus/context.h"
#include "token/token-info.h"

int bus_manager_register(Context *context);

/* Brings the token objects in line with a finished scan: new tokens
 * appear (TokenAdded), gone ones leave (TokenRemoved), the rest update.
 * Takes ownership of list's items. */
void manager_apply_scan(Context *context, TokenList *list);

/* Sends reply once a scan that starts now has landed. -EBUSY when too
 * many replies wait. */
int manager_reply_after_scan(Context *context, sd_bus_message *reply);

/* Sends the replies that a scan of this generation covers. */
void manager_complete_rescans(Context *context, uint64_t generation);

/* After a job ends: a pulled token with nothing left to show goes. */
void manager_forget_if_gone(Context *context, Token *token);

/* Lists the tokens that interrupted activations name but that are not
 * plugged in. */
int manager_add_absent_tokens(Context *context);

void manager_set_hotplug(Context *context, bool enabled);
void manager_clear(Context *context);
