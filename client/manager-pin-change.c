/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PIN change dialog: the current PIN, the new one twice, checked here
 * (the two new ones alike, the length the token takes) before the token
 * is touched; then one ChangePin, never repeated by itself. A locked token
 * is not asked at all; a token at its final try only once the person has
 * said so. */
#include "manager-dialog.h"

#include "bus-names.h"
#include "i18n.h"
#include "macro.h"

/* A slow card reader and the polkit prompt. */
#define CHANGE_PIN_TIMEOUT_MS (120 * 1000)

typedef struct PinChange {
	Manager *manager;
	DialogFrame f; /* f.window NULL once closed */
	char *path, *support;
	PinRules rules;
	bool running, done;

	GtkWidget *fields, *final_try;
	ManagerPinEntry *old_pin, *new_pin, *again;
	GtkLabel *note, *error;
} PinChange;

static void pin_change_free(PinChange *c)
{
	g_free(c->path);
	g_free(c->support);
	g_free(c);
}

/* The buttons, as what was typed allows. */
static void update(PinChange *c)
{
	bool typed = manager_pin_entry_get_length(c->old_pin) > 0 &&
		     manager_pin_entry_get_length(c->new_pin) > 0 &&
		     manager_pin_entry_get_length(c->again) > 0;

	gtk_widget_set_sensitive(c->f.primary, typed && !c->running && !c->rules.locked &&
						   !final_try_blocks(c->final_try));
	gtk_widget_set_sensitive(c->f.cancel, !c->running);
}

/* The page, as the token stands. */
static void prepare(PinChange *c)
{
	g_autofree char *first = NULL;
	g_autofree char *note = NULL;

	if (c->rules.max > 0)
		first = g_strdup_printf(_("Type the current PIN, then the new one twice. A PIN has "
					  "%u to %u characters."),
					MAX(c->rules.min, 1u), c->rules.max);
	else
		first = g_strdup(_("Type the current PIN, then the new one twice."));
	note = pin_rules_note(&c->rules, first, c->support);
	gtk_label_set_text(c->note, note);
	gtk_widget_set_visible(c->fields, !c->rules.locked);
	gtk_widget_set_visible(c->final_try, !c->rules.locked && c->rules.final_try);
	gtk_widget_set_visible(c->f.primary, !c->rules.locked);
	gtk_button_set_label(GTK_BUTTON(c->f.cancel), c->rules.locked ? _("Close") : _("Cancel"));
	update(c);
}

static void on_changed(gpointer instance, gpointer data)
{
	update(data);
}

static void clear_new(PinChange *c)
{
	manager_pin_entry_clear(c->new_pin);
	manager_pin_entry_clear(c->again);
	gtk_widget_grab_focus(GTK_WIDGET(c->new_pin));
	update(c);
}

static void on_changed_pin(GObject *source, GAsyncResult *result, gpointer data)
{
	PinChange *c = data;
	Manager *m = c->manager;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
	    G_DBUS_CONNECTION(source), NULL, result, &error);
	g_autofree char *text = NULL;

	c->running = false;
	if (!c->f.window || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		/* Closed meanwhile (or the window is going). */
	} else if (reply) {
		c->done = true;
		dialog_frame_replace(
		    &c->f, "end",
		    dialog_end_page(_("The PIN was changed"),
				    _("From now on, log in to the token with the new PIN.")));
		dialog_frame_show(&c->f, "end", _("Close"), NULL);
	} else if ((text = pin_error_text(error, &c->rules))) {
		/* Stays, for the person to look again at what was typed. */
		dialog_say(c->error, text);
		prepare(c);
		gtk_widget_grab_focus(GTK_WIDGET(c->old_pin));
	} else {
		g_autofree char *words = manager_error_text(error, c->support);

		c->done = true;
		dialog_frame_replace(&c->f, "end",
				     dialog_end_page(_("The PIN was not changed"), words));
		dialog_frame_show(&c->f, "end", _("Close"), NULL);
	}
	if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		manager_refresh(m);
	manager_call_done(m);
	if (!c->f.window)
		pin_change_free(c);
}

/* What can be told without the token: a slip in the repeat, a length the
 * token does not take. NULL when there is none. */
static const char *slip(PinChange *c, char **ret_text)
{
	if (!manager_pin_entry_equal(c->new_pin, c->again))
		return _("The two new PINs differ; nothing was changed. Type the new PIN twice "
			 "the same way.");
	if (!pin_rules_length_ok(&c->rules, manager_pin_entry_get_length(c->new_pin))) {
		*ret_text = g_strdup_printf(
		    _("The new PIN must have %u to %u characters; nothing was changed."),
		    MAX(c->rules.min, 1u), c->rules.max ? c->rules.max : PIN_MAX - 1);
		return *ret_text;
	}
	return NULL;
}

