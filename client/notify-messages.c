/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "action.h"
#include "bus-names.h"
#include "i18n.h"
#include "macro.h"
#include "notify.h"

/* Longest text from the CA a notification shows. */
#define CA_TEXT_MAX 300

typedef struct Body {
	FILE *f;
	char *text;
	size_t size;
	Notifier *notifier;
} Body;

static int body_open(Body *b, Notifier *n)
{
	*b = (Body){.notifier = n};
	b->f = open_memstream(&b->text, &b->size);
	return b->f ? 0 : -ENOMEM;
}

/* One line of the body: formatted, then escaped for the server. */
_printf_(2, 3) static void body_line(Body *b, const char *format, ...)
{
	_cleanup_free_ char *line = NULL, *escaped = NULL;
	va_list ap;
	int r;

	va_start(ap, format);
	r = vasprintf(&line, format, ap);
	va_end(ap);
	if (r < 0 || !(escaped = notifier_escape(b->notifier, line)))
		return;
	if (ftell(b->f) > 0)
		fputc('\n', b->f);
	fputs(escaped, b->f);
}

/* The body's text; the Body is spent. */
static char *body_close(Body *b)
{
	if (fclose(b->f) != 0) {
		free(b->text);
		return NULL;
	}
	return b->text;
}

/* A date as the user's language writes it, from protocol-v1's RFC 3339. */
static const char *format_date(const char *rfc3339, char *buf, size_t size)
{
	struct tm tm = {};
	const char *end = rfc3339 ? strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	time_t t;

	if (!end)
		return strempty(rfc3339);
	t = timegm(&tm);
	if (!localtime_r(&t, &tm) ||
	    /* TRANSLATORS: a date in notifications, as strftime(3) writes
	     * it; Vietnamese puts the day first. */
	    strftime(buf, size, _("%Y-%m-%d"), &tm) == 0)
		return rfc3339;
	return buf;
}

static const char *str_member(json_t *object, const char *key)
{
	return strempty(json_string_value(json_object_get(object, key)));
}

/* The most actions a token's notification offers, Open included. */
#define ACTIONS_MAX 8

static void show(AgentToken *t, Shown shown, const char *offered, const Notification *n)
{
	Agent *a = t->agent;
	const char *actions[2 * ACTIONS_MAX + 1] = {};
	Notification with_open = *n;
	bool has_default = false;
	size_t i = 0;

	/* Every token's notification opens the window on the token, where it
	 * is installed: with Open, and with a click on the notification unless
	 * the click already does the one thing the notification is for
	 * (Activate now). */
	for (const char *const *p = n->actions; p && p[0] && p[1] && i < 2 * (ACTIONS_MAX - 2);
	     p += 2) {
		has_default |= streq(p[0], "default");
		actions[i++] = p[0];
		actions[i++] = p[1];
	}
	if (window_available(a)) {
		if (!has_default) {
			actions[i++] = "default";
			actions[i++] = _("Open");
		}
		actions[i++] = "open";
		actions[i++] = _("Open");
		with_open.actions = actions;
	}
	free(t->offered_action);
	t->offered_action = offered ? strdup(offered) : NULL;
	if (notifier_show(a->notifier, &t->notification, &with_open) >= 0)
		t->shown = shown;
}

void show_message(Agent *a, uint32_t *id, const char *icon, const char *summary, const char *body)
{
	Body b;
	_cleanup_free_ char *text = NULL;

	if (body_open(&b, a->notifier) < 0)
		return;
	body_line(&b, "%s", body);
	text = body_close(&b);
	(void)notifier_show(a->notifier, id,
			    &(Notification){.summary = summary,
					    .body = text,
					    .icon = icon,
					    .urgency = URGENCY_NORMAL,
					    .progress = -1});
}

