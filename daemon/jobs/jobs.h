/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Token work off the main loop: each job runs on a thread of its own, one
 * job per token at a time (the caller checks), and talks back to the main
 * loop only through the queue's eventfd. The thread reads the job's inputs
 * and writes its outputs; nothing else is shared. */

#include <jansson.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "ca/ca-client.h"
#include "pin.h"
#include "token/modules.h"
#include "state/profiles.h"
#include "token/token-info.h"
#include "token/token-session.h"

typedef enum JobKind {
	JOB_CHECK,
	JOB_ACTIVATE,
	JOB_CHANGE_PIN,
	JOB_REMOVE_PREVIOUS,
} JobKind;

/* A certificate of the token, as the scan saw it. */
typedef struct JobCertificate {
	X509 *x509;
	const Profile *profile;
	char *serial;
	char *key_id;
	bool has_key;
} JobCertificate;

typedef struct Job Job;
typedef struct JobQueue JobQueue;

/* What the caller said about writing the certificate. */
typedef enum JobAnswer {
	JOB_ANSWER_NONE,
	JOB_ANSWER_WRITE,
	JOB_ANSWER_CANCEL,
	JOB_ANSWER_CALLER_GONE,
	JOB_ANSWER_TIMEOUT,
	JOB_ANSWER_SHUTDOWN,
} JobAnswer;

struct Job {
	JobKind kind;

	/* Inputs. */
	char *token_serial;
	char *token_label;
	char *token_manufacturer;
	char *token_model;
	char *module_path;
	Modules *modules; /* used (loaded) for as long as the job runs */
	const Profiles *profiles;
	CaNetwork network;
	JobCertificate *certificates;
	size_t n_certificates;
	char *action_id; /* NULL: the only activatable one */
	int pin_fd;
	int new_pin_fd;	     /* JOB_CHANGE_PIN */
	X509 *remove;	     /* JOB_REMOVE_PREVIOUS: the replaced certificate, */
	char *remove_key_id; /* its key's CKA_ID (hex), */
	bool remove_key;     /* and whether no other certificate uses that key */
	bool keep_previous;
	bool allow_final_try;
	/* JOB_ACTIVATE: stop at verified until the caller says to write. */
	bool confirm_write;
	int64_t confirm_timeout_usec;
	int64_t pin_deadline; /* set at the first PIN read: one limit for all */

	/* Outputs, set by the thread before it finishes. */
	const char *error_name; /* a SAFECAD_ERROR_*, NULL on success */
	char *error_message;
	json_t *pending;  /* JOB_CHECK: the CA's entries */
	json_t *result;	  /* JOB_ACTIVATE: old/new serial, confirmed, agencies */
	TokenInfo *fresh; /* the token read again at the end, or NULL */

	/* The main loop's. */
	sd_bus_message *request;
	/* More Check() calls that came while this check ran: they get its
	 * answer. */
	sd_bus_message *waiters[16];
	size_t n_waiters;
	JobQueue *queue;
	pthread_t thread;
	/* The caller's answer to JOB_EVENT_CONFIRM (under the queue's lock). */
	JobAnswer answer;
};

typedef enum JobEventKind {
	JOB_EVENT_PROGRESS,
	JOB_EVENT_CONFIRM,
	JOB_EVENT_DONE,
} JobEventKind;

/* On the main loop. For PROGRESS, state is {"action","step"}; for CONFIRM,
 * the issued certificate waiting for the caller's answer (job_answer());
 * borrowed. */
typedef void (*job_event_t)(Job *job, JobEventKind kind, json_t *state, void *userdata);

int job_queue_new(sd_event *event, job_event_t handler, void *userdata, JobQueue **ret);
/* Waits for every running job, then frees. */
JobQueue *job_queue_free(JobQueue *queue);

Job *job_new(JobKind kind);
Job *job_free(Job *job);
int job_add_certificate(Job *job, X509 *x509, const Profile *profile, const char *serial,
			const char *key_id, bool has_key);

/* Starts the job's thread. The DONE event hands the job back. */
int job_start(JobQueue *queue, Job *job);

/* From the job's thread. */
void job_progress(Job *job, const char *action_id, const char *step);
/* Hands certificate (taken) up as JOB_EVENT_CONFIRM and waits for the
 * caller's answer, at most job->confirm_timeout_usec; a daemon stopping
 * answers JOB_ANSWER_SHUTDOWN. */
JobAnswer job_wait_answer(Job *job, json_t *certificate);

/* From the main loop: answers a job waiting in job_wait_answer() (the
 * first answer counts). */
void job_answer(Job *job, JobAnswer answer);
int job_fail(Job *job, const char *error_name, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* The thread bodies (activation.c). */
void job_run_check(Job *job);
void job_run_activate(Job *job);
void job_run_change_pin(Job *job);	/* pin-change.c */
void job_run_remove_previous(Job *job); /* remove-previous.c */

/* Finishes or undoes removals a crash interrupted, on the tokens present,
 * without a PIN (remove-previous.c). Between modules_use() and release. */
void removals_recover(Modules *modules);

/* With a login on the token's session (any job that logged in): destroys
 * the private key an interrupted removal left for a login, and ends that
 * removal. 1 when there was one, 0 when not, < 0 on failure (logged). */
int removals_finish_logged_in(TokenSession *session, const char *token_serial);

/* Whether a removal of this token's previous pair is journaled and not
 * finished (a running one, or one waiting for a login). */
bool removal_pending(const char *token_serial);

/* Whether a removal journal holds what it must (remove-previous.c).
 * -EBADMSG with *ret_bad the first member that does not. */
int removal_check(json_t *journal, const char **ret_bad);

/* Every PIN a job reads, together, must arrive within this. */
#define JOB_PIN_TIMEOUT_USEC (INT64_C(30) * 1000000)

/* From the job's thread: reads a PIN from *fd (then closed and set to -1)
 * before the job's one PIN deadline, which the first read sets. */
int job_read_pin(Job *job, int *fd, Pin *pin);
/* Why job_read_pin() failed, in words for the caller. */
const char *job_pin_error(int r);

/* From the job's thread, before it releases the modules: reads its token
 * again into job->fresh (left NULL when that fails). */
void job_read_token_again(Job *job);

/* From the job's thread: uses the modules, opens a read-write session on
 * the job's token, runs fn (unless the token is gone: TokenGone), closes
 * it, reads the token again and lets the modules go. */
void job_run_on_session(Job *job, void (*fn)(Job *job, TokenSession *session));