static void change(PinChange *c)
{
	Manager *m = c->manager;
	g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
	g_autofree char *text = NULL;
	const char *problem = slip(c, &text);
	GVariantBuilder options;
	int old_fd, new_fd;

	if (problem) {
		dialog_say(c->error, problem);
		clear_new(c);
		return;
	}
	manager_pin_entry_clear(c->again);
	old_fd = pin_entry_to_fd_list(c->old_pin, fds);
	new_fd = old_fd >= 0 ? pin_entry_to_fd_list(c->new_pin, fds) : -1;
	if (new_fd < 0) {
		manager_pin_entry_clear(c->old_pin);
		manager_pin_entry_clear(c->new_pin);
		dialog_say(c->error, _("The PIN could not be handed to the service."));
		update(c);
		return;
	}
	dialog_say(c->error, NULL);
	g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
	g_variant_builder_add(&options, "{sv}", "allow_final_try",
			      g_variant_new_boolean(final_try_allowed(c->final_try)));
	c->running = true;
	manager_call_started(m);
	g_dbus_connection_call_with_unix_fd_list(
	    m->bus, SAFECAD_BUS_NAME, c->path, SAFECAD_TOKEN_INTERFACE, "ChangePin",
	    g_variant_new("(hh@a{sv})", old_fd, new_fd, g_variant_builder_end(&options)), NULL,
	    G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, CHANGE_PIN_TIMEOUT_MS, fds,
	    m->cancellable, on_changed_pin, c);
	gtk_label_set_text(c->note, _("Changing the PIN… Do not pull the token out."));
	update(c);
}

static void on_primary(GtkButton *button, gpointer data)
{
	PinChange *c = data;

	if (c->done)
		gtk_window_destroy(c->f.window);
	else if (gtk_widget_get_sensitive(c->f.primary))
		change(c);
}

static void on_activate(ManagerPinEntry *entry, gpointer data)
{
	on_primary(NULL, data);
}

static void on_cancel(GtkButton *button, gpointer data)
{
	PinChange *c = data;

	if (!c->running)
		gtk_window_destroy(c->f.window);
}

static gboolean on_close_request(GtkWindow *window, gpointer data)
{
	PinChange *c = data;

	/* Stays while the token is written to, to say how it ended. */
	return c->running;
}

static void on_destroy(GtkWidget *widget, gpointer data)
{
	PinChange *c = data;

	c->f.window = NULL;
	if (!c->running)
		pin_change_free(c);
}

static GtkWidget *field(PinChange *c, GtkWidget *box, const char *label, ManagerPinEntry **ret)
{
	GtkWidget *row = pin_field_new(label, ret);

	g_signal_connect(*ret, "changed", G_CALLBACK(on_changed), c);
	g_signal_connect(*ret, "activate", G_CALLBACK(on_activate), c);
	gtk_box_append(GTK_BOX(box), row);
	return row;
}

static GtkWidget *pin_page(PinChange *c, json_t *token)
{
	g_autofree char *title = g_strdup_printf(
	    _("Change the PIN of token %s"), json_string_value(json_object_get(token, "Serial")));
	GtkWidget *box = dialog_page_box(title);

	c->note = GTK_LABEL(dialog_label_new("", NULL));
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(c->note));
	if (json_is_true(json_object_get(token, "PinMustChange")))
		gtk_box_append(GTK_BOX(box),
			       dialog_label_new(_("The token asks for a new PIN: it was given "
						  "with a PIN that must be changed before use."),
						"accent"));
	c->fields = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	field(c, c->fields, _("Current PIN"), &c->old_pin);
	field(c, c->fields, _("New PIN"), &c->new_pin);
	field(c, c->fields, _("New PIN again"), &c->again);
	gtk_box_append(GTK_BOX(box), c->fields);
	c->final_try = final_try_check_new();
	g_signal_connect_swapped(c->final_try, "toggled", G_CALLBACK(update), c);
	gtk_box_append(GTK_BOX(box), c->final_try);
	c->error = dialog_error_new();
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(c->error));
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
	c->manager = m;
	c->path = g_strdup(json_string_value(json_object_get(token, "path")));
	c->support = g_strdup(json_string_value(json_object_get(token, "Support")));
	pin_rules_read(&c->rules, token);
	title = g_strdup_printf(_("Change PIN on token %s"), serial);
	dialog_frame_init(&c->f, m, title, 520);
	gtk_stack_add_named(c->f.stack, pin_page(c, token), "pin");
	g_signal_connect(c->f.cancel, "clicked", G_CALLBACK(on_cancel), c);
	g_signal_connect(c->f.primary, "clicked", G_CALLBACK(on_primary), c);
	g_signal_connect(c->f.window, "close-request", G_CALLBACK(on_close_request), c);
	g_signal_connect(c->f.window, "destroy", G_CALLBACK(on_destroy), c);
	dialog_frame_show(&c->f, "pin", _("Change PIN"), _("Cancel"));
	prepare(c);
	gtk_window_present(c->f.window);
	if (!c->rules.locked)
		gtk_widget_grab_focus(GTK_WIDGET(c->old_pin));
}