static void pin_status_lines(Body *b, AgentToken *t)
{
	const char *status = token_str(t, "PinStatus");
	const char *support = token_str(t, "Support");

	if (streq(status, "count-low"))
		body_line(b, _("A wrong PIN was entered: the token locks after a few more wrong "
			       "tries."));
	else if (streq(status, "final-try"))
		body_line(b, _("Only one PIN try is left: one more wrong PIN locks the token."));
	else if (streq(status, "locked"))
		body_line(b, _("The PIN is locked: the token cannot sign until your CA unlocks "
			       "it."));
	else
		return;
	if (!isempty(support))
		body_line(b, _("Your CA's support: %s"), support);
}

void show_inserted(AgentToken *t)
{
	json_t *current = token_current_certificate(t);
	_cleanup_free_ char *summary = NULL, *text = NULL;
	const char *const actions[] = {"change-pin", _("Change PIN"), NULL};
	bool must_change = json_is_true(json_object_get(t->props, "PinMustChange")) &&
			   !streq(token_str(t, "PinStatus"), "locked");
	bool warn = !streq(token_str(t, "PinStatus"), "ok") || must_change;
	char date[64];
	Body b;

	if (body_open(&b, t->agent->notifier) < 0)
		return;
	if (current) {
		json_int_t days = json_integer_value(json_object_get(t->props, "DaysLeft"));
		const char *until =
		    format_date(str_member(current, "not_after"), date, sizeof(date));
		body_line(&b, "%s", token_display_name(t));
		if (days >= 0)
			body_line(&b,
				  ngettext("Certificate %s: %lld day left (valid until %s).",
					   "Certificate %s: %lld days left (valid until %s).",
					   (unsigned long)days),
				  str_member(current, "serial"), (long long)days, until);
		else
			body_line(&b, _("Certificate %s expired on %s."),
				  str_member(current, "serial"), until);
		warn |= days <= 30;
	} else {
		body_line(&b, _("There is no certificate with its key on this token."));
	}
	pin_status_lines(&b, t);
	if (must_change && notifier_has_actions(t->agent->notifier))
		body_line(&b, _("The token asks for a new PIN before it is used: choose Change "
				"PIN."));
	else if (must_change)
		body_line(&b,
			  _("The token asks for a new PIN before it is used: run `safectl pin "
			    "change %s`."),
			  token_str(t, "Serial"));
	text = body_close(&b);
	if (asprintf(&summary, _("Token %s plugged in"),
		     isempty(token_str(t, "Label")) ? token_str(t, "Serial")
						    : token_str(t, "Label")) < 0)
		return;
	show(t, SHOWN_INSERTED, NULL,
	     &(Notification){.summary = summary,
			     .body = text,
			     .icon = warn ? "dialog-warning" : "security-high",
			     .actions = must_change ? actions : NULL,
			     .urgency = URGENCY_NORMAL,
			     .progress = -1,
			     .persistent = must_change});
}

/* The changed attributes of a change of information, one line each. */
static void changes_lines(Body *b, json_t *now, json_t *next)
{
	size_t i;
	json_t *pair;

	json_array_foreach(next, i, pair)
	{
		const char *attribute = json_string_value(json_array_get(pair, 0));
		const char *value = json_string_value(json_array_get(pair, 1));
		const char *old = attribute ? name_get(now, attribute) : NULL;
		_cleanup_free_ char *old_clean = NULL, *new_clean = NULL;

		if (!attribute || !value || streq_ptr(old, value))
			continue;
		new_clean = ca_text_clean(value, CA_TEXT_MAX);
		old_clean = old ? ca_text_clean(old, CA_TEXT_MAX) : NULL;
		if (!new_clean)
			continue;
		if (old_clean)
			body_line(b, "%s: %s → %s", attribute, old_clean, new_clean);
		else
			body_line(b, _("%s: %s (new)"), attribute, new_clean);
	}
	json_array_foreach(now, i, pair)
	{
		const char *attribute = json_string_value(json_array_get(pair, 0));
		if (attribute && !name_get(next, attribute))
			body_line(b, _("%s: removed"), attribute);
	}
}

