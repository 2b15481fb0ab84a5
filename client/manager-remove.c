/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The removal dialog: the certificate the token's latest activation
 * replaced goes, with its key unless another certificate uses it; the
 * current certificate and its key stay. Said before the PIN is asked;
 * while that activation's Step 3 is not finished, only once the person
 * insists. One RemovePrevious, never repeated by itself. */
#include "manager-dialog.h"

#include "action.h"
#include "bus-names.h"
#include "i18n.h"
#include "macro.h"

/* Removing a key on a slow token, and the polkit prompt. */
#define REMOVE_TIMEOUT_MS (300 * 1000)

typedef struct Removal {
	DialogFrame f;	  /* first: the dialog frees it */
	unsigned pending; /* Step 3 agencies not ticked */
	GtkWidget *force;
	ManagerPinEntry *pin;
} Removal;

static const char *member(json_t *object, const char *key)
{
	const char *s = json_string_value(json_object_get(object, key));
	return s ? s : "";
}

static json_t *find_certificate(json_t *token, const char *serial)
{
	return certificate_find(json_object_get(token, "Certificates"), serial);
}

/* Whether a certificate other than this one uses its key. */
static bool key_shared(json_t *token, json_t *certificate)
{
	size_t i;
	json_t *other;

	json_array_foreach(json_object_get(token, "Certificates"), i, other)
	{
		if (other != certificate &&
		    streq(member(other, "key_id"), member(certificate, "key_id")))
			return true;
	}
	return false;
}

json_t *manager_latest_activation(Manager *m, const char *serial)
{
	size_t i;
	json_t *entry;

	/* The history lists the latest first. */
	json_array_foreach(m->activations, i, entry)
	{
		if (streq(member(entry, "token"), serial))
			return entry;
	}
	return NULL;
}

bool manager_previous_removable(Manager *m, json_t *token)
{
	json_t *latest = manager_latest_activation(m, member(token, "Serial"));
	json_t *certificate;

	if (!latest || isempty(member(latest, "old_serial")))
		return false;
	certificate = find_certificate(token, member(latest, "old_serial"));
	if (certificate)
		return !json_is_true(json_object_get(certificate, "current"));
	/* A removal that began and did not end: its key waits for a login. */
	return json_object_get(latest, "removed_certificate") &&
	       !json_is_true(json_object_get(latest, "previous_removed"));
}

static unsigned agencies_pending(json_t *latest)
{
	unsigned n = 0;
	size_t i;
	json_t *agency;

	json_array_foreach(json_object_get(latest, "agencies"), i, agency)
	{
		if (!json_is_true(json_object_get(agency, "done")))
			n++;
	}
	return n;
}

static bool ready(DialogFrame *f)
{
	Removal *r = (Removal *)f;

	return pin_rules_length_ok(&f->rules, manager_pin_entry_get_length(r->pin)) &&
	       (r->pending == 0 || gtk_check_button_get_active(GTK_CHECK_BUTTON(r->force)));
}

static void on_update(gpointer instance, gpointer data)
{
	dialog_frame_update(data);
}

static char *result_text(const char *text)
{
	json_t *result = json_loads(text, 0, NULL);
	json_t *finished = json_object_get(result, "finished");
	char *words;

	if (finished)
		words = g_strdup(json_is_true(finished)
				     ? _("Finished the removal that was interrupted: the previous "
					 "key is gone too.")
				     : _("Nothing was left to remove."));
	else
		words = g_strdup_printf(json_is_true(json_object_get(result, "key_removed"))
					    ? _("Removed certificate %s and its key.")
					    : _("Removed certificate %s; its key stays: the "
						"current certificate uses it."),
					member(result, "serial"));
	json_decref(result);
	return words;
}

static void on_removed(GObject *source, GAsyncResult *result, gpointer data)
{
	Removal *r = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
	    G_DBUS_CONNECTION(source), NULL, result, &error);
	g_autofree char *name = NULL;

	if (!dialog_frame_answered(&r->f, error))
		return;
	if (reply) {
		const char *json;
		g_autofree char *text = NULL;

		g_variant_get(reply, "(&s)", &json);
		text = result_text(json);
		dialog_frame_end(&r->f, _("The previous certificate was removed"), text);
		return;
	}
	name = g_dbus_error_get_remote_error(error);
	if (streq_ptr(name, SAFECAD_ERROR_AGENCIES_PENDING)) {
		/* The window's list was older than the daemon's: ask again. */
		g_autofree char *text = NULL;

		g_dbus_error_strip_remote_error(error);
		text = text_clean(error->message);
		r->pending = MAX(r->pending, 1u);
		gtk_widget_set_visible(r->force, TRUE);
		dialog_say(r->f.error, text);
		dialog_frame_update(&r->f);
		return;
	}
	dialog_frame_failed(&r->f, error, _("Nothing was removed"));
}

static void remove_previous(DialogFrame *f)
{
	Removal *r = (Removal *)f;
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
	GVariantBuilder options;
	int fd = pin_entry_to_fd_list(r->pin, fds);

	if (fd < 0) {
		dialog_say(f->error, _("The PIN could not be handed to the service."));
		dialog_frame_update(f);
		return;
	}
	g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(
	    &options, "{sv}", "force",
	    g_variant_new_boolean(gtk_check_button_get_active(GTK_CHECK_BUTTON(r->force))));
	g_variant_builder_add(&options, "{sv}", "allow_final_try",
			      g_variant_new_boolean(final_try_allowed(f->final_try)));
	dialog_frame_call(f, "RemovePrevious",
			  g_variant_new("(h@a{sv})", fd, g_variant_builder_end(&options)), fds,
			  REMOVE_TIMEOUT_MS, on_removed, _("Removing… Do not pull the token out."));
}

