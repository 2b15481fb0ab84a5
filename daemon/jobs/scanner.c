/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/scanner.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "jobs/worker-proto.h"
#include "state/history.h"
#include "state/pin-memory.h"
#include "log/log.h"
#include "macro.h"
#include "time-util.h"
#include "token/token-info-json.h"

struct Scanner {
	sd_event_source *source;
	int event_fd;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	pthread_cond_t wake;
	/* Under lock. */
	uint64_t requested;
	uint64_t started;
	bool stop;
	TokenList *result;
	uint64_t result_generation;
	uint64_t failed_generation; /* the last scan that failed, 0: none */

	/* The scan worker, under worker_lock (the thread's, and
	 * scanner_scan_now()'s at start-up). */
	pthread_mutex_t worker_lock;
	Worker *worker;
	_Atomic bool warm; /* a worker waits for the next scan */
	WorkerLimits limits;
	const Profiles *profiles;

	scanner_done_t done;
	void *userdata;
};

/* One scan in the worker, started when there is none. */
static int scan_in_worker(Scanner *s, TokenList *ret)
{
	json_auto_t *request = json_pack("{s:s}", "type", "scan");
	json_auto_t *answer = NULL;
	_cleanup_free_ char *error_message = NULL;
	const char *error_name = NULL, *type;
	int r;

	if (!request)
		return -ENOMEM;
	if (!s->worker) {
		r = worker_start(&s->limits, WORKER_FOR_SCANS, &s->worker);
		if (r < 0)
			return log_error_errno(r, "Cannot start a token worker (%s): %m",
					       worker_executable());
	}
	r = worker_request(s->worker, request, NULL, 0);
	for (;;) {
		if (r >= 0)
			r = worker_receive(s->worker, &answer, &error_name, &error_message);
		/* A removal the scan finished changed the history. */
		if (r < 0 || !streq(worker_message_type(answer), "history-changed"))
			break;
		history_tell_changed();
		json_decref(TAKE_PTR(answer));
	}
	if (r < 0) {
		log_warning("Token scan failed: %s", error_message ? error_message : strerror(-r));
		s->worker = worker_stop(s->worker);
		return -ECONNRESET;
	}
	type = worker_message_type(answer);
	if (streq(type, "scan-failed")) {
		json_int_t e = json_integer_value(json_object_get(answer, "errno"));
		return e > 0 && e < 4096 ? -(int)e : -EIO;
	}
	if (!streq(type, "tokens")) {
		log_warning("A token worker answered a scan with \"%s\": stopped.", type);
		s->worker = worker_stop(s->worker);
		return -EBADMSG;
	}
	r = token_list_from_json(json_object_get(answer, "tokens"), s->profiles, ret);
	if (r < 0) {
		log_warning_errno(r, "A token worker's scan cannot be used (%m): stopped.");
		s->worker = worker_stop(s->worker);
	}
	return r;
}

/* A scan; when its worker died (a module crashed or hung), once more
 * with a new one, which loads the modules afresh. */
static int scan(Scanner *s, TokenList *ret)
{
	int r;

	pthread_mutex_lock(&s->worker_lock);
	r = scan_in_worker(s, ret);
	if (r == -ECONNRESET)
		r = scan_in_worker(s, ret);
	s->warm = s->worker != NULL;
	pthread_mutex_unlock(&s->worker_lock);
	/* A final try an earlier failed login showed, which the module may
	 * say only in the process that failed: status shows it all the same. */
	for (size_t i = 0; r >= 0 && i < ret->n_items; i++) {
		TokenInfo *info = &ret->items[i];

		if (!info->pin_locked && !info->pin_final_try && pin_memory_final_try(info->serial))
			info->pin_final_try = true;
	}
	return r;
}

static void stop_idle_worker(Scanner *s)
{
	pthread_mutex_lock(&s->worker_lock);
	s->worker = worker_stop(s->worker);
	s->warm = false;
	pthread_mutex_unlock(&s->worker_lock);
}

