/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notify.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "action.h"
#include "build-config.h"
#include "bus-json.h"
#include "bus-names.h"
#include "history-json.h"
#include "i18n.h"
#include "macro.h"

#define AGENT_BUS_NAME "org.safecad.Notify"
#define ACTIVATE_TIMEOUT_USEC (20ULL * 60 * 1000000)
#define CALL_TIMEOUT_USEC (30ULL * 1000000)

static void token_check_pending(AgentToken *t);
static void read_history(Agent *a, const char *serial);

/* --- tokens ------------------------------------------------------------- */

const char *token_str(AgentToken *t, const char *property)
{
	const char *s = json_string_value(json_object_get(t->props, property));
	return s ? s : "";
}

json_t *token_current_certificate(AgentToken *t)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(t->props, "Certificates"), i, c)
	{
		if (json_is_true(json_object_get(c, "current")))
			return c;
	}
	return NULL;
}

const char *token_display_name(AgentToken *t)
{
	json_t *current = token_current_certificate(t);
	const char *cn = current ? name_get(json_object_get(current, "subject"), "CN") : NULL;

	if (!isempty(cn))
		return cn;
	if (!isempty(token_str(t, "Label")))
		return token_str(t, "Label");
	return token_str(t, "Serial");
}

json_t *token_pending_action(AgentToken *t, const char *id)
{
	json_t *pending = json_loads(token_str(t, "Pending"), 0, NULL);
	json_t *found = NULL, *action;
	size_t i;

	json_array_foreach(pending, i, action)
	{
		if (!action_activatable(action))
			continue;
		if (id ? streq_ptr(json_string_value(json_object_get(action, "id")), id) : true) {
			found = json_incref(action);
			break;
		}
	}
	json_decref(pending);
	return found;
}

static AgentToken *token_find(Agent *a, const char *path)
{
	for (size_t i = 0; i < a->n_tokens; i++)
		if (streq(a->tokens[i]->path, path))
			return a->tokens[i];
	return NULL;
}

static AgentToken *token_by_notification(Agent *a, uint32_t id)
{
	for (size_t i = 0; id && i < a->n_tokens; i++)
		if (a->tokens[i]->notification == id)
			return a->tokens[i];
	return NULL;
}

static AgentToken *token_add(Agent *a, const char *path)
{
	AgentToken *t = token_find(a, path), **tokens;

	if (t)
		return t;
	tokens = reallocarray(a->tokens, a->n_tokens + 1, sizeof(*tokens));
	if (!tokens)
		return NULL;
	a->tokens = tokens;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->path = strdup(path)) || !(t->props = json_object())) {
		if (t)
			free(t->path);
		free(t);
		return NULL;
	}
	t->agent = a;
	a->tokens[a->n_tokens++] = t;
	return t;
}

static void token_free(AgentToken *t)
{
	sd_bus_slot_unref(t->activate_call);
	sd_bus_slot_unref(t->change_pin_call);
	sd_bus_slot_unref(t->refresh_call);
	json_decref(t->props);
	free(t->path);
	free(t->offered_action);
	free(t->announced);
	free(t->activating);
	free(t->expiry_serial);
	free(t);
}

/* Forgets t; its notification is closed unless it still has something to
 * say (the outcome of an activation the token left during). */
static void token_remove(Agent *a, AgentToken *t, bool close)
{
	for (size_t i = 0; i < a->n_tokens; i++)
		if (a->tokens[i] == t) {
			memmove(a->tokens + i, a->tokens + i + 1,
				(a->n_tokens - i - 1) * sizeof(*a->tokens));
			a->n_tokens--;
			break;
		}
	if (a->pin_token_path && streq(a->pin_token_path, t->path)) {
		a->pinentry = pinentry_free(a->pinentry);
		a->pin_current = pin_free(a->pin_current);
		a->pin_new = pin_free(a->pin_new);
	}
	if (close)
		notifier_close(a->notifier, t->notification);
	token_free(t);
}

static int set_string(char **where, const char *value)
{
	char *copy = NULL;

	if (value && !(copy = strdup(value)))
		return -ENOMEM;
	free(*where);
	*where = copy;
	return 0;
}

/* Brings in the members of an a{sv} of Token1 properties. */
static int token_merge_properties(AgentToken *t, sd_bus_message *m)
{
	_cleanup_json_ json_t *props = NULL;
	int r = bus_read_json(m, NULL, &props);

	if (r < 0)
		return r;
	if (!json_is_object(props))
		return -EBADMSG;
	return json_object_update(t->props, props) < 0 ? -ENOMEM : 0;
}

/* After the properties were read: say what a person should know. */
static void token_properties_read(AgentToken *t)
{
	t->props_read = true;
	if (t->expiry_serial) {
		_cleanup_free_ char *serial = TAKE_PTR(t->expiry_serial);
		/* The warning says all "plugged in" would, and more. */
		t->announce_insert = false;
		show_expiry(t, serial, t->expiry_days);
		read_history(t->agent, token_str(t, "Serial"));
	}
	if (t->announce_insert) {
		t->announce_insert = false;
		show_inserted(t);
		read_history(t->agent, token_str(t, "Serial"));
	}
	token_check_pending(t);
}

