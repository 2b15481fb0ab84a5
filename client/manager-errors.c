/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager.h"

#include "bus-names.h"
#include "i18n.h"
#include "macro.h"

/* What went wrong, in the words of someone who has never heard of D-Bus;
 * the daemon's own message (already translated by it) for the rest. */
static const char *error_words(const char *name, bool *ret_needs_support)
{
	*ret_needs_support = false;
	if (streq(name, "org.freedesktop.DBus.Error.ServiceUnknown") ||
	    streq(name, "org.freedesktop.DBus.Error.NameHasNoOwner") ||
	    streq(name, "org.freedesktop.DBus.Error.NoReply") ||
	    streq(name, "org.freedesktop.DBus.Error.Disconnected") ||
	    streq(name, "org.freedesktop.DBus.Error.Spawn.ChildExited"))
		return _("The safecad token service is not running. Start it (systemctl start "
			 "safecad) or ask whoever looks after this computer.");
	if (streq(name, "org.freedesktop.DBus.Error.AccessDenied") ||
	    streq(name, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"))
		return _("You are not allowed to do this on this computer. Ask whoever looks "
			 "after it to allow you.");
	/* A token's object goes when the token is pulled out. */
	if (streq(name, SAFECAD_ERROR_TOKEN_GONE) ||
	    streq(name, "org.freedesktop.DBus.Error.UnknownObject"))
		return _("The token was pulled out. Plug it in again and try once more.");
	if (streq(name, SAFECAD_ERROR_BUSY))
		return _("The token is busy with another job. Try again when it is done.");
	if (streq(name, SAFECAD_ERROR_PIN_LOCKED)) {
		*ret_needs_support = true;
		return _("The token's PIN is locked. Only your CA can unlock it.");
	}
	if (streq(name, SAFECAD_ERROR_DRIVER_FAILED)) {
		*ret_needs_support = true;
		return _("The token's driver failed. Nothing else was affected: take the token "
			 "out, plug it in again and try once more. If it happens again, the token "
			 "or its driver needs your CA's help.");
	}
	if (streq(name, SAFECAD_ERROR_CA) || streq(name, SAFECAD_ERROR_FAILED))
		*ret_needs_support = true;
	return NULL;
}

char *manager_error_text(const GError *error, const char *support)
{
	g_autofree char *name = g_dbus_error_get_remote_error(error);
	g_autofree char *cleaned = NULL;
	bool needs_support = false;
	const char *words = NULL;

	if (name)
		words = error_words(name, &needs_support);
	else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
		words = _("The token service did not answer in time.");
	else if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED))
		words = _("You are not allowed to do this on this computer. Ask whoever looks "
			  "after it to allow you.");
	if (!words) {
		/* The daemon's message, without GDBus's "GDBus.Error:name: ". */
		g_autoptr(GError) copy = g_error_copy(error);

		g_dbus_error_strip_remote_error(copy);
		cleaned = text_clean(copy->message);
		words = cleaned;
	}
	if (needs_support)
		return manager_text_with_support(words, support);
	return g_strdup(words);
}

char *manager_text_with_support(const char *words, const char *support)
{
	if (!isempty(support))
		return g_strdup_printf(_("%s Your CA's support line: %s"), words, support);
	return g_strdup(words);
}
