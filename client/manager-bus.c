/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include "bus-names.h"
#include "macro.h"
#include "variant-json.h"

/* One reading of everything the window shows: the token list, each
 * token's properties and the history, asked for at once. Only the answer
 * to the latest reading is shown; an older one that arrives late is
 * dropped, so a token that left between two readings never comes back. */
typedef struct Refresh {
	Manager *manager;
	unsigned generation;
	unsigned outstanding;
	json_t *tokens; /* one slot per path, null until its answer */
	json_t *activations;
	char *unreachable;
} Refresh;

typedef struct TokenCall {
	Refresh *refresh;
	size_t index;
	char *path;
} TokenCall;

#define CALL_TIMEOUT_MS 25000

static void refresh_done(Refresh *r)
{
	Manager *m = r->manager;

	if (--r->outstanding > 0)
		return;
	/* After the window has gone (cancelled), nothing is shown. */
	if (!g_cancellable_is_cancelled(m->cancellable) && r->generation == m->generation) {
		json_t *tokens = json_array();
		json_t *activations = r->activations ? json_incref(r->activations) : json_array();
		bool same;
		size_t i;
		json_t *token;

		json_array_foreach(r->tokens, i, token)
		{
			if (json_is_object(token))
				json_array_append(tokens, token);
		}
		/* The view is built anew only when something changed: a reading
		 * that finds all as it was (a signal about what the window does
		 * not show) must not pull the rows from under the person's
		 * pointer. */
		same = m->tokens && m->activations && json_equal(tokens, m->tokens) &&
		       json_equal(activations, m->activations) &&
		       streq_ptr(r->unreachable, m->unreachable);
		json_decref(m->tokens);
		m->tokens = tokens;
		json_decref(m->activations);
		m->activations = activations;
		g_free(m->unreachable);
		m->unreachable = g_steal_pointer(&r->unreachable);
		m->reachable = !m->unreachable;
		if (!same)
			manager_window_update(m);
		else
			manager_checklist_update(m, false);
	}
	json_decref(r->tokens);
	json_decref(r->activations);
	g_free(r->unreachable);
	g_free(r);
	manager_call_done(m);
}

static void on_token_properties(GObject *source, GAsyncResult *result, gpointer data)
{
	TokenCall *call = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

	/* A token that left in between answers UnknownObject: it is not
	 * shown, and its TokenRemoved brings the next reading. */
	if (reply) {
		g_autoptr(GVariant) properties = g_variant_get_child_value(reply, 0);
		json_t *token = variant_to_json(properties, NULL);
		json_t *pending = NULL;

		if (token) {
			json_object_set_new(token, "path", json_string(call->path));
			/* Pending is the CA's JSON array as a string. */
			pending = json_loads(
			    json_string_value(json_object_get(token, "Pending")) ?: "[]", 0, NULL);
			json_object_set_new(token, "pending",
					    json_is_array(pending) ? pending : json_array());
			if (pending && !json_is_array(pending))
				json_decref(pending);
			json_array_set_new(call->refresh->tokens, call->index, token);
		}
	}
	refresh_done(call->refresh);
	g_free(call->path);
	g_free(call);
}

static void on_tokens(GObject *source, GAsyncResult *result, gpointer data)
{
	Refresh *r = data;
	Manager *m = r->manager;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	g_autoptr(GVariant) paths = NULL;
	GVariantIter iter;
	const char *path;

	if (!reply) {
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			r->unreachable = manager_error_text(error, NULL);
		refresh_done(r);
		return;
	}
	g_variant_get(reply, "(v)", &paths);
	if (!g_variant_is_of_type(paths, G_VARIANT_TYPE_OBJECT_PATH_ARRAY)) {
		refresh_done(r);
		return;
	}
	g_variant_iter_init(&iter, paths);
	while (g_variant_iter_next(&iter, "&o", &path)) {
		TokenCall *call = g_new0(TokenCall, 1);

		call->refresh = r;
		call->index = json_array_size(r->tokens);
		call->path = g_strdup(path);
		json_array_append_new(r->tokens, json_null());
		r->outstanding++;
		g_dbus_connection_call(m->bus, SAFECAD_BUS_NAME, path,
				       "org.freedesktop.DBus.Properties", "GetAll",
				       g_variant_new("(s)", SAFECAD_TOKEN_INTERFACE),
				       G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
				       CALL_TIMEOUT_MS, m->cancellable, on_token_properties, call);
	}
	refresh_done(r);
}

static void on_history(GObject *source, GAsyncResult *result, gpointer data)
{
	Refresh *r = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

	/* Without the history the tokens are still worth showing. */
	if (reply) {
		const char *text;
		json_t *history;

		g_variant_get(reply, "(&s)", &text);
		history = json_loads(text, 0, NULL);
		r->activations = json_incref(json_object_get(history, "activations"));
		json_decref(history);
	}
	refresh_done(r);
}

