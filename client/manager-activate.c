/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The activation dialog: the CA's guide, step by step.
 *
 *   1. what changes, the CA's message, the three warnings → Accept
 *   2. the PIN (locked: never asked; final try: confirmed first) → Log in
 *   3. progress, step by step
 *   4. the issued certificate, as the CA returned it and the checks passed
 *      it → Confirm (the daemon writes nothing before this answer)
 *   5. loaded → OK, then the Step 3 checklist.
 *
 * The pause before writing is the daemon's (confirm_before_write): this
 * dialog only answers it. Closing it while the daemon waits is a no, and
 * leaves the activation interrupted at "verified", resumable. */
#include "manager.h"

#include "action.h"
#include "bus-names.h"
#include "i18n.h"
#include "macro.h"
#include "manager-dialog.h"

/* A key made on a real token takes up to a minute; the CA may be slow;
 * the person has [activation] confirm_timeout to look at the certificate. */
#define ACTIVATE_TIMEOUT_MS (20 * 60 * 1000)
#define CONFIRM_TIMEOUT_MS 25000

typedef enum Page {
	PAGE_CHANGES,
	PAGE_PIN,
	PAGE_PROGRESS,
	PAGE_CERTIFICATE,
	PAGE_END, /* loaded, or stopped: the last word */
} Page;

typedef struct Activation {
	unsigned ref;
	Manager *manager;
	DialogFrame f; /* f.window NULL once closed */
	Page page;

	char *path, *serial, *support, *action_id;
	json_t *action; /* the CA's entry; NULL when an interrupted one is resumed */
	bool resume;

	GtkWidget *keep_previous;
	/* The PIN page */
	GtkWidget *pin_box;
	ManagerPinEntry *pin;
	GtkLabel *pin_note, *pin_error;
	GtkWidget *final_try; /* the check box that allows the last try */
	PinRules rules;
	/* Progress */
	GtkWidget *step_icons[ACTIVATION_STEPS];
	GtkLabel *progress_note;
	guint subscriptions[2];
	bool running;	 /* Activate was called and has not answered */
	bool confirming; /* WriteRequested came; no answer sent yet */
	bool ok;	 /* loaded: OK goes on to Step 3 */
} Activation;

static Activation *activation_ref(Activation *a)
{
	a->ref++;
	return a;
}

static void activation_unref(Activation *a)
{
	if (--a->ref > 0)
		return;
	g_free(a->path);
	g_free(a->serial);
	g_free(a->support);
	g_free(a->action_id);
	json_decref(a->action);
	g_free(a);
}

static const char *member(json_t *object, const char *key)
{
	const char *s = json_string_value(json_object_get(object, key));
	return s ? s : "";
}

static void add_group_row(GtkWidget *group, const char *title, const char *subtitle)
{
	g_autofree char *clean = text_clean(subtitle);

	adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row_new(title, clean));
}

static char *name_text(json_t *name)
{
	GString *s = g_string_new(NULL);
	size_t i;
	json_t *pair;

	json_array_foreach(name, i, pair) g_string_append_printf(
	    s, "%s%s=%s", i ? ", " : "", json_string_value(json_array_get(pair, 0)) ?: "",
	    json_string_value(json_array_get(pair, 1)) ?: "");
	return g_string_free(s, FALSE);
}

/* The validity of a certificate or of an action. A CMP renewal has no
 * "not_after": the CA sets the validity when it issues. */
static char *validity_text(json_t *object)
{
	const char *not_after = json_string_value(json_object_get(object, "not_after"));

	if (!not_after)
		return g_strdup(_("Set by the CA when it issues the certificate"));
	g_autofree char *from = date_text(json_string_value(json_object_get(object, "not_before")));
	g_autofree char *to = date_text(not_after);

	return g_strdup_printf(_("From %s to %s"), from, to);
}

static void show_page(Activation *a, Page page, const char *primary, const char *cancel)
{
	static const char *const names[] = {"changes", "pin", "progress", "certificate", "end"};

	a->page = page;
	dialog_frame_show(&a->f, names[page], primary, cancel);
}

