/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "jobs/worker-process.h"
#include "state/profiles.h"
#include "token/token-info.h"

typedef struct Scanner Scanner;

/* Called on the main loop with a finished scan; takes ownership of list.
 * generation is the number of the last request the scan covers. list is
 * NULL for a scan that failed (logged): the tokens stay as they were. */
typedef void (*scanner_done_t)(TokenList *list, uint64_t generation, void *userdata);

/* Scans run in a safecad-worker that a thread of the daemon drives, so
 * the bus never waits on a module and a module that crashes takes only
 * that worker. The worker stays for SCANNER_IDLE_SEC after a scan (a
 * token plugged in brings several scans in a row; docs/workers.md has
 * the figures), then goes. profiles must outlive the scanner. */
#define SCANNER_IDLE_SEC 3

int scanner_new(sd_event *event, const WorkerLimits *limits, const Profiles *profiles,
		scanner_done_t done, void *userdata, Scanner **ret);
Scanner *scanner_free(Scanner *scanner);

/* Asks for a rescan; requests that come while one runs are merged into
 * the next. Returns the generation a finished scan must reach to cover
 * this request. */
uint64_t scanner_request(Scanner *scanner);

/* Reads the tokens now, on the calling thread (at start-up). */
int scanner_scan_now(Scanner *scanner, TokenList *ret);
