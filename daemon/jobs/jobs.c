/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/jobs.h"

#include <signal.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "bus-names.h"
#include "i18n.h"
#include "log/log.h"
#include "macro.h"
#include "jobs/worker-proto.h"
#include "state/history.h"
#include "time-util.h"

#define MAX_EVENTS 1024

typedef struct JobEvent {
	Job *job;
	JobEventKind kind;
	json_t *state;
} JobEvent;

struct JobQueue {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	JobEvent events[MAX_EVENTS];
	size_t n_events;
	size_t n_running;
	int event_fd;
	sd_event_source *source;
	job_event_t handler;
	void *userdata;
	WorkerLimits limits;
	const Profiles *profiles;
	bool stopping; /* answers every job waiting for its caller */

	/* A spare worker, started beside a job for the one that usually
	 * follows (a check, then the activation it found): it has linked and
	 * read the configuration already. Kept by a thread of its own for
	 * SPARE_IDLE_SEC, then let go. Under lock. */
	pthread_t spare_thread;
	bool spare_thread_started;
	pthread_cond_t spare_changed;
	Worker *spare;
	bool spare_wanted;
};

#define SPARE_IDLE_SEC 5

static void post(JobQueue *q, Job *job, JobEventKind kind, json_t *state)
{
	pthread_mutex_lock(&q->lock);
	/* Progress may be dropped when the loop is far behind; the end and
	 * a question never are: they wait for room. */
	while (kind != JOB_EVENT_PROGRESS && q->n_events >= MAX_EVENTS)
		pthread_cond_wait(&q->changed, &q->lock);
	if (q->n_events < MAX_EVENTS)
		q->events[q->n_events++] = (JobEvent){job, kind, state};
	else
		json_decref(state);
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
	(void)eventfd_write(q->event_fd, 1);
}

/* Hands certificate (taken) up as JOB_EVENT_CONFIRM and waits for the
 * caller's answer, at most job->confirm_timeout_usec; a daemon stopping
 * answers JOB_ANSWER_SHUTDOWN. */
static JobAnswer wait_answer(Job *job, json_t *certificate)
{
	JobQueue *q = job->queue;
	int64_t deadline = monotonic_usec() + job->confirm_timeout_usec;
	struct timespec until = {
	    .tv_sec = (time_t)(deadline / 1000000),
	    .tv_nsec = (long)(deadline % 1000000) * 1000,
	};
	JobAnswer answer;

	post(q, job, JOB_EVENT_CONFIRM, certificate);
	pthread_mutex_lock(&q->lock);
	while (job->answer == JOB_ANSWER_NONE && !q->stopping)
		if (pthread_cond_timedwait(&q->changed, &q->lock, &until) == ETIMEDOUT &&
		    job->answer == JOB_ANSWER_NONE) {
			job->answer = JOB_ANSWER_TIMEOUT;
			break;
		}
	if (job->answer == JOB_ANSWER_NONE)
		job->answer = JOB_ANSWER_SHUTDOWN;
	answer = job->answer;
	pthread_mutex_unlock(&q->lock);
	return answer;
}

void job_answer(Job *job, JobAnswer answer)
{
	JobQueue *q = job->queue;

	pthread_mutex_lock(&q->lock);
	if (job->answer == JOB_ANSWER_NONE)
		job->answer = answer;
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);
}

/* A worker's progress, checked before it goes up. */
static void relay_progress(Job *job, json_t *message)
{
	const char *action = NULL, *step = NULL;
	json_t *state;

	if (json_unpack(message, "{s:s,s:s}", "action", &action, "step", &step) < 0)
		return;
	state = json_pack("{s:s,s:s}", "action", action, "step", step);
	if (state)
		post(job->queue, job, JOB_EVENT_PROGRESS, state);
}

/* The crash tests' SAFECAD_TEST_CRASH_AT names a journal step at which
 * the daemon dies as a power cut would; the worker that reached it asks
 * for it. Only the daemon's own setting counts. */
static void relay_crash(json_t *message)
{
	const char *crash_at = getenv("SAFECAD_TEST_CRASH_AT");
	const char *step = json_string_value(json_object_get(message, "step"));

	if (crash_at && step && streq(crash_at, step))
		raise(SIGKILL);
}

/* Starts a spare when one is wanted, and lets an untaken one go after
 * SPARE_IDLE_SEC. Workers are started and stopped here, off the loop. */