/* --- 1. what changes ------------------------------------------------- */

/* TH2: each field of the name, old → new; a field that changes is marked. */
static void add_name_changes(GtkWidget *group, json_t *old, json_t *new)
{
	g_autoptr(GPtrArray) fields = g_ptr_array_new();
	size_t i;
	json_t *pair;

	json_array_foreach(old, i, pair)
	{
		const char *field = json_string_value(json_array_get(pair, 0));
		if (field && !g_ptr_array_find_with_equal_func(fields, field, g_str_equal, NULL))
			g_ptr_array_add(fields, (gpointer)field);
	}
	json_array_foreach(new, i, pair)
	{
		const char *field = json_string_value(json_array_get(pair, 0));
		if (field && !g_ptr_array_find_with_equal_func(fields, field, g_str_equal, NULL))
			g_ptr_array_add(fields, (gpointer)field);
	}
	for (i = 0; i < fields->len; i++) {
		const char *field = fields->pdata[i];
		const char *before = name_get(old, field);
		const char *after = name_get(new, field);
		g_autofree char *text = NULL;
		g_autofree char *clean = NULL;
		GtkWidget *row;

		if (streq_ptr(before, after))
			text = g_strdup_printf(_("%s (unchanged)"), after);
		else
			text = g_strdup_printf(_("%s → %s"), before ?: _("(none)"),
					       after ?: _("(none)"));
		clean = text_clean(text);
		row = row_new(field, clean);
		if (!streq_ptr(before, after))
			gtk_widget_add_css_class(row, "accent");
		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
	}
}

static GtkWidget *changes_page(Activation *a, json_t *token)
{
	json_t *current = token_current_certificate(token);
	bool renew = streq(member(a->action, "type"), "renew");
	g_autofree char *title = NULL;
	GtkWidget *box, *group, *warnings, *keep;

	if (a->resume) {
		json_t *step = json_array_get(json_object_get(token, "Activation"), 1);
		g_autofree char *text = g_strdup_printf(
		    _("This activation was interrupted after the step \"%s\". It goes on where it "
		      "stopped, with the same key: log in with the PIN to continue."),
		    json_string_value(step) ?: "");

		box = dialog_page_box(_("Continue the interrupted activation"));
		gtk_box_append(GTK_BOX(box), dialog_label_new(text, NULL));
	} else {
		title = g_strdup_printf(renew ? _("Renewal of the certificate on token %s")
					      : _("Change of information on token %s"),
					a->serial);
		box = dialog_page_box(title);
		group = adw_preferences_group_new();
		if (current) {
			g_autofree char *now = validity_text(current);
			add_group_row(group, _("Validity now"), now);
		}
		{
			g_autofree char *next = validity_text(a->action);
			GtkWidget *row = row_new(_("New validity"), next);

			gtk_widget_add_css_class(row, "accent");
			adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
		}
		add_group_row(
		    group, _("Key"),
		    json_is_true(json_object_get(json_object_get(a->action, "key"), "generate"))
			? _("A new key is made on the token; the current one stays until you "
			    "remove it.")
			: _("The token's current key is certified again."));
		gtk_box_append(GTK_BOX(box), group);
		if (!renew) {
			GtkWidget *details = adw_preferences_group_new();

			adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(details),
							_("Details: now → new"));
			add_name_changes(details, json_object_get(current, "subject"),
					 json_object_get(a->action, "subject"));
			gtk_box_append(GTK_BOX(box), details);
		}
		if (json_is_string(json_object_get(a->action, "message"))) {
			g_autofree char *message = text_clean(member(a->action, "message"));
			GtkWidget *from = adw_preferences_group_new();

			adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(from),
							_("Message from the CA"));
			gtk_box_append(GTK_BOX(box), from);
			gtk_box_append(GTK_BOX(box), dialog_label_new(message, NULL));
		}
	}
	warnings = adw_preferences_group_new();
	adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(warnings),
					_("Before you activate, know three things"));
	gtk_box_append(GTK_BOX(box), warnings);
	gtk_box_append(
	    GTK_BOX(box),
	    dialog_label_new(
		_("1. The certificate's serial number changes. You must register the new "
		  "certificate again with every agency you use (tax, customs, e-invoice, "
		  "social insurance, national e-procurement)."),
		NULL));
	gtk_box_append(
	    GTK_BOX(box),
	    dialog_label_new(
		_("2. Customs and e-invoice systems accept a newly registered certificate "
		  "only 24 hours after registration: sign every pending invoice and "
		  "declaration before activating."),
		NULL));
	if (streq(member(a->action, "protocol"), "cmp")) {
		/* A CMP CA is never told the answer (no CMP message carries it):
		 * the person asks the CA, and no switch pretends otherwise. */
		gtk_box_append(
		    GTK_BOX(box),
		    dialog_label_new(
			_("3. To keep bidding on muasamcong.mpi.gov.vn without interruption, ask "
			  "the CA yourself to keep the previous certificate's registration: this "
			  "renewal cannot ask it for you."),
			NULL));
		return dialog_scrolled(box);
	}
	gtk_box_append(
	    GTK_BOX(box),
	    dialog_label_new(
		_("3. To keep bidding on muasamcong.mpi.gov.vn without interruption, the CA "
		  "can keep the previous certificate's registration."),
		NULL));
	group = adw_preferences_group_new();
	keep = adw_action_row_new();
	adw_preferences_row_set_title(ADW_PREFERENCES_ROW(keep),
				      _("Keep the previous certificate's registration"));
	a->keep_previous = gtk_switch_new();
	gtk_switch_set_active(GTK_SWITCH(a->keep_previous), TRUE);
	gtk_widget_set_valign(a->keep_previous, GTK_ALIGN_CENTER);
	gtk_accessible_update_property(GTK_ACCESSIBLE(a->keep_previous),
				       GTK_ACCESSIBLE_PROPERTY_LABEL,
				       _("Keep the previous certificate's registration"), -1);
	adw_action_row_add_suffix(ADW_ACTION_ROW(keep), a->keep_previous);
	adw_action_row_set_activatable_widget(ADW_ACTION_ROW(keep), a->keep_previous);
	adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), keep);
	gtk_box_append(GTK_BOX(box), group);
	return dialog_scrolled(box);
}

