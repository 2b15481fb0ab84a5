/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libintl.h>
#include <locale.h>

/* Marks a message for translation (xgettext --keyword=_) and translates
 * it. N_() only marks it: for tables of messages translated later with
 * _(). For counts use ngettext(), which xgettext knows without a keyword. */
#define _(s) gettext(s)
#define N_(s) (s)

/* The gettext domain: po/<lang>.po becomes <localedir>/<lang>/LC_MESSAGES/
 * safecad.mo. */
#define I18N_DOMAIN "safecad"

/* Sets the locale from the environment (LANG, LC_*, LANGUAGE) and binds
 * the "safecad" catalogue, for a program that talks to people: safectl and
 * safecad-notify. Call it first thing in main(), before any thread starts.
 *
 * - LC_NUMERIC stays "C": no number a script or a JSON reader sees changes
 *   with the locale.
 * - The catalogue comes from $SAFECAD_LOCALEDIR when it is set to an
 *   absolute path (tests, a build tree: DIR/vi/LC_MESSAGES/safecad.mo),
 *   else from the localedir safecad was built for.
 * - Translations come out in UTF-8 whatever the locale's codeset: the rest
 *   of what safecad shows (CA texts, agency names, certificate subjects)
 *   is UTF-8 too, and D-Bus carries nothing else. */
void i18n_init(void);

/* The same for the daemon, but only LC_MESSAGES and LC_CTYPE follow the
 * environment: the messages it sends to callers are translated, while
 * numbers, times and everything else it writes stay in the "C" locale. */
void i18n_init_messages(void);
