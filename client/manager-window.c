/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include "i18n.h"

static GtkWidget *heading_new(const char *text)
{
	GtkWidget *label = gtk_label_new(text);

	gtk_label_set_xalign(GTK_LABEL(label), 0);
	gtk_label_set_wrap(GTK_LABEL(label), TRUE);
	gtk_widget_add_css_class(label, "title-2");
	return label;
}

void manager_window_update(Manager *m)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 24);
	size_t i;
	json_t *token;

	gtk_widget_set_margin_top(box, 18);
	gtk_widget_set_margin_bottom(box, 18);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	if (!m->reachable) {
		gtk_box_append(GTK_BOX(box), heading_new(_("The token service cannot be reached")));
		gtk_box_append(GTK_BOX(box), paragraph_new(m->unreachable ? m->unreachable : ""));
		gtk_box_append(GTK_BOX(box),
			       paragraph_new(_("This window follows it: it shows the tokens again "
					       "as soon as the service is back.")));
		adw_bin_set_child(m->content, box);
		manager_checklist_update(m, true);
		return;
	}
	gtk_box_append(GTK_BOX(box), heading_new(_("Tokens")));
	if (json_array_size(m->tokens) == 0)
		gtk_box_append(GTK_BOX(box),
			       paragraph_new(_("No token is plugged in. Plug in your USB token: "
					       "it shows here at once.")));
	json_array_foreach(m->tokens, i, token)
	    gtk_box_append(GTK_BOX(box), token_view_new(m, token));
	if (json_array_size(m->activations) > 0) {
		gtk_box_append(GTK_BOX(box), heading_new(_("Activations and Step 3")));
		gtk_box_append(GTK_BOX(box), history_view_new(m, m->activations));
	}
	/* Built anew each time: the scrolled window around it stays, and
	 * so does where the person has scrolled to. */
	adw_bin_set_child(m->content, box);
	manager_checklist_update(m, true);
	manager_reveal_token(m);
}

void manager_show_error(Manager *m, const GError *error, const char *support)
{
	g_autofree char *text = manager_error_text(error, support);

	gtk_label_set_text(m->message, text);
	gtk_widget_set_visible(gtk_widget_get_parent(GTK_WIDGET(m->message)), TRUE);
}

static void on_dismiss(GtkButton *button, gpointer data)
{
	gtk_widget_set_visible(gtk_widget_get_parent(GTK_WIDGET(button)), FALSE);
}

static GtkWidget *message_bar_new(Manager *m)
{
	GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
	GtkWidget *label = gtk_label_new("");
	GtkWidget *dismiss = gtk_button_new_with_label(_("Dismiss"));

	gtk_widget_set_margin_start(bar, 12);
	gtk_widget_set_margin_end(bar, 12);
	gtk_widget_set_margin_top(bar, 6);
	gtk_widget_set_margin_bottom(bar, 6);
	gtk_label_set_wrap(GTK_LABEL(label), TRUE);
	gtk_label_set_xalign(GTK_LABEL(label), 0);
	gtk_widget_set_hexpand(label, TRUE);
	gtk_widget_add_css_class(label, "error");
	gtk_widget_set_valign(dismiss, GTK_ALIGN_CENTER);
	g_signal_connect(dismiss, "clicked", G_CALLBACK(on_dismiss), NULL);
	gtk_box_append(GTK_BOX(bar), label);
	gtk_box_append(GTK_BOX(bar), dismiss);
	gtk_widget_set_visible(bar, FALSE);
	m->message = GTK_LABEL(label);
	return bar;
}

void manager_window_new(Manager *m)
{
	GtkWidget *window = adw_application_window_new(GTK_APPLICATION(m->application));
	GtkWidget *layout = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *header = adw_header_bar_new();
	GtkWidget *scrolled = gtk_scrolled_window_new();
	GtkWidget *clamp = adw_clamp_new();
	GtkWidget *content = adw_bin_new();
	GtkWidget *main_page = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *pages = gtk_stack_new();

	gtk_window_set_title(GTK_WINDOW(window), _("Token Manager"));
	gtk_window_set_icon_name(GTK_WINDOW(window), "org.safecad.Manager");
	gtk_window_set_default_size(GTK_WINDOW(window), 860, 620);
	adw_header_bar_set_title_widget(
	    ADW_HEADER_BAR(header),
	    adw_window_title_new(_("Token Manager"), _("Certificates on your USB tokens")));
	gtk_box_append(GTK_BOX(layout), header);
	gtk_box_append(GTK_BOX(layout), message_bar_new(m));
	adw_clamp_set_maximum_size(ADW_CLAMP(clamp), 760);
	gtk_box_append(GTK_BOX(main_page), content);
	gtk_box_append(GTK_BOX(main_page), settings_view_new(m));
	adw_clamp_set_child(ADW_CLAMP(clamp), main_page);
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scrolled), clamp);
	gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scrolled), GTK_POLICY_NEVER,
				       GTK_POLICY_AUTOMATIC);
	gtk_widget_set_vexpand(pages, TRUE);
	gtk_stack_add_named(GTK_STACK(pages), scrolled, "tokens");
	gtk_stack_add_named(GTK_STACK(pages), checklist_page_new(m), "checklist");
	gtk_box_append(GTK_BOX(layout), pages);
	adw_application_window_set_content(ADW_APPLICATION_WINDOW(window), layout);
	m->window = GTK_WINDOW(window);
	m->content = ADW_BIN(content);
	m->pages = GTK_STACK(pages);
	/* Until the first answer: say nothing rather than "no token". */
	adw_bin_set_child(m->content, paragraph_new(_("Reading the tokens…")));
}