/* --- 2. the PIN ------------------------------------------------------ */

static void pin_check(Activation *a)
{
	bool ok = pin_rules_length_ok(&a->rules, manager_pin_entry_get_length(a->pin)) &&
		  !final_try_blocks(a->final_try);

	if (a->page == PAGE_PIN)
		gtk_widget_set_sensitive(a->f.primary, ok && !a->rules.locked);
}

static void on_pin_changed(ManagerPinEntry *entry, gpointer data)
{
	pin_check(data);
}

static void on_final_try_toggled(GtkCheckButton *button, gpointer data)
{
	pin_check(data);
}

static void login(Activation *a);

static void on_pin_activate(ManagerPinEntry *entry, gpointer data)
{
	Activation *a = data;

	if (gtk_widget_get_sensitive(a->f.primary))
		login(a);
}

static GtkWidget *pin_page(Activation *a)
{
	GtkWidget *box = dialog_page_box(_("Log in to the token"));

	a->pin_note = GTK_LABEL(dialog_label_new("", NULL));
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(a->pin_note));
	a->pin_box = pin_field_new(_("PIN"), &a->pin);
	gtk_box_append(GTK_BOX(box), a->pin_box);
	g_signal_connect(a->pin, "changed", G_CALLBACK(on_pin_changed), a);
	g_signal_connect(a->pin, "activate", G_CALLBACK(on_pin_activate), a);
	a->final_try = final_try_check_new();
	g_signal_connect(a->final_try, "toggled", G_CALLBACK(on_final_try_toggled), a);
	gtk_box_append(GTK_BOX(box), a->final_try);
	a->pin_error = dialog_error_new();
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(a->pin_error));
	gtk_box_append(GTK_BOX(box),
		       dialog_label_new(_("The PIN is typed as it is: a Vietnamese input method "
					  "(Unikey, Bamboo) does not change it here."),
					"dim-label"));
	return box;
}