static int on_token_properties(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	AgentToken *t = userdata;

	t->refresh_call = sd_bus_slot_unref(t->refresh_call);
	if (sd_bus_message_is_method_error(m, NULL)) {
		/* Gone meanwhile: TokenRemoved follows or already came. */
		return 0;
	}
	if (token_merge_properties(t, m) < 0)
		return 0;
	token_properties_read(t);
	return 0;
}

static void token_refresh(AgentToken *t)
{
	Agent *a = t->agent;

	if (!a->daemon)
		return;
	t->refresh_call = sd_bus_slot_unref(t->refresh_call);
	(void)sd_bus_call_method_async(a->system, &t->refresh_call, a->daemon, t->path,
				       "org.freedesktop.DBus.Properties", "GetAll",
				       on_token_properties, t, "s", SAFECAD_TOKEN_INTERFACE);
}

/* Announces an activatable action the user has not been told of yet. */
static void token_check_pending(AgentToken *t)
{
	_cleanup_json_ json_t *action = NULL;
	const char *id;

	if (t->activating || !json_is_true(json_object_get(t->props, "Present")))
		return;
	action = token_pending_action(t, NULL);
	if (!action) {
		/* The CA withdrew what the notification still offers: back to
		 * what the token holds, without a button that would fail. */
		bool stale = t->announced && t->offered_action &&
			     (t->shown == SHOWN_PENDING || t->shown == SHOWN_ERROR ||
			      t->shown == SHOWN_EXPIRY);
		(void)set_string(&t->announced, NULL);
		if (stale)
			show_inserted(t);
		return;
	}
	id = json_string_value(json_object_get(action, "id"));
	if (streq_ptr(id, t->announced))
		return;
	if (set_string(&t->announced, id) < 0)
		return;
	show_pending(t, action);
}

/* --- activation --------------------------------------------------------- */

static int on_activate_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	AgentToken *t = userdata;
	const sd_bus_error *error = sd_bus_message_get_error(m);

	t->activate_call = sd_bus_slot_unref(t->activate_call);
	/* The outcome came as ActivationFinished already, unless the call
	 * failed before an activation began (polkit, busy) or safecad went
	 * away in the middle. */
	if (error && !t->finished_seen)
		show_error(t, error->name, error->message);
	(void)set_string(&t->activating, NULL);
	t->finished_seen = false;
	/* Pulled out while it ran: now the token can go, its outcome stays
	 * on screen. */
	if (t->removed)
		token_remove(t->agent, t, false);
	return 0;
}

static int start_activate_call(AgentToken *t, const char *action, Pin *pin, bool final_try)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
	_cleanup_close_ int read_end = -1;
	Agent *a = t->agent;
	int r;

	if (!a->daemon)
		return -ENOTCONN;
	read_end = pin_pipe(pin);
	if (read_end < 0)
		return read_end;
	r = sd_bus_message_new_method_call(a->system, &call, a->daemon, t->path,
					   SAFECAD_TOKEN_INTERFACE, "Activate");
	if (r >= 0)
		r = sd_bus_message_append(call, "sh", action, read_end);
	/* The user saw the final-try warning and went on: that is consent. */
	if (r >= 0)
		r = sd_bus_message_append(call, "a{sv}", 2, "keep_previous", "b", 1,
					  "allow_final_try", "b", final_try);
	/* Polkit may ask the user to authenticate on our behalf. */
	if (r >= 0)
		r = sd_bus_message_set_allow_interactive_authorization(call, 1);
	if (r >= 0)
		r = sd_bus_call_async(a->system, &t->activate_call, call, on_activate_reply, t,
				      ACTIVATE_TIMEOUT_USEC);
	if (r < 0)
		return r;
	t->finished_seen = false;
	return set_string(&t->activating, action);
}

static void on_change_pin_dialogue(Agent *a, AgentToken *t, Pin *pin, int r);

static void on_pin(void *userdata, Pin *pin, int r)
{
	Agent *a = userdata;
	AgentToken *t = token_find(a, a->pin_token_path);
	_cleanup_json_ json_t *action = NULL;
	bool final_try;

	a->pinentry = pinentry_free(a->pinentry);
	if (a->pin_purpose != PIN_FOR_ACTIVATION) {
		on_change_pin_dialogue(a, t, pin, r);
		return;
	}
	if (!t) {
		pin_free(pin);
		return;
	}
	action = token_pending_action(t, a->pin_action);
	if (r < 0) {
		/* Cancelled or failed: offer the action again, nothing else. */
		if (r != -ECANCELED && r != -ENODATA)
			show_error(t, NULL, strerror(-r));
		else if (action)
			show_pending(t, action);
		pin_free(pin);
		return;
	}
	final_try = streq(token_str(t, "PinStatus"), "final-try");
	r = action ? start_activate_call(t, a->pin_action, pin, final_try) : -ENOENT;
	pin_free(pin);
	if (r == -ENOENT)
		show_error(t, SAFECAD_ERROR_NOTHING_TO_DO,
			   _("The CA no longer lists this action."));
	else if (r < 0)
		show_error(t, NULL, strerror(-r));
	else
		show_progress(t, NULL);
}

