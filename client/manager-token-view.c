/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include "action.h"
#include "i18n.h"
#include "macro.h"

/* A certificate expiring within this many days is marked, as the CA's own
 * tool and safecad's first expiry warning do. */
#define DAYS_LEFT_WARN 30

static const char *member(json_t *object, const char *key)
{
	const char *s = json_string_value(json_object_get(object, key));
	return s ? s : "";
}

static void add_row(GtkWidget *group, const char *title, const char *subtitle)
{
	g_autofree char *clean = text_clean(subtitle);

	adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row_new(title, clean));
}

static const char *pin_words(json_t *token)
{
	const char *status = member(token, "PinStatus");

	if (streq(status, "count-low"))
		return _("A wrong PIN was entered: the token locks after a few more wrong tries.");
	if (streq(status, "final-try"))
		return _("Only one PIN try is left: one more wrong PIN locks the token.");
	if (streq(status, "locked"))
		return _("The PIN is locked: the token cannot sign until your CA unlocks it.");
	return _("The PIN is fine: no wrong tries.");
}

static void add_holder(GtkWidget *group, json_t *certificate)
{
	json_t *subject = json_object_get(certificate, "subject");
	const char *organization = name_get(subject, "O");
	const char *common_name = name_get(subject, "CN");
	const char *uid = name_get(subject, "UID");
	g_autofree char *holder = NULL;
	g_autofree char *text = NULL;

	/* A business's certificate usually repeats its name in O and CN. */
	if (organization && common_name && !streq(organization, common_name))
		holder = g_strdup_printf("%s — %s", organization, common_name);
	else
		holder = g_strdup(organization ?: common_name ?: "—");
	/* Vietnamese certificates carry the tax code as UID=MST:<code>. */
	if (uid && g_str_has_prefix(uid, "MST:"))
		uid += strlen("MST:");
	text = uid ? g_strdup_printf(_("%s · tax code %s"), holder, uid) : g_strdup(holder);
	add_row(group, _("Holder"), text);
}

static void add_days_left(GtkWidget *group, json_t *token, json_t *certificate)
{
	int days = (int)json_integer_value(json_object_get(token, "DaysLeft"));
	g_autofree char *text = NULL;
	g_autofree char *from =
	    date_text(json_string_value(json_object_get(certificate, "not_before")));
	g_autofree char *to =
	    date_text(json_string_value(json_object_get(certificate, "not_after")));
	g_autofree char *validity = g_strdup_printf(_("From %s to %s"), from, to);
	GtkWidget *row;

	if (days < 0)
		text = g_strdup(_("Expired: the certificate no longer signs."));
	else if (days <= DAYS_LEFT_WARN)
		text = g_strdup_printf(
		    ngettext("%d day left: renew soon", "%d days left: renew soon", days), days);
	else
		text = g_strdup_printf(ngettext("%d day left", "%d days left", days), days);
	row = row_new(text, validity);
	if (days <= DAYS_LEFT_WARN) {
		GtkWidget *icon = gtk_image_new_from_icon_name("dialog-warning-symbolic");

		gtk_widget_add_css_class(row, days < 0 ? "error" : "warning");
		gtk_accessible_update_property(GTK_ACCESSIBLE(icon), GTK_ACCESSIBLE_PROPERTY_LABEL,
					       _("Renew soon"), -1);
		adw_action_row_add_prefix(ADW_ACTION_ROW(row), icon);
	}
	adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
}

static void add_certificates(GtkWidget *group, json_t *token)
{
	size_t i;
	json_t *certificate;

	json_array_foreach(json_object_get(token, "Certificates"), i, certificate)
	{
		g_autofree char *from = date_text(member(certificate, "not_before"));
		g_autofree char *to = date_text(member(certificate, "not_after"));
		g_autofree char *title =
		    g_strdup_printf(json_is_true(json_object_get(certificate, "current"))
					? _("Certificate %s (current)")
					: _("Certificate %s"),
				    member(certificate, "serial"));
		g_autofree char *holder =
		    text_clean(name_get(json_object_get(certificate, "subject"), "CN") ?: "");
		g_autofree char *subtitle =
		    g_strdup_printf(_("%s, valid from %s to %s"), holder, from, to);
		g_autofree char *clean_title = text_clean(title);

		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group),
					  row_new(clean_title, subtitle));
	}
}

static void on_activate(GtkButton *button, gpointer data)
{
	manager_activate(data, g_object_get_data(G_OBJECT(button), "serial"),
			 g_object_get_data(G_OBJECT(button), "action"));
}

