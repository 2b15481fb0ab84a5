/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libp11.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "profiles.h"
#include "token-info.h"

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
} Module;

typedef struct Modules {
	Module *items;
	size_t n_items;
	/* Jobs on tokens hold it for reading while they use a module; a
	 * reload, which pulls every module out, needs it for writing. */
	pthread_rwlock_t lock;
} Modules;

/* Loads each module; one that cannot be loaded is kept, unloaded, with a
 * warning, and tried again at every reload. */
int modules_load(char *const *paths, Modules *ret);
void modules_clear(Modules *modules);

/* Unloads and loads every module again: many modules (SoftHSM among
 * them) see tokens made or removed only after C_Initialize. Expects the
 * lock held for writing. */
void modules_reload(Modules *modules);

/* The function list of the module loaded from path, or NULL. Expects the
 * lock held (for reading at least) while it is used. */
CK_FUNCTION_LIST_PTR modules_functions(Modules *modules, const char *path);

/* Reads every initialized token of every module. A token that two modules
 * show (a module and p11-kit's proxy for it) is listed once. */
int modules_scan(Modules *modules, const Profiles *profiles, TokenList *ret);
