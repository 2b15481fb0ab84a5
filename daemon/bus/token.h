/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "bus/context.h"
#include "token/token-info.h"

/* One token as the bus shows it. */
struct Token {
	Context *context;
	char *path;
	TokenInfo info;
	bool present;
	Job *job;	     /* running on this token, or NULL */
	Job *next_job;	     /* a job from the bus waiting for the running check */
	json_t *pending;     /* the CA's entries; [] until asked */
	json_t *running;     /* {"action","step"} of the activation running now */
	char *warned_sha256; /* the certificate last warned about, */
	int warned_days;     /* and at which threshold */
	/* Check() calls from users other than root that may still ask the
	 * CA, and when that was last topped up (CLOCK_MONOTONIC, µs). */
	unsigned check_budget;
	int64_t check_budget_at;
	/* The issued certificate the running activation shows its caller
	 * before writing (JSON), and the caller it waits for. */
	json_t *issued;
	sd_bus_track *caller;
	/* How the last activation since the start ended (for the metrics). */
	int64_t last_activation_at; /* seconds since the epoch, 0: none */
	bool last_activation_ok;
};

int token_new(Context *context, TokenInfo *info, Token **ret);
Token *token_free(Token *token);

/* Takes the new scan's info for this token; emits PropertiesChanged for
 * what differs. Takes ownership of info. */
void token_update(Token *token, TokenInfo *info);

/* A token known only from an interrupted activation's journal. */
int token_new_absent(Context *context, json_t *journal, Token **ret);

void token_set_present(Token *token, bool present);

/* {"<action id>": "why"} for the pending actions this token cannot carry
 * out, known from its mechanisms and flags. */
json_t *token_not_activatable(const Token *token);

/* Whether an interrupted activation (journal) keeps this token listed. */
bool token_has_journal(const Token *token);

/* Handles a job's progress and end; returns the token it concerns, or
 * NULL when that token is no longer listed. */
Token *token_job_event(Context *context, Job *job, JobEventKind kind, json_t *state);

/* Warns (journal entry, ExpiryWarning signal) when the current certificate
 * has crossed one of [expiry] warn_days since the last warning. */
void token_check_expiry(Token *token);

/* Asks the CA what is pending for the token, in the background. */
void token_start_check(Token *token);

int method_check(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_activate(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_change_pin(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_remove_previous(sd_bus_message *message, void *userdata, sd_bus_error *error);
int method_confirm_write(sd_bus_message *message, void *userdata, sd_bus_error *error);

/* The fallback vtable serving every token object under the prefix. */
int bus_token_register(Context *context);
