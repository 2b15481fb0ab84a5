/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

#include "pin.h"

/* One PIN dialogue with pinentry ($PINENTRY, else "pinentry" from PATH),
 * spoken in the Assuan protocol over its stdin and stdout, without blocking
 * the event loop. */
typedef struct Pinentry Pinentry;

/* pin is the caller's to free (pin_free) and NULL unless r is 0. r is
 * -ECANCELED when the user cancelled, -ENODATA when the entry was empty,
 * -ETIMEDOUT when nobody answered in time, another negative errno when
 * pinentry failed. done may free the Pinentry. */
typedef void (*PinentryDoneFn)(void *userdata, Pin *pin, int r);

typedef struct PinentryRequest {
	const char *title;
	const char *description; /* newlines allowed */
	const char *prompt;
	const char *error; /* shown above the entry (SETERROR), or NULL */
	/* When set, a confirmation with this text (and the ok and cancel
	 * labels below) comes first; declining it cancels. */
	const char *confirm;
	const char *ok_label, *cancel_label;
} PinentryRequest;

int pinentry_start(sd_event *event, const PinentryRequest *request, PinentryDoneFn done,
		   void *userdata, Pinentry **ret);

/* Ends the dialogue (closing pinentry's window) without calling done. */
Pinentry *pinentry_free(Pinentry *p);

/* s escaped as an Assuan argument (%, CR, LF and other controls as %XX),
 * cut at max bytes of output without splitting an escape or a UTF-8
 * character. NULL when out of memory. Exposed for tests. */
char *assuan_escape(const char *s, size_t max);

/* Decodes the data of a "D " line into pin (replacing what it held).
 * -EMSGSIZE when it does not fit, -EBADMSG for a bad escape. Exposed for
 * tests. */
int assuan_decode_pin(const char *data, size_t size, Pin *pin);
