/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/pcsc-watch.h"

#include <PCSC/winscard.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "log/log.h"
#include "macro.h"

#define MAX_READERS 32
#define READER_NAMES_MAX (64 * 1024)
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define PNP_READER "\\\\?PnP?\\Notification"

struct PcscWatch {
	/* The context is made and released by the thread; the lock lets the
	 * main loop cancel a wait on it without racing a reconnect. */
	pthread_mutex_t lock;
	SCARDCONTEXT context;
	bool context_valid;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	atomic_bool up;	  /* what the thread saw last */
	bool reported_up; /* what the main loop told last */
	int event_fd;	  /* thread → main loop */
	int stop_fd;	  /* main loop → thread, ends a back-off wait */
	sd_event_source *source;
	pcsc_changed_t changed;
	pcsc_state_t state;
	void *userdata;
};

/* What was known of a reader before the list was read again. */
typedef struct Known {
	char name[MAX_READERNAME + 1];
	DWORD state;
} Known;

/* The one place where PC/SC return codes become errno codes. */
static int pcsc_to_errno(LONG rv)
{
	switch (rv) {
	case SCARD_S_SUCCESS:
		return 0;
	case SCARD_E_NO_SERVICE:
	case SCARD_E_SERVICE_STOPPED:
	case SCARD_F_COMM_ERROR:
		return -ENXIO;
	case SCARD_E_NO_READERS_AVAILABLE:
		return -ENODEV;
	case SCARD_E_CANCELLED:
		return -ECANCELED;
	case SCARD_E_TIMEOUT:
		return -ETIMEDOUT;
	case SCARD_E_NO_MEMORY:
		return -ENOMEM;
	case SCARD_E_INVALID_HANDLE:
		return -EBADF;
	default:
		return -EIO;
	}
}

static void post(PcscWatch *w)
{
	if (eventfd_write(w->event_fd, 1) < 0)
		log_error_errno(errno, "Cannot wake the main loop: %m");
}

/* Waits ms, or until asked to stop. Returns false when stopping. */
static bool backoff(PcscWatch *w, int ms)
{
	struct pollfd p = {.fd = w->stop_fd, .events = POLLIN};

	if (atomic_load(&w->stop))
		return false;
	(void)poll(&p, 1, ms);
	return !atomic_load(&w->stop);
}

static DWORD known_state(const Known *known, size_t n_known, const char *name)
{
	for (size_t i = 0; i < n_known; i++)
		if (streq(known[i].name, name))
			return known[i].state;
	return SCARD_STATE_UNAWARE;
}

/* Fills states with every reader plus the PnP pseudo-reader, each with the
 * state we last saw of it. The names live in names. */
static int list_readers(PcscWatch *w, const Known *known, size_t n_known, char *names,
			DWORD names_size, SCARD_READERSTATE *states, size_t *ret_n)
{
	DWORD size = names_size;
	size_t n = 0;
	LONG rv;

	rv = SCardListReaders(w->context, NULL, names, &size);
	if (rv == SCARD_E_NO_READERS_AVAILABLE)
		size = 0;
	else if (rv != SCARD_S_SUCCESS)
		return pcsc_to_errno(rv);
	for (char *p = names; size > 0 && *p && n < MAX_READERS; p += strlen(p) + 1)
		states[n++] = (SCARD_READERSTATE){
		    .szReader = p,
		    .dwCurrentState = known_state(known, n_known, p),
		};
	states[n++] = (SCARD_READERSTATE){
	    .szReader = PNP_READER,
	    .dwCurrentState = known_state(known, n_known, PNP_READER),
	};
	*ret_n = n;
	return 0;
}

/* The wait loop. What changes mean (each leads to one rescan):
 *
 *   reader state change             meaning
 *   ------------------------------  -----------------------------------
 *   EMPTY → PRESENT                 a card (token) was inserted
 *   PRESENT → EMPTY                 a card was removed
 *   event counter (high 16 bits)    removed and inserted between waits
 *   PnP pseudo-reader changed       a reader was plugged in or out
 *   a reader we knew is gone        the same, seen on re-listing
 *   UNAVAILABLE / MUTE              the reader's state is unknown now
 *
 * pcsc-lite 1.9.9 has no PnP counter to ask, so the reader list is read
 * again after every wake. Blocks in SCardGetStatusChange with no timeout:
 * nothing happens, nothing wakes. */