/* What the user confirms before the token's last PIN try; NULL when out of
 * memory. */
static char *final_try_warning(AgentToken *t)
{
	const char *support = token_str(t, "Support");
	char *text;

	if (asprintf(&text,
		     _("Only ONE try is left. If the PIN you enter now is wrong, the token locks "
		       "and only your CA can unlock it%s%s.\n\nGo on only if you are sure of the "
		       "PIN."),
		     isempty(support) ? "" : ": ", support) < 0)
		return NULL;
	return text;
}

/* "Activate now": asks for the PIN, then calls safecad. */
static void token_activate(AgentToken *t)
{
	Agent *a = t->agent;
	_cleanup_json_ json_t *action = token_pending_action(t, t->offered_action);
	_cleanup_free_ char *description = NULL, *confirm = NULL;
	const char *pin_status = token_str(t, "PinStatus");
	json_t *current = token_current_certificate(t);
	bool renew;
	int r;

	if (!action || t->activating || a->pinentry)
		return;
	if (streq(pin_status, "locked")) {
		show_error(t, SAFECAD_ERROR_PIN_LOCKED, NULL);
		return;
	}
	renew = streq(json_string_value(json_object_get(action, "type")), "renew");
	if (asprintf(&description,
		     renew ? _("Enter the PIN of token %s to renew the certificate of\n%s\n(serial "
			       "%s).")
			   : _("Enter the PIN of token %s to change the information in the "
			       "certificate of\n%s\n(serial %s)."),
		     token_str(t, "Serial"), token_display_name(t),
		     current ? json_string_value(json_object_get(current, "serial")) : "-") < 0)
		return;
	if (streq(pin_status, "final-try") && !(confirm = final_try_warning(t)))
		return;
	if (set_string(&a->pin_token_path, t->path) < 0 ||
	    set_string(&a->pin_action, json_string_value(json_object_get(action, "id"))) < 0)
		return;
	a->pin_purpose = PIN_FOR_ACTIVATION;
	r = pinentry_start(
	    a->event,
	    &(PinentryRequest){
		.title = _("safecad: activate the certificate"),
		.description = description,
		.prompt = _("PIN:"),
		.error = streq(pin_status, "count-low")
			     ? _("A wrong PIN was entered before: the token locks after a few "
				 "wrong tries.")
			     : NULL,
		.confirm = confirm,
		.ok_label = confirm ? _("Continue") : NULL,
		.cancel_label = confirm ? _("Cancel") : NULL,
	    },
	    on_pin, a, &a->pinentry);
	if (r < 0) {
		_cleanup_free_ char *message = NULL;
		if (asprintf(&message, _("Cannot ask for the PIN (%s): %s."),
			     isempty(getenv("PINENTRY")) ? "pinentry" : getenv("PINENTRY"),
			     strerror(-r)) >= 0)
			show_error(t, NULL, message);
	}
}

/* --- changing the PIN ------------------------------------------------------ */

static void forget_pins(Agent *a)
{
	a->pin_current = pin_free(a->pin_current);
	a->pin_new = pin_free(a->pin_new);
}

static int on_change_pin_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	AgentToken *t = userdata;
	const sd_bus_error *error = sd_bus_message_get_error(m);

	t->change_pin_call = sd_bus_slot_unref(t->change_pin_call);
	if (error)
		show_pin_change_error(t, error->name, error->message);
	else
		show_pin_changed(t);
	return 0;
}

static int start_change_pin_call(AgentToken *t, bool final_try)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
	_cleanup_close_ int current = -1, next = -1;
	Agent *a = t->agent;
	int r;

	if (!a->daemon)
		return -ENOTCONN;
	current = pin_pipe(a->pin_current);
	if (current < 0)
		return current;
	next = pin_pipe(a->pin_new);
	if (next < 0)
		return next;
	r = sd_bus_message_new_method_call(a->system, &call, a->daemon, t->path,
					   SAFECAD_TOKEN_INTERFACE, "ChangePin");
	if (r >= 0)
		r = sd_bus_message_append(call, "hh", current, next);
	if (r >= 0)
		r = sd_bus_message_append(call, "a{sv}", 1, "allow_final_try", "b", final_try);
	if (r >= 0)
		r = sd_bus_message_set_allow_interactive_authorization(call, 1);
	if (r >= 0)
		r = sd_bus_call_async(a->system, &t->change_pin_call, call, on_change_pin_reply, t,
				      CALL_TIMEOUT_USEC);
	return r;
}

