/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "notify-pinentry.h"
#include "notify-server.h"

/* safecad-notify: the desktop agent. It follows safecad on the system bus
 * and speaks to the user through the session's notification server and
 * pinentry. */

/* jansson brings json_decrefp. */
#define _cleanup_json_ _cleanup_(json_decrefp)

typedef struct Agent Agent;

/* What a token's one notification shows now. */
typedef enum Shown {
	SHOWN_NOTHING,
	SHOWN_INSERTED,
	SHOWN_PENDING, /* offers "Activate now" for offered_action */
	SHOWN_PROGRESS,
	SHOWN_RESULT,
	SHOWN_ERROR, /* may offer "Activate now" again */
	SHOWN_EXPIRY,
} Shown;

typedef struct AgentToken {
	Agent *agent;
	char *path;
	json_t *props; /* org.safecad.Token1's properties, as bus_read_json reads them */
	uint32_t notification;
	Shown shown;
	char *offered_action; /* the action the shown notification offers to activate */
	char *announced;      /* the pending action last announced */
	char *activating;     /* the action this agent asked safecad to activate */
	sd_bus_slot *change_pin_call;
	bool finished_seen;   /* ActivationFinished came for it */
	bool announce_insert; /* show "plugged in" once the properties are read */
	bool removed;
	bool props_read; /* GetAll answered at least once */
	/* An ExpiryWarning that came before the properties: shown once they
	 * are read, instead of "plugged in". */
	char *expiry_serial;
	int expiry_days;
	sd_bus_slot *activate_call, *refresh_call;
} AgentToken;

/* The Step 3 reminder of one activation. */
typedef struct Reminder {
	char *action;
	json_t *entry; /* the GetHistory entry */
	uint32_t notification;
	char *saved; /* where the certificate was exported, shown in the body */
	bool seen;   /* listed by the latest history read */
} Reminder;

struct Agent {
	sd_event *event;
	sd_bus *system, *session;
	Notifier *notifier;
	char *daemon; /* the unique name owning org.safecad.Manager1, or NULL */
	bool synced_once;
	AgentToken **tokens;
	size_t n_tokens;
	Reminder **reminders;
	size_t n_reminders;
	/* One PIN dialogue at a time: for an activation, or one of the three
	 * of a PIN change (the current PIN, the new one, the new one again). */
	Pinentry *pinentry;
	char *pin_token_path, *pin_action;
	enum { PIN_FOR_ACTIVATION, PIN_CURRENT, PIN_NEW, PIN_NEW_AGAIN } pin_purpose;
	Pin *pin_current, *pin_new; /* held between the dialogues of a change */
	sd_bus_slot *sync_call, *export_call;
	struct HistoryRead *history_reads; /* GetHistory calls in flight */
	char *export_action;		   /* the reminder an Export call is for */
	/* Whether the Token Manager window can be opened: asked once, and
	 * again after an attempt failed. */
	enum { WINDOW_UNKNOWN, WINDOW_AVAILABLE, WINDOW_MISSING } window;
};

/* notify-messages.c: what each notification says. */
void show_inserted(AgentToken *t);
void show_pending(AgentToken *t, json_t *action);
void show_progress(AgentToken *t, const char *step);
void show_result(AgentToken *t, json_t *result);
void show_error(AgentToken *t, const char *error_name, const char *message);
void show_expiry(AgentToken *t, const char *serial, int days_left);
void show_pin_changed(AgentToken *t);
void show_pin_change_error(AgentToken *t, const char *error_name, const char *message);
void show_reminder(Agent *a, Reminder *reminder);
void show_message(Agent *a, uint32_t *id, const char *icon, const char *summary, const char *body);

/* The current certificate's entry in t->props, or NULL. */
json_t *token_current_certificate(AgentToken *t);
/* The CA action id of t's pending list, or NULL. */
json_t *token_pending_action(AgentToken *t, const char *id);
/* A name for t a person recognizes: the certificate holder's CN, else the
 * token's label, else its serial. */
const char *token_display_name(AgentToken *t);
const char *token_str(AgentToken *t, const char *property);

/* notify-window.c: the Token Manager window, opened through D-Bus
 * activation. */
typedef void (*WindowFallbackFn)(Agent *a, const char *parameter);
/* Whether the window is installed (or running): only then is it offered. */
bool window_available(Agent *a);
/* Activates the window's action ("show-token", "show-checklist") with its
 * string parameter, without waiting; fallback (when not NULL) runs when
 * the window cannot be opened. */
void window_activate(Agent *a, const char *action, const char *parameter,
		     WindowFallbackFn fallback);
/* Whether the user asked the window to open when a token is plugged in. */
bool window_open_on_insert(void);

/* notify-files.c */
/* The user's documents folder (XDG user-dirs, else ~/Documents, else the
 * home folder), created when missing. */
int documents_dir(char **ret);
/* Writes the certificate der as <dir>/certificate-<serial>.pem and .der,
 * named by the serial it holds; ret_pem and ret_der name them. -EBADMSG
 * when der is not one certificate. */
int save_certificate(const char *dir, const void *der, size_t size, char **ret_pem, char **ret_der);
/* Writes the Step 3 checklist of entry as HTML in the user's runtime
 * folder and opens it with xdg-open; ret names the file. */
int open_checklist(json_t *entry, char **ret);
