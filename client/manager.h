/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <adwaita.h>
#include <jansson.h>
#include <stdbool.h>

/* safecad-manager, the Token Manager window: a client of safecad's D-Bus
 * API on the system bus, as safectl is.
 *
 * It talks to the bus through GDBus, not sd-bus as safectl and the agent
 * do: GDBus runs on the GLib main loop GTK already runs, so every call is
 * asynchronous and every answer arrives on the thread that owns the
 * widgets, with no second loop to integrate. What it reads is turned into
 * the same JSON safectl prints (variant-json.c), so the rules shared with
 * safectl and the agent (action.c, history-json.h) read it unchanged. */

typedef struct Manager {
	AdwApplication *application;
	GtkWindow *window;
	AdwBin *content;       /* the page, built again on every change */
	GtkLabel *message;     /* the last error, hidden when there is none */
	GtkWindow *activation; /* the activation dialog, while open */

	GDBusConnection *bus;
	GCancellable *cancellable;
	guint name_watch;
	guint subscriptions[4];
	guint refresh_source;
	unsigned generation;
	unsigned calls;	   /* in flight: waited for before the bus is let go */
	bool reachable;	   /* safecad answered the last refresh */
	char *unreachable; /* why not, for the page, or NULL */

	json_t *tokens;	     /* [{"path", and the org.safecad.Token1 properties}] */
	json_t *activations; /* GetHistory's "activations" */

	GtkStack *pages; /* "tokens", or "checklist": one activation's Step 3 */
	char *highlight; /* the serial show-token asked for, marked in the list */
	char *reveal;	 /* the same, until it is scrolled to */
	gint64 reveal_until;
	guint reveal_tick;
	struct Checklist *checklist;
} Manager;

/* manager.c: the window, made when missing, brought forward. */
void manager_present(Manager *m);

/* manager-show-token.c: the show-token action. The window scrolls to the
 * token's section and marks it, once the token is read. */
void manager_show_token(Manager *m, const char *serial);
void manager_reveal_token(Manager *m); /* after the page is built */

/* manager-checklist.c: the show-checklist action, and what the
 * activation dialog shows last. A page of its own with the Step 3 checklist
 * of activation action (from the history, read again when it is not there
 * yet, as for an activation that has just finished). */
void manager_show_checklist(Manager *m, const char *action);
GtkWidget *checklist_page_new(Manager *m);
/* Shows the page "tokens" or "checklist". */
void manager_show_page(Manager *m, const char *name);
/* After each reading of the history; changed when it differs from the last. */
void manager_checklist_update(Manager *m, bool changed);

/* manager-settings.c: the user's preferences (manager-conf.h). */
GtkWidget *settings_view_new(Manager *m);

/* manager-bus.c: following safecad (its name, its tokens, their
 * properties) and the calls the window makes. */
int manager_bus_start(Manager *m, GError **error);
void manager_bus_stop(Manager *m);
void manager_refresh(Manager *m);
void manager_tick_agency(Manager *m, const char *action, const char *agency);
json_t *manager_find_token(Manager *m, const char *serial);

static inline void manager_call_started(Manager *m)
{
	m->calls++;
}

static inline void manager_call_done(Manager *m)
{
	m->calls--;
}

/* manager-window.c */
void manager_window_new(Manager *m);
void manager_window_update(Manager *m);
void manager_show_error(Manager *m, const GError *error, const char *support);

/* manager-errors.c: what a person reads for a failed call; support is the
 * CA's support line (or NULL), added where the person cannot fix it
 * alone. */
char *manager_error_text(const GError *error, const char *support);
/* words, and the support line after them where there is one. */
char *manager_text_with_support(const char *words, const char *support);

/* manager-activate.c: the activation dialog, the CA's guide step by step,
 * for one of the token's pending actions or its interrupted activation. */
void manager_activate(Manager *m, const char *serial, const char *action);

/* manager-pin-change.c: the dialog that changes the token's PIN. */
void manager_change_pin(Manager *m, const char *serial);

/* manager-remove.c: the dialog that removes the certificate (and its key)
 * the token's latest activation replaced. */
void manager_remove_previous(Manager *m, const char *serial);
/* The token's latest activation in the history (GetHistory's entry), or
 * NULL. */
json_t *manager_latest_activation(Manager *m, const char *serial);
/* Whether that activation left a certificate (or, after an interrupted
 * removal, a key) to remove. */
bool manager_previous_removable(Manager *m, json_t *token);

/* manager-token-view.c, manager-history-view.c */
GtkWidget *token_view_new(Manager *m, json_t *token);
GtkWidget *history_view_new(Manager *m, json_t *activations);
/* One activation: what it did and, while agencies are listed, its Step 3
 * checklist (ticks, sites, the two warnings, Export when latest_of_token). */
GtkWidget *history_entry_view_new(Manager *m, json_t *entry, bool latest_of_token);

/* manager-export.c: asks where, then writes the token's current
 * certificate there, PEM or DER. */
void manager_export(Manager *m, const char *token_path, const char *support);

/* manager-text.c: small helpers for what the views show. */
char *text_clean(const char *s); /* ca_text_clean() with the window's limit */
char *date_text(const char *rfc3339);
GtkWidget *row_new(const char *title, const char *subtitle);
/* The token's current certificate (window JSON), or NULL. */
json_t *token_current_certificate(json_t *token);
GtkWidget *paragraph_new(const char *text); /* a wrapped label, start-aligned */