/* The token as the window last read it: a wrong PIN a moment ago changed
 * its state. */
static void pin_prepare(Activation *a)
{
	json_t *token = manager_find_token(a->manager, a->serial);
	g_autofree char *first = NULL;
	g_autofree char *note = NULL;

	pin_rules_read(&a->rules, token);
	if (a->rules.max > 0)
		first = g_strdup_printf(_("Type the token's PIN (%u to %u characters)."),
					MAX(a->rules.min, 1u), a->rules.max);
	else
		first = g_strdup(_("Type the token's PIN."));
	note = pin_rules_note(&a->rules, first, a->support);
	gtk_widget_set_visible(a->pin_box, !a->rules.locked);
	gtk_widget_set_visible(a->final_try, !a->rules.locked && a->rules.final_try);
	gtk_label_set_text(a->pin_note, note);
}

static void go_pin(Activation *a)
{
	pin_prepare(a);
	show_page(a, PAGE_PIN, a->rules.locked ? NULL : _("Log in"),
		  a->rules.locked ? _("Close") : _("Cancel"));
	pin_check(a);
	if (!a->rules.locked)
		gtk_widget_grab_focus(GTK_WIDGET(a->pin));
}

/* --- 3. progress ----------------------------------------------------- */

static GtkWidget *progress_page(Activation *a)
{
	GtkWidget *box = dialog_page_box(_("Activating"));
	GtkWidget *group = adw_preferences_group_new();

	for (size_t i = 0; i < ACTIVATION_STEPS; i++) {
		GtkWidget *row = row_new(_(activation_steps[i].text), NULL);
		GtkWidget *icon = gtk_image_new_from_icon_name("content-loading-symbolic");

		gtk_widget_set_opacity(icon, 0.3);
		adw_action_row_add_prefix(ADW_ACTION_ROW(row), icon);
		a->step_icons[i] = icon;
		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
	}
	gtk_box_append(GTK_BOX(box), group);
	a->progress_note =
	    GTK_LABEL(dialog_label_new(_("Do not pull the token out."), "dim-label"));
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(a->progress_note));
	return dialog_scrolled(box);
}

static void progress_to(Activation *a, const char *step)
{
	size_t done = activation_step_number(step);

	for (size_t i = 0; i < done; i++) {
		gtk_image_set_from_icon_name(GTK_IMAGE(a->step_icons[i]), "object-select-symbolic");
		gtk_widget_set_opacity(a->step_icons[i], 1);
		gtk_accessible_update_property(GTK_ACCESSIBLE(a->step_icons[i]),
					       GTK_ACCESSIBLE_PROPERTY_LABEL, _("done"), -1);
	}
}

static void on_progress(GDBusConnection *bus, const char *sender, const char *path,
			const char *interface, const char *member_name, GVariant *parameters,
			gpointer data)
{
	Activation *a = data;
	const char *action, *step;

	if (!g_variant_is_of_type(parameters, G_VARIANT_TYPE("(ss)")))
		return;
	g_variant_get(parameters, "(&s&s)", &action, &step);
	if (streq(action, a->action_id) && a->f.window)
		progress_to(a, step);
}

/* --- 4. the issued certificate --------------------------------------- */

