/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager-dialog.h"

#include <unistd.h>

#include "bus-names.h"
#include "i18n.h"
#include "macro.h"

void dialog_frame_init(DialogFrame *f, Manager *m, const char *title, int height)
{
	GtkWidget *layout = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *header = adw_header_bar_new();
	GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);

	f->manager = m;
	f->window = GTK_WINDOW(adw_window_new());
	gtk_window_set_title(f->window, title);
	gtk_window_set_modal(f->window, TRUE);
	gtk_window_set_transient_for(f->window, m->window);
	gtk_window_set_default_size(f->window, 640, height);
	adw_header_bar_set_title_widget(ADW_HEADER_BAR(header), adw_window_title_new(title, NULL));
	gtk_box_append(GTK_BOX(layout), header);
	f->stack = GTK_STACK(gtk_stack_new());
	gtk_stack_set_transition_type(f->stack, GTK_STACK_TRANSITION_TYPE_NONE);
	gtk_widget_set_vexpand(GTK_WIDGET(f->stack), TRUE);
	gtk_box_append(GTK_BOX(layout), GTK_WIDGET(f->stack));
	gtk_widget_set_margin_start(buttons, 18);
	gtk_widget_set_margin_end(buttons, 18);
	gtk_widget_set_margin_top(buttons, 6);
	gtk_widget_set_margin_bottom(buttons, 12);
	gtk_widget_set_halign(buttons, GTK_ALIGN_END);
	f->cancel = gtk_button_new_with_label(_("Cancel"));
	f->primary = gtk_button_new_with_label("");
	gtk_widget_add_css_class(f->primary, "suggested-action");
	gtk_box_append(GTK_BOX(buttons), f->cancel);
	gtk_box_append(GTK_BOX(buttons), f->primary);
	gtk_box_append(GTK_BOX(layout), buttons);
	adw_window_set_content(ADW_WINDOW(f->window), layout);
}

void dialog_frame_show(DialogFrame *f, const char *page, const char *primary, const char *cancel)
{
	gtk_stack_set_visible_child_name(f->stack, page);
	gtk_widget_set_visible(f->primary, primary != NULL);
	if (primary)
		gtk_button_set_label(GTK_BUTTON(f->primary), primary);
	gtk_widget_set_visible(f->cancel, cancel != NULL);
	if (cancel)
		gtk_button_set_label(GTK_BUTTON(f->cancel), cancel);
	gtk_widget_set_sensitive(f->primary, TRUE);
	gtk_widget_set_sensitive(f->cancel, TRUE);
}

static void on_primary(GtkButton *button, gpointer data)
{
	DialogFrame *f = data;

	if (f->done)
		gtk_window_destroy(f->window);
	else if (!f->running)
		f->act(f);
}

static void on_cancel(GtkButton *button, gpointer data)
{
	DialogFrame *f = data;

	if (!f->running)
		gtk_window_destroy(f->window);
}

static gboolean on_close_request(GtkWindow *window, gpointer data)
{
	DialogFrame *f = data;

	/* Stays while the token is worked on, to say how it ended. */
	return f->running;
}

static void frame_free(DialogFrame *f)
{
	g_free(f->path);
	g_free(f->support);
	g_free(f->first);
	g_free(f);
}

static void on_destroy(GtkWidget *widget, gpointer data)
{
	DialogFrame *f = data;

	f->window = NULL;
	if (!f->running)
		frame_free(f);
}

void dialog_frame_run(DialogFrame *f, json_t *token)
{
	f->path = g_strdup(json_string_value(json_object_get(token, "path")));
	f->support = g_strdup(json_string_value(json_object_get(token, "Support")));
	g_signal_connect(f->cancel, "clicked", G_CALLBACK(on_cancel), f);
	g_signal_connect(f->primary, "clicked", G_CALLBACK(on_primary), f);
	g_signal_connect(f->window, "close-request", G_CALLBACK(on_close_request), f);
	g_signal_connect(f->window, "destroy", G_CALLBACK(on_destroy), f);
}

void dialog_frame_open(DialogFrame *f, Manager *m, json_t *token, const char *title,
		       GtkWidget *page, const char *primary, void (*act)(DialogFrame *f),
		       bool (*ready)(DialogFrame *f))
{
	f->act = act;
	f->ready = ready;
	dialog_frame_init(f, m, title, 600);
	gtk_stack_add_named(f->stack, page, "main");
	dialog_frame_run(f, token);
	dialog_frame_show(f, "main", primary, _("Cancel"));
	dialog_frame_prepare(f);
	gtk_window_present(f->window);
}