static void *scanner_thread(void *userdata)
{
	Scanner *s = userdata;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		TokenList *list;
		uint64_t generation;
		int r;

		while (!s->stop && s->started >= s->requested) {
			struct timespec until;
			bool idle;

			/* The worker goes after a spell without scans; with
			 * none, nothing wakes this thread but a request. */
			if (!s->warm) {
				pthread_cond_wait(&s->wake, &s->lock);
				continue;
			}
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += SCANNER_IDLE_SEC;
			if (pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
				continue;
			idle = !s->stop && s->started >= s->requested;
			pthread_mutex_unlock(&s->lock);
			if (idle)
				stop_idle_worker(s);
			pthread_mutex_lock(&s->lock);
		}
		if (s->stop)
			break;
		generation = s->started = s->requested;
		pthread_mutex_unlock(&s->lock);

		list = calloc(1, sizeof(TokenList));
		r = list ? scan(s, list) : -ENOMEM;
		if (r < 0) {
			log_error_errno(r, "Token scan failed: %m");
			token_list_free(list);
			list = NULL;
		}

		pthread_mutex_lock(&s->lock);
		if (list) {
			token_list_free(s->result);
			s->result = list;
			s->result_generation = generation;
		} else
			s->failed_generation = generation;
		if (eventfd_write(s->event_fd, 1) < 0)
			log_error_errno(errno, "Cannot wake the main loop: %m");
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int on_result(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	Scanner *s = userdata;
	TokenList *list;
	uint64_t generation, failed;
	eventfd_t value;

	(void)eventfd_read(fd, &value);
	pthread_mutex_lock(&s->lock);
	list = TAKE_PTR(s->result);
	generation = s->result_generation;
	failed = s->failed_generation;
	s->failed_generation = 0;
	pthread_mutex_unlock(&s->lock);
	/* A failed scan that came after the last good one still ends the
	 * waits it covers, with the tokens as they were. */
	if (list && failed <= generation)
		s->done(list, generation, s->userdata);
	else {
		if (list)
			s->done(list, generation, s->userdata);
		if (failed)
			s->done(NULL, failed, s->userdata);
	}
	return 0;
}

int scanner_new(sd_event *event, const WorkerLimits *limits, const Profiles *profiles,
		scanner_done_t done, void *userdata, Scanner **ret)
{
	Scanner *s = calloc(1, sizeof(Scanner));
	pthread_condattr_t attributes;
	int r;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->worker_lock, NULL);
	/* The idle deadline is on the monotonic clock. */
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &attributes);
	pthread_condattr_destroy(&attributes);
	s->limits = *limits;
	s->profiles = profiles;
	s->done = done;
	s->userdata = userdata;
	s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->event_fd < 0) {
		r = -errno;
		scanner_free(s);
		return r;
	}
	r = sd_event_add_io(event, &s->source, s->event_fd, EPOLLIN, on_result, s);
	if (r < 0) {
		scanner_free(s);
		return r;
	}
	(void)sd_event_source_set_description(s->source, "scanner");
	r = -pthread_create(&s->thread, NULL, scanner_thread, s);
	if (r < 0) {
		scanner_free(s);
		return r;
	}
	s->thread_started = true;
	*ret = s;
	return 0;
}

Scanner *scanner_free(Scanner *s)
{
	if (!s)
		return NULL;
	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	s->worker = worker_stop(s->worker);
	sd_event_source_disable_unref(s->source);
	if (s->event_fd >= 0)
		close(s->event_fd);
	token_list_free(s->result);
	pthread_cond_destroy(&s->wake);
	pthread_mutex_destroy(&s->worker_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}

uint64_t scanner_request(Scanner *s)
{
	uint64_t generation;

	pthread_mutex_lock(&s->lock);
	generation = ++s->requested;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return generation;
}

int scanner_scan_now(Scanner *s, TokenList *ret)
{
	return scan(s, ret);
}