static gboolean refresh_now(gpointer data)
{
	Manager *m = data;
	Refresh *r = g_new0(Refresh, 1);

	m->refresh_source = 0;
	manager_call_started(m);
	r->manager = m;
	r->generation = ++m->generation;
	r->tokens = json_array();
	r->outstanding = 2;
	/* Not NO_AUTO_START: where safecad is started by D-Bus activation,
	 * opening the window starts it. */
	g_dbus_connection_call(m->bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
			       "org.freedesktop.DBus.Properties", "Get",
			       g_variant_new("(ss)", SAFECAD_MANAGER_INTERFACE, "Tokens"),
			       G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS,
			       m->cancellable, on_tokens, r);
	g_dbus_connection_call(m->bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
			       SAFECAD_MANAGER_INTERFACE, "GetHistory", NULL, G_VARIANT_TYPE("(s)"),
			       G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, m->cancellable, on_history,
			       r);
	return G_SOURCE_REMOVE;
}

void manager_refresh(Manager *m)
{
	/* Signals come in bursts (a rescan changes several properties of
	 * several tokens): one reading after the burst. */
	if (m->bus && !m->refresh_source)
		m->refresh_source = g_timeout_add(80, refresh_now, m);
}

static void on_signal(GDBusConnection *bus, const char *sender, const char *path,
		      const char *interface, const char *member, GVariant *parameters,
		      gpointer data)
{
	manager_refresh(data);
}

static void on_name_appeared(GDBusConnection *bus, const char *name, const char *owner,
			     gpointer data)
{
	manager_refresh(data);
}

static void on_name_vanished(GDBusConnection *bus, const char *name, gpointer data)
{
	Manager *m = data;

	/* safecad stopped (or is not there yet): what was shown is stale. A
	 * reading answers why (not running, or not allowed to start). */
	if (!bus)
		return;
	manager_refresh(m);
}

int manager_bus_start(Manager *m, GError **error)
{
	m->cancellable = g_cancellable_new();
	/* The system bus, or DBUS_SYSTEM_BUS_ADDRESS's, as for safectl. */
	m->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
	if (!m->bus)
		return -ENOTCONN;
	/* The bus delivers only what safecad's own connection sends: the
	 * sender is part of each match rule. */
	m->subscriptions[0] = g_dbus_connection_signal_subscribe(
	    m->bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_INTERFACE, "TokenAdded", SAFECAD_MANAGER_PATH,
	    NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, m, NULL);
	m->subscriptions[1] = g_dbus_connection_signal_subscribe(
	    m->bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_INTERFACE, "TokenRemoved",
	    SAFECAD_MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, m, NULL);
	/* A tick from safectl or another window shows here at once. */
	m->subscriptions[3] = g_dbus_connection_signal_subscribe(
	    m->bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_INTERFACE, "HistoryChanged",
	    SAFECAD_MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, m, NULL);
	m->subscriptions[2] = g_dbus_connection_signal_subscribe(
	    m->bus, SAFECAD_BUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged", NULL,
	    SAFECAD_TOKEN_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_signal, m, NULL);
	m->name_watch =
	    g_bus_watch_name_on_connection(m->bus, SAFECAD_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
					   on_name_appeared, on_name_vanished, m, NULL);
	refresh_now(m);
	return 0;
}

void manager_bus_stop(Manager *m)
{
	if (m->cancellable)
		g_cancellable_cancel(m->cancellable);
	if (m->refresh_source)
		g_source_remove(m->refresh_source);
	m->refresh_source = 0;
	if (m->name_watch)
		g_bus_unwatch_name(m->name_watch);
	m->name_watch = 0;
	for (size_t i = 0; i < ELEMENTSOF(m->subscriptions); i++)
		if (m->subscriptions[i])
			g_dbus_connection_signal_unsubscribe(m->bus, m->subscriptions[i]);
	/* The cancelled calls still answer, on this loop: let them, so
	 * nothing they hold is left behind. */
	while (m->calls > 0)
		g_main_context_iteration(NULL, TRUE);
	g_clear_object(&m->bus);
	g_clear_object(&m->cancellable);
}

static void on_ticked(GObject *source, GAsyncResult *result, gpointer data)
{
	Manager *m = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

	if (!reply && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		manager_show_error(m, error, NULL);
		/* The box the person ticked goes back to what the history
		 * holds, even when the next reading finds nothing changed. */
		manager_window_update(m);
	}
	/* Ticked or not, the history says what is so now. */
	if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		manager_refresh(m);
	manager_call_done(m);
}

void manager_tick_agency(Manager *m, const char *action, const char *agency)
{
	const char *agencies[] = {agency, NULL};

	manager_call_started(m);
	g_dbus_connection_call(m->bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
			       SAFECAD_MANAGER_INTERFACE, "TickAgencies",
			       g_variant_new("(s^as)", action, agencies), NULL,
			       G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, CALL_TIMEOUT_MS,
			       m->cancellable, on_ticked, m);
}

json_t *manager_find_token(Manager *m, const char *serial)
{
	size_t i;
	json_t *token;

	json_array_foreach(m->tokens, i, token)
	{
		if (streq_ptr(json_string_value(json_object_get(token, "Serial")), serial))
			return token;
	}
	return NULL;
}
