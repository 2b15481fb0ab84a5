/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a job kind has to work with inside a safecad-worker: its progress
 * and its question go to the daemon over the worker's socket, which hands
 * them on to the bus. A kind never reaches the bus, or anything above the
 * jobs layer. */

#include <jansson.h>
#include <stdbool.h>

#include "jobs/job.h"
#include "token/modules.h"
#include "token/token-session.h"

/* One job kind: what it needs and its body. Each kind's file defines
 * one; the worker's table lists them. */
typedef struct JobKindInfo {
	JobKind kind;
	/* It talks to the CA (else the worker may drop network access). */
	bool network;
	void (*run)(Job *job);
} JobKindInfo;

extern const JobKindInfo job_kind_check;	   /* activation.c */
extern const JobKindInfo job_kind_activate;	   /* activation.c */
extern const JobKindInfo job_kind_change_pin;	   /* pin-change.c */
extern const JobKindInfo job_kind_remove_previous; /* remove-previous.c */

/* Parses the job's certificates (and the one a removal replaces) into
 * their x509 members. -EBADMSG when one is not a certificate. */
int job_parse_certificates(Job *job);
/* Frees a job of this worker, its parsed certificates too. */
Job *job_worker_free(Job *job);

/* The socket to the daemon (the worker's fd 3); -1: none (the fuzzers). */
void job_worker_set_socket(int fd);

void job_progress(Job *job, const char *action_id, const char *step);
/* Hands certificate (taken) to the daemon, which shows it to the caller,
 * and waits for the answer; the daemon's end answers
 * JOB_ANSWER_SHUTDOWN. */
JobAnswer job_wait_answer(Job *job, json_t *certificate);

/* For the crash tests, at each journal step: SAFECAD_TEST_CRASH_AT names
 * a step at which the daemon dies (asked of it, as the worker runs
 * apart), SAFECAD_TEST_CRASH_WORKER_AT one at which the worker does
 * (once only, with SAFECAD_TEST_CRASH_WORKER_ONCE naming a file to make). */
void job_test_crash_point(const char *step);

/* Reads its token again into job->fresh (left NULL when that fails),
 * before the job lets the modules go. */
void job_read_token_again(Job *job);

/* Fails the job for a session on its token that could not be opened:
 * TokenGone, or NothingToDo when two tokens carry its serial. */
int job_session_failed(Job *job, int r);

/* Uses the modules, opens a read-write session on the job's token, runs
 * fn (unless the token is gone: TokenGone), closes it, reads the token
 * again and lets the modules go. */
void job_run_on_session(Job *job, void (*fn)(Job *job, TokenSession *session));

/* Finishes or undoes removals a crash interrupted, on the tokens present,
 * without a PIN (remove-previous.c). Between modules_use() and release. */
void removals_recover(Modules *modules);

/* With a login on the token's session (any job that logged in): destroys
 * the private key an interrupted removal left for a login, and ends that
 * removal. 1 when there was one, 0 when not, < 0 on failure (logged). */
int removals_finish_logged_in(TokenSession *session, const char *token_serial);

/* Whether a removal journal holds what it must (remove-previous.c).
 * -EBADMSG with *ret_bad the first member that does not. */
int removal_check(json_t *journal, const char **ret_bad);

/* The token's PIN flags, with a final try that an earlier job's failed
 * login showed and the module no longer says (state/pin-memory.h). */
int job_pin_flags(Job *job, TokenSession *session, TokenPinFlags *ret);
/* After a login or PIN change: success forgets what was noted; a failure
 * reads the flags again into *ret (as the module shows them now, in the
 * process that failed) and notes a final try. */
void job_pin_outcome(Job *job, TokenSession *session, bool ok, TokenPinFlags *ret);