void dialog_frame_update(DialogFrame *f)
{
	gtk_widget_set_sensitive(f->primary, !f->running && !f->rules.locked &&
						 !final_try_blocks(f->final_try) && f->ready(f));
	gtk_widget_set_sensitive(f->cancel, !f->running);
}

static void on_final_try_toggled(GtkCheckButton *check, gpointer data)
{
	dialog_frame_update(data);
}

void dialog_frame_add_pin_end(DialogFrame *f, GtkWidget *box)
{
	f->final_try = final_try_check_new();
	g_signal_connect(f->final_try, "toggled", G_CALLBACK(on_final_try_toggled), f);
	gtk_box_append(GTK_BOX(box), f->final_try);
	f->error = dialog_error_new();
	gtk_box_append(GTK_BOX(box), GTK_WIDGET(f->error));
}

void dialog_frame_prepare(DialogFrame *f)
{
	g_autofree char *note = pin_rules_note(&f->rules, f->first, f->support);

	gtk_label_set_text(f->note, note);
	gtk_widget_set_visible(f->fields, !f->rules.locked);
	gtk_widget_set_visible(f->final_try, !f->rules.locked && f->rules.final_try);
	gtk_widget_set_visible(f->primary, !f->rules.locked);
	gtk_button_set_label(GTK_BUTTON(f->cancel), f->rules.locked ? _("Close") : _("Cancel"));
	dialog_frame_update(f);
}

void dialog_frame_activate(DialogFrame *f)
{
	if (gtk_widget_get_visible(f->primary) && gtk_widget_get_sensitive(f->primary))
		on_primary(NULL, f);
}

void dialog_frame_call(DialogFrame *f, const char *method, GVariant *parameters, GUnixFDList *fds,
		       int timeout_ms, GAsyncReadyCallback callback, const char *note)
{
	Manager *m = f->manager;

	dialog_say(f->error, NULL);
	f->running = true;
	manager_call_started(m);
	g_dbus_connection_call_with_unix_fd_list(m->bus, SAFECAD_BUS_NAME, f->path,
						 SAFECAD_TOKEN_INTERFACE, method, parameters, NULL,
						 G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
						 timeout_ms, fds, m->cancellable, callback, f);
	gtk_label_set_text(f->note, note);
	dialog_frame_update(f);
}

bool dialog_frame_answered(DialogFrame *f, const GError *error)
{
	bool cancelled = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

	f->running = false;
	if (!cancelled)
		manager_refresh(f->manager);
	manager_call_done(f->manager);
	if (!f->window) {
		frame_free(f);
		return false;
	}
	return !cancelled;
}

void dialog_frame_end(DialogFrame *f, const char *title, const char *text)
{
	f->done = true;
	dialog_frame_replace(f, "end", dialog_end_page(title, text));
	dialog_frame_show(f, "end", _("Close"), NULL);
}

void dialog_frame_failed(DialogFrame *f, const GError *error, const char *title)
{
	g_autofree char *text = pin_error_text(error, &f->rules);

	if (text) {
		/* Stays, for the person to look again at what was typed. */
		dialog_say(f->error, text);
		dialog_frame_prepare(f);
		return;
	}
	text = manager_error_text(error, f->support);
	dialog_frame_end(f, title, text);
}

void dialog_frame_replace(DialogFrame *f, const char *name, GtkWidget *child)
{
	GtkWidget *old = gtk_stack_get_child_by_name(f->stack, name);

	if (old)
		gtk_stack_remove(f->stack, old);
	gtk_stack_add_named(f->stack, child, name);
}

GtkWidget *dialog_label_new(const char *text, const char *css_class)
{
	GtkWidget *label = gtk_label_new(text);

	gtk_label_set_xalign(GTK_LABEL(label), 0);
	gtk_label_set_wrap(GTK_LABEL(label), TRUE);
	gtk_label_set_wrap_mode(GTK_LABEL(label), PANGO_WRAP_WORD_CHAR);
	if (css_class)
		gtk_widget_add_css_class(label, css_class);
	return label;
}

GtkWidget *dialog_page_box(const char *title)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);

	gtk_widget_set_margin_top(box, 12);
	gtk_widget_set_margin_bottom(box, 12);
	gtk_widget_set_margin_start(box, 18);
	gtk_widget_set_margin_end(box, 18);
	gtk_box_append(GTK_BOX(box), dialog_label_new(title, "title-3"));
	return box;
}

GtkWidget *dialog_scrolled(GtkWidget *child)
{
	GtkWidget *s = gtk_scrolled_window_new();

	gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(s), GTK_POLICY_NEVER,
				       GTK_POLICY_AUTOMATIC);
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(s), child);
	gtk_widget_set_vexpand(s, TRUE);
	return s;
}