/* The next dialogue of a PIN change; error is shown above its entry. */
static void ask_change_pin(AgentToken *t, int purpose, const char *error)
{
	Agent *a = t->agent;
	_cleanup_free_ char *description = NULL, *confirm = NULL;
	json_int_t min = json_integer_value(json_object_get(t->props, "PinMinLength"));
	json_int_t max = json_integer_value(json_object_get(t->props, "PinMaxLength"));
	int r;

	if (purpose == PIN_CURRENT)
		r = asprintf(&description, _("Enter the current PIN of token %s."),
			     token_str(t, "Serial"));
	else if (purpose == PIN_NEW && min > 0 && max > 0)
		r = asprintf(&description,
			     _("Enter the new PIN for token %s: from %lld to %lld characters."),
			     token_str(t, "Serial"), (long long)min, (long long)max);
	else if (purpose == PIN_NEW)
		r = asprintf(&description, _("Enter the new PIN for token %s."),
			     token_str(t, "Serial"));
	else
		r = asprintf(&description, _("Enter the new PIN for token %s once more."),
			     token_str(t, "Serial"));
	if (r < 0)
		return;
	if (purpose == PIN_CURRENT && streq(token_str(t, "PinStatus"), "final-try") &&
	    !(confirm = final_try_warning(t)))
		return;
	if (set_string(&a->pin_token_path, t->path) < 0)
		return;
	a->pin_purpose = purpose;
	r = pinentry_start(a->event,
			   &(PinentryRequest){
			       .title = _("safecad: change the PIN"),
			       .description = description,
			       .prompt = purpose == PIN_CURRENT ? _("Current PIN:") : _("New PIN:"),
			       .error = error,
			       .confirm = confirm,
			       .ok_label = confirm ? _("Continue") : NULL,
			       .cancel_label = confirm ? _("Cancel") : NULL,
			   },
			   on_pin, a, &a->pinentry);
	if (r < 0) {
		forget_pins(a);
		show_pin_change_error(t, NULL, strerror(-r));
	}
}

/* "Change PIN": three dialogues, then one C_SetPIN through safecad. */
static void token_change_pin(AgentToken *t)
{
	Agent *a = t->agent;

	if (a->pinentry || t->activating || t->change_pin_call)
		return;
	if (streq(token_str(t, "PinStatus"), "locked")) {
		show_pin_change_error(t, SAFECAD_ERROR_PIN_LOCKED, NULL);
		return;
	}
	forget_pins(a);
	ask_change_pin(t, PIN_CURRENT, NULL);
}

static void on_change_pin_dialogue(Agent *a, AgentToken *t, Pin *pin, int r)
{
	json_int_t min, max;
	int purpose = a->pin_purpose;

	if (!t || r < 0) {
		/* Cancelled, or the token went: nothing is changed. */
		pin_free(pin);
		forget_pins(a);
		if (t && r != -ECANCELED && r != -ENODATA)
			show_pin_change_error(t, NULL, strerror(-r));
		return;
	}
	if (purpose == PIN_CURRENT) {
		a->pin_current = pin;
		ask_change_pin(t, PIN_NEW, NULL);
		return;
	}
	if (purpose == PIN_NEW) {
		min = json_integer_value(json_object_get(t->props, "PinMinLength"));
		max = json_integer_value(json_object_get(t->props, "PinMaxLength"));
		/* The token's own limits, checked before it is touched. */
		if ((min > 0 && (json_int_t)pin->size < min) ||
		    (max > 0 && (json_int_t)pin->size > max)) {
			_cleanup_free_ char *error = NULL;
			pin_free(pin);
			if (asprintf(&error, _("The PIN must have from %lld to %lld characters."),
				     (long long)min, (long long)(max > 0 ? max : PIN_MAX - 1)) < 0)
				error = NULL;
			ask_change_pin(t, PIN_NEW, error);
			return;
		}
		a->pin_new = pin;
		ask_change_pin(t, PIN_NEW_AGAIN, NULL);
		return;
	}
	/* The new PIN twice, the same both times: a typing slip here would
	 * leave nobody knowing the PIN. */
	if (pin->size != a->pin_new->size || memcmp(pin->data, a->pin_new->data, pin->size) != 0) {
		pin_free(pin);
		a->pin_new = pin_free(a->pin_new);
		ask_change_pin(t, PIN_NEW, _("The two new PINs differ. Enter the new PIN again."));
		return;
	}
	pin_free(pin);
	r = start_change_pin_call(t, streq(token_str(t, "PinStatus"), "final-try"));
	forget_pins(a);
	if (r < 0)
		show_pin_change_error(t, NULL, strerror(-r));
}

/* --- Step 3 reminders --------------------------------------------------- */

static Reminder *reminder_find(Agent *a, const char *action)
{
	for (size_t i = 0; i < a->n_reminders; i++)
		if (streq(a->reminders[i]->action, action))
			return a->reminders[i];
	return NULL;
}

static Reminder *reminder_by_notification(Agent *a, uint32_t id)
{
	for (size_t i = 0; id && i < a->n_reminders; i++)
		if (a->reminders[i]->notification == id)
			return a->reminders[i];
	return NULL;
}

static void reminder_free(Reminder *r)
{
	json_decref(r->entry);
	free(r->action);
	free(r->saved);
	free(r);
}

