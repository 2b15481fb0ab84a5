/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of one safecad-worker process: started with a
 * socketpair (worker-proto.h) and a guard page (p11-guard.h), read with a
 * watch on both, so that a worker whose module crashed or hangs ends that
 * worker's work with words for the caller, and nothing else. */

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "token/p11-guard.h"

typedef struct WorkerLimits {
	unsigned call_timeout_sec;   /* one PKCS#11 call */
	unsigned keygen_timeout_sec; /* C_GenerateKeyPair */
} WorkerLimits;

typedef struct Worker {
	pid_t pid;
	int socket;
	P11GuardPage *guard;
	WorkerLimits limits;
} Worker;

/* The executable: safecad-worker beside the running daemon (a build
 * folder), else where libexecdir is seen from the daemon's folder (a
 * staged install), else the installed one. */
const char *worker_executable(void);

/* What a worker is started for. A scan worker answers scans until it is
 * let go, loading and unloading the modules for each. A job worker runs
 * one job; it maps the modules (dlopen) as soon as it is up, so that the
 * job, which may wait in a spare (jobs.c), does not wait for their
 * linking. */
typedef enum WorkerPurpose {
	WORKER_FOR_SCANS,
	WORKER_FOR_A_JOB,
} WorkerPurpose;

int worker_start(const WorkerLimits *limits, WorkerPurpose purpose, Worker **ret);

/* Sends message with descriptors (kept open here). */
int worker_request(Worker *worker, json_t *message, const int *fds, size_t n_fds);

/* Waits for the worker's next message: 1 with *ret. When the worker ended
 * (it crashed, it exited, or it was stopped because a PKCS#11 call ran
 * past its limit), returns a negative errno with *ret_error_name and
 * *ret_error_message (allocated) saying so for the caller:
 * DriverFailed when the worker was in a module, Failed otherwise. The
 * worker is reaped then. */
int worker_receive(Worker *worker, json_t **ret, const char **ret_error_name,
		   char **ret_error_message);

/* Ends the worker: closes its socket (a worker waiting for work exits),
 * waits a moment for it, then kills it; reaps it, frees. */
Worker *worker_stop(Worker *worker);

/* Whether the worker still runs (not reaped). */
bool worker_alive(const Worker *worker);
