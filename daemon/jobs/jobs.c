/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/jobs.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "bus-names.h"
#include "i18n.h"
#include "log/log.h"
#include "macro.h"
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
	bool stopping; /* answers every job waiting for its caller */
};

Job *job_new(JobKind kind)
{
	Job *job = calloc(1, sizeof(Job));

	if (!job)
		return NULL;
	job->kind = kind;
	job->pin_fd = -1;
	job->new_pin_fd = -1;
	job->keep_previous = true;
	return job;
}

Job *job_free(Job *job)
{
	if (!job)
		return NULL;
	free(job->token_serial);
	free(job->token_label);
	free(job->token_manufacturer);
	free(job->token_model);
	free(job->module_path);
	for (size_t i = 0; i < job->n_certificates; i++) {
		X509_free(job->certificates[i].x509);
		free(job->certificates[i].serial);
		free(job->certificates[i].key_id);
	}
	free(job->certificates);
	free(job->action_id);
	X509_free(job->remove);
	free(job->remove_key_id);
	if (job->pin_fd >= 0)
		close(job->pin_fd);
	if (job->new_pin_fd >= 0)
		close(job->new_pin_fd);
	free(job->error_message);
	json_decref(job->pending);
	json_decref(job->result);
	if (job->fresh)
		token_info_clear(job->fresh);
	free(job->fresh);
	sd_bus_message_unref(job->request);
	for (size_t i = 0; i < job->n_waiters; i++)
		sd_bus_message_unref(job->waiters[i]);
	free(job);
	return NULL;
}

int job_add_certificate(Job *job, X509 *x509, const Profile *profile, const char *serial,
			const char *key_id, bool has_key)
{
	JobCertificate *c =
	    realloc(job->certificates, (job->n_certificates + 1) * sizeof(JobCertificate));

	if (!c)
		return -ENOMEM;
	job->certificates = c;
	c = &job->certificates[job->n_certificates];
	*c = (JobCertificate){
	    .x509 = x509,
	    .profile = profile,
	    .serial = strdup(serial),
	    .key_id = strdup(key_id),
	    .has_key = has_key,
	};
	if (!c->serial || !c->key_id) {
		free(c->serial);
		free(c->key_id);
		return -ENOMEM;
	}
	X509_up_ref(x509);
	job->n_certificates++;
	return 0;
}

void job_read_token_again(Job *job)
{
	TokenInfo *info = calloc(1, sizeof(TokenInfo));

	if (info && modules_read_token(job->modules, job->module_path, job->token_serial,
				       job->profiles, info) >= 0) {
		job->fresh = info;
		return;
	}
	free(info);
}

int job_read_pin(Job *job, int *fd, Pin *pin)
{
	int r;

	if (job->pin_deadline == 0)
		job->pin_deadline = monotonic_usec() + JOB_PIN_TIMEOUT_USEC;
	r = pin_read_fd(pin, *fd, job->pin_deadline);
	close(*fd);
	*fd = -1;
	return r;
}

const char *job_pin_error(int r)
{
	switch (r) {
	case -ENODATA:
		return _("it is empty");
	case -ETIMEDOUT:
		return _("it did not arrive in time");
	case -EMSGSIZE:
		return _("it is too long");
	case -EISDIR:
	case -EBADF:
	case -EINVAL:
		return _("the descriptor passed cannot be read");
	default:
		return strerror(-r);
	}
}

void job_run_on_session(Job *job, void (*fn)(Job *job, TokenSession *session))
{
	TokenSession session = {};
	int r;

	modules_use(job->modules);
	r = token_session_open(modules_functions(job->modules, job->module_path), job->token_serial,
			       &session);
	if (r < 0)
		job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Token %s is not there any more (%s)."),
			 job->token_serial, strerror(-r));
	else
		fn(job, &session);
	token_session_close(&session);
	job_read_token_again(job);
	modules_release(job->modules);
}

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

void job_progress(Job *job, const char *action_id, const char *step)
{
	json_t *state = json_pack("{s:s,s:s}", "action", action_id, "step", step);

	if (state)
		post(job->queue, job, JOB_EVENT_PROGRESS, state);
}

JobAnswer job_wait_answer(Job *job, json_t *certificate)
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

int job_fail(Job *job, const char *error_name, const char *format, ...)
{
	va_list ap;

	job->error_name = error_name;
	free(job->error_message);
	va_start(ap, format);
	if (vasprintf(&job->error_message, format, ap) < 0)
		job->error_message = NULL;
	va_end(ap);
	return -1;
}

static void *job_thread(void *userdata)
{
	Job *job = userdata;

	if (job->kind == JOB_CHECK)
		job_run_check(job);
	else if (job->kind == JOB_CHANGE_PIN)
		job_run_change_pin(job);
	else if (job->kind == JOB_REMOVE_PREVIOUS)
		job_run_remove_previous(job);
	else
		job_run_activate(job);
	post(job->queue, job, JOB_EVENT_DONE, NULL);
	return NULL;
}

/* Hands every queued event to the handler; joins finished threads. */
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
		if (events[i].kind == JOB_EVENT_DONE) {
			pthread_join(events[i].job->thread, NULL);
			pthread_mutex_lock(&q->lock);
			q->n_running--;
			pthread_mutex_unlock(&q->lock);
		}
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

int job_queue_new(sd_event *event, job_event_t handler, void *userdata, JobQueue **ret)
{
	JobQueue *q = calloc(1, sizeof(JobQueue));
	int r;

	if (!q)
		return -ENOMEM;
	pthread_condattr_t attributes;

	pthread_mutex_init(&q->lock, NULL);
	/* job_wait_answer()'s deadline is on the monotonic clock. */
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&q->changed, &attributes);
	pthread_condattr_destroy(&attributes);
	q->handler = handler;
	q->userdata = userdata;
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
	pthread_mutex_unlock(&q->lock);
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
	pthread_mutex_destroy(&q->lock);
	free(q);
	return NULL;
}

int job_start(JobQueue *q, Job *job)
{
	int r;

	job->queue = q;
	pthread_mutex_lock(&q->lock);
	q->n_running++;
	pthread_mutex_unlock(&q->lock);
	r = -pthread_create(&job->thread, NULL, job_thread, job);
	if (r < 0) {
		pthread_mutex_lock(&q->lock);
		q->n_running--;
		pthread_mutex_unlock(&q->lock);
	}
	return r;
}