static Reminder *reminder_add(Agent *a, const char *action)
{
	Reminder *r = reminder_find(a, action), **reminders;

	if (r)
		return r;
	reminders = reallocarray(a->reminders, a->n_reminders + 1, sizeof(*reminders));
	if (!reminders)
		return NULL;
	a->reminders = reminders;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->action = strdup(action))) {
		free(r);
		return NULL;
	}
	a->reminders[a->n_reminders++] = r;
	return r;
}

/* One GetHistory call in flight; several may be (a login and a token
 * plugged in at once), each for its own tokens. The agent keeps them in a
 * list, so that those still out when it stops are freed. */
typedef struct HistoryRead HistoryRead;
struct HistoryRead {
	Agent *agent;
	sd_bus_slot *slot;
	char *serial; /* only this token's activations, or NULL for all */
	HistoryRead *next;
};

static void history_read_free(HistoryRead *h)
{
	for (HistoryRead **p = &h->agent->history_reads; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	sd_bus_slot_unref(h->slot);
	free(h->serial);
	free(h);
}

static void show_reminders(Agent *a, const char *serial, json_t *history);

static int on_history(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	HistoryRead *h = userdata;
	_cleanup_json_ json_t *history = NULL;
	const char *text;

	if (!sd_bus_message_is_method_error(m, NULL) && sd_bus_message_read(m, "s", &text) >= 0 &&
	    (history = json_loads(text, 0, NULL)))
		show_reminders(h->agent, h->serial, history);
	history_read_free(h);
	return 0;
}

/* The reminders of a GetHistory answer. */
static void show_reminders(Agent *a, const char *serial, json_t *history)
{
	json_t *entry;
	size_t i;

	json_array_foreach(json_object_get(history, "activations"), i, entry)
	{
		const char *action = json_string_value(json_object_get(entry, "action"));
		Reminder *reminder;

		if (!action)
			continue;
		reminder = reminder_find(a, action);
		if (history_agencies_done(entry)) {
			/* Every agency ticked: the reminder has done its job. */
			if (reminder)
				notifier_close(a->notifier, reminder->notification);
			continue;
		}
		if (serial &&
		    !streq_ptr(json_string_value(json_object_get(entry, "token")), serial))
			continue;
		reminder = reminder_add(a, action);
		if (!reminder)
			continue;
		json_decref(reminder->entry);
		reminder->entry = json_incref(entry);
		show_reminder(a, reminder);
	}
}

/* Shows the Step 3 reminder of each activation whose agencies are not all
 * ticked (of token serial only, when given). */
static void read_history(Agent *a, const char *serial)
{
	HistoryRead *h;

	if (!a->daemon || !(h = calloc(1, sizeof(*h))))
		return;
	h->agent = a;
	h->next = a->history_reads;
	a->history_reads = h;
	if ((serial && !(h->serial = strdup(serial))) ||
	    sd_bus_call_method_async(a->system, &h->slot, a->daemon, SAFECAD_MANAGER_PATH,
				     SAFECAD_MANAGER_INTERFACE, "GetHistory", on_history, h,
				     NULL) < 0)
		history_read_free(h);
}

static int on_export(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	Agent *a = userdata;
	const sd_bus_error *error = sd_bus_message_get_error(m);
	_cleanup_free_ char *dir = NULL, *pem = NULL, *der = NULL, *message = NULL;
	Reminder *reminder = NULL;
	const void *data;
	size_t size;
	int r;

	a->export_call = sd_bus_slot_unref(a->export_call);
	if (a->export_action)
		reminder = reminder_find(a, a->export_action);
	if (!reminder)
		return 0;
	if (error) {
		(void)asprintf(&message, _("Cannot export the certificate: %s"), error->message);
		r = -EIO;
	} else {
		r = sd_bus_message_read_array(m, 'y', &data, &size);
		if (r >= 0)
			r = documents_dir(&dir);
		if (r >= 0)
			r = save_certificate(dir, data, size, &pem, &der);
		if (r < 0)
			(void)asprintf(&message, _("Cannot save the certificate: %s"),
				       strerror(-r));
		else
			(void)asprintf(&message, _("Saved as %s and %s"), pem, der);
	}
	free(reminder->saved);
	reminder->saved = TAKE_PTR(message);
	show_reminder(a, reminder);
	return 0;
}

static void reminder_export(Agent *a, Reminder *reminder)
{
	const char *serial = json_string_value(json_object_get(reminder->entry, "token"));
	_cleanup_free_ char *path = NULL;

	if (!a->daemon || !serial || a->export_call ||
	    sd_bus_path_encode(SAFECAD_TOKEN_PATH_PREFIX, serial, &path) < 0)
		return;
	if (set_string(&a->export_action, reminder->action) < 0)
		return;
	(void)sd_bus_call_method_async(a->system, &a->export_call, a->daemon, path,
				       SAFECAD_TOKEN_INTERFACE, "Export", on_export, a, NULL);
}

/* The checklist as an HTML page, where the window cannot show it. */
static void reminder_checklist_page(Agent *a, const char *action)
{
	Reminder *reminder = reminder_find(a, action);
	_cleanup_free_ char *file = NULL, *message = NULL;
	int r;

	if (!reminder)
		return;
	r = open_checklist(reminder->entry, &file);
	if (r >= 0)
		return;
	if (file)
		(void)asprintf(&message, _("The checklist is in %s; it could not be opened (%s)."),
			       file, strerror(-r));
	else
		(void)asprintf(&message, _("Cannot write the checklist: %s"), strerror(-r));
	free(reminder->saved);
	reminder->saved = TAKE_PTR(message);
	show_reminder(a, reminder);
}

static void reminder_checklist(Agent *a, Reminder *reminder)
{
	/* The window's checklist ticks the agencies off where the person
	 * reads them; the page is for desktops without the window. */
	if (window_available(a))
		window_activate(a, "show-checklist", reminder->action, reminder_checklist_page);
	else
		reminder_checklist_page(a, reminder->action);
}

/* --- the notification server's answers ----------------------------------- */

static void on_notification_action(void *userdata, uint32_t id, const char *key)
{
	Agent *a = userdata;
	AgentToken *t = token_by_notification(a, id);
	Reminder *reminder = reminder_by_notification(a, id);

	if (t && streq(key, "change-pin"))
		token_change_pin(t);
	else if (t && (streq(key, "open") || (streq(key, "default") && !t->offered_action)))
		window_activate(a, "show-token", token_str(t, "Serial"), NULL);
	else if (t && t->offered_action) {
		if (streq(key, "activate") || streq(key, "default"))
			token_activate(t);
		else if (streq(key, "later"))
			notifier_close(a->notifier, t->notification);
	} else if (reminder) {
		if (streq(key, "export"))
			reminder_export(a, reminder);
		else if (streq(key, "checklist") || streq(key, "default"))
			reminder_checklist(a, reminder);
	}
}

static void on_notification_closed(void *userdata, uint32_t id)
{
	Agent *a = userdata;
	AgentToken *t = token_by_notification(a, id);
	Reminder *reminder = reminder_by_notification(a, id);

	if (t) {
		t->notification = 0;
		t->shown = SHOWN_NOTHING;
		(void)set_string(&t->offered_action, NULL);
	}
	if (reminder)
		reminder->notification = 0;
}

/* --- safecad's signals --------------------------------------------------- */

static void on_token_added(Agent *a, sd_bus_message *m)
{
	const char *path, *serial;
	AgentToken *t;

	if (sd_bus_message_read(m, "os", &path, &serial) < 0)
		return;
	t = token_add(a, path);
	if (!t)
		return;
	t->removed = false;
	/* A new insert: the pending action is news again. */
	(void)set_string(&t->announced, NULL);
	t->announce_insert = true;
	token_refresh(t);
	/* The user's own choice, in the window: it comes forward on the token
	 * plugged in. */
	if (window_open_on_insert() && window_available(a))
		window_activate(a, "show-token", serial, NULL);
}

static void on_token_removed(Agent *a, sd_bus_message *m)
{
	const char *path, *serial;
	AgentToken *t;

	if (sd_bus_message_read(m, "os", &path, &serial) < 0 || !(t = token_find(a, path)))
		return;
	/* An activation's outcome is still to be shown. */
	if (t->activating) {
		t->removed = true;
		return;
	}
	token_remove(a, t, true);
}

static void on_properties_changed(Agent *a, AgentToken *t, sd_bus_message *m)
{
	const char *interface, *name;
	bool invalidated = false, pending_changed = false;
	int r;

	if (sd_bus_message_read(m, "s", &interface) < 0 ||
	    !streq(interface, SAFECAD_TOKEN_INTERFACE))
		return;
	/* The values come with the signal; note whether Pending is one. */
	if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
		return;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		json_t *value = NULL;
		if (sd_bus_message_read(m, "s", &name) < 0 || bus_read_json(m, name, &value) < 0)
			return;
		pending_changed |= streq(name, "Pending");
		json_object_set_new(t->props, name, value);
		if (sd_bus_message_exit_container(m) < 0)
			return;
	}
	if (r < 0 || sd_bus_message_exit_container(m) < 0)
		return;
	if (sd_bus_message_enter_container(m, 'a', "s") >= 0) {
		while (sd_bus_message_read(m, "s", &name) > 0)
			invalidated = true;
		(void)sd_bus_message_exit_container(m);
	}
	if (invalidated)
		token_refresh(t);
	else if (pending_changed)
		token_check_pending(t);
}

