/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct PcscWatch PcscWatch;

/* Called on the main loop when a reader or a card came or went. */
typedef void (*pcsc_changed_t)(void *userdata);
/* Called on the main loop when hotplug turns on or off. */
typedef void (*pcsc_state_t)(bool enabled, void *userdata);

/* Starts the watcher thread on a PC/SC context of its own. Returns -ENXIO
 * (and starts nothing) when pcscd cannot be reached. */
int pcsc_watch_new(sd_event *event, pcsc_changed_t changed, pcsc_state_t state, void *userdata,
		   PcscWatch **ret);
PcscWatch *pcsc_watch_free(PcscWatch *watch);
