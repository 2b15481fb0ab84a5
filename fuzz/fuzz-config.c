/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safecad.conf text → config_load(), read back through a memfd. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "state/config.h"
#include "fuzz.h"
#include "log/log.h"
#include "macro.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Unknown settings are logged: quiet, that is noise at this rate. */
	log_set_max_level(LOG_CRIT);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], prefix[80];
	char *message = NULL;
	Config config = {};
	size_t written = 0;
	int fd, r;

	/* past the 64 KiB limit, but not much */
	if (size > 80 * 1024)
		return 0;
	fd = memfd_create("safecad.conf", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	while (written < size) {
		ssize_t n = write(fd, data + written, size - written);
		if (n <= 0)
			abort();
		written += (size_t)n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	r = config_load(path, &config, &message);
	if (r >= 0) {
		size_t n = 0;
		fuzz_check(!message);
		fuzz_check(config.modules && config.modules[0]);
		for (; config.modules[n]; n++)
			fuzz_check(config.modules[n][0] != 0);
		fuzz_check(n <= 32);
		fuzz_check(config.n_warn_days <= CONFIG_MAX_WARN_DAYS);
		for (size_t i = 0; i < config.n_warn_days; i++)
			fuzz_check(config.warn_days[i] <= 3660);
		fuzz_check(config.connect_timeout_sec >= 1 && config.connect_timeout_sec <= 600);
		fuzz_check(config.timeout_sec >= 1 && config.timeout_sec <= 3600);
		config_clear(&config);
	} else {
		fuzz_check(!config.modules);
		/* a parse error names the file and the line */
		if (r == -EINVAL) {
			snprintf(prefix, sizeof(prefix), "%s:", path);
			fuzz_check(message && strncmp(message, prefix, strlen(prefix)) == 0);
		}
		free(message);
	}
	close(fd);
	return 0;
}