static int watch_loop(PcscWatch *w)
{
	SCARD_READERSTATE states[MAX_READERS + 1];
	Known known[MAX_READERS + 1];
	_cleanup_free_ char *names = malloc(READER_NAMES_MAX);
	size_t n_states = 0, n_known = 0;
	bool first = true;

	if (!names)
		return -ENOMEM;
	for (;;) {
		bool changed = first;
		LONG rv;
		int r;

		r = list_readers(w, known, n_known, names, READER_NAMES_MAX, states, &n_states);
		if (r < 0)
			return r;
		/* A reader that vanished between two waits. */
		for (size_t i = 0; i < n_known; i++) {
			bool found = false;
			for (size_t j = 0; j < n_states && !found; j++)
				found = streq(known[i].name, states[j].szReader);
			if (!found)
				changed = true;
		}
		/* The first answer only tells what is there now; its rescan
		 * covers a card that came between start-up and this wait. */
		if (changed)
			post(w);
		first = false;

		rv = SCardGetStatusChange(w->context, INFINITE, states, (DWORD)n_states);
		if (atomic_load(&w->stop))
			return -ECANCELED;
		if (rv != SCARD_S_SUCCESS && rv != SCARD_E_UNKNOWN_READER)
			return pcsc_to_errno(rv);
		if (rv == SCARD_E_UNKNOWN_READER)
			post(w);
		else
			for (size_t i = 0; i < n_states; i++)
				if (states[i].dwEventState & SCARD_STATE_CHANGED) {
					post(w);
					break;
				}
		n_known = 0;
		for (size_t i = 0; i < n_states; i++) {
			snprintf(known[n_known].name, sizeof(known[n_known].name), "%s",
				 states[i].szReader);
			known[n_known++].state = states[i].dwEventState & ~SCARD_STATE_CHANGED;
		}
	}
}

static void set_up(PcscWatch *w, bool up)
{
	if (atomic_exchange(&w->up, up) != up)
		post(w);
}

static void *watch_thread(void *userdata)
{
	PcscWatch *w = userdata;
	int delay = BACKOFF_MIN_MS;

	while (!atomic_load(&w->stop)) {
		bool valid;
		int r;

		pthread_mutex_lock(&w->lock);
		if (!w->context_valid && !atomic_load(&w->stop))
			w->context_valid = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL,
								 &w->context) == SCARD_S_SUCCESS;
		valid = w->context_valid;
		pthread_mutex_unlock(&w->lock);

		if (valid) {
			set_up(w, true);
			r = watch_loop(w);
			if (r == -ECANCELED || atomic_load(&w->stop))
				break;
			if (r == -ENOMEM)
				log_oom();
			else
				delay = BACKOFF_MIN_MS;
			/* pcscd went away (or restarts): without a pause a dead
			 * service answers every wait at once, forever. */
			pthread_mutex_lock(&w->lock);
			SCardReleaseContext(w->context);
			w->context_valid = false;
			pthread_mutex_unlock(&w->lock);
			set_up(w, false);
		}
		if (!backoff(w, delay))
			break;
		delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	}
	return NULL;
}

static int on_event(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	PcscWatch *w = userdata;
	eventfd_t value = 0;
	bool up;

	if (eventfd_read(fd, &value) < 0)
		return 0;
	up = atomic_load(&w->up);
	if (up != w->reported_up) {
		w->reported_up = up;
		if (up)
			log_info("pcscd is back: hotplug is on again.");
		else
			log_warning("pcscd went away: hotplug is off until it returns.");
		if (w->state)
			w->state(up, w->userdata);
	}
	w->changed(w->userdata);
	return 0;
}

int pcsc_watch_new(sd_event *event, pcsc_changed_t changed, pcsc_state_t state, void *userdata,
		   PcscWatch **ret)
{
	PcscWatch *w = calloc(1, sizeof(PcscWatch));
	LONG rv;
	int r;

	if (!w)
		return -ENOMEM;
	w->event_fd = w->stop_fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	atomic_init(&w->up, true);
	w->reported_up = true;
	w->changed = changed;
	w->state = state;
	w->userdata = userdata;
	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &w->context);
	if (rv != SCARD_S_SUCCESS) {
		pthread_mutex_destroy(&w->lock);
		free(w);
		return pcsc_to_errno(rv);
	}
	w->context_valid = true;
	w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->event_fd < 0 || w->stop_fd < 0) {
		r = -errno;
		pcsc_watch_free(w);
		return r;
	}
	r = sd_event_add_io(event, &w->source, w->event_fd, EPOLLIN, on_event, w);
	if (r < 0) {
		pcsc_watch_free(w);
		return r;
	}
	(void)sd_event_source_set_description(w->source, "pcsc-watch");
	r = -pthread_create(&w->thread, NULL, watch_thread, w);
	if (r < 0) {
		pcsc_watch_free(w);
		return r;
	}
	w->thread_started = true;
	*ret = w;
	return 0;
}

PcscWatch *pcsc_watch_free(PcscWatch *w)
{
	if (!w)
		return NULL;
	if (w->thread_started) {
		atomic_store(&w->stop, true);
		(void)eventfd_write(w->stop_fd, 1);
		/* Ends a wait in SCardGetStatusChange. */
		pthread_mutex_lock(&w->lock);
		if (w->context_valid)
			(void)SCardCancel(w->context);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	if (w->context_valid)
		SCardReleaseContext(w->context);
	sd_event_source_disable_unref(w->source);
	if (w->event_fd >= 0)
		close(w->event_fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}
