/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Events an admin may filter and alert on: under systemd they go to the
 * journal with a MESSAGE_ID (explained in safecad.catalog) and fields
 * SAFECAD_TOKEN, SAFECAD_ACTION, SAFECAD_SERIAL; elsewhere they are plain
 * log lines. */
#define SAFECAD_MESSAGE_TOKEN_ADDED "91904cd1b3144d95ae50dbe3e145925f"
#define SAFECAD_MESSAGE_TOKEN_REMOVED "70bfe785e162405c99ab0692586f76a9"
#define SAFECAD_MESSAGE_ACTION_PENDING "6c51d0addee84d0994b08878ee1a23ab"
#define SAFECAD_MESSAGE_ACTIVATION_DONE "cb17ddd8664d4b49973351ca9830030e"
#define SAFECAD_MESSAGE_ACTIVATION_FAILED "0bcbfa6467a04aac8b99449201b6fb44"
#define SAFECAD_MESSAGE_EXPIRY_WARNING "d9fed44af63b4c758942500f7962642d"

/* token, action and serial may be NULL. */
void log_event(int level, const char *message_id, const char *token, const char *action,
	       const char *serial, const char *format, ...) __attribute__((format(printf, 6, 7)));
