/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log/log-event.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-journal.h>

#include "log/log.h"
#include "macro.h"

void log_event(int level, const char *message_id, const char *token, const char *action,
	       const char *serial, const char *format, ...)
{
	_cleanup_free_ char *message = NULL;
	va_list ap;
	int r;

	va_start(ap, format);
	r = vasprintf(&message, format, ap);
	va_end(ap);
	if (r < 0) {
		log_oom();
		return;
	}
	if (log_to_journal()) {
		r = sd_journal_send("MESSAGE=%s", message, "PRIORITY=%d", level, "MESSAGE_ID=%s",
				    message_id, "SAFECAD_TOKEN=%s", strempty(token),
				    "SAFECAD_ACTION=%s", strempty(action), "SAFECAD_SERIAL=%s",
				    strempty(serial), "SYSLOG_IDENTIFIER=safecad", NULL);
		if (r >= 0)
			return;
	}
	log_internal(level, 0, "%s", message);
}