/* The three things to know before activating, short. A CMP CA is never
 * told to keep the previous registration: the user has to ask it. */
static void warning_lines(Body *b, bool cmp)
{
	body_line(b, _("Before you activate:"));
	body_line(b, _("• The serial number changes: register the new certificate again with "
		       "every agency (tax, customs, e-invoice, social insurance, "
		       "e-procurement)."));
	body_line(b, _("• Customs and e-invoice accept it only 24 hours after registration: "
		       "sign pending invoices and declarations first."));
	if (cmp)
		body_line(b, _("• For public bidding to go on, ask the CA yourself to keep the "
			       "previous certificate's registration."));
	else
		body_line(b, _("• The previous certificate's registration is kept, so public "
			       "bidding goes on."));
}

void show_pending(AgentToken *t, json_t *action)
{
	Agent *a = t->agent;
	const char *const actions[] = {
	    "default", _("Activate now"), "activate", _("Activate now"), "later", _("Later"), NULL,
	};
	const char *const refused_actions[] = {"later", _("Later"), NULL};
	json_t *current = token_current_certificate(t);
	bool renew = streq(str_member(action, "type"), "renew");
	_cleanup_free_ char *summary = NULL, *text = NULL, *message = NULL;
	_cleanup_json_ json_t *refusals = json_loads(token_str(t, "NotActivatable"), 0, NULL);
	const char *why =
	    json_string_value(json_object_get(refusals, strempty(str_member(action, "id"))));
	char from[64], to[64];
	Body b;

	if (body_open(&b, a->notifier) < 0)
		return;
	if (why) {
		/* Known before the CA and the PIN: this token cannot do it.
		 * No button that would fail. */
		body_line(&b, _("This token cannot carry it out: %s."), why);
		body_line(&b, _("Nothing was sent to the CA. Support: %s."),
			  token_str(t, "Support"));
		text = body_close(&b);
		if (asprintf(&summary,
			     renew ? _("Renewal not possible on %s")
				   : _("Change of information not possible on %s"),
			     token_display_name(t)) < 0)
			return;
		show(t, SHOWN_PENDING, str_member(action, "id"),
		     &(Notification){.summary = summary,
				     .body = text,
				     .icon = "dialog-warning",
				     .actions = refused_actions,
				     .urgency = URGENCY_NORMAL,
				     .progress = -1,
				     .persistent = true});
		return;
	}
	if (renew && !json_is_string(json_object_get(action, "not_after")))
		body_line(&b, _("New validity: set by the CA when it issues the certificate."));
	else if (renew) {
		body_line(&b, _("New validity: %s to %s."),
			  format_date(str_member(action, "not_before"), from, sizeof(from)),
			  format_date(str_member(action, "not_after"), to, sizeof(to)));
	} else {
		body_line(&b, _("The CA changes:"));
		changes_lines(&b, current ? json_object_get(current, "subject") : NULL,
			      json_object_get(action, "subject"));
	}
	if (json_is_string(json_object_get(action, "message"))) {
		message = ca_text_clean(str_member(action, "message"), CA_TEXT_MAX);
		if (message)
			body_line(&b, _("The CA says: %s"), message);
	}
	warning_lines(&b, streq(str_member(action, "protocol"), "cmp"));
	if (!notifier_has_actions(a->notifier))
		body_line(&b, _("To activate, run: safectl activate %s"), token_str(t, "Serial"));
	text = body_close(&b);
	if (asprintf(&summary,
		     renew ? _("Renewal ready for %s") : _("Change of information ready for %s"),
		     token_display_name(t)) < 0)
		return;
	show(t, SHOWN_PENDING, str_member(action, "id"),
	     &(Notification){.summary = summary,
			     .body = text,
			     .icon = "software-update-available",
			     .actions = actions,
			     .urgency = URGENCY_NORMAL,
			     .progress = -1,
			     .persistent = true});
}

