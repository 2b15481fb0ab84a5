/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* The desktop's notification server (org.freedesktop.Notifications on the
 * session bus), as the agent uses it. */
typedef struct Notifier Notifier;

typedef void (*NotifierActionFn)(void *userdata, uint32_t id, const char *action);
typedef void (*NotifierClosedFn)(void *userdata, uint32_t id);

enum {
	URGENCY_LOW = 0,
	URGENCY_NORMAL = 1,
	URGENCY_CRITICAL = 2,
};

typedef struct Notification {
	const char *summary;
	const char *body; /* already escaped for markup (see markup_escape) */
	const char *icon; /* a freedesktop icon name */
	/* Action key and label pairs, NULL-terminated; the key "default" is
	 * what a click on the notification does. Dropped when the server
	 * cannot show actions. */
	const char *const *actions;
	uint8_t urgency;
	int progress;	 /* 0..100 shown as a bar where the server can, -1 for none */
	bool persistent; /* stays until the user acts or closes it */
} Notification;

int notifier_new(sd_bus *session, NotifierActionFn on_action, NotifierClosedFn on_closed,
		 void *userdata, Notifier **ret);
Notifier *notifier_free(Notifier *n);

/* Whether the server shows actions ("actions" capability) and markup in the
 * body ("body-markup"); asked once, and again after the server restarts. */
bool notifier_has_actions(Notifier *n);
bool notifier_has_markup(Notifier *n);

/* Shows a notification, replacing the one *id names when it is not 0, and
 * stores the new id in *id. The server is local and answers at once; the
 * call waits at most a few seconds for it. */
int notifier_show(Notifier *n, uint32_t *id, const Notification *notification);

/* Closes notification id (nothing when it is 0 or already closed). */
void notifier_close(Notifier *n, uint32_t id);

/* text with &, < and > escaped, or a copy of text when the server takes no
 * markup. NULL when out of memory. */
char *notifier_escape(Notifier *n, const char *text);
