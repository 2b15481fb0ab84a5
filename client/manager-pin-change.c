/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PIN change dialog: the current PIN, the new one twice, checked here
 * (the two new ones alike, the length the token takes) before the token
 * is touched; then one ChangePin, never repeated by itself. A locked token
 * is not asked at all; a token at its final try only once the person has
 * said so. */
#include "manager-dialog.h"

#include "i18n.h"
#include "macro.h"

/* A slow card reader and the polkit prompt. */
#define CHANGE_PIN_TIMEOUT_MS (120 * 1000)

typedef struct PinChange {
	DialogFrame f; /* first: the dialog frees it */
	ManagerPinEntry *old_pin, *new_pin, *again;
} PinChange;

static bool typed(DialogFrame *f)
{
	PinChange *c = (PinChange *)f;

	return manager_pin_entry_get_length(c->old_pin) > 0 &&
	       manager_pin_entry_get_length(c->new_pin) > 0 &&
	       manager_pin_entry_get_length(c->again) > 0;
}

static void on_changed(gpointer instance, gpointer data)
{
	dialog_frame_update(data);
}

static void on_changed_pin(GObject *source, GAsyncResult *result, gpointer data)
{
	PinChange *c = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
	    G_DBUS_CONNECTION(source), NULL, result, &error);

	if (!dialog_frame_answered(&c->f, error))
		return;
	if (reply)
		dialog_frame_end(&c->f, _("The PIN was changed"),
				 _("From now on, log in to the token with the new PIN."));
	else
		dialog_frame_failed(&c->f, error, _("The PIN was not changed"));
	if (!reply && !c->f.done)
		gtk_widget_grab_focus(GTK_WIDGET(c->old_pin));
}

/* What can be told without the token: a slip in the repeat, a length the
 * token does not take. NULL when there is none. */
static char *slip(PinChange *c)
{
	const PinRules *r = &c->f.rules;

	if (!manager_pin_entry_equal(c->new_pin, c->again))
		return g_strdup(_("The two new PINs differ; nothing was changed. Type the new PIN "
				  "twice the same way."));
	if (!pin_rules_length_ok(r, manager_pin_entry_get_length(c->new_pin)))
		return g_strdup_printf(
		    _("The new PIN must have %u to %u characters; nothing was changed."),
		    MAX(r->min, 1u), r->max ? r->max : PIN_MAX - 1);
	return NULL;
}

static void change(DialogFrame *f)
{
	PinChange *c = (PinChange *)f;
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
	g_autofree char *problem = slip(c);
	GVariantBuilder options;
	int old_fd, new_fd;

	manager_pin_entry_clear(c->again);
	if (problem) {
		dialog_say(f->error, problem);
		manager_pin_entry_clear(c->new_pin);
		gtk_widget_grab_focus(GTK_WIDGET(c->new_pin));
		dialog_frame_update(f);
		return;
	}
	old_fd = pin_entry_to_fd_list(c->old_pin, fds);
	new_fd = pin_entry_to_fd_list(c->new_pin, fds);
	if (old_fd < 0 || new_fd < 0) {
		manager_pin_entry_clear(c->old_pin);
		manager_pin_entry_clear(c->new_pin);
		dialog_say(f->error, _("The PIN could not be handed to the service."));
		dialog_frame_update(f);
		return;
	}
	g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&options, "{sv}", "allow_final_try",
			      g_variant_new_boolean(final_try_allowed(f->final_try)));
	dialog_frame_call(
	    f, "ChangePin",
	    g_variant_new("(hh@a{sv})", old_fd, new_fd, g_variant_builder_end(&options)), fds,
	    CHANGE_PIN_TIMEOUT_MS, on_changed_pin,
	    _("Changing the PIN… Do not pull the token out."));
}

static void on_activate(ManagerPinEntry *entry, gpointer data)
{
	dialog_frame_activate(data);
}

static void field(PinChange *c, const char *label, ManagerPinEntry **ret)
{
	gtk_box_append(GTK_BOX(c->f.fields), pin_field_new(label, ret));
	g_signal_connect(*ret, "changed", G_CALLBACK(on_changed), c);
	g_signal_connect(*ret, "activate", G_CALLBACK(on_activate), c);
}

static GtkWidget *pin_page(PinChange *c, json_t *token)
{
	g_autofree char *title = g_strdup_printf(
	    _("Change the PIN of token %s"), json_string_value(json_object_get(token, "Serial")));
	GtkWidget *box = dialog_page_box(title);

	c->f.note = GTK_LABEL(dialog_label_new("", NULL));
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(c->f.note));
	if (json_is_true(json_object_get(token, "PinMustChange")))
		gtk_box_append(GTK_BOX(box),
			       dialog_label_new(_("The token asks for a new PIN: it was given "
						  "with a PIN that must be changed before use."),
						"accent"));
	c->f.fields = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	field(c, _("Current PIN"), &c->old_pin);
	field(c, _("New PIN"), &c->new_pin);
	field(c, _("New PIN again"), &c->again);
	gtk_box_append(GTK_BOX(box), c->f.fields);
	dialog_frame_add_pin_end(&c->f, box);
	gtk_box_append(
	    GTK_BOX(box),
	    dialog_label_new(_("The PINs are typed as they are: a Vietnamese input "
			       "method (Unikey, ibus-bamboo) cannot change what you "
			       "type here, so there is no need to switch it to English."),
			     "dim-label"));
	return dialog_scrolled(box);
}

void manager_change_pin(Manager *m, const char *serial)
{
	json_t *token = manager_find_token(m, serial);
	g_autofree char *title = NULL;
	PinChange *c;

	if (!token)
		return;
	c = g_new0(PinChange, 1);
	pin_rules_read(&c->f.rules, token);
	if (c->f.rules.max > 0)
		c->f.first = g_strdup_printf(_("Type the current PIN, then the new one twice. A "
					       "PIN has %u to %u characters."),
					     MAX(c->f.rules.min, 1u), c->f.rules.max);
	else
		c->f.first = g_strdup(_("Type the current PIN, then the new one twice."));
	title = g_strdup_printf(_("Change PIN on token %s"), serial);
	dialog_frame_open(&c->f, m, token, title, pin_page(c, token), _("Change PIN"), change,
			  typed);
	if (!c->f.rules.locked)
		gtk_widget_grab_focus(GTK_WIDGET(c->old_pin));
}