void show_progress(AgentToken *t, const char *step)
{
	_cleanup_free_ char *summary = NULL, *text = NULL;
	size_t done = 0;
	Body b;

	done = activation_step_number(step);
	if (body_open(&b, t->agent->notifier) < 0)
		return;
	if (done > 0)
		body_line(&b, _("Step %zu of %zu: %s."), done, (size_t)ACTIVATION_STEPS,
			  _(activation_steps[done - 1].text));
	else
		body_line(&b, _("Starting…"));
	body_line(&b, _("Keep the token plugged in."));
	text = body_close(&b);
	if (asprintf(&summary, _("Activating the certificate of %s"), token_display_name(t)) < 0)
		return;
	show(t, SHOWN_PROGRESS, NULL,
	     &(Notification){.summary = summary,
			     .body = text,
			     .icon = "emblem-synchronizing",
			     .urgency = URGENCY_NORMAL,
			     .progress = (int)(done * 100 / ACTIVATION_STEPS),
			     .persistent = true});
}

void show_result(AgentToken *t, json_t *result)
{
	bool renew = streq(str_member(result, "type"), "renew");
	_cleanup_free_ char *text = NULL;
	Body b;

	if (body_open(&b, t->agent->notifier) < 0)
		return;
	body_line(&b, _("New certificate serial: %s (it was %s)."),
		  str_member(result, "new_serial"), str_member(result, "old_serial"));
	if (!json_is_true(json_object_get(result, "confirmed")))
		body_line(&b, _("The CA has not heard that it is done yet; safecad tells it at the "
				"next activation."));
	body_line(&b, _("The previous certificate stays on the token."));
	text = body_close(&b);
	show(t, SHOWN_RESULT, NULL,
	     &(Notification){.summary = renew ? _("Certificate renewed")
					      : _("Certificate information changed"),
			     .body = text,
			     .icon = "security-high",
			     .urgency = URGENCY_NORMAL,
			     .progress = -1});
}

/* Something went wrong: it stays until the user has seen it, with what can
 * be tried again. */
static void show_failure(AgentToken *t, const char *offered, const char *summary, const char *body,
			 const char *const *actions)
{
	show(t, SHOWN_ERROR, offered,
	     &(Notification){.summary = summary,
			     .body = body,
			     .icon = "dialog-error",
			     .actions = actions,
			     .urgency = URGENCY_CRITICAL,
			     .progress = -1,
			     .persistent = true});
}

