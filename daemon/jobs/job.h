/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A job: token work for one token, asked for on the bus (jobs.h runs it
 * from the daemon) and done in a safecad-worker (job-worker.h). Its inputs
 * and outputs cross between the two as JSON (job_to_json(),
 * job_outputs_to_json()); nothing else is shared. */

#include <jansson.h>
#include <openssl/x509.h> /* the type only: the daemon parses nothing */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "ca/ca-client.h"
#include "pin.h"
#include "state/profiles.h"
#include "token/token-info.h"

typedef enum JobKind {
	JOB_CHECK,
	JOB_ACTIVATE,
	JOB_CHANGE_PIN,
	JOB_REMOVE_PREVIOUS,
	_JOB_KIND_MAX,
} JobKind;

/* A certificate of the token, as the scan saw it. */
typedef struct JobCertificate {
	unsigned char *der;
	size_t der_size;
	X509 *x509; /* the worker's parse (job_parse_certificates()) */
	const Profile *profile;
	char *serial;
	char *key_id;
	bool has_key;
} JobCertificate;

typedef struct Job Job;
typedef struct JobQueue JobQueue;
typedef struct Modules Modules;

/* What the caller said about writing the certificate. */
typedef enum JobAnswer {
	JOB_ANSWER_NONE,
	JOB_ANSWER_WRITE,
	JOB_ANSWER_CANCEL,
	JOB_ANSWER_CALLER_GONE,
	JOB_ANSWER_TIMEOUT,
	JOB_ANSWER_SHUTDOWN,
	_JOB_ANSWER_MAX,
} JobAnswer;

struct Job {
	JobKind kind;

	/* Inputs. */
	char *token_serial;
	char *token_label;
	char *token_manufacturer;
	char *token_model;
	char *module_path;
	CaNetwork network;
	JobCertificate *certificates;
	size_t n_certificates;
	char *action_id; /* NULL: the only activatable one */
	int pin_fd;
	int new_pin_fd;		   /* JOB_CHANGE_PIN */
	unsigned char *remove_der; /* JOB_REMOVE_PREVIOUS: the replaced certificate, */
	size_t remove_der_size;
	X509 *remove;	     /* the worker's parse of it */
	char *remove_key_id; /* its key's CKA_ID (hex), */
	bool remove_key;     /* and whether no other certificate uses that key */
	bool keep_previous;
	bool allow_final_try;
	/* JOB_ACTIVATE: stop at verified until the caller says to write. */
	bool confirm_write;
	int64_t confirm_timeout_usec;

	/* The worker's: its modules and profiles, and the one PIN deadline
	 * that the first PIN read sets. */
	Modules *modules;
	const Profiles *profiles;
	int64_t pin_deadline;

	/* Outputs, set by the worker before it finishes. */
	const char *error_name; /* a SAFECAD_ERROR_*, NULL on success */
	char *error_message;
	json_t *pending;  /* JOB_CHECK: the CA's entries */
	json_t *result;	  /* JOB_ACTIVATE: old/new serial, confirmed, agencies */
	TokenInfo *fresh; /* the token read again at the end, or NULL */

	/* The daemon's. */
	sd_bus_message *request;
	/* More Check() calls that came while this check ran: they get its
	 * answer. */
	sd_bus_message *waiters[16];
	size_t n_waiters;
	JobQueue *queue;
	struct Worker *worker; /* a spare taken when the job started, or NULL */
	/* The caller's answer to JOB_EVENT_CONFIRM (under the queue's lock). */
	JobAnswer answer;
};

Job *job_new(JobKind kind);
/* Frees a job whose certificates were not parsed (the daemon's; a worker's
 * goes with job_worker_free()). */
Job *job_free(Job *job);
int job_add_certificate(Job *job, const unsigned char *der, size_t der_size, const Profile *profile,
			const char *serial, const char *key_id, bool has_key);

int job_fail(Job *job, const char *error_name, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* "check", "activate", "change-pin", "remove-previous"; and back (-1 for
 * an unknown name). */
const char *job_kind_name(JobKind kind);
int job_kind_from_name(const char *name);
/* "write", "cancel", …; and back (-1). */
const char *job_answer_name(JobAnswer answer);
int job_answer_from_name(const char *name);

/* The job's inputs as the worker needs them (not its PIN descriptors,
 * which travel beside), and back into a new job; profiles are found by
 * their file names among the reader's. -EBADMSG for JSON that is not a
 * job. */
json_t *job_to_json(const Job *job);
int job_from_json(json_t *json, const Profiles *profiles, Job **ret);

/* The job's outputs, and back into the daemon's job. The error name must
 * be one of the named errors (bus-names.h): -EBADMSG if not. */
json_t *job_outputs_to_json(const Job *job);
int job_take_outputs(Job *job, json_t *json, const Profiles *profiles);

/* Every PIN a job reads, together, must arrive within this. */
#define JOB_PIN_TIMEOUT_USEC (INT64_C(30) * 1000000)

/* Reads a PIN from *fd (then closed and set to -1) before the job's one
 * PIN deadline, which the first read sets. */
int job_read_pin(Job *job, int *fd, Pin *pin);
/* Why job_read_pin() failed, in words for the caller. */
const char *job_pin_error(int r);
