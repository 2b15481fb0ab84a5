/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The baseline for bench/manager-idle.py: the least a libadwaita window
 * is, one AdwApplicationWindow holding one label, started and stopped as
 * safecad-manager is (one instance per session, SIGTERM quits), so that
 * what it costs can be taken from the Token Manager's figures. */
#include <adwaita.h>
#include <glib-unix.h>

static void on_activate(GApplication *application, gpointer data)
{
	GtkWidget *window = adw_application_window_new(GTK_APPLICATION(application));

	gtk_window_set_title(GTK_WINDOW(window), "Baseline");
	gtk_window_set_default_size(GTK_WINDOW(window), 860, 620);
	adw_application_window_set_content(ADW_APPLICATION_WINDOW(window),
					   gtk_label_new("Baseline window"));
	gtk_window_present(GTK_WINDOW(window));
}

static gboolean on_terminate(gpointer data)
{
	g_application_quit(data);
	return G_SOURCE_CONTINUE;
}

int main(int argc, char *argv[])
{
	AdwApplication *application =
	    adw_application_new("org.safecad.BenchBaseline", G_APPLICATION_DEFAULT_FLAGS);
	int status;

	g_signal_connect(application, "activate", G_CALLBACK(on_activate), NULL);
	g_unix_signal_add(SIGTERM, on_terminate, application);
	g_unix_signal_add(SIGINT, on_terminate, application);
	status = g_application_run(G_APPLICATION(application), argc, argv);
	g_object_unref(application);
	return status;
}
