/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* RFC 3339 in UTC with a Z suffix, whole seconds: "2026-12-01T00:00:00Z".
 * buf must hold at least 32 bytes. Returns buf, or NULL for a time that
 * cannot be shown. */
char *format_rfc3339(char *buf, size_t size, int64_t t);

/* Whole days from now (microseconds since the epoch) to t (seconds),
 * rounded down (negative once t has passed). */
int64_t days_until(int64_t t, int64_t now_usec);

/* The wall clock, in microseconds since the epoch. */
int64_t now_usec(void);

/* CLOCK_MONOTONIC, in microseconds: for deadlines. */
int64_t monotonic_usec(void);
