/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include "action.h"
#include "i18n.h"

/* Longer than any name, serial or message worth reading in a row. */
#define TEXT_MAX_CHARS 600

char *text_clean(const char *s)
{
	return ca_text_clean(s ? s : "", TEXT_MAX_CHARS);
}

char *date_text(const char *rfc3339)
{
	g_autoptr(GDateTime) utc = NULL;
	g_autoptr(GDateTime) local = NULL;

	if (!rfc3339)
		return g_strdup("?");
	utc = g_date_time_new_from_iso8601(rfc3339, NULL);
	if (!utc)
		return text_clean(rfc3339);
	/* The person's own day: a certificate that ends at 20:00 UTC ends the
	 * next morning in Hanoi. */
	local = g_date_time_to_local(utc);
	/* TRANSLATORS: a date in notifications, as strftime(3) writes
	 * it; Vietnamese puts the day first. */
	return g_date_time_format(local, _("%Y-%m-%d"));
}

GtkWidget *row_new(const char *title, const char *subtitle)
{
	GtkWidget *row = adw_action_row_new();

	/* Certificate and CA texts are plain text, never markup. */
	adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
	adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), title);
	if (subtitle)
		adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
	return row;
}

json_t *token_current_certificate(json_t *token)
{
	size_t i;
	json_t *certificate;

	json_array_foreach(json_object_get(token, "Certificates"), i, certificate)
	{
		if (json_is_true(json_object_get(certificate, "current")))
			return certificate;
	}
	return NULL;
}

GtkWidget *paragraph_new(const char *text)
{
	GtkWidget *label = gtk_label_new(text);

	gtk_label_set_xalign(GTK_LABEL(label), 0);
	gtk_label_set_wrap(GTK_LABEL(label), TRUE);
	return label;
}