static void on_activate(ManagerPinEntry *entry, gpointer data)
{
	dialog_frame_activate(data);
}

/* title: the certificate's, with its serial; key: what becomes of its key. */
static void add_certificate_row(GtkWidget *group, json_t *certificate, const char *title,
				const char *key)
{
	g_autofree char *from = date_text(member(certificate, "not_before"));
	g_autofree char *to = date_text(member(certificate, "not_after"));
	g_autofree char *subtitle = g_strdup_printf(_("Valid from %s to %s. %s"), from, to, key);
	g_autofree char *clean_title = text_clean(title);
	g_autofree char *clean = text_clean(subtitle);

	adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row_new(clean_title, clean));
}

static GtkWidget *group_new(GtkWidget *box, const char *title)
{
	GtkWidget *group = adw_preferences_group_new();

	adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(group), title);
	gtk_box_append(GTK_BOX(box), group);
	return group;
}

static void add_what(GtkWidget *box, json_t *token, json_t *latest)
{
	json_t *old = find_certificate(token, member(latest, "old_serial"));
	json_t *current = token_current_certificate(token);
	GtkWidget *goes = group_new(box, _("What goes"));
	GtkWidget *stays = group_new(box, _("What stays"));

	if (old) {
		g_autofree char *key =
		    key_shared(token, old)
			? g_strdup(_("Its key stays: another certificate on the token uses it."))
			: g_strdup_printf(_("Its key (ID %s) goes too."), member(old, "key_id"));

		g_autofree char *title = g_strdup_printf(
		    _("Certificate %s, replaced by the latest activation"), member(old, "serial"));

		add_certificate_row(goes, old, title, key);
	} else {
		g_autofree char *text = g_strdup_printf(
		    _("Removing certificate %s was interrupted: it is gone, and its key goes once "
		      "you give the PIN."),
		    member(latest, "old_serial"));

		gtk_box_append(GTK_BOX(box), dialog_label_new(text, NULL));
	}
	if (current) {
		g_autofree char *title =
		    g_strdup_printf(_("Certificate %s (current)"), member(current, "serial"));

		add_certificate_row(stays, current, title, _("It stays, with its key."));
	}
	gtk_box_append(GTK_BOX(box),
		       dialog_label_new(_("The removed certificate is kept in safecad's history."),
					"dim-label"));
}

static void add_step3(Removal *r, GtkWidget *box)
{
	g_autofree char *text = g_strdup_printf(
	    ngettext("Step 3 is not finished: %u agency is not ticked as knowing the new "
		     "certificate. Where it still knows only this one, your signature stops "
		     "being accepted once it is gone.",
		     "Step 3 is not finished: %u agencies are not ticked as knowing the new "
		     "certificate. Where they still know only this one, your signature stops "
		     "being accepted once it is gone.",
		     r->pending),
	    r->pending);

	r->force = gtk_check_button_new_with_label(_("Remove anyway, Step 3 is not finished"));
	g_signal_connect(r->force, "toggled", G_CALLBACK(on_update), r);
	if (r->pending > 0)
		gtk_box_append(GTK_BOX(box), dialog_label_new(text, "warning"));
	gtk_widget_set_visible(r->force, r->pending > 0);
	gtk_box_append(GTK_BOX(box), r->force);
}

static GtkWidget *remove_page(Removal *r, json_t *token, json_t *latest)
{
	g_autofree char *title = g_strdup_printf(_("Remove the previous certificate of token %s"),
						 member(token, "Serial"));
	GtkWidget *box = dialog_page_box(title);

	add_what(box, token, latest);
	add_step3(r, box);
	r->f.note = GTK_LABEL(dialog_label_new("", NULL));
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(r->f.note));
	r->f.fields = pin_field_new(_("PIN"), &r->pin);
	g_signal_connect(r->pin, "changed", G_CALLBACK(on_update), r);
	g_signal_connect(r->pin, "activate", G_CALLBACK(on_activate), r);
	gtk_box_append(GTK_BOX(box), r->f.fields);
	dialog_frame_add_pin_end(&r->f, box);
	return dialog_scrolled(box);
}

void manager_remove_previous(Manager *m, const char *serial)
{
	json_t *token = manager_find_token(m, serial);
	json_t *latest = manager_latest_activation(m, serial);
	g_autofree char *title = NULL;
	Removal *r;

	if (!token || !latest || !manager_previous_removable(m, token))
		return;
	r = g_new0(Removal, 1);
	r->pending = agencies_pending(latest);
	/* The PIN is asked for the key: the certificate alone needs none. */
	pin_rules_read(&r->f.rules, token);
	r->f.first = r->f.rules.max == 0
			 ? g_strdup(_("Removing a key needs the token's PIN."))
			 : g_strdup_printf(_("Removing a key needs the token's PIN (%u to %u "
					     "characters)."),
					   MAX(r->f.rules.min, 1u), r->f.rules.max);
	title = g_strdup_printf(_("Remove previous certificate on token %s"), serial);
	dialog_frame_open(&r->f, m, token, title, remove_page(r, token, latest), _("Remove"),
			  remove_previous, ready);
}
