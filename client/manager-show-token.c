/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* show-token: the window on one token, as the agent's notification for it
 * opens it. The page is built anew on every change, so what is asked for
 * is kept: the token's heading stays marked, and the list is scrolled to it
 * once, when the token is first there to scroll to. */
#include "manager.h"

#include "macro.h"

/* Above the section when scrolled to: its heading is not flush with the
 * window's edge. */
#define REVEAL_MARGIN 12
/* A token plugged in a moment ago may not be in the first reading yet (the
 * agent asks for it as soon as safecad announces it): it is waited for this
 * long, then the window stays as it is. */
#define REVEAL_WAIT_USEC (10 * G_USEC_PER_SEC)

static GtkWidget *find_section(Manager *m, const char *serial)
{
	GtkWidget *page = adw_bin_get_child(m->content);

	for (GtkWidget *child = page ? gtk_widget_get_first_child(page) : NULL; child;
	     child = gtk_widget_get_next_sibling(child))
		if (streq_ptr(g_object_get_data(G_OBJECT(child), "serial"), serial))
			return child;
	return NULL;
}

static gboolean on_reveal_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
	Manager *m = data;
	GtkScrolledWindow *scrolled = GTK_SCROLLED_WINDOW(widget);
	GtkWidget *section = find_section(m, m->reveal);
	GtkWidget *viewport = gtk_scrolled_window_get_child(scrolled);
	GtkWidget *top = viewport ? gtk_widget_get_first_child(viewport) : NULL;
	graphene_rect_t bounds;

	/* Laid out in an earlier frame: until then its place is unknown. */
	if (section && top &&
	    (gtk_widget_get_height(section) == 0 ||
	     !gtk_widget_compute_bounds(section, top, &bounds)))
		return G_SOURCE_CONTINUE;
	if (section && top)
		gtk_adjustment_set_value(gtk_scrolled_window_get_vadjustment(scrolled),
					 bounds.origin.y - REVEAL_MARGIN);
	g_clear_pointer(&m->reveal, g_free);
	m->reveal_tick = 0;
	return G_SOURCE_REMOVE;
}

void manager_reveal_token(Manager *m)
{
	GtkWidget *scrolled;

	if (!m->reveal || m->reveal_tick)
		return;
	/* Before the first reading there is nothing to scroll to yet; after
	 * it, a token that is not there is waited for a little only. */
	if (!m->tokens && !m->unreachable)
		return;
	if (!find_section(m, m->reveal)) {
		if (g_get_monotonic_time() > m->reveal_until)
			g_clear_pointer(&m->reveal, g_free);
		return;
	}
	scrolled = gtk_widget_get_ancestor(GTK_WIDGET(m->content), GTK_TYPE_SCROLLED_WINDOW);
	m->reveal_tick = gtk_widget_add_tick_callback(scrolled, on_reveal_tick, m, NULL);
}

void manager_show_token(Manager *m, const char *serial)
{
	g_free(m->highlight);
	m->highlight = g_strdup(serial);
	g_free(m->reveal);
	m->reveal = g_strdup(serial);
	m->reveal_until = g_get_monotonic_time() + REVEAL_WAIT_USEC;
	manager_show_page(m, "tokens");
	/* Read already: built again with the mark, then scrolled. Otherwise
	 * the first reading does both. */
	if (m->tokens || m->unreachable)
		manager_window_update(m);
}