static void on_activation_finished(AgentToken *t, sd_bus_message *m)
{
	const char *action, *result, *error, *message;
	_cleanup_json_ json_t *json = NULL;

	if (sd_bus_message_read(m, "ssss", &action, &result, &error, &message) < 0)
		return;
	if (t->activating && streq(t->activating, action))
		t->finished_seen = true;
	if (!isempty(error)) {
		show_error(t, error, message);
		return;
	}
	json = json_loads(result, 0, NULL);
	if (!json)
		return;
	show_result(t, json);
	/* The action is done: what the CA lists next is news. */
	(void)set_string(&t->announced, NULL);
	read_history(t->agent, NULL);
}

static int on_daemon_signal(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	Agent *a = userdata;
	const char *path = sd_bus_message_get_path(m);
	AgentToken *t;

	/* Only safecad speaks for safecad: anyone else on the bus could send
	 * a signal with these names. */
	if (!a->daemon || !streq_ptr(sd_bus_message_get_sender(m), a->daemon))
		return 0;
	if (sd_bus_message_is_signal(m, SAFECAD_MANAGER_INTERFACE, "TokenAdded")) {
		on_token_added(a, m);
		return 0;
	}
	if (sd_bus_message_is_signal(m, SAFECAD_MANAGER_INTERFACE, "TokenRemoved")) {
		on_token_removed(a, m);
		return 0;
	}
	t = path ? token_find(a, path) : NULL;
	if (!t)
		return 0;
	if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Properties", "PropertiesChanged"))
		on_properties_changed(a, t, m);
	else if (sd_bus_message_is_signal(m, SAFECAD_TOKEN_INTERFACE, "ActivationProgress")) {
		const char *action, *step;
		if (sd_bus_message_read(m, "ss", &action, &step) >= 0)
			show_progress(t, step);
	} else if (sd_bus_message_is_signal(m, SAFECAD_TOKEN_INTERFACE, "ActivationFinished"))
		on_activation_finished(t, m);
	else if (sd_bus_message_is_signal(m, SAFECAD_TOKEN_INTERFACE, "ExpiryWarning")) {
		const char *serial;
		int32_t days;
		if (sd_bus_message_read(m, "si", &serial, &days) < 0)
			return 0;
		if (t->props_read)
			show_expiry(t, serial, days);
		else if (set_string(&t->expiry_serial, serial) >= 0)
			t->expiry_days = days;
	}
	return 0;
}