static void on_write_requested(GDBusConnection *bus, const char *sender, const char *path,
			       const char *interface, const char *member_name, GVariant *parameters,
			       gpointer data)
{
	Activation *a = data;
	const char *action, *text;
	json_t *certificate;
	GtkWidget *box, *group;

	if (!g_variant_is_of_type(parameters, G_VARIANT_TYPE("(ss)")))
		return;
	g_variant_get(parameters, "(&s&s)", &action, &text);
	if (!streq(action, a->action_id) || !a->running || !a->f.window)
		return;
	certificate = json_loads(text, 0, NULL);
	if (!json_is_object(certificate)) {
		json_decref(certificate);
		return;
	}
	box = dialog_page_box(_("Check the issued certificate"));
	gtk_box_append(
	    GTK_BOX(box),
	    dialog_label_new(_("The CA issued this certificate and it passed every check: "
			       "it holds the token's key, names the same holder, chains to "
			       "the CA and is valid. Nothing is on the token yet."),
			     NULL));
	group = adw_preferences_group_new();
	{
		g_autofree char *subject = name_text(json_object_get(certificate, "subject"));
		g_autofree char *issuer = name_text(json_object_get(certificate, "issuer"));
		g_autofree char *validity = validity_text(certificate);

		add_group_row(group, _("Subject"), subject);
		add_group_row(group, _("Serial"), member(certificate, "serial"));
		add_group_row(group, _("Validity"), validity);
		add_group_row(group, _("Issuer"), issuer);
		if (!isempty(member(certificate, "sha256")))
			add_group_row(group, _("SHA-256 fingerprint"),
				      member(certificate, "sha256"));
	}
	gtk_box_append(GTK_BOX(box), group);
	gtk_box_append(
	    GTK_BOX(box),
	    dialog_label_new(_("Confirm writes it to the token. Cancel writes nothing: the "
			       "activation can be continued later with the same key."),
			     "dim-label"));
	dialog_frame_replace(&a->f, "certificate", dialog_scrolled(box));
	json_decref(certificate);
	a->confirming = true;
	show_page(a, PAGE_CERTIFICATE, _("Confirm"), _("Cancel"));
}

static void on_confirm_sent(GObject *source, GAsyncResult *result, gpointer data)
{
	Activation *a = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

	/* A failed answer changes nothing the Activate reply will not say:
	 * the daemon then stops at its limit and writes nothing. */
	if (!reply && a->f.window && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		gtk_label_set_text(a->progress_note, _("The answer did not reach the service."));
	manager_call_done(a->manager);
	activation_unref(a);
}

static void confirm(Activation *a, bool write)
{
	Manager *m = a->manager;

	if (!a->confirming)
		return;
	a->confirming = false;
	manager_call_started(m);
	g_dbus_connection_call(m->bus, SAFECAD_BUS_NAME, a->path, SAFECAD_TOKEN_INTERFACE,
			       "ConfirmWrite", g_variant_new("(sb)", a->action_id, write), NULL,
			       G_DBUS_CALL_FLAGS_NONE, CONFIRM_TIMEOUT_MS, m->cancellable,
			       on_confirm_sent, activation_ref(a));
	if (a->f.window) {
		gtk_label_set_text(a->progress_note, write ? _("Writing to the token…")
							   : _("Stopping: nothing is written…"));
		show_page(a, PAGE_PROGRESS, NULL, NULL);
	}
}

/* --- 5. the end ------------------------------------------------------ */

static void show_end(Activation *a, const char *title, const char *text, bool ok)
{
	dialog_frame_replace(&a->f, "end", dialog_end_page(title, text));
	a->ok = ok;
	show_page(a, PAGE_END, _("OK"), NULL);
}

static void unsubscribe(Activation *a)
{
	for (size_t i = 0; i < ELEMENTSOF(a->subscriptions); i++)
		if (a->subscriptions[i])
			g_dbus_connection_signal_unsubscribe(a->manager->bus, a->subscriptions[i]);
	memset(a->subscriptions, 0, sizeof(a->subscriptions));
}

static void loaded(Activation *a, const char *text)
{
	json_t *result = json_loads(text, 0, NULL);
	GString *s = g_string_new(NULL);
	g_autofree char *body = NULL;

	g_string_append_printf(s, _("Previous certificate: %s\nNew certificate: %s"),
			       member(result, "old_serial"), member(result, "new_serial"));
	if (json_is_object(result) && !json_is_true(json_object_get(result, "confirmed")))
		g_string_append_printf(
		    s, "\n\n%s",
		    _("The CA has not been told yet; safecad tells it at the next activation of "
		      "this token. The certificate is on the token and works."));
	g_string_append_printf(s, "\n\n%s",
			       _("Next, Step 3: register the new certificate with every agency. "
				 "OK opens the list."));
	body = g_string_free(s, FALSE);
	progress_to(a,
		    json_is_true(json_object_get(result, "confirmed")) ? "confirmed" : "written");
	show_end(a, _("The new certificate is loaded on the token"), body, true);
	json_decref(result);
}

static void failed(Activation *a, GError *error)
{
	g_autofree char *name = g_dbus_error_get_remote_error(error);
	g_autofree char *text = NULL;

	text = pin_error_text(error, &a->rules);
	if (text) {
		/* Back to the PIN, as the token now stands. */
		dialog_say(a->pin_error, text);
		manager_refresh(a->manager);
		go_pin(a);
		return;
	}
	if (streq_ptr(name, SAFECAD_ERROR_NOT_WRITTEN) &&
	    streq(member(a->action, "protocol"), "cmp")) {
		/* The CA was told it was not taken: nothing is kept. */
		g_dbus_error_strip_remote_error(error);
		show_end(a, _("Nothing was written to the token"), error->message, false);
		return;
	}
	if (streq_ptr(name, SAFECAD_ERROR_NOT_WRITTEN)) {
		show_end(a, _("Nothing was written to the token"),
			 _("The checked certificate is kept. To write it, press \"Continue "
			   "activation…\" for this token and log in again: the same key is used "
			   "and the CA is not asked again."),
			 false);
		return;
	}
	text = manager_error_text(error, a->support);
	show_end(a, _("The activation stopped"), text, false);
}

static void on_activated(GObject *source, GAsyncResult *result, gpointer data)
{
	Activation *a = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
	    G_DBUS_CONNECTION(source), NULL, result, &error);

	a->running = false;
	a->confirming = false;
	unsubscribe(a);
	if (a->f.window && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		gtk_widget_set_sensitive(a->f.cancel, TRUE);
		if (reply) {
			const char *text;

			g_variant_get(reply, "(&s)", &text);
			loaded(a, text);
		} else {
			failed(a, error);
		}
	}
	if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		manager_refresh(a->manager);
	manager_call_done(a->manager);
	activation_unref(a);
}

