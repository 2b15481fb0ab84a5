/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "token/modules.h"
#include "state/profiles.h"
#include "token/token-info.h"

typedef struct Scanner Scanner;

/* Called on the main loop with a finished scan; takes ownership of list.
 * generation is the number of the last request the scan covers. */
typedef void (*scanner_done_t)(TokenList *list, uint64_t generation, void *userdata);

/* Runs scans on a thread of its own, so the bus never waits on a module.
 * modules and profiles must outlive the scanner. */
int scanner_new(sd_event *event, Modules *modules, const Profiles *profiles, scanner_done_t done,
		void *userdata, Scanner **ret);
Scanner *scanner_free(Scanner *scanner);

/* Asks for a rescan; requests that come while one runs are merged into
 * the next. Returns the generation a finished scan must reach to cover
 * this request. */
uint64_t scanner_request(Scanner *scanner);

/* Reads the tokens now, on the calling thread (at start-up). */
int scanner_scan_now(Scanner *scanner, TokenList *ret);
