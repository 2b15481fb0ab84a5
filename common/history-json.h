/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>

/* Whether every agency of a history entry ({"agencies": [{"done": b}, ...]},
 * as GetHistory lists them) is ticked. An entry without agencies has
 * nothing left to do. */
static inline bool history_agencies_done(json_t *entry)
{
	size_t i;
	json_t *agency;

	json_array_foreach(json_object_get(entry, "agencies"), i, agency)
	{
		if (!json_is_true(json_object_get(agency, "done")))
			return false;
	}
	return true;
}
