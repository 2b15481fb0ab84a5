/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "i18n.h"

#include <stdlib.h>

#include "build-config.h"

static void bind_catalogue(void)
{
	const char *dir = secure_getenv("SAFECAD_LOCALEDIR");

	if (!dir || dir[0] != '/')
		dir = SAFECAD_LOCALEDIR;
	bindtextdomain(I18N_DOMAIN, dir);
	bind_textdomain_codeset(I18N_DOMAIN, "UTF-8");
	textdomain(I18N_DOMAIN);
}

void i18n_init(void)
{
	setlocale(LC_ALL, "");
	setlocale(LC_NUMERIC, "C");
	bind_catalogue();
}

void i18n_init_messages(void)
{
	setlocale(LC_MESSAGES, "");
	setlocale(LC_CTYPE, "");
	bind_catalogue();
}
