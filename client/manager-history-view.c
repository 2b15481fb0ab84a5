/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include "history-json.h"
#include "i18n.h"
#include "macro.h"

static const char *member(json_t *object, const char *key)
{
	const char *s = json_string_value(json_object_get(object, key));
	return s ? s : "";
}

static void on_ticked(GtkCheckButton *check, gpointer data)
{
	Manager *m = data;

	if (!gtk_check_button_get_active(check))
		return;
	/* A tick is not taken back (the daemon has no untick); the history
	 * read after the call shows what the daemon recorded. */
	gtk_widget_set_sensitive(GTK_WIDGET(check), FALSE);
	manager_tick_agency(m, g_object_get_data(G_OBJECT(check), "action"),
			    g_object_get_data(G_OBJECT(check), "agency"));
}

static void on_open_site(GtkButton *button, gpointer data)
{
	Manager *m = data;

	/* The desktop's own handler for https: the person's browser. */
	gtk_show_uri(m->window, g_object_get_data(G_OBJECT(button), "url"), GDK_CURRENT_TIME);
}

static void on_export(GtkButton *button, gpointer data)
{
	Manager *m = data;

	manager_export(m, g_object_get_data(G_OBJECT(button), "path"),
		       g_object_get_data(G_OBJECT(button), "support"));
}

static GtkWidget *agency_row(Manager *m, json_t *entry, json_t *agency)
{
	g_autofree char *name = text_clean(member(agency, "name"));
	g_autofree char *url = text_clean(member(agency, "url"));
	g_autofree char *open_name = g_strdup_printf(_("Open the site of %s"), name);
	bool done = json_is_true(json_object_get(agency, "done"));
	GtkWidget *row = row_new(name, url);
	GtkWidget *check = gtk_check_button_new();
	GtkWidget *open = gtk_button_new_with_label(_("Open site"));

	gtk_check_button_set_active(GTK_CHECK_BUTTON(check), done);
	gtk_widget_set_sensitive(check, !done);
	g_object_set_data_full(G_OBJECT(check), "action", g_strdup(member(entry, "action")),
			       g_free);
	g_object_set_data_full(G_OBJECT(check), "agency", g_strdup(member(agency, "id")), g_free);
	g_signal_connect(check, "toggled", G_CALLBACK(on_ticked), m);
	adw_action_row_add_prefix(ADW_ACTION_ROW(row), check);
	/* The row labels its check box with the agency's name (an explicit
	 * label as well would be read twice). */
	adw_action_row_set_activatable_widget(ADW_ACTION_ROW(row), check);

	gtk_accessible_update_property(GTK_ACCESSIBLE(open), GTK_ACCESSIBLE_PROPERTY_LABEL,
				       open_name, -1);
	gtk_widget_set_valign(open, GTK_ALIGN_CENTER);
	/* Only a web address is handed to the desktop: the profile is the
	 * CA's text, not a command. */
	if (g_str_has_prefix(member(agency, "url"), "https://") ||
	    g_str_has_prefix(member(agency, "url"), "http://")) {
		g_object_set_data_full(G_OBJECT(open), "url", g_strdup(member(agency, "url")),
				       g_free);
		g_signal_connect(open, "clicked", G_CALLBACK(on_open_site), m);
	} else {
		gtk_widget_set_sensitive(open, FALSE);
	}
	adw_action_row_add_suffix(ADW_ACTION_ROW(row), open);
	return row;
}

static void add_text(GtkWidget *box, const char *text, const char *css_class)
{
	GtkWidget *label = gtk_label_new(text);

	gtk_label_set_wrap(GTK_LABEL(label), TRUE);
	gtk_label_set_xalign(GTK_LABEL(label), 0);
	if (css_class)
		gtk_widget_add_css_class(label, css_class);
	gtk_box_append(GTK_BOX(box), label);
}

GtkWidget *history_entry_view_new(Manager *m, json_t *entry, bool latest_of_token)
{
	/* Texts above the rows: a preferences group puts widgets that are not
	 * rows below its list. */
	GtkWidget *view = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	GtkWidget *group;
	bool renew = streq(member(entry, "type"), "renew");
	g_autofree char *what = g_strdup_printf(
	    renew ? _("Renewal of token %s: certificate %s replaced by %s")
		  : _("Change of information on token %s: certificate %s replaced by %s"),
	    member(entry, "token"), member(entry, "old_serial"), member(entry, "new_serial"));
	g_autofree char *heading = text_clean(what);
	g_autofree char *when = NULL;
	json_t *token = manager_find_token(m, member(entry, "token"));
	size_t i;
	json_t *agency;

	add_text(view, heading, "heading");
	if (json_is_string(json_object_get(entry, "completed"))) {
		g_autofree char *date = date_text(member(entry, "completed"));
		when = g_strdup_printf(_("Confirmed by the CA on %s."), date);
	} else {
		when = g_strdup(_("Written to the token; the CA has not confirmed it yet."));
	}
	add_text(view, when, NULL);
	if (json_array_size(json_object_get(entry, "agencies")) == 0)
		return view;

	add_text(view,
		 history_agencies_done(entry)
		     ? _("Step 3 is done: the new certificate is registered with every agency.")
		     : _("Step 3: register the new certificate with every agency below "
			 "(mandatory), then tick it."),
		 "heading");
	add_text(view,
		 _("Customs and e-invoice systems accept the new certificate only 24 hours "
		   "after it is registered: sign what cannot wait with the previous one first."),
		 "dim-label");
	add_text(view,
		 _("To keep bidding on the national e-procurement system "
		   "(muasamcong.mpi.gov.vn) without interruption, ask your CA to keep the "
		   "previous certificate's registration."),
		 "dim-label");
	group = adw_preferences_group_new();
	json_array_foreach(json_object_get(entry, "agencies"), i, agency)
	{
		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group),
					  agency_row(m, entry, agency));
	}
	gtk_box_append(GTK_BOX(view), group);
	if (token && latest_of_token) {
		GtkWidget *button = gtk_button_new_with_label(_("Export certificate…"));
		g_autofree char *name = g_strdup_printf(_("Export the new certificate %s"),
							member(entry, "new_serial"));
		g_autofree char *clean_name = text_clean(name);

		gtk_accessible_update_property(GTK_ACCESSIBLE(button),
					       GTK_ACCESSIBLE_PROPERTY_LABEL, clean_name, -1);
		g_object_set_data_full(G_OBJECT(button), "path", g_strdup(member(token, "path")),
				       g_free);
		g_object_set_data_full(G_OBJECT(button), "support",
				       g_strdup(member(token, "Support")), g_free);
		g_signal_connect(button, "clicked", G_CALLBACK(on_export), m);
		gtk_widget_set_halign(button, GTK_ALIGN_START);
		gtk_box_append(GTK_BOX(view), button);
	}
	return view;
}

GtkWidget *history_view_new(Manager *m, json_t *activations)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 18);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	size_t i;
	json_t *entry;

	/* Newest first: only a token's latest activation holds its current
	 * certificate, the one worth exporting. */
	json_array_foreach(activations, i, entry)
	{
		const char *token = member(entry, "token");
		bool latest = g_hash_table_add(seen, (gpointer)token);

		gtk_box_append(GTK_BOX(box), history_entry_view_new(m, entry, latest));
	}
	return box;
}
