/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libp11.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "state/profiles.h"
#include "token/token-info.h"

/* libp11 loads and unloads a module (C_Initialize, C_Finalize); scans
 * and jobs use its function list directly, each on sessions of its own:
 * libp11's slot release closes every session of a slot, a running job's
 * too. */
typedef struct Module {
	char *path;
	PKCS11_CTX *ctx; /* NULL while it cannot be loaded */
	void *handle;
	CK_FUNCTION_LIST_PTR functions;
	/* p11-kit's proxy hands every C_GetFunctionList caller an instance
	 * of its own, which that caller initializes and finalizes. */
	bool initialized_by_us;
	bool failed;  /* the last load failed (said once) */
	void *mapped; /* modules_map()'s handle: the library stays mapped */
} Module;

/* The modules are loaded only while something uses them (a scan, a job)
 * and unloaded when the last user is done: many modules (SoftHSM among
 * them) see tokens made or removed only after C_Initialize, so every scan
 * after an idle spell reads them afresh; and idle, safecad holds no
 * module in memory. */
typedef struct Modules {
	Module *items;
	size_t n_items;
	pthread_mutex_t lock; /* guards users and loading */
	unsigned users;
} Modules;

/* Names the modules; nothing is loaded until the first use. */
int modules_load(char *const *paths, Modules *ret);
void modules_clear(Modules *modules);

/* Maps every module's library (dlopen, nothing called in it) and keeps it
 * mapped until modules_clear(): a worker that runs one job does this while
 * it waits for the job, so that loading the modules for the job is only
 * C_Initialize, not the linking of the module and its libraries (SoftHSM
 * and libstdc++: several milliseconds). A module that cannot be mapped is
 * said by the load that follows. Not for a worker that scans again and
 * again: there every load is a fresh one. */
void modules_map(Modules *modules);

/* Counts a user, loading the modules when there was none. A module that
 * cannot be loaded is skipped, with a warning when that changes. */
void modules_use(Modules *modules);
/* The last user unloads them. */
void modules_release(Modules *modules);

/* The function list of the module loaded from path, or NULL. Only
 * between modules_use() and modules_release(). */
CK_FUNCTION_LIST_PTR modules_functions(Modules *modules, const char *path);

/* Reads one token again (between use and release): what a job that
 * changed it hands back, so its caller sees the change at once. -ENODEV
 * when the module does not show it. */
int modules_read_token(Modules *modules, const char *path, const char *serial,
		       const Profiles *profiles, TokenInfo *ret);

/* Reads every initialized token of every module (between use and
 * release). A token that two modules show (a module and p11-kit's proxy
 * for it) is listed once. */
int modules_scan(Modules *modules, const Profiles *profiles, TokenList *ret);
