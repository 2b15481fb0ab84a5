/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "state/config.h"
#include "jobs/jobs.h"
#include "token/pcsc-watch.h"
#include "bus/polkit.h"
#include "state/profiles.h"
#include "jobs/scanner.h"

typedef struct Token Token;

/* A reply held until a scan that started after it has landed, so the
 * caller reads the tokens as they are now (Rescan(), and an activation's
 * new certificate). */
typedef struct PendingRescan {
	sd_bus_message *reply;
	uint64_t generation;
} PendingRescan;

/* The daemon's whole state, owned by the main loop. */
typedef struct Context {
	sd_event *event;
	sd_bus *bus;
	Config config;
	Profiles profiles;
	Scanner *scanner;
	PcscWatch *pcsc;
	bool hotplug;

	Token **tokens;
	size_t n_tokens;

	PendingRescan *rescans;
	size_t n_rescans;

	JobQueue *jobs;
	PolkitQuery *polkit_queries;
	/* Every activation journal on disk (interrupted ones, and those
	 * running): reread after each activation. */
	json_t *journals;
	sd_event_source *daily;
	sd_event_source *metrics_defer;	  /* a metrics write due */
	sd_event_source *history_changed; /* owns the eventfd history.c pokes */
	bool metrics_failing;

	sd_bus_slot *manager_slot;
	sd_bus_slot *object_manager_slot;
	sd_bus_slot *token_slot;
} Context;
