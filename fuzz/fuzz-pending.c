/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A CA's answer to /pending (bytes as they come off the wire, up to the
 * client's 1 MiB cap) → jansson → ca_v1_pending_validate(), and every kept
 * entry through the display helpers. Kept entries must keep the contract:
 * a valid id, a known serial in replaces, two times that parse. */
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "ca/ca-client.h"
#include "ca/ca-v1-pending.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const sent[] = {(char *)"5401a3", (char *)"0"};
	json_t *answer, *kept = NULL, *entry;
	const char *what = NULL;
	size_t i;

	if (size > 1024 * 1024)
		return 0;
	answer = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!answer)
		return 0;
	if (ca_v1_pending_validate("fuzz", answer, sent, 2, &kept, &what) < 0) {
		fuzz_check(!kept && what);
		json_decref(answer);
		return 0;
	}
	json_array_foreach(kept, i, entry)
	{
		const char *replaces = json_string_value(json_object_get(entry, "replaces"));
		int64_t nb, na;
		char *message;

		fuzz_check(ca_v1_action_id_valid(json_string_value(json_object_get(entry, "id"))));
		fuzz_check(replaces && (!strcasecmp(replaces, "5401a3") || !strcmp(replaces, "0")));
		fuzz_check(ca_v1_parse_time(json_string_value(json_object_get(entry, "not_before")),
					    &nb) >= 0);
		fuzz_check(ca_v1_parse_time(json_string_value(json_object_get(entry, "not_after")),
					    &na) >= 0);
		(void)ca_action_supported(entry, NULL);
		message = ca_action_message_for_display(entry);
		free(message);
	}
	json_decref(kept);
	json_decref(answer);
	return 0;
}