static void login(Activation *a)
{
	Manager *m = a->manager;
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
	GVariantBuilder options;
	bool final_try = final_try_allowed(a->final_try);

	if (manager_pin_entry_get_length(a->pin) == 0)
		return;
	if (pin_entry_to_fd_list(a->pin, fds) < 0) {
		dialog_say(a->pin_error, _("The PIN could not be handed to the service."));
		return;
	}
	dialog_say(a->pin_error, NULL);
	g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
	if (a->keep_previous)
		g_variant_builder_add(
		    &options, "{sv}", "keep_previous",
		    g_variant_new_boolean(gtk_switch_get_active(GTK_SWITCH(a->keep_previous))));
	g_variant_builder_add(&options, "{sv}", "allow_final_try",
			      g_variant_new_boolean(final_try));
	g_variant_builder_add(&options, "{sv}", "confirm_before_write",
			      g_variant_new_boolean(TRUE));
	/* Signals first, so no step is missed. */
	a->subscriptions[0] = g_dbus_connection_signal_subscribe(
	    m->bus, SAFECAD_BUS_NAME, SAFECAD_TOKEN_INTERFACE, "ActivationProgress", a->path, NULL,
	    G_DBUS_SIGNAL_FLAGS_NONE, on_progress, a, NULL);
	a->subscriptions[1] = g_dbus_connection_signal_subscribe(
	    m->bus, SAFECAD_BUS_NAME, SAFECAD_TOKEN_INTERFACE, "WriteRequested", a->path, NULL,
	    G_DBUS_SIGNAL_FLAGS_NONE, on_write_requested, a, NULL);
	a->running = true;
	manager_call_started(m);
	g_dbus_connection_call_with_unix_fd_list(
	    m->bus, SAFECAD_BUS_NAME, a->path, SAFECAD_TOKEN_INTERFACE, "Activate",
	    g_variant_new("(sh@a{sv})", a->action_id, 0, g_variant_builder_end(&options)),
	    G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
	    ACTIVATE_TIMEOUT_MS, fds, m->cancellable, on_activated, activation_ref(a));
	gtk_label_set_text(a->progress_note, _("Do not pull the token out."));
	show_page(a, PAGE_PROGRESS, NULL, _("Cancel"));
	/* Nothing to cancel until the certificate is shown: the daemon's
	 * steps before it are undone or resumed by themselves. */
	gtk_widget_set_sensitive(a->f.cancel, FALSE);
}