/* --- following safecad ---------------------------------------------------- */

static int read_managed_objects(Agent *a, sd_bus_message *m)
{
	bool first = !a->synced_once;
	int r;

	for (size_t i = 0; i < a->n_tokens; i++)
		a->tokens[i]->removed = true;
	r = sd_bus_message_enter_container(m, 'a', "{oa{sa{sv}}}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "oa{sa{sv}}")) > 0) {
		const char *path, *interface;

		r = sd_bus_message_read(m, "o", &path);
		if (r >= 0)
			r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
		while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
			r = sd_bus_message_read(m, "s", &interface);
			if (r < 0)
				break;
			if (streq(interface, SAFECAD_TOKEN_INTERFACE)) {
				AgentToken *t = token_find(a, path);
				bool known = t != NULL;
				if (!t && !(t = token_add(a, path)))
					return -ENOMEM;
				t->removed = false;
				r = token_merge_properties(t, m);
				if (r < 0)
					return r;
				t->props_read = true;
				/* At login every token is news; after
				 * safecad restarts only new ones are. */
				t->announce_insert = first || !known;
			} else {
				r = sd_bus_message_skip(m, "a{sv}");
			}
			if (r >= 0)
				r = sd_bus_message_exit_container(m);
		}
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	for (size_t i = a->n_tokens; i > 0; i--) {
		AgentToken *t = a->tokens[i - 1];
		if (t->removed && !t->activating)
			token_remove(a, t, true);
	}
	for (size_t i = 0; i < a->n_tokens; i++) {
		AgentToken *t = a->tokens[i];
		bool announce = t->announce_insert;
		t->announce_insert = false;
		if (announce)
			show_inserted(t);
		token_check_pending(t);
	}
	a->synced_once = true;
	return 0;
}

static int on_managed_objects(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	Agent *a = userdata;
	const sd_bus_error *error = sd_bus_message_get_error(m);
	int r;

	a->sync_call = sd_bus_slot_unref(a->sync_call);
	if (error) {
		/* Not running and not activatable here: NameOwnerChanged says
		 * when it comes. */
		fprintf(stderr, "safecad-notify: safecad does not answer: %s\n", error->message);
		return 0;
	}
	if (!a->daemon) {
		a->daemon = strdup(strempty(sd_bus_message_get_sender(m)));
		if (!a->daemon)
			return -ENOMEM;
	}
	r = read_managed_objects(a, m);
	if (r < 0) {
		fprintf(stderr, "safecad-notify: cannot read safecad's tokens: %s\n", strerror(-r));
		return 0;
	}
	read_history(a, NULL);
	return 0;
}

/* Reads every token; on the first call this also starts safecad through
 * D-Bus activation where it is not running. */
static void sync_with_daemon(Agent *a)
{
	a->sync_call = sd_bus_slot_unref(a->sync_call);
	(void)sd_bus_call_method_async(
	    a->system, &a->sync_call, a->daemon ? a->daemon : SAFECAD_BUS_NAME,
	    SAFECAD_OBJECT_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
	    on_managed_objects, a, NULL);
}

