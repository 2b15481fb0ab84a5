/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus/polkit.h"

#include <stdlib.h>
#include <string.h>

#include "i18n.h"
#include "log/log.h"
#include "macro.h"

/* Questions out at once for one caller (a user id): enough for every
 * token of a person's own clients, and one user cannot crowd out
 * another. */
#define POLKIT_MAX_QUERIES_PER_USER 16
/* And for everybody, a bound on memory whatever the number of users. */
#define POLKIT_MAX_QUERIES 4096
/* polkit may wait for the user to type a password. */
#define POLKIT_TIMEOUT_USEC (5ULL * 60 * 1000000)
/* CheckAuthorization's flag: the agent may ask the user. */
#define POLKIT_ALLOW_USER_INTERACTION 1U

struct PolkitQuery {
	PolkitQuery *next;
	sd_bus_message *request;
	sd_bus_slot *slot;
	/* Armed once the answer came and the call was dispatched again: it
	 * runs after that dispatch and frees the query whatever the handler
	 * did (it may have returned early, Busy say, without asking again). */
	sd_event_source *defer;
	uid_t uid;
	char *action;
	int answer; /* -1 still out, 0 no, 1 yes */
	sd_bus_error error;
	PolkitQuery **list;
};

static void query_free(PolkitQuery *q)
{
	PolkitQuery **p;

	for (p = q->list; *p; p = &(*p)->next)
		if (*p == q) {
			*p = q->next;
			break;
		}
	sd_bus_slot_unref(q->slot);
	sd_event_source_disable_unref(q->defer);
	sd_bus_message_unref(q->request);
	sd_bus_error_free(&q->error);
	free(q->action);
	free(q);
}

static int on_dispatched(sd_event_source *source, void *userdata)
{
	query_free(userdata);
	return 0;
}

static int on_answer(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	PolkitQuery *q = userdata;
	int authorized = 0, challenge = 0, r;

	q->slot = sd_bus_slot_unref(q->slot);
	if (sd_bus_message_is_method_error(reply, NULL)) {
		const sd_bus_error *e = sd_bus_message_get_error(reply);
		log_warning("polkit could not answer for %s: %s", q->action,
			    e && e->message ? e->message : "no reason");
		sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
				  /* TRANSLATORS: %s is a polkit action id, such as
				   * org.safecad.activate. */
				  _("Not authorized (%s): polkit did not answer."), q->action);
		q->answer = 0;
	} else {
		r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
		if (r >= 0)
			r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
		if (r < 0) {
			sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
					  _("Not authorized (%s): polkit's answer cannot be read."),
					  q->action);
			q->answer = 0;
		} else {
			q->answer = authorized;
			if (!authorized)
				sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
						  challenge
						      ? _("Authentication is required for %s.")
						      : _("Not authorized for %s."),
						  q->action);
		}
	}
	/* The call goes through its handler again, which now finds the
	 * answer; whatever the handler does then, the query is dropped
	 * right after. */
	sd_bus *bus = sd_bus_message_get_bus(q->request);
	r = sd_event_add_defer(sd_bus_get_event(bus), &q->defer, on_dispatched, q);
	if (r >= 0)
		r = sd_event_source_set_priority(q->defer, SD_EVENT_PRIORITY_IDLE);
	if (r >= 0)
		r = sd_bus_enqueue_for_read(bus, q->request);
	if (r < 0) {
		log_error_errno(r, "Cannot dispatch the call again after polkit answered: %m");
		(void)sd_bus_reply_method_errno(q->request, r, NULL);
		query_free(q);
	}
	return 0;
}

static int ask(sd_bus_message *m, uid_t uid, const char *action, PolkitQuery **queries,
	       sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
	sd_bus *bus = sd_bus_message_get_bus(m);
	const char *sender = sd_bus_message_get_sender(m);
	size_t n = 0, n_user = 0;
	PolkitQuery *q;
	int r;

	for (q = *queries; q; q = q->next) {
		n++;
		n_user += q->uid == uid;
	}
	if (n_user >= POLKIT_MAX_QUERIES_PER_USER || n >= POLKIT_MAX_QUERIES)
		return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
					_("Too many authorizations are waiting; try again later."));
	if (!sender)
		return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
					_("The caller cannot be identified."));
	r = sd_bus_message_new_method_call(
	    bus, &call, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
	    "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
	if (r >= 0)
		r = sd_bus_message_append(call, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name",
					  "s", sender, action, 0,
					  sd_bus_message_get_allow_interactive_authorization(m)
					      ? POLKIT_ALLOW_USER_INTERACTION
					      : 0U,
					  "");
	if (r < 0)
		return r;
	q = calloc(1, sizeof(PolkitQuery));
	if (!q)
		return -ENOMEM;
	q->request = sd_bus_message_ref(m);
	q->uid = uid;
	q->action = strdup(action);
	q->answer = -1;
	q->list = queries;
	q->next = *queries;
	*queries = q;
	if (!q->action) {
		query_free(q);
		return -ENOMEM;
	}
	r = sd_bus_call_async(bus, &q->slot, call, on_answer, q, POLKIT_TIMEOUT_USEC);
	if (r < 0) {
		query_free(q);
		return r;
	}
	return 0;
}

int polkit_verify(sd_bus_message *m, const char *action, PolkitQuery **queries, sd_bus_error *error)
{
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
	uid_t uid;
	int r;

	/* The bus driver reports the connection's effective uid
	 * (GetConnectionCredentials' UnixUserID): nothing needs the caller's
	 * /proc entry, which ProtectProc=invisible hides. */
	r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
	if (r >= 0)
		r = sd_bus_creds_get_euid(creds, &uid);
	if (r < 0)
		return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
					_("The caller cannot be identified."));
	if (uid == 0)
		return 1;

	for (PolkitQuery *q = *queries; q; q = q->next)
		if (q->request == m && streq(q->action, action)) {
			if (q->answer < 0)
				/* Dispatched again before the answer: keep
				 * waiting. */
				return 0;
			r = q->answer;
			if (!r)
				sd_bus_error_copy(error, &q->error);
			query_free(q);
			return r ? 1 : -EACCES;
		}
	r = ask(m, uid, action, queries, error);
	return r < 0 ? r : 0;
}

void polkit_queries_free(PolkitQuery **queries)
{
	while (*queries)
		query_free(*queries);
}
