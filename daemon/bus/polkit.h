/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

typedef struct PolkitQuery PolkitQuery;

/* Asks polkit, asynchronously, whether the sender of m may do action.
 * Returns 1 when it may (at once for uid 0, or when polkit's answer for
 * this very message came back yes), 0 when the question is out (the
 * handler returns 1 and the message is dispatched again when polkit
 * answers), or a negative errno with error set to AccessDenied. Call it
 * after parsing and validating, before acting. */
int polkit_verify(sd_bus_message *m, const char *action, PolkitQuery **queries,
		  sd_bus_error *error);

/* Forgets every query still out (at shutdown). */
void polkit_queries_free(PolkitQuery **queries);
