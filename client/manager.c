/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safecad-manager: the Token Manager window. One instance per session
 * (org.safecad.Manager on the session bus): opening it again, from the
 * app menu or the agent's notification, brings the open window forward. */
#include "manager.h"

#include <glib-unix.h>
#include <string.h>

#include "i18n.h"

void manager_present(Manager *m)
{
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

static void on_activate(GApplication *application, gpointer data)
{
	manager_present(data);
}

/* The actions the agent's notifications (and the activation dialog) open
 * the window with, through org.freedesktop.Application.ActivateAction: a
 * window started by D-Bus activation gets no "activate", so each makes the
 * window itself. Their parameter is checked here, as any caller on the
 * session bus can send one. */
static void on_show_token(GSimpleAction *action, GVariant *parameter, gpointer data)
{
	Manager *m = data;

	manager_present(m);
	/* A token's serial is only compared with the serials safecad lists
	 * (PKCS#11 gives 16 characters): any text not too long will do. */
	if (strlen(g_variant_get_string(parameter, NULL)) <= 64)
		manager_show_token(m, g_variant_get_string(parameter, NULL));
}

static void on_show_checklist(GSimpleAction *action, GVariant *parameter, gpointer data)
{
	Manager *m = data;

	manager_present(m);
	/* Action ids are [A-Za-z0-9_-]{1,64} (protocol-v1); the checklist
	 * looks the id up in the history, nothing else. */
	if (strlen(g_variant_get_string(parameter, NULL)) <= 64)
		manager_show_checklist(m, g_variant_get_string(parameter, NULL));
}

static const GActionEntry actions[] = {
    {.name = "show-token", .activate = on_show_token, .parameter_type = "s"},
    {.name = "show-checklist", .activate = on_show_checklist, .parameter_type = "s"},
};

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
	g_action_map_add_action_entries(G_ACTION_MAP(m.application), actions, G_N_ELEMENTS(actions),
					&m);
	g_signal_connect(m.application, "activate", G_CALLBACK(on_activate), &m);
	g_signal_connect(m.application, "shutdown", G_CALLBACK(on_shutdown), &m);
	g_unix_signal_add(SIGTERM, on_terminate, m.application);
	g_unix_signal_add(SIGINT, on_terminate, m.application);
	status = g_application_run(G_APPLICATION(m.application), argc, argv);
	g_object_unref(m.application);
	json_decref(m.tokens);
	json_decref(m.activations);
	g_free(m.unreachable);
	g_free(m.highlight);
	g_free(m.reveal);
	return status;
}