static void *spare_thread(void *userdata)
{
	JobQueue *q = userdata;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct timespec until;
		Worker *w = NULL;

		while (!q->stopping && !q->spare_wanted && !q->spare)
			pthread_cond_wait(&q->spare_changed, &q->lock);
		if (q->stopping)
			break;
		if (q->spare_wanted && !q->spare) {
			q->spare_wanted = false;
			pthread_mutex_unlock(&q->lock);
			if (worker_start(&q->limits, WORKER_FOR_A_JOB, &w) < 0)
				w = NULL;
			pthread_mutex_lock(&q->lock);
			if (q->stopping || q->spare) {
				pthread_mutex_unlock(&q->lock);
				worker_stop(w);
				pthread_mutex_lock(&q->lock);
				continue;
			}
			q->spare = w;
		}
		q->spare_wanted = false;
		/* Until it is taken, wanted afresh, or idle too long. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += SPARE_IDLE_SEC;
		while (!q->stopping && q->spare && !q->spare_wanted)
			if (pthread_cond_timedwait(&q->spare_changed, &q->lock, &until) ==
			    ETIMEDOUT)
				break;
		if (q->spare && !q->spare_wanted) {
			w = TAKE_PTR(q->spare);
			pthread_mutex_unlock(&q->lock);
			worker_stop(w);
			pthread_mutex_lock(&q->lock);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Runs the job in a worker of its own and relays what it says until it
 * is done or gone; returns the worker, for the caller to stop once the
 * job's end is on its way up. */
static Worker *run_in_worker(Job *job)
{
	JobQueue *q = job->queue;
	_cleanup_(json_decrefp) json_t *request = job_to_json(job);
	Worker *worker = NULL;
	int fds[WORKER_MAX_FDS];
	size_t n_fds = 0;
	int r;

	if (!request) {
		job_fail(job, SAFECAD_ERROR_FAILED, "%s", strerror(ENOMEM));
		return NULL;
	}
	json_object_set_new(request, "type", json_string("job"));
	if (job->pin_fd >= 0)
		fds[n_fds++] = job->pin_fd;
	if (job->new_pin_fd >= 0)
		fds[n_fds++] = job->new_pin_fd;
	json_object_set_new(request, "n_fds", json_integer((json_int_t)n_fds));
	worker = TAKE_PTR(job->worker);
	if (worker && worker_request(worker, request, fds, n_fds) < 0)
		/* It died waiting: the descriptors are still ours. */
		worker = worker_stop(worker);
	if (worker)
		r = 0;
	else {
		r = worker_start(&q->limits, WORKER_FOR_A_JOB, &worker);
		if (r >= 0)
			r = worker_request(worker, request, fds, n_fds);
	}
	/* The PIN pipes are the worker's now: the daemon never reads them. */
	if (job->pin_fd >= 0)
		close(job->pin_fd);
	if (job->new_pin_fd >= 0)
		close(job->new_pin_fd);
	job->pin_fd = job->new_pin_fd = -1;
	if (r < 0) {
		log_error_errno(r, "Cannot start a token worker (%s): %m", worker_executable());
		job_fail(job, SAFECAD_ERROR_FAILED, _("Cannot start a token worker: %s"),
			 strerror(-r));
		return worker;
	}
	for (;;) {
		_cleanup_(json_decrefp) json_t *message = NULL;
		_cleanup_free_ char *error_message = NULL;
		const char *error_name = NULL, *type;

		r = worker_receive(worker, &message, &error_name, &error_message);
		if (r < 0) {
			job_fail(job, error_name ? error_name : SAFECAD_ERROR_FAILED, "%s",
				 error_message ? error_message : strerror(-r));
			break;
		}
		type = worker_message_type(message);
		if (streq(type, "progress"))
			relay_progress(job, message);
		else if (streq(type, "confirm")) {
			json_t *certificate = json_object_get(message, "certificate");
			JobAnswer answer = wait_answer(job, json_incref(certificate));
			_cleanup_(json_decrefp) json_t *reply = json_pack(
			    "{s:s,s:s}", "type", "answer", "answer", job_answer_name(answer));

			if (!reply || worker_request(worker, reply, NULL, 0) < 0)
				log_warning("Cannot hand a token worker its caller's answer.");
		} else if (streq(type, "crash"))
			relay_crash(message);
		else if (streq(type, "history-changed"))
			history_tell_changed();
		else if (streq(type, "done")) {
			r = job_take_outputs(job, json_object_get(message, "outputs"), q->profiles);
			if (r < 0) {
				log_warning_errno(r, "A token worker's outputs cannot be used: %m");
				job_fail(job, SAFECAD_ERROR_FAILED,
					 _("The token worker's answer cannot be used."));
			}
			break;
		} else
			log_warning("A token worker sent an unknown message \"%s\", ignored.",
				    type);
	}
	return worker;
}

/* Under lock. */
static void want_spare(JobQueue *q)
{
	q->spare_wanted = true;
	pthread_cond_broadcast(&q->spare_changed);
}

static void *job_thread(void *userdata)
{
	Job *job = userdata;
	JobQueue *q = job->queue;
	JobKind job_kind = job->kind;
	Worker *worker = run_in_worker(job);

	/* The caller hears the end first; waiting for the worker to exit
	 * (its modules finalized, a sanitizer's report) is nobody's wait.
	 * The job may be freed from here on. */
	post(q, job, JOB_EVENT_DONE, NULL);
	worker_stop(worker);
	pthread_mutex_lock(&q->lock);
	q->n_running--;
	pthread_cond_broadcast(&q->changed);
	if (job_kind != JOB_CHECK)
		want_spare(q);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Hands every queued event to the handler. */
static void dispatch(JobQueue *q)
{
	JobEvent events[MAX_EVENTS];
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->n_events;
	memcpy(events, q->events, n * sizeof(JobEvent));
	q->n_events = 0;
	pthread_cond_broadcast(&q->changed);
	pthread_mutex_unlock(&q->lock);

	for (size_t i = 0; i < n; i++) {
		q->handler(events[i].job, events[i].kind, events[i].state, q->userdata);
		json_decref(events[i].state);
	}
}

static int on_events(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	eventfd_t value;

	(void)eventfd_read(fd, &value);
	dispatch(userdata);
	return 0;
}

int job_queue_new(sd_event *event, const WorkerLimits *limits, const Profiles *profiles,
		  job_event_t handler, void *userdata, JobQueue **ret)
{
	JobQueue *q = calloc(1, sizeof(JobQueue));
	int r;

	if (!q)
		return -ENOMEM;
	pthread_condattr_t attributes;

	pthread_mutex_init(&q->lock, NULL);
	/* wait_answer()'s deadline is on the monotonic clock. */
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&q->changed, &attributes);
	/* So is the spare's idle limit. */
	pthread_cond_init(&q->spare_changed, &attributes);
	pthread_condattr_destroy(&attributes);
	q->handler = handler;
	q->userdata = userdata;
	q->limits = *limits;
	q->profiles = profiles;
	q->event_fd = -1;
	q->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->event_fd < 0) {
		r = -errno;
		job_queue_free(q);
		return r;
	}
	r = sd_event_add_io(event, &q->source, q->event_fd, EPOLLIN, on_events, q);
	if (r < 0) {
		job_queue_free(q);
		return r;
	}
	(void)sd_event_source_set_description(q->source, "jobs");
	r = -pthread_create(&q->spare_thread, NULL, spare_thread, q);
	if (r < 0) {
		job_queue_free(q);
		return r;
	}
	q->spare_thread_started = true;
	*ret = q;
	return 0;
}

