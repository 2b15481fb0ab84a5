/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>

typedef struct Context Context;

/* The Prometheus textfile ([metrics] textfile in safecad.conf): what
 * node_exporter's textfile collector reads. It is written, whole and
 * atomically, after something it shows changed: every call made while the
 * main loop runs one iteration ends in one write. Nothing when the setting
 * is empty. */
void metrics_changed(Context *context);
void metrics_clear(Context *context);

/* The file's text for the context's state now (for the write, and the
 * tests). */
int metrics_format(Context *context, FILE *f);
