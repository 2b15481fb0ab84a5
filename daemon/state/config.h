/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "state/profiles.h"

#define CONFIG_MAX_WARN_DAYS 16

typedef struct Config {
	char **modules; /* NULL-terminated */
	unsigned warn_days[CONFIG_MAX_WARN_DAYS];
	size_t n_warn_days;
	unsigned connect_timeout_sec;
	unsigned timeout_sec;
	/* How long an activation that asked to confirm before writing waits
	 * for the caller's answer. */
	unsigned confirm_timeout_sec;
	/* How long a PKCS#11 call may take before its worker is stopped as
	 * hung: key generation, and every other call. */
	unsigned call_timeout_sec;
	unsigned keygen_timeout_sec;
	/* Folders beside the state folder where a worker (and the PKCS#11
	 * modules in it) may write: lock files, SoftHSM's tokens, USB
	 * devices; NULL-terminated, possibly empty. */
	char **writable_paths;
	/* The Prometheus textfile to keep up to date; NULL: none. */
	char *metrics_textfile;
} Config;

/* Reads safecad.conf from path. A missing file gives the defaults. On a
 * parse error returns -EINVAL with "FILE:LINE: reason" in *ret_message. */
int config_load(const char *path, Config *ret, char **ret_message);
void config_clear(Config *config);

/* The configuration and state folders systemd hands a service, or the
 * built-in defaults. */
const char *config_directory(void);
const char *state_directory(void);
const char *data_directory(void);

/* safecad.conf in config_directory() and the CA profiles, as the daemon
 * and each of its workers read them; errors are logged. */
int config_load_all(Config *ret_config, Profiles *ret_profiles);
