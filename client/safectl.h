/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "macro.h"
#include "time-util.h"

/* How long --pin-fd and --new-pin-fd may take to deliver the whole PIN. */
#define PIN_FD_TIMEOUT_USEC (INT64_C(60) * 1000000)

/* Exit codes scripts rely on (PRODUCT.md). */
enum {
	EXIT_DONE = 0,
	EXIT_FAILED = 1,
	EXIT_NOTHING = 2,
	EXIT_WRONG_PIN = 3,
	EXIT_PIN_LOCKED = 4,
	EXIT_CA = 5,
	EXIT_NOT_AUTHORIZED = 6,
	EXIT_FINAL_TRY = 7,
	EXIT_BUSY = 8,
};

extern bool arg_json;
extern bool arg_yes;
extern int arg_pin_fd;
extern int arg_new_pin_fd;
extern bool arg_keep_previous;
extern bool arg_keep_previous_set;
extern bool arg_allow_final_try;
extern const char *arg_action_type;
extern const char *arg_action;
extern bool arg_der;
extern bool arg_issued;
extern bool arg_force;
extern const char *arg_output;

/* A string member, or "" when it is missing or not a string. */
static inline const char *json_str(json_t *object, const char *key)
{
	const char *s = json_string_value(json_object_get(object, key));
	return s ? s : "";
}

/* jansson and sd-bus bring their own json_decrefp and sd_bus_*_unrefp. */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Connects to the system bus; says so and returns EXIT_FAILED-worthy
 * negative errno when that fails. */
int bus_connect(sd_bus **ret);

/* Prints why a bus call failed ("safecad is not running" when it is not
 * on the bus). */
void report_bus_error(const sd_bus_error *error, int r);

/* Every token the daemon lists, as the JSON objects `status` prints, in
 * the daemon's order. Prints why and returns < 0 when safecad does not
 * answer. */
int tokens_read(sd_bus *bus, json_t **ret);

/* The token named by serial, label or PKCS#11 URI; with name NULL, the
 * only token. On failure prints why and returns the exit code (1 for a
 * name that matches none or several, 2 when there is no token). */
int token_select(json_t *tokens, const char *name, json_t **ret);

/* Prints v as one line of JSON (or pretty, on a terminal). */
void json_print(json_t *v);

/* The exit code for a named error from safecad. */
int exit_code_for_error(const sd_bus_error *error);

/* Asks the CA (through safecad) what is pending for token; returns 0, or
 * the exit code after saying why. */
int call_check(sd_bus *bus, json_t *token, json_t **ret_pending);

/* Verbs. */
int verb_status(int argc, char *argv[]);
int verb_show(int argc, char *argv[]);
int verb_watch(int argc, char *argv[]);
int verb_check(int argc, char *argv[]);
int verb_activate(int argc, char *argv[]);
int verb_history(int argc, char *argv[]);
int verb_agencies(int argc, char *argv[]);
int verb_export(int argc, char *argv[]);
int verb_pin(int argc, char *argv[]);
int verb_remove_previous(int argc, char *argv[]);