GtkLabel *dialog_error_new(void)
{
	GtkWidget *label = dialog_label_new("", "error");

	gtk_widget_set_visible(label, FALSE);
	return GTK_LABEL(label);
}

void dialog_say(GtkLabel *error, const char *text)
{
	gtk_label_set_text(error, text ? text : "");
	gtk_widget_set_visible(GTK_WIDGET(error), text != NULL);
}

GtkWidget *dialog_end_page(const char *title, const char *text)
{
	GtkWidget *box = dialog_page_box(title);

	gtk_box_append(GTK_BOX(box), dialog_label_new(text, NULL));
	return dialog_scrolled(box);
}

/* --- the PIN ---------------------------------------------------------- */

void pin_rules_read(PinRules *r, json_t *token)
{
	const char *status = json_string_value(json_object_get(token, "PinStatus"));

	r->min = (unsigned)json_integer_value(json_object_get(token, "PinMinLength"));
	r->max = (unsigned)json_integer_value(json_object_get(token, "PinMaxLength"));
	r->locked = streq_ptr(status, "locked");
	r->final_try = streq_ptr(status, "final-try");
	r->count_low = streq_ptr(status, "count-low");
}

bool pin_rules_length_ok(const PinRules *r, size_t length)
{
	return length >= MAX(r->min, 1u) && (r->max == 0 || length <= r->max);
}

char *pin_rules_note(const PinRules *r, const char *first, const char *support)
{
	GString *s;

	/* Never asked: a locked token is not tried at all. */
	if (r->locked)
		return manager_text_with_support(
		    _("The token's PIN is locked: it cannot sign or activate until your CA "
		      "unlocks it. Nothing was tried."),
		    support);
	s = g_string_new(first);
	if (r->count_low)
		g_string_append_printf(s, " %s",
				       _("A wrong PIN was entered before: the token locks after a "
					 "few more wrong tries."));
	if (r->final_try)
		g_string_append_printf(s, " %s",
				       _("Only one try is left: if this PIN is wrong, the token "
					 "locks and only your CA can unlock it."));
	return g_string_free(s, FALSE);
}

GtkWidget *pin_field_new(const char *label, ManagerPinEntry **ret_entry)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	GtkWidget *entry = manager_pin_entry_new(label);
	GtkWidget *caption = gtk_label_new(label);

	gtk_widget_set_hexpand(entry, TRUE);
	gtk_box_append(GTK_BOX(box), caption);
	gtk_box_append(GTK_BOX(box), entry);
	*ret_entry = MANAGER_PIN_ENTRY(entry);
	return box;
}

GtkWidget *final_try_check_new(void)
{
	GtkWidget *check = gtk_check_button_new_with_label(
	    _("I am sure of this PIN: try it, knowing that a wrong one locks the token"));

	gtk_widget_set_visible(check, FALSE);
	return check;
}

bool final_try_allowed(GtkWidget *check)
{
	return gtk_widget_get_visible(check) &&
	       gtk_check_button_get_active(GTK_CHECK_BUTTON(check));
}

bool final_try_blocks(GtkWidget *check)
{
	return gtk_widget_get_visible(check) &&
	       !gtk_check_button_get_active(GTK_CHECK_BUTTON(check));
}

int pin_entry_to_fd_list(ManagerPinEntry *entry, GUnixFDList *fds)
{
	Pin *pin = manager_pin_entry_take(entry);
	int fd, index;

	if (!pin)
		return -1;
	/* Wiped here the moment it is in the pipe. */
	fd = pin_pipe(pin);
	pin_free(pin);
	if (fd < 0)
		return -1;
	index = g_unix_fd_list_append(fds, fd, NULL);
	close(fd);
	return index;
}

char *pin_error_text(const GError *error, PinRules *r)
{
	g_autofree char *name = g_dbus_error_get_remote_error(error);
	g_autoptr(GError) copy = NULL;

	if (streq_ptr(name, SAFECAD_ERROR_FINAL_TRY))
		r->final_try = true;
	else if (streq_ptr(name, SAFECAD_ERROR_PIN_LOCKED))
		r->locked = true;
	else if (!streq_ptr(name, SAFECAD_ERROR_WRONG_PIN) &&
		 !streq_ptr(name, SAFECAD_ERROR_PIN_LENGTH))
		return NULL;
	/* The daemon's words (tries left where the token says them), never
	 * tried again on the person's behalf. */
	copy = g_error_copy(error);
	g_dbus_error_strip_remote_error(copy);
	return text_clean(copy->message);
}