static void add_activate_button(Manager *m, GtkWidget *row, json_t *token, const char *action,
				const char *label)
{
	GtkWidget *button = gtk_button_new_with_label(label);

	g_object_set_data_full(G_OBJECT(button), "serial", g_strdup(member(token, "Serial")),
			       g_free);
	g_object_set_data_full(G_OBJECT(button), "action", g_strdup(action), g_free);
	gtk_widget_set_valign(button, GTK_ALIGN_CENTER);
	gtk_widget_add_css_class(button, "suggested-action");
	/* A token that is out, or busy, cannot be activated now. */
	gtk_widget_set_sensitive(button, json_is_true(json_object_get(token, "Present")) &&
					     !json_is_true(json_object_get(token, "Busy")));
	g_signal_connect(button, "clicked", G_CALLBACK(on_activate), m);
	adw_action_row_add_suffix(ADW_ACTION_ROW(row), button);
}

static const char *action_words(json_t *action)
{
	const char *type = member(action, "type");

	if (streq(type, "renew"))
		return _("Renewal offered by the CA");
	if (streq(type, "change"))
		return _("Change of information offered by the CA");
	return _("An action the CA asks for");
}

static void add_pending(Manager *m, GtkWidget *group, json_t *token)
{
	/* What the daemon knows this token cannot carry out, and why. */
	json_t *refused = json_loads(member(token, "NotActivatable"), 0, NULL);
	size_t i;
	json_t *action;

	json_array_foreach(json_object_get(token, "pending"), i, action)
	{
		const char *why = json_string_value(json_object_get(refused, member(action, "id")));
		g_autofree char *message = text_clean(member(action, "message"));
		g_autofree char *subtitle =
		    why ? g_strdup_printf(_("This token cannot carry it out: %s. Support: %s."),
					  why, member(token, "Support"))
			: NULL;
		GtkWidget *row = row_new(action_words(action), why ? subtitle : message);

		if (action_activatable(action) && !why)
			add_activate_button(m, row, token, member(action, "id"), _("Activate…"));
		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
	}
	json_decref(refused);
}

/* A button for a job on the token: a name that says which token for
 * assistive technologies, insensitive while the token is out or busy. */
static GtkWidget *token_button_new(json_t *token, const char *label, const char *name)
{
	GtkWidget *button = gtk_button_new_with_label(label);

	g_object_set_data_full(G_OBJECT(button), "serial", g_strdup(member(token, "Serial")),
			       g_free);
	gtk_accessible_update_property(GTK_ACCESSIBLE(button), GTK_ACCESSIBLE_PROPERTY_LABEL, name,
				       -1);
	gtk_widget_set_valign(button, GTK_ALIGN_CENTER);
	gtk_widget_set_sensitive(button, json_is_true(json_object_get(token, "Present")) &&
					     !json_is_true(json_object_get(token, "Busy")));
	return button;
}

static void on_change_pin(GtkButton *button, gpointer data)
{
	manager_change_pin(data, g_object_get_data(G_OBJECT(button), "serial"));
}

static void add_change_pin_button(Manager *m, GtkWidget *row, json_t *token, const char *label)
{
	g_autofree char *name = g_strdup_printf(_("Change the PIN of %s"), label);
	GtkWidget *button = token_button_new(token, _("Change PIN…"), name);

	/* The token's own request comes first. */
	if (json_is_true(json_object_get(token, "PinMustChange")))
		gtk_widget_add_css_class(button, "suggested-action");
	g_signal_connect(button, "clicked", G_CALLBACK(on_change_pin), m);
	adw_action_row_add_suffix(ADW_ACTION_ROW(row), button);
}

static void on_remove_previous(GtkButton *button, gpointer data)
{
	manager_remove_previous(data, g_object_get_data(G_OBJECT(button), "serial"));
}

/* Only while the latest activation left something to remove. */
static void add_remove_previous(Manager *m, GtkWidget *group, json_t *token, const char *label)
{
	json_t *latest = manager_latest_activation(m, member(token, "Serial"));
	g_autofree char *name = NULL;
	g_autofree char *subtitle = NULL;
	GtkWidget *button, *row;

	if (!manager_previous_removable(m, token))
		return;
	name = g_strdup_printf(_("Remove the previous certificate of %s"), label);
	subtitle = g_strdup_printf(_("Certificate %s, replaced by the latest activation: remove "
				     "it once every agency knows the new one."),
				   member(latest, "old_serial"));
	button = token_button_new(token, _("Remove previous certificate…"), name);
	row = row_new(_("Previous certificate"), subtitle);
	g_signal_connect(button, "clicked", G_CALLBACK(on_remove_previous), m);
	adw_action_row_add_suffix(ADW_ACTION_ROW(row), button);
	adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
}

