/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notify-server.h"

#include <string.h>

#include "macro.h"

#define NOTIFICATIONS_NAME "org.freedesktop.Notifications"
#define NOTIFICATIONS_PATH "/org/freedesktop/Notifications"
#define NOTIFICATIONS_INTERFACE "org.freedesktop.Notifications"
#define NOTIFY_TIMEOUT_USEC (5ULL * 1000000)

struct Notifier {
	sd_bus *bus;
	sd_bus_slot *action_slot, *closed_slot, *owner_slot;
	NotifierActionFn on_action;
	NotifierClosedFn on_closed;
	void *userdata;
	/* The server's unique name, from the last Notify reply: actions and
	 * closings from anyone else are not the server's. */
	char *server;
	bool capabilities_known, actions, markup;
};

static bool from_server(Notifier *n, sd_bus_message *m)
{
	return n->server && streq_ptr(sd_bus_message_get_sender(m), n->server);
}

static int on_action_invoked(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	Notifier *n = userdata;
	uint32_t id;
	const char *action;

	if (!from_server(n, m) || sd_bus_message_read(m, "us", &id, &action) < 0)
		return 0;
	n->on_action(n->userdata, id, action);
	return 0;
}

static int on_notification_closed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	Notifier *n = userdata;
	uint32_t id, reason;

	if (!from_server(n, m) || sd_bus_message_read(m, "uu", &id, &reason) < 0)
		return 0;
	n->on_closed(n->userdata, id);
	return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	Notifier *n = userdata;

	/* Another server (or the same one restarted) may show other things. */
	n->capabilities_known = false;
	free(n->server);
	n->server = NULL;
	return 0;
}

int notifier_new(sd_bus *session, NotifierActionFn on_action, NotifierClosedFn on_closed,
		 void *userdata, Notifier **ret)
{
	Notifier *n = calloc(1, sizeof(*n));
	int r;

	if (!n)
		return -ENOMEM;
	n->bus = sd_bus_ref(session);
	n->on_action = on_action;
	n->on_closed = on_closed;
	n->userdata = userdata;
	/* The server sends these to the connection that called Notify only;
	 * the matches let sd-bus hand them to us. */
	r = sd_bus_match_signal(session, &n->action_slot, NULL, NOTIFICATIONS_PATH,
				NOTIFICATIONS_INTERFACE, "ActionInvoked", on_action_invoked, n);
	if (r >= 0)
		r = sd_bus_match_signal(session, &n->closed_slot, NULL, NOTIFICATIONS_PATH,
					NOTIFICATIONS_INTERFACE, "NotificationClosed",
					on_notification_closed, n);
	if (r >= 0)
		r = sd_bus_add_match(session, &n->owner_slot,
				     "type='signal',sender='org.freedesktop.DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
				     "arg0='" NOTIFICATIONS_NAME "'",
				     on_owner_changed, n);
	if (r < 0) {
		notifier_free(n);
		return r;
	}
	*ret = n;
	return 0;
}

Notifier *notifier_free(Notifier *n)
{
	if (!n)
		return NULL;
	sd_bus_slot_unref(n->action_slot);
	sd_bus_slot_unref(n->closed_slot);
	sd_bus_slot_unref(n->owner_slot);
	sd_bus_unref(n->bus);
	free(n->server);
	free(n);
	return NULL;
}

static void read_capabilities(Notifier *n)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	const char *capability;

	if (n->capabilities_known)
		return;
	n->actions = n->markup = false;
	if (sd_bus_call_method(n->bus, NOTIFICATIONS_NAME, NOTIFICATIONS_PATH,
			       NOTIFICATIONS_INTERFACE, "GetCapabilities", &error, &reply,
			       NULL) < 0) {
		sd_bus_error_free(&error);
		return;
	}
	if (sd_bus_message_enter_container(reply, 'a', "s") < 0)
		return;
	while (sd_bus_message_read(reply, "s", &capability) > 0) {
		if (streq(capability, "actions"))
			n->actions = true;
		else if (streq(capability, "body-markup"))
			n->markup = true;
	}
	n->capabilities_known = true;
}

