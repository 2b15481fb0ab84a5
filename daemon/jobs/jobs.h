/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's side of jobs: each runs in a safecad-worker of its own,
 * watched by a thread of the daemon that hands the worker its inputs and
 * PIN descriptors, relays its progress and its question to the main loop,
 * and takes its outputs back. One job per token at a time (the caller
 * checks). The thread talks to the main loop only through the queue's
 * eventfd: a job reports up through its queue, never by calling the bus. */

#include <jansson.h>
#include <systemd/sd-event.h>

#include "jobs/job.h"
#include "jobs/worker-process.h"
#include "state/profiles.h"

typedef enum JobEventKind {
	JOB_EVENT_PROGRESS,
	JOB_EVENT_CONFIRM,
	JOB_EVENT_DONE,
} JobEventKind;

/* On the main loop. For PROGRESS, state is {"action","step"}; for CONFIRM,
 * the issued certificate waiting for the caller's answer (job_answer());
 * borrowed. */
typedef void (*job_event_t)(Job *job, JobEventKind kind, json_t *state, void *userdata);

/* profiles must outlive the queue: the workers' outputs are matched
 * against them. */
int job_queue_new(sd_event *event, const WorkerLimits *limits, const Profiles *profiles,
		  job_event_t handler, void *userdata, JobQueue **ret);
/* Waits for every running job, then frees. */
JobQueue *job_queue_free(JobQueue *queue);

/* Starts the job's worker. The DONE event hands the job back. */
int job_start(JobQueue *queue, Job *job);

/* From the main loop: answers a job waiting for its caller (the first
 * answer counts). */
void job_answer(Job *job, JobAnswer answer);
