/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Token Manager's key file, as the agent reads it at each token plugged
 * in (up to MANAGER_CONF_MAX bytes, NUL-free as read_small_file gives it) →
 * manager_conf_open_on_insert(). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "manager-conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size > MANAGER_CONF_MAX || memchr(data, '\0', size))
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	(void)manager_conf_open_on_insert(text);
	free(text);
	return 0;
}
