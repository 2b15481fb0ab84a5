/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bus-names.h"
#include "i18n.h"
#include "macro.h"

typedef struct Export {
	Manager *manager;
	char *token_path;
	char *support;
	char *file;
	bool der;
} Export;

static void export_free(Export *e)
{
	g_free(e->token_path);
	g_free(e->support);
	g_free(e->file);
	g_free(e);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

/* The daemon sends DER; PEM is the same certificate, checked by parsing it
 * first, so a file is never written from bytes that are no certificate. */
static GBytes *certificate_bytes(const guint8 *der, gsize size, bool as_der)
{
	const unsigned char *p = der;
	_cleanup_(X509_freep) X509 *x509 = d2i_X509(NULL, &p, (long)size);
	_cleanup_(BIO_freep) BIO *bio = NULL;
	char *pem;
	long length;

	if (!x509 || p != der + size)
		return NULL;
	if (as_der)
		return g_bytes_new(der, size);
	bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_X509(bio, x509))
		return NULL;
	length = BIO_get_mem_data(bio, &pem);
	return g_bytes_new(pem, (gsize)length);
}

static void on_exported(GObject *source, GAsyncResult *result, gpointer data)
{
	Export *e = data;
	Manager *m = e->manager;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	g_autoptr(GVariant) der = NULL;
	g_autoptr(GBytes) bytes = NULL;
	const guint8 *data_der;
	gsize size;

	if (!reply) {
		if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			manager_show_error(m, error, e->support);
	} else {
		der = g_variant_get_child_value(reply, 0);
		data_der = g_variant_get_fixed_array(der, &size, 1);
		bytes = certificate_bytes(data_der, size, e->der);
		if (!bytes)
			g_set_error(&error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s",
				    _("safecad sent something that is not a certificate."));
		else
			g_file_set_contents(e->file, g_bytes_get_data(bytes, NULL),
					    (gssize)g_bytes_get_size(bytes), &error);
		if (error)
			manager_show_error(m, error, NULL);
	}
	manager_call_done(m);
	export_free(e);
}

static void on_response(GtkNativeDialog *dialog, int response, gpointer data)
{
	Export *e = data;
	Manager *m = e->manager;
	g_autoptr(GFile) file = NULL;
	const char *format;

	if (response != GTK_RESPONSE_ACCEPT) {
		export_free(e);
		g_object_unref(dialog);
		return;
	}
	file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
	format = gtk_file_chooser_get_choice(GTK_FILE_CHOOSER(dialog), "format");
	e->der = streq_ptr(format, "der") ||
		 (!format && file && g_str_has_suffix(g_file_peek_path(file), ".der"));
	e->file = file ? g_file_get_path(file) : NULL;
	g_object_unref(dialog);
	if (!e->file) {
		export_free(e);
		return;
	}
	manager_call_started(m);
	g_dbus_connection_call(m->bus, SAFECAD_BUS_NAME, e->token_path, SAFECAD_TOKEN_INTERFACE,
			       "Export", NULL, G_VARIANT_TYPE("(ay)"),
			       G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, 25000,
			       m->cancellable, on_exported, e);
}

static const char *current_serial(Manager *m, const char *token_path)
{
	size_t i, j;
	json_t *token, *certificate;

	json_array_foreach(m->tokens, i, token)
	{
		if (!streq_ptr(json_string_value(json_object_get(token, "path")), token_path))
			continue;
		json_array_foreach(json_object_get(token, "Certificates"), j, certificate)
		{
			if (json_is_true(json_object_get(certificate, "current")))
				return json_string_value(json_object_get(certificate, "serial"));
		}
	}
	return NULL;
}

void manager_export(Manager *m, const char *token_path, const char *support)
{
	static const char *const ids[] = {"pem", "der", NULL};
	const char *labels[] = {_("PEM (text)"), _("DER (binary)"), NULL};
	Export *e = g_new0(Export, 1);
	GtkFileChooserNative *dialog;
	g_autofree char *name = NULL;
	g_autofree char *serial = NULL;

	e->manager = m;
	e->token_path = g_strdup(token_path);
	e->support = g_strdup(support);
	/* Named after the certificate, as the agent names its exports; a
	 * serial is lowercase hex, safe in a file name. */
	serial = g_strdup(current_serial(m, token_path));
	if (serial && strspn(serial, "0123456789abcdef") == strlen(serial))
		name = g_strdup_printf("certificate-%s.pem", serial);
	else
		name = g_strdup("certificate.pem");
	dialog =
	    gtk_file_chooser_native_new(_("Export certificate"), m->window,
					GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
	gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dialog), TRUE);
	gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(dialog), name);
	gtk_file_chooser_add_choice(GTK_FILE_CHOOSER(dialog), "format", _("Format"),
				    (const char **)ids, labels);
	gtk_file_chooser_set_choice(GTK_FILE_CHOOSER(dialog), "format", "pem");
	g_signal_connect(dialog, "response", G_CALLBACK(on_response), e);
	gtk_native_dialog_show(GTK_NATIVE_DIALOG(dialog));
}