/* --- the dialog ------------------------------------------------------ */

static void on_primary(GtkButton *button, gpointer data)
{
	Activation *a = data;

	switch (a->page) {
	case PAGE_CHANGES:
		go_pin(a);
		break;
	case PAGE_PIN:
		login(a);
		break;
	case PAGE_CERTIFICATE:
		confirm(a, true);
		break;
	case PAGE_END: {
		bool ok = a->ok;
		Manager *m = a->manager;
		g_autofree char *action = g_strdup(a->action_id);

		gtk_window_destroy(a->f.window);
		if (ok)
			manager_show_checklist(m, action);
		break;
	}
	case PAGE_PROGRESS:
		break;
	}
}

static void on_cancel(GtkButton *button, gpointer data)
{
	Activation *a = data;

	if (a->page == PAGE_CERTIFICATE)
		confirm(a, false);
	else if (!a->running)
		gtk_window_destroy(a->f.window);
}

static gboolean on_close_request(GtkWindow *window, gpointer data)
{
	Activation *a = data;

	/* Closed while the daemon waits for the answer: that is a no. */
	if (a->confirming) {
		confirm(a, false);
		return TRUE;
	}
	/* While the token is written to, the dialog stays to say how it
	 * ended. */
	return a->running;
}

static void on_destroy(GtkWidget *widget, gpointer data)
{
	Activation *a = data;

	if (a->manager->activation == a->f.window)
		a->manager->activation = NULL;
	a->f.window = NULL;
	if (!a->running)
		unsubscribe(a);
	activation_unref(a);
}

static json_t *find_action(json_t *token, const char *action_id)
{
	size_t i;
	json_t *action;

	json_array_foreach(json_object_get(token, "pending"), i, action)
	{
		if (streq(member(action, "id"), action_id))
			return action;
	}
	return NULL;
}

void manager_activate(Manager *m, const char *serial, const char *action_id)
{
	json_t *token = manager_find_token(m, serial);
	json_t *activation = json_object_get(token, "Activation");
	Activation *a;
	g_autofree char *title = NULL;

	if (m->activation) {
		gtk_window_present(m->activation);
		return;
	}
	if (!token)
		return;
	a = g_new0(Activation, 1);
	a->ref = 1;
	a->manager = m;
	a->path = g_strdup(member(token, "path"));
	a->serial = g_strdup(serial);
	a->support = g_strdup(member(token, "Support"));
	a->action_id = g_strdup(action_id);
	a->action = json_incref(find_action(token, action_id));
	a->resume = streq_ptr(json_string_value(json_array_get(activation, 0)), action_id) &&
		    json_is_true(json_array_get(activation, 2));
	if (!a->action && !a->resume) {
		activation_unref(a);
		return;
	}

	title = g_strdup_printf(_("Activate on token %s"), serial);
	dialog_frame_init(&a->f, m, title, 600);
	m->activation = a->f.window;
	gtk_stack_add_named(a->f.stack, changes_page(a, token), "changes");
	gtk_stack_add_named(a->f.stack, pin_page(a), "pin");
	gtk_stack_add_named(a->f.stack, progress_page(a), "progress");
	g_signal_connect(a->f.cancel, "clicked", G_CALLBACK(on_cancel), a);
	g_signal_connect(a->f.primary, "clicked", G_CALLBACK(on_primary), a);
	g_signal_connect(a->f.window, "close-request", G_CALLBACK(on_close_request), a);
	g_signal_connect(a->f.window, "destroy", G_CALLBACK(on_destroy), a);
	show_page(a, PAGE_CHANGES, _("Accept"), _("Cancel"));
	gtk_window_present(a->f.window);
}