JobQueue *job_queue_free(JobQueue *q)
{
	if (!q)
		return NULL;
	/* A job in the middle of writing to a token is let finish: the
	 * journal guards against being cut off, but there is no need to
	 * cause it. One waiting for its caller's answer gets "no". */
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->changed);
	pthread_cond_broadcast(&q->spare_changed);
	pthread_mutex_unlock(&q->lock);
	if (q->spare_thread_started)
		pthread_join(q->spare_thread, NULL);
	q->spare = worker_stop(q->spare);
	for (;;) {
		dispatch(q);
		pthread_mutex_lock(&q->lock);
		if (q->n_running == 0) {
			pthread_mutex_unlock(&q->lock);
			break;
		}
		if (q->n_events == 0)
			pthread_cond_wait(&q->changed, &q->lock);
		pthread_mutex_unlock(&q->lock);
	}
	sd_event_source_disable_unref(q->source);
	if (q->event_fd >= 0)
		close(q->event_fd);
	pthread_cond_destroy(&q->changed);
	pthread_cond_destroy(&q->spare_changed);
	pthread_mutex_destroy(&q->lock);
	free(q);
	return NULL;
}

int job_start(JobQueue *q, Job *job)
{
	pthread_attr_t attributes;
	pthread_t thread;
	int r;

	job->queue = q;
	pthread_mutex_lock(&q->lock);
	q->n_running++;
	/* This job takes the spare there is; the next one gets a new one.
	 * A check is often followed at once by the activation it offered
	 * (`safectl activate` checks first), and it mostly waits for the CA:
	 * its successor's spare starts beside it. Any other job's starts when
	 * it is over (job_thread()): a worker's start (exec, linking, its
	 * modules mapped) would take the CPU this job's own steps wait for. */
	job->worker = TAKE_PTR(q->spare);
	if (job->kind == JOB_CHECK)
		want_spare(q);
	pthread_mutex_unlock(&q->lock);
	/* Detached: the thread counts itself out of n_running when its
	 * worker is gone, which job_queue_free() waits for. */
	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	r = -pthread_create(&thread, &attributes, job_thread, job);
	pthread_attr_destroy(&attributes);
	if (r < 0) {
		pthread_mutex_lock(&q->lock);
		q->n_running--;
		pthread_mutex_unlock(&q->lock);
		job->worker = worker_stop(job->worker);
	}
	return r;
}