void show_error(AgentToken *t, const char *name, const char *message)
{
	Agent *a = t->agent;
	const char *const retry[] = {
	    "default", _("Activate now"), "activate", _("Activate now"), "later", _("Later"), NULL,
	};
	_cleanup_json_ json_t *action = t->announced ? token_pending_action(t, t->announced) : NULL;
	const char *support = token_str(t, "Support");
	const char *summary = _("The activation failed");
	bool offer = action != NULL, support_shown = false, tries = false;
	_cleanup_free_ char *text = NULL;
	Body b;

	if (body_open(&b, a->notifier) < 0)
		return;
	if (streq_ptr(name, SAFECAD_ERROR_WRONG_PIN)) {
		summary = _("Wrong PIN");
		body_line(&b, _("Nothing was changed on the token."));
		tries = true;
	} else if (streq_ptr(name, SAFECAD_ERROR_PIN_LOCKED)) {
		summary = _("The PIN is locked");
		body_line(&b, _("The token refuses every PIN until your CA unlocks it."));
		offer = false;
	} else if (streq_ptr(name, SAFECAD_ERROR_FINAL_TRY)) {
		summary = _("Only one PIN try is left");
		body_line(&b, _("Nothing was tried: a wrong PIN now would lock the token."));
	} else if (streq_ptr(name, SAFECAD_ERROR_TOKEN_GONE)) {
		summary = _("The token was pulled out");
		body_line(&b, _("Plug it in again and choose Activate now: the activation goes on "
				"from where it stopped, with the same key."));
	} else if (streq_ptr(name, SAFECAD_ERROR_CA)) {
		summary = _("The CA did not answer as it should");
		body_line(&b, _("Nothing was written to the token."));
		support_shown = true; /* safecad's message ends with it */
	} else if (streq_ptr(name, SAFECAD_ERROR_DRIVER_FAILED)) {
		summary = _("The token's driver failed");
		body_line(&b,
			  _("Take the token out, plug it in again and choose Activate now: "
			    "the activation goes on from where it stopped, with the same key."));
	} else if (streq_ptr(name, SAFECAD_ERROR_BUSY)) {
		summary = _("The token is busy");
		body_line(&b, _("Another task runs on it; try again in a moment."));
	} else if (sd_bus_error_has_names(&SD_BUS_ERROR_MAKE_CONST(strempty(name), NULL),
					  SD_BUS_ERROR_ACCESS_DENIED,
					  "org.freedesktop.PolicyKit1.Error.NotAuthorized")) {
		summary = _("Not allowed");
		body_line(&b, _("This account may not activate certificates on this computer."));
		offer = false;
	} else if (sd_bus_error_has_names(&SD_BUS_ERROR_MAKE_CONST(strempty(name), NULL),
					  SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED,
					  SD_BUS_ERROR_SERVICE_UNKNOWN,
					  SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
		summary = _("safecad stopped during the activation");
		body_line(&b, _("Choose Activate now again once it is back: the activation goes "
				"on from where it stopped."));
		message = NULL;
	}
	if (!isempty(message)) {
		_cleanup_free_ char *clean = ca_text_clean(message, CA_TEXT_MAX);
		if (clean)
			body_line(&b, "%s", clean);
	}
	/* The token's own count of the tries left, with whom to call. */
	if (tries && !streq(token_str(t, "PinStatus"), "ok")) {
		pin_status_lines(&b, t);
		support_shown = true;
	}
	if (!support_shown && !isempty(support))
		body_line(&b, _("Your CA's support: %s"), support);
	if (offer && !notifier_has_actions(a->notifier))
		body_line(&b, _("To try again, run: safectl activate %s"), token_str(t, "Serial"));
	text = body_close(&b);
	show_failure(t, offer ? t->announced : NULL, summary, text, offer ? retry : NULL);
}

void show_expiry(AgentToken *t, const char *serial, int days_left)
{
	Agent *a = t->agent;
	const char *const actions[] = {
	    "default", _("Activate now"), "activate", _("Activate now"), "later", _("Later"), NULL,
	};
	_cleanup_json_ json_t *action = token_pending_action(t, NULL);
	const char *support = token_str(t, "Support");
	_cleanup_free_ char *summary = NULL, *text = NULL;
	Body b;
	int r;

	if (body_open(&b, a->notifier) < 0)
		return;
	body_line(&b, _("Certificate %s of %s."), serial, token_display_name(t));
	if (action)
		body_line(&b, _("Your CA has its renewal ready: choose Activate now."));
	else
		body_line(&b, _("Ask your CA to renew it before then%s%s."),
			  isempty(support) ? "" : ": ", support);
	if (action && !notifier_has_actions(a->notifier))
		body_line(&b, _("To activate, run: safectl activate %s"), token_str(t, "Serial"));
	text = body_close(&b);
	if (days_left >= 0)
		r = asprintf(&summary,
			     ngettext("The certificate expires in %d day",
				      "The certificate expires in %d days",
				      (unsigned long)days_left),
			     days_left);
	else
		r = asprintf(&summary, "%s", _("The certificate has expired"));
	if (r < 0)
		return;
	show(t, SHOWN_EXPIRY, action ? str_member(action, "id") : NULL,
	     &(Notification){.summary = summary,
			     .body = text,
			     .icon = "dialog-warning",
			     .actions = action ? actions : NULL,
			     .urgency = days_left <= 7 ? URGENCY_CRITICAL : URGENCY_NORMAL,
			     .progress = -1,
			     .persistent = days_left <= 7});
}

void show_reminder(Agent *a, Reminder *reminder)
{
	const char *const actions[] = {
	    "default",	 _("Open checklist"), "export", _("Export certificate"),
	    "checklist", _("Open checklist"), NULL,
	};
	json_t *entry = reminder->entry, *agency;
	_cleanup_free_ char *text = NULL;
	size_t i;
	Body b;

	if (body_open(&b, a->notifier) < 0)
		return;
	body_line(&b, _("Token %s now has certificate %s. Register it with:"),
		  str_member(entry, "token"), str_member(entry, "new_serial"));
	json_array_foreach(json_object_get(entry, "agencies"), i, agency)
	{
		if (!json_is_true(json_object_get(agency, "done")))
			body_line(&b, "☐ %s — %s", str_member(agency, "name"),
				  str_member(agency, "url"));
	}
	body_line(&b, _("Tick each one when it is done: safectl agencies done ID"));
	if (!notifier_has_actions(a->notifier))
		body_line(&b, _("To save the certificate: safectl export -o FILE"));
	if (!isempty(reminder->saved))
		body_line(&b, "%s", reminder->saved);
	text = body_close(&b);
	(void)notifier_show(a->notifier, &reminder->notification,
			    &(Notification){.summary = _("Step 3: register the new certificate"),
					    .body = text,
					    .icon = "task-due",
					    .actions = actions,
					    .urgency = URGENCY_NORMAL,
					    .progress = -1,
					    .persistent = true});
}

void show_pin_changed(AgentToken *t)
{
	_cleanup_free_ char *text = NULL;
	Body b;

	if (body_open(&b, t->agent->notifier) < 0)
		return;
	body_line(&b,
		  _("Token %s has its new PIN. Keep it to yourself: a few wrong tries lock "
		    "the token."),
		  token_str(t, "Serial"));
	text = body_close(&b);
	show(t, SHOWN_RESULT, NULL,
	     &(Notification){.summary = _("PIN changed"),
			     .body = text,
			     .icon = "security-high",
			     .urgency = URGENCY_NORMAL,
			     .progress = -1});
}

void show_pin_change_error(AgentToken *t, const char *name, const char *message)
{
	const char *const retry[] = {"change-pin", _("Change PIN"), NULL};
	const char *support = token_str(t, "Support");
	const char *summary = _("The PIN was not changed");
	bool offer = true, support_shown = false;
	_cleanup_free_ char *text = NULL;
	Body b;

	if (body_open(&b, t->agent->notifier) < 0)
		return;
	if (streq_ptr(name, SAFECAD_ERROR_WRONG_PIN)) {
		summary = _("Wrong PIN");
		body_line(&b, _("The current PIN was wrong: the PIN was not changed."));
	} else if (streq_ptr(name, SAFECAD_ERROR_PIN_LOCKED)) {
		summary = _("The PIN is locked");
		body_line(&b, _("The token refuses every PIN until your CA unlocks it."));
		offer = false;
	} else if (sd_bus_error_has_names(&SD_BUS_ERROR_MAKE_CONST(strempty(name), NULL),
					  SD_BUS_ERROR_ACCESS_DENIED,
					  "org.freedesktop.PolicyKit1.Error.NotAuthorized")) {
		summary = _("Not allowed");
		body_line(&b, _("This account may not change the PIN of tokens on this computer."));
		offer = false;
	}
	if (!isempty(message)) {
		_cleanup_free_ char *clean = ca_text_clean(message, CA_TEXT_MAX);
		if (clean)
			body_line(&b, "%s", clean);
	}
	if (!streq(token_str(t, "PinStatus"), "ok")) {
		pin_status_lines(&b, t);
		support_shown = true;
	}
	if (!support_shown && !isempty(support) && streq_ptr(name, SAFECAD_ERROR_PIN_LOCKED))
		body_line(&b, _("Your CA's support: %s"), support);
	text = body_close(&b);
	show_failure(t, NULL, summary, text, offer ? retry : NULL);
}
