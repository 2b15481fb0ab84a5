/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus/rescans.h"

#include <errno.h>
#include <stdlib.h>

#include "log/log.h"

#define MAX_PENDING_RESCANS 64

int rescans_reply_after_scan(Context *context, sd_bus_message *reply)
{
	PendingRescan *rescans;

	if (context->n_rescans >= MAX_PENDING_RESCANS)
		return -EBUSY;
	rescans = realloc(context->rescans, (context->n_rescans + 1) * sizeof(PendingRescan));
	if (!rescans)
		return -ENOMEM;
	context->rescans = rescans;
	context->rescans[context->n_rescans++] = (PendingRescan){
	    .reply = sd_bus_message_ref(reply),
	    .generation = scanner_request(context->scanner),
	};
	return 0;
}

void rescans_complete(Context *context, uint64_t generation)
{
	size_t kept = 0;

	for (size_t i = 0; i < context->n_rescans; i++) {
		PendingRescan *p = &context->rescans[i];
		if (p->generation <= generation) {
			int r = sd_bus_send(NULL, p->reply, NULL);
			if (r < 0)
				log_debug_errno(
				    r, "Cannot send a reply held for a scan: %m, ignoring.");
			sd_bus_message_unref(p->reply);
		} else
			context->rescans[kept++] = *p;
	}
	context->n_rescans = kept;
}

void rescans_clear(Context *context)
{
	for (size_t i = 0; i < context->n_rescans; i++)
		sd_bus_message_unref(context->rescans[i].reply);
	free(context->rescans);
	context->rescans = NULL;
	context->n_rescans = 0;
}
