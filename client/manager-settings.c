/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The user's preferences, kept in the key file the agent reads
 * (manager-conf.h): written whole and atomically, so the agent never reads
 * half of it. */
#include "manager.h"

#include <glib/gstdio.h>

#include "i18n.h"
#include "manager-conf.h"
#include "util.h"

static bool read_open_on_insert(void)
{
	g_autofree char *path = manager_conf_path();
	g_autofree char *text = NULL;

	return path && read_small_file(path, MANAGER_CONF_MAX, &text) >= 0 &&
	       manager_conf_open_on_insert(text);
}

static gboolean write_open_on_insert(bool on, GError **error)
{
	g_autofree char *path = manager_conf_path();
	g_autofree char *folder = NULL;
	g_autoptr(GKeyFile) file = g_key_file_new();

	if (!path) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s",
			    _("There is no folder for settings (HOME is not set)."));
		return FALSE;
	}
	/* What else the file holds stays; a file that cannot be read is
	 * replaced. */
	(void)g_key_file_load_from_file(file, path, G_KEY_FILE_KEEP_COMMENTS, NULL);
	g_key_file_set_boolean(file, MANAGER_CONF_GROUP, MANAGER_CONF_OPEN_ON_INSERT, on);
	folder = g_path_get_dirname(path);
	if (g_mkdir_with_parents(folder, 0700) < 0) {
		int saved = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: %s", folder,
			    g_strerror(saved));
		return FALSE;
	}
	/* A temporary file renamed over the old one. */
	return g_key_file_save_to_file(file, path, error);
}

static void on_open_on_insert(GObject *object, GParamSpec *pspec, gpointer data)
{
	Manager *m = data;
	GtkSwitch *toggle = GTK_SWITCH(object);
	g_autoptr(GError) error = NULL;
	bool on = gtk_switch_get_active(toggle);

	if (write_open_on_insert(on, &error))
		return;
	manager_show_error(m, error, NULL);
	/* Shown as it is kept: unchanged. */
	g_signal_handlers_block_by_func(toggle, on_open_on_insert, data);
	gtk_switch_set_active(toggle, !on);
	g_signal_handlers_unblock_by_func(toggle, on_open_on_insert, data);
}

GtkWidget *settings_view_new(Manager *m)
{
	GtkWidget *group = adw_preferences_group_new();
	GtkWidget *row =
	    row_new(_("Open this window when a token is plugged in"),
		    _("The desktop agent brings it forward on the token. For this user only."));
	GtkWidget *toggle = gtk_switch_new();

	gtk_widget_set_margin_start(group, 12);
	gtk_widget_set_margin_end(group, 12);
	gtk_widget_set_margin_bottom(group, 18);
	adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(group), _("Preferences"));
	gtk_switch_set_active(GTK_SWITCH(toggle), read_open_on_insert());
	gtk_widget_set_valign(toggle, GTK_ALIGN_CENTER);
	g_signal_connect(toggle, "notify::active", G_CALLBACK(on_open_on_insert), m);
	adw_action_row_add_suffix(ADW_ACTION_ROW(row), toggle);
	/* The row names its switch with its title (an explicit label as well
	 * would be read twice). */
	adw_action_row_set_activatable_widget(ADW_ACTION_ROW(row), toggle);
	adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
	return group;
}
