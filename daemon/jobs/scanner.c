/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/scanner.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "jobs/jobs.h"
#include "log/log.h"
#include "macro.h"

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
	/* A scan ran while a job held the modules, so it may have missed a
	 * token that came meanwhile: scan again once they are let go. */
	bool stale;
	TokenList *result;
	uint64_t result_generation;

	Modules *modules;
	const Profiles *profiles;

	scanner_done_t done;
	void *userdata;
};

static void *scanner_thread(void *userdata)
{
	Scanner *s = userdata;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		TokenList *list;
		uint64_t generation;
		bool fresh;
		int r;

		while (!s->stop && s->started >= s->requested)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->stop)
			break;
		generation = s->started = s->requested;
		pthread_mutex_unlock(&s->lock);

		list = calloc(1, sizeof(TokenList));
		fresh = modules_use(s->modules);
		removals_recover(s->modules);
		r = list ? modules_scan(s->modules, s->profiles, list) : -ENOMEM;
		if (!fresh) {
			pthread_mutex_lock(&s->lock);
			s->stale = true;
			pthread_mutex_unlock(&s->lock);
		}
		modules_release(s->modules);
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
			if (eventfd_write(s->event_fd, 1) < 0)
				log_error_errno(errno, "Cannot wake the main loop: %m");
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The modules were let go: a scan that shared them with a job is made
 * again, now that the next one loads them afresh. */
static void on_modules_idle(void *userdata)
{
	Scanner *s = userdata;

	pthread_mutex_lock(&s->lock);
	if (s->stale) {
		s->stale = false;
		s->requested++;
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
}

static int on_result(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	Scanner *s = userdata;
	TokenList *list;
	uint64_t generation;
	eventfd_t value;

	(void)eventfd_read(fd, &value);
	pthread_mutex_lock(&s->lock);
	list = TAKE_PTR(s->result);
	generation = s->result_generation;
	pthread_mutex_unlock(&s->lock);
	if (list)
		s->done(list, generation, s->userdata);
	return 0;
}

int scanner_new(sd_event *event, Modules *modules, const Profiles *profiles, scanner_done_t done,
		void *userdata, Scanner **ret)
{
	Scanner *s = calloc(1, sizeof(Scanner));
	int r;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->modules = modules;
	s->profiles = profiles;
	modules_set_on_idle(modules, on_modules_idle, s);
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
	modules_set_on_idle(s->modules, NULL, NULL);
	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	sd_event_source_disable_unref(s->source);
	if (s->event_fd >= 0)
		close(s->event_fd);
	token_list_free(s->result);
	pthread_cond_destroy(&s->wake);
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
	int r;

	modules_use(s->modules);
	removals_recover(s->modules);
	r = modules_scan(s->modules, s->profiles, ret);
	modules_release(s->modules);
	return r;
}
