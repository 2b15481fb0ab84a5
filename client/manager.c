/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safecad-manager: the Token Manager window. One instance per session
 * (org.safecad.Manager on the session bus): opening it again, from the
 * app menu or the agent's notification, brings the open window forward. */
#include "manager.h"

#include <glib-unix.h>

#include "i18n.h"

static void on_activate(GApplication *application, gpointer data)
{
	Manager *m = data;
	g_autoptr(GError) error = NULL;

	if (!m->window) {
		manager_window_new(m);
		if (manager_bus_start(m, &error) < 0) {
			m->unreachable = manager_error_text(error, NULL);
			manager_window_update(m);
		}
	}
	gtk_window_present(m->window);
}

static void on_shutdown(GApplication *application, gpointer data)
{
	manager_bus_stop(data);
}

static gboolean on_terminate(gpointer data)
{
	/* A session that ends sends SIGTERM: close as if the window was. */
	g_application_quit(data);
	return G_SOURCE_CONTINUE;
}

int main(int argc, char *argv[])
{
	Manager m = {0};
	int status;

	i18n_init();
	g_set_application_name(_("Token Manager"));
	m.application = adw_application_new("org.safecad.Manager", G_APPLICATION_DEFAULT_FLAGS);
	g_signal_connect(m.application, "activate", G_CALLBACK(on_activate), &m);
	g_signal_connect(m.application, "shutdown", G_CALLBACK(on_shutdown), &m);
	g_unix_signal_add(SIGTERM, on_terminate, m.application);
	g_unix_signal_add(SIGINT, on_terminate, m.application);
	status = g_application_run(G_APPLICATION(m.application), argc, argv);
	g_object_unref(m.application);
	json_decref(m.tokens);
	json_decref(m.activations);
	g_free(m.unreachable);
	return status;
}
