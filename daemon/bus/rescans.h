/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Replies held until a scan that started after them has landed, so the
 * caller reads the tokens as they are now (Rescan(), and an activation's
 * new certificate). Below both the manager and the token objects: each
 * holds replies here, neither calls the other for it. */

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "bus/context.h"

/* Sends reply once a scan that starts now has landed. -EBUSY when too
 * many replies wait. */
int rescans_reply_after_scan(Context *context, sd_bus_message *reply);

/* Sends the replies that a scan of this generation covers (it landed, or
 * failed and left the tokens as they were). */
void rescans_complete(Context *context, uint64_t generation);

void rescans_clear(Context *context);