static int on_daemon_owner(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	Agent *a = userdata;
	const char *name, *old_owner, *new_owner;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
	    !streq(name, SAFECAD_BUS_NAME))
		return 0;
	free(a->daemon);
	a->daemon = NULL;
	if (isempty(new_owner)) {
		fprintf(stderr, "safecad-notify: safecad left the bus; waiting for it\n");
		return 0;
	}
	a->daemon = strdup(new_owner);
	if (!a->daemon)
		return -ENOMEM;
	sync_with_daemon(a);
	return 0;
}

/* --- main ----------------------------------------------------------------- */

static void agent_free(Agent *a)
{
	for (size_t i = 0; i < a->n_tokens; i++)
		token_free(a->tokens[i]);
	free(a->tokens);
	for (size_t i = 0; i < a->n_reminders; i++)
		reminder_free(a->reminders[i]);
	free(a->reminders);
	pinentry_free(a->pinentry);
	forget_pins(a);
	while (a->history_reads)
		history_read_free(a->history_reads);
	sd_bus_slot_unref(a->sync_call);
	sd_bus_slot_unref(a->export_call);
	notifier_free(a->notifier);
	sd_bus_flush_close_unref(a->system);
	sd_bus_flush_close_unref(a->session);
	sd_event_unref(a->event);
	free(a->daemon);
	free(a->pin_token_path);
	free(a->pin_action);
	free(a->export_action);
}

static int on_bus_lost(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	Agent *a = userdata;

	/* Without either bus the agent can do nothing; its unit restarts it. */
	fprintf(stderr, "safecad-notify: lost the %s bus\n",
		sd_bus_message_get_bus(m) == a->system ? "system" : "session");
	sd_event_exit(a->event, 1);
	return 0;
}

static int setup(Agent *a)
{
	int r = sd_event_default(&a->event);

	if (r < 0)
		return r;
	r = sd_bus_open_system(&a->system);
	if (r < 0) {
		fprintf(stderr, "safecad-notify: cannot connect to the system bus: %s\n",
			strerror(-r));
		return r;
	}
	r = sd_bus_open_user(&a->session);
	if (r < 0) {
		fprintf(stderr, "safecad-notify: cannot connect to the session bus: %s\n",
			strerror(-r));
		return r;
	}
	/* One agent per session, whether autostart or the user unit (or
	 * both) started it. */
	r = sd_bus_request_name(a->session, AGENT_BUS_NAME, 0);
	if (r == -EEXIST || r == -EALREADY) {
		fprintf(stderr, "safecad-notify: already running in this session\n");
		return 0;
	}
	if (r < 0)
		return r;
	r = sd_bus_attach_event(a->system, a->event, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_attach_event(a->session, a->event, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_set_exit_on_disconnect(a->system, false);
	if (r >= 0)
		r = sd_bus_match_signal(a->system, NULL, "org.freedesktop.DBus.Local",
					"/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
					"Disconnected", on_bus_lost, a);
	if (r >= 0)
		r = sd_bus_match_signal(a->session, NULL, "org.freedesktop.DBus.Local",
					"/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
					"Disconnected", on_bus_lost, a);
	if (r >= 0)
		r = notifier_new(a->session, on_notification_action, on_notification_closed, a,
				 &a->notifier);
	if (r >= 0)
		r = sd_bus_add_match(a->system, NULL,
				     "type='signal',sender='org.freedesktop.DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
				     "arg0='" SAFECAD_BUS_NAME "'",
				     on_daemon_owner, a);
	if (r >= 0)
		r = sd_bus_add_match(a->system, NULL,
				     "type='signal',path_namespace='" SAFECAD_OBJECT_MANAGER_PATH
				     "'",
				     on_daemon_signal, a);
	if (r < 0)
		return r;
	sync_with_daemon(a);
	return 1;
}

static void help(void)
{
	printf(_("Usage: safecad-notify [OPTION]\n"
		 "Tells the desktop user about their certificate tokens: a token plugged in,\n"
		 "an activation the CA has ready (asking for the PIN through pinentry), its\n"
		 "progress and result, the agencies to register the new certificate with, and\n"
		 "the certificate's coming expiry.\n\n"
		 "  -h, --help     Show this help\n"
		 "      --version  Show the version\n\n"
		 "The PIN dialogue is $PINENTRY when set, else pinentry.\n"));
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {},
	};
	Agent agent = {};
	int c, r;

	i18n_init();
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case 'V':
			printf("safecad-notify %s\n", PACKAGE_VERSION);
			return 0;
		default:
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, _("safecad-notify takes no arguments.\n"));
		return 1;
	}
	/* pinentry may go away while we write to it. */
	signal(SIGPIPE, SIG_IGN);
	r = setup(&agent);
	if (r > 0) {
		sigset_t mask;
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGINT);
		sigprocmask(SIG_BLOCK, &mask, NULL);
		(void)sd_event_add_signal(agent.event, NULL, SIGTERM, NULL, NULL);
		(void)sd_event_add_signal(agent.event, NULL, SIGINT, NULL, NULL);
		r = sd_event_loop(agent.event);
	} else if (r < 0) {
		fprintf(stderr, "safecad-notify: %s\n", strerror(-r));
	}
	agent_free(&agent);
	return r < 0 || r > 0 ? 1 : 0;
}
