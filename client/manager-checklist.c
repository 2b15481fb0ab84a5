/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One activation's Step 3 checklist as a page of its own: the agencies to
 * register the new certificate with, ticked here (TickAgencies, as in the
 * history), each agency's site, Export and the two warnings: the history's
 * view of that activation, with a way back to the tokens. */
#include "manager.h"

#include "i18n.h"
#include "macro.h"

typedef struct Checklist {
	Manager *manager;
	AdwBin *content;
	char *action; /* the activation shown, or NULL */
	/* The history is read again before an activation that is not in it is
	 * given up on: the reading numbered after this one must have come. */
	unsigned read_after;
	bool shown; /* the activation is on the page */
} Checklist;

static void checklist_free(gpointer data)
{
	Checklist *c = data;

	if (c->manager->checklist == c)
		c->manager->checklist = NULL;
	g_free(c->action);
	g_free(c);
}

static json_t *find_entry(Manager *m, const char *action, bool *ret_latest_of_token)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	size_t i;
	json_t *entry;

	/* Newest first, as the history view reads it. */
	json_array_foreach(m->activations, i, entry)
	{
		const char *token = json_string_value(json_object_get(entry, "token"));
		bool latest = token && g_hash_table_add(seen, (gpointer)token);

		if (streq_ptr(json_string_value(json_object_get(entry, "action")), action)) {
			*ret_latest_of_token = latest;
			return entry;
		}
	}
	return NULL;
}

void manager_checklist_update(Manager *m, bool changed)
{
	Checklist *c = m->checklist;
	json_t *entry;
	bool latest = false;

	if (!c || !c->action || (c->shown && !changed))
		return;
	entry = find_entry(m, c->action, &latest);
	if (entry) {
		c->shown = true;
		adw_bin_set_child(c->content, history_entry_view_new(m, entry, latest));
		return;
	}
	/* Not (yet) in the history: wait for the reading asked for, unless
	 * there is none to wait for. */
	if (m->bus && (!(m->tokens || m->unreachable) ||
		       (m->reachable && (m->generation <= c->read_after || m->refresh_source))))
		return;
	c->shown = false;
	adw_bin_set_child(c->content,
			  paragraph_new(m->reachable ? _("This activation is not in the history.")
						     : _("The history cannot be read now.")));
}

void manager_show_checklist(Manager *m, const char *action)
{
	Checklist *c = m->checklist;

	if (!c)
		return;
	g_free(c->action);
	c->action = g_strdup(action);
	c->shown = false;
	adw_bin_set_child(c->content, paragraph_new(_("Reading the history…")));
	manager_show_page(m, "checklist");
	/* An activation that has just finished may be newer than the history
	 * read last: read it again, and show the activation from what comes
	 * back (or at once, when it is there already). */
	c->read_after = m->generation;
	manager_refresh(m);
	manager_checklist_update(m, true);
}

void manager_show_page(Manager *m, const char *name)
{
	GtkWidget *shown = gtk_stack_get_child_by_name(m->pages, name);

	/* The other page is hidden, not only covered: GTK 4.8 hands a stack's
	 * covered pages to screen readers as if they were on screen. */
	gtk_widget_set_visible(shown, TRUE);
	gtk_stack_set_visible_child(m->pages, shown);
	for (GtkWidget *child = gtk_widget_get_first_child(GTK_WIDGET(m->pages)); child;
	     child = gtk_widget_get_next_sibling(child))
		if (child != shown)
			gtk_widget_set_visible(child, FALSE);
}

static void on_back(GtkButton *button, gpointer data)
{
	manager_show_page(data, "tokens");
}

GtkWidget *checklist_page_new(Manager *m)
{
	Checklist *c = g_new0(Checklist, 1);
	GtkWidget *page = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *scrolled = gtk_scrolled_window_new();
	GtkWidget *clamp = adw_clamp_new();
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 18);
	GtkWidget *back = gtk_button_new_with_label(_("Back to the tokens"));
	GtkWidget *heading = paragraph_new(_("Step 3: register the new certificate"));
	GtkWidget *content = adw_bin_new();

	c->manager = m;
	c->content = ADW_BIN(content);
	m->checklist = c;
	g_object_set_data_full(G_OBJECT(page), "checklist", c, checklist_free);

	gtk_widget_set_margin_top(box, 18);
	gtk_widget_set_margin_bottom(box, 18);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	gtk_widget_set_halign(back, GTK_ALIGN_START);
	g_signal_connect(back, "clicked", G_CALLBACK(on_back), m);
	gtk_widget_add_css_class(heading, "title-2");
	gtk_box_append(GTK_BOX(box), back);
	gtk_box_append(GTK_BOX(box), heading);
	gtk_box_append(GTK_BOX(box), content);
	adw_clamp_set_maximum_size(ADW_CLAMP(clamp), 760);
	adw_clamp_set_child(ADW_CLAMP(clamp), box);
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scrolled), clamp);
	gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scrolled), GTK_POLICY_NEVER,
				       GTK_POLICY_AUTOMATIC);
	gtk_widget_set_vexpand(scrolled, TRUE);
	gtk_box_append(GTK_BOX(page), scrolled);
	/* Until an activation is asked for (manager_show_page). */
	gtk_widget_set_visible(page, FALSE);
	return page;
}