bool notifier_has_actions(Notifier *n)
{
	read_capabilities(n);
	return n->actions;
}

bool notifier_has_markup(Notifier *n)
{
	read_capabilities(n);
	return n->markup;
}

char *notifier_escape(Notifier *n, const char *text)
{
	size_t size = 1;
	char *out, *p;

	if (!notifier_has_markup(n))
		return strdup(text);
	for (const char *s = text; *s; s++)
		size += *s == '&' ? 5 : (*s == '<' || *s == '>') ? 4 : 1;
	out = p = malloc(size);
	if (!out)
		return NULL;
	for (const char *s = text; *s; s++) {
		const char *entity = *s == '&'	 ? "&amp;"
				     : *s == '<' ? "&lt;"
				     : *s == '>' ? "&gt;"
						 : NULL;
		if (entity)
			p = stpcpy(p, entity);
		else
			*p++ = *s;
	}
	*p = '\0';
	return out;
}

static int append_hints(sd_bus_message *m, const Notification *notification)
{
	int r = sd_bus_message_open_container(m, 'a', "{sv}");

	if (r >= 0)
		r = sd_bus_message_append(m, "{sv}", "urgency", "y", notification->urgency);
	if (r >= 0)
		r = sd_bus_message_append(m, "{sv}", "desktop-entry", "s", "safecad-notify");
	if (r >= 0 && notification->progress >= 0)
		r = sd_bus_message_append(m, "{sv}", "value", "i", notification->progress);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	return r;
}

int notifier_show(Notifier *n, uint32_t *id, const Notification *notification)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	bool actions = notifier_has_actions(n);
	uint32_t new_id;
	int r;

	r = sd_bus_message_new_method_call(n->bus, &call, NOTIFICATIONS_NAME, NOTIFICATIONS_PATH,
					   NOTIFICATIONS_INTERFACE, "Notify");
	if (r >= 0)
		r = sd_bus_message_append(call, "susss", "safecad", *id,
					  strempty(notification->icon), notification->summary,
					  strempty(notification->body));
	if (r >= 0)
		r = sd_bus_message_open_container(call, 'a', "s");
	for (const char *const *a = notification->actions; r >= 0 && actions && a && a[0] && a[1];
	     a += 2)
		r = sd_bus_message_append(call, "ss", a[0], a[1]);
	if (r >= 0)
		r = sd_bus_message_close_container(call);
	if (r >= 0)
		r = append_hints(call, notification);
	/* Persistent ones wait for the user; the rest go after the server's
	 * default time. */
	if (r >= 0)
		r = sd_bus_message_append(call, "i", notification->persistent ? 0 : -1);
	if (r < 0)
		return r;
	r = sd_bus_call(n->bus, call, NOTIFY_TIMEOUT_USEC, &error, &reply);
	if (r < 0) {
		fprintf(stderr, "safecad-notify: the notification server refused: %s\n",
			sd_bus_error_is_set(&error) ? error.message : strerror(-r));
		sd_bus_error_free(&error);
		return r;
	}
	r = sd_bus_message_read(reply, "u", &new_id);
	if (r < 0)
		return r;
	if (!streq_ptr(n->server, sd_bus_message_get_sender(reply))) {
		char *sender = strdup(strempty(sd_bus_message_get_sender(reply)));
		if (!sender)
			return -ENOMEM;
		free(n->server);
		n->server = sender;
	}
	*id = new_id;
	return 0;
}

void notifier_close(Notifier *n, uint32_t id)
{
	if (id == 0)
		return;
	(void)sd_bus_call_method_async(n->bus, NULL, NOTIFICATIONS_NAME, NOTIFICATIONS_PATH,
				       NOTIFICATIONS_INTERFACE, "CloseNotification", NULL, NULL,
				       "u", id);
}