static void on_export(GtkButton *button, gpointer data)
{
	Manager *m = data;

	manager_export(m, g_object_get_data(G_OBJECT(button), "path"),
		       g_object_get_data(G_OBJECT(button), "support"));
}

GtkWidget *token_view_new(Manager *m, json_t *token)
{
	/* The heading above the rows: a preferences group puts widgets that
	 * are not rows below its list. */
	GtkWidget *view = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
	GtkWidget *group = adw_preferences_group_new();
	json_t *certificate = token_current_certificate(token);
	g_autofree char *label = text_clean(member(token, "Label"));
	g_autofree char *device = g_strdup_printf(
	    _("Token %s (serial %s, %s %s)"), member(token, "Label"), member(token, "Serial"),
	    member(token, "Manufacturer"), member(token, "Model"));
	g_autofree char *heading = text_clean(device);
	const char *support = member(token, "Support");
	GtkWidget *title = gtk_label_new(heading);
	json_t *activation = json_object_get(token, "Activation");

	gtk_label_set_xalign(GTK_LABEL(title), 0);
	gtk_label_set_wrap(GTK_LABEL(title), TRUE);
	gtk_widget_add_css_class(title, "heading");
	/* The token the agent's notification opened the window on. */
	if (streq_ptr(m->highlight, member(token, "Serial")))
		gtk_widget_add_css_class(title, "accent");
	g_object_set_data_full(G_OBJECT(view), "serial", g_strdup(member(token, "Serial")), g_free);
	gtk_box_append(GTK_BOX(view), title);
	gtk_box_append(GTK_BOX(view), group);
	if (certificate) {
		add_holder(group, certificate);
		add_days_left(group, token, certificate);
		add_row(group, _("Certificate serial"), member(certificate, "serial"));
	} else {
		add_row(group, _("Certificate"), _("This token holds no certificate."));
	}
	{
		const char *profile = isempty(member(token, "Profile"))
					  ? _("Not a CA safecad knows")
					  : member(token, "Profile");
		g_autofree char *text =
		    isempty(support) ? g_strdup(profile)
				     : g_strdup_printf(_("%s · support %s"), profile, support);

		add_row(group, _("CA"), text);
	}
	{
		const char *pin = pin_words(token);
		g_autofree char *words =
		    json_is_true(json_object_get(token, "PinMustChange"))
			? g_strdup_printf("%s %s", pin, _("The token asks for a new PIN."))
			: g_strdup(pin);
		GtkWidget *row = row_new(_("PIN"), words);

		if (!streq(member(token, "PinStatus"), "ok"))
			gtk_widget_add_css_class(row, "warning");
		add_change_pin_button(m, row, token, label);
		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
	}
	if (json_is_array(activation) &&
	    !isempty(json_string_value(json_array_get(activation, 0)))) {
		g_autofree char *text = g_strdup_printf(
		    json_is_true(json_array_get(activation, 2))
			? _("Interrupted after step \"%s\": activate again to go on.")
			: _("Running, last step done: \"%s\"."),
		    json_string_value(json_array_get(activation, 1)));
		GtkWidget *row = row_new(_("Activation"), text);

		if (json_is_true(json_array_get(activation, 2)))
			add_activate_button(m, row, token,
					    json_string_value(json_array_get(activation, 0)),
					    _("Continue activation…"));
		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
	}
	if (!json_is_true(json_object_get(token, "Present")))
		add_row(group, _("Plugged in"), _("No: plug the token in to go on."));
	add_pending(m, group, token);
	add_certificates(group, token);
	add_remove_previous(m, group, token, label);
	if (certificate) {
		g_autofree char *name = g_strdup_printf(_("Export the certificate of %s"), label);
		GtkWidget *button = gtk_button_new_with_label(_("Export certificate…"));
		GtkWidget *row =
		    row_new(_("Export"), _("Save the current certificate as a file (PEM or DER) to "
					   "register it with an agency."));

		g_object_set_data_full(G_OBJECT(button), "path", g_strdup(member(token, "path")),
				       g_free);
		g_object_set_data_full(G_OBJECT(button), "support", g_strdup(support), g_free);
		gtk_accessible_update_property(GTK_ACCESSIBLE(button),
					       GTK_ACCESSIBLE_PROPERTY_LABEL, name, -1);
		gtk_widget_set_valign(button, GTK_ALIGN_CENTER);
		g_signal_connect(button, "clicked", G_CALLBACK(on_export), m);
		adw_action_row_add_suffix(ADW_ACTION_ROW(row), button);
		adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
	}
	return view;
}
