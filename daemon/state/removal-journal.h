/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where a removal of a token's previous pair keeps its journal
 * (jobs/remove-previous.c does the work), and the lock that makes one
 * removal at a time across every process: a scan worker's recovery never
 * works on a journal a job worker is writing. */

#include <stdbool.h>

char *removals_directory(void);
char *removal_path(const char *token_serial);

/* Whether a removal of this token's previous pair is journaled and not
 * finished (a running one, or one waiting for a login). */
bool removal_pending(const char *token_serial);

/* Takes the removals lock (an flock on <state>/removals.lock), waiting
 * for it; returns the descriptor to hand to removal_unlock(), or -errno. */
int removal_lock(void);
void removal_unlock(int fd);
