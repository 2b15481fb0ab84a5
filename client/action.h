/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* What safectl and safecad-notify both need to know about the CA's pending
 * actions (protocol-v1 entries, as the Pending property holds them). */

/* A renewal or change whose key safecad can make or reuse: the entries it
 * can activate. Others are shown, never activated. */
bool action_activatable(json_t *action);

/* Text from the CA (or a certificate), made safe to show as plain text:
 * control characters other than newline, C1 controls and bidirectional
 * overrides removed, cut after max_chars characters (not splitting one).
 * NULL when out of memory. */
char *ca_text_clean(const char *s, size_t max_chars);

/* The value of the first attribute named attribute ("CN", "O", ...) of a
 * name given as [[attribute, value], ...], or NULL. */
const char *name_get(json_t *name, const char *attribute);

/* The activation's steps as the daemon reports them (ActivationProgress),
 * in order, with what a person reads for each (N_(): translate on use). */
#define ACTIVATION_STEPS 8
typedef struct ActivationStep {
	const char *step;
	const char *text;
} ActivationStep;
extern const ActivationStep activation_steps[ACTIVATION_STEPS];

/* 1 for "accepted" … 8 for "confirmed"; 0 for NULL or a step not known. */
size_t activation_step_number(const char *step);

/* The certificate with this serial (any case of its hex digits) in a list
 * of certificates as safectl and the window read them, or NULL. */
json_t *certificate_find(json_t *certificates, const char *serial);
