/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent's way into the Token Manager window: org.safecad.Manager on the
 * session bus, started by D-Bus activation (its desktop file says
 * DBusActivatable=true) and asked, through org.freedesktop.Application, to
 * show a token or a Step 3 checklist. */
#include <string.h>

#include "manager-conf.h"
#include "notify.h"
#include "util.h"

#define WINDOW_BUS_NAME "org.safecad.Manager"
#define WINDOW_PATH "/org/safecad/Manager"
#define WINDOW_INTERFACE "org.freedesktop.Application"
/* Starting the window (GTK, the first frame) can take seconds. */
#define WINDOW_TIMEOUT_USEC (30ULL * 1000000)

static bool bus_lists(sd_bus *bus, const char *method, const char *name)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	const char *listed;

	if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", method, &error, &reply, NULL) < 0) {
		sd_bus_error_free(&error);
		return false;
	}
	if (sd_bus_message_enter_container(reply, 'a', "s") < 0)
		return false;
	while (sd_bus_message_read(reply, "s", &listed) > 0)
		if (streq(listed, name))
			return true;
	return false;
}

bool window_available(Agent *a)
{
	/* Installed (the session bus can start it) or running already (a
	 * window started by hand, outside activation). */
	if (a->window == WINDOW_UNKNOWN)
		a->window = bus_lists(a->session, "ListActivatableNames", WINDOW_BUS_NAME) ||
				    bus_lists(a->session, "ListNames", WINDOW_BUS_NAME)
				? WINDOW_AVAILABLE
				: WINDOW_MISSING;
	return a->window == WINDOW_AVAILABLE;
}

typedef struct WindowCall {
	Agent *agent;
	char *parameter;
	WindowFallbackFn fallback;
} WindowCall;

static void window_call_free(void *userdata)
{
	WindowCall *call = userdata;

	free(call->parameter);
	free(call);
}

static int on_window_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	WindowCall *call = userdata;
	const sd_bus_error *error = sd_bus_message_get_error(m);

	if (!error)
		return 0;
	fprintf(stderr, "safecad-notify: the Token Manager window did not open: %s\n",
		error->message);
	/* Uninstalled meanwhile, or it failed to start: ask again before the
	 * next notification offers it. */
	call->agent->window = WINDOW_UNKNOWN;
	if (call->fallback)
		call->fallback(call->agent, call->parameter);
	return 0;
}

void window_activate(Agent *a, const char *action, const char *parameter, WindowFallbackFn fallback)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *message = NULL;
	sd_bus_slot *slot = NULL;
	WindowCall *call = calloc(1, sizeof(*call));
	int r;

	if (!call || !(call->parameter = strdup(parameter))) {
		free(call);
		if (fallback)
			fallback(a, parameter);
		return;
	}
	call->agent = a;
	call->fallback = fallback;
	/* ActivateAction(s action, av parameter, a{sv} platform_data): the
	 * window's actions take the serial or the action id as a string. No
	 * startup id to hand on: the notification server gives none. */
	r = sd_bus_message_new_method_call(a->session, &message, WINDOW_BUS_NAME, WINDOW_PATH,
					   WINDOW_INTERFACE, "ActivateAction");
	if (r >= 0)
		r = sd_bus_message_append(message, "sav", action, 1, "s", parameter);
	if (r >= 0)
		r = sd_bus_message_append(message, "a{sv}", 0);
	if (r >= 0)
		r = sd_bus_call_async(a->session, &slot, message, on_window_reply, call,
				      WINDOW_TIMEOUT_USEC);
	if (r < 0) {
		if (fallback)
			fallback(a, parameter);
		window_call_free(call);
		return;
	}
	/* The bus owns the call from here; what it holds goes with it, answered
	 * or not when the agent stops. */
	(void)sd_bus_slot_set_destroy_callback(slot, window_call_free);
	(void)sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
}

bool window_open_on_insert(void)
{
	_cleanup_free_ char *path = manager_conf_path(), *text = NULL;

	/* Read at each insert, not kept: the window may have changed it. */
	return path && read_small_file(path, MANAGER_CONF_MAX, &text) >= 0 &&
	       manager_conf_open_on_insert(text);
}
