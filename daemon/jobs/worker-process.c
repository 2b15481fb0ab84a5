/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/worker-process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "build-config.h"
#include "i18n.h"
#include "bus-names.h"
#include "jobs/worker-proto.h"
#include "log/log.h"
#include "macro.h"
#include "time-util.h"

/* How often a waiting reader looks at the guard page. */
#define GUARD_POLL_MSEC 250
/* How long a stopped worker may take to exit before it is killed. */
#define STOP_GRACE_MSEC 2000

static char executable[PATH_MAX];
static pthread_once_t executable_once = PTHREAD_ONCE_INIT;

static void find_executable(void)
{
	char self[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			/* A build folder: beside the daemon. */
			if ((size_t)snprintf(executable, sizeof(executable), "%s/safecad-worker",
					     self) < sizeof(executable) &&
			    access(executable, X_OK) == 0)
				return;
			/* A staged install: where libexecdir is from sbindir. */
			if (*SAFECAD_SBIN_TO_LIBEXEC &&
			    (size_t)snprintf(executable, sizeof(executable), "%s/%s/safecad-worker",
					     self, SAFECAD_SBIN_TO_LIBEXEC) < sizeof(executable) &&
			    access(executable, X_OK) == 0)
				return;
		}
	}
	snprintf(executable, sizeof(executable), "%s/safecad-worker", SAFECAD_LIBEXECDIR);
}

const char *worker_executable(void)
{
	pthread_once(&executable_once, find_executable);
	return executable;
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static _Noreturn void exec_worker(const char *path, pid_t parent, int socket_fd, int guard_fd,
				  WorkerPurpose purpose, bool announce)
{
	char *argv[4] = {(char *)"safecad-worker"};
	size_t n = 1;
	sigset_t all;

	if (purpose == WORKER_FOR_A_JOB)
		argv[n++] = (char *)"--job";
	if (announce)
		argv[n++] = (char *)"--announce";
	argv[n] = NULL;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	if (dup2(socket_fd, WORKER_SOCKET_FD) < 0 || dup2(guard_fd, WORKER_GUARD_FD) < 0)
		_exit(127);
	if (syscall(SYS_close_range, WORKER_GUARD_FD + 1, ~0U, 0) < 0)
		for (int fd = WORKER_GUARD_FD + 1; fd < 1024; fd++)
			(void)close(fd);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
	execv(path, argv);
	_exit(127);
}

int worker_start(const WorkerLimits *limits, WorkerPurpose purpose, Worker **ret)
{
	const char *path = worker_executable();
	Worker *w = calloc(1, sizeof(Worker));
	int pair[2] = {-1, -1}, guard_fd = -1, child_socket = -1, child_guard = -1;
	pid_t parent = getpid(), pid;
	/* The first worker of the daemon's life says what is wrong with the
	 * configuration and the profiles (worker.c). */
	static atomic_bool announced = false;
	bool announce = !atomic_exchange(&announced, true);
	int r;

	if (!w)
		return -ENOMEM;
	w->pid = -1;
	w->socket = -1;
	w->limits = *limits;
	r = p11_guard_new(&guard_fd, &w->guard);
	if (r < 0)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
		r = -errno;
		goto fail;
	}
	/* Above the numbers they get in the child, so dup2() never lands
	 * one on the other. */
	child_socket = fcntl(pair[1], F_DUPFD_CLOEXEC, WORKER_GUARD_FD + 1);
	child_guard = fcntl(guard_fd, F_DUPFD_CLOEXEC, WORKER_GUARD_FD + 1);
	if (child_socket < 0 || child_guard < 0) {
		r = -errno;
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto fail;
	}
	if (pid == 0)
		exec_worker(path, parent, child_socket, child_guard, purpose, announce);
	w->pid = pid;
	w->socket = pair[0];
	pair[0] = -1;
	r = 0;
fail:
	for (size_t i = 0; i < 2; i++)
		if (pair[i] >= 0)
			close(pair[i]);
	if (child_socket >= 0)
		close(child_socket);
	if (child_guard >= 0)
		close(child_guard);
	if (guard_fd >= 0)
		close(guard_fd);
	if (r < 0) {
		p11_guard_free(w->guard);
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

int worker_request(Worker *w, json_t *message, const int *fds, size_t n_fds)
{
	return worker_send(w->socket, message, fds, n_fds);
}

bool worker_alive(const Worker *w)
{
	return w && w->pid > 0;
}

static int reap(Worker *w, int *ret_status)
{
	int status = 0;
	pid_t pid;

	if (w->pid <= 0)
		return -ECHILD;
	do
		pid = waitpid(w->pid, &status, 0);
	while (pid < 0 && errno == EINTR);
	w->pid = -1;
	if (pid < 0)
		return -errno;
	*ret_status = status;
	return 0;
}

/* A signal's name in the reader's language: strsignal() speaks the
 * daemon's C locale. The signals a broken driver ends with are named; any
 * other keeps its C name. */
static const char *signal_text(int sig)
{
	switch (sig) {
	case SIGSEGV:
		/* TRANSLATORS: the signal a token worker died of. */
		return _("Segmentation fault");
	case SIGABRT:
		/* TRANSLATORS: the signal a token worker died of (abort()). */
		return _("Aborted");
	case SIGBUS:
		/* TRANSLATORS: the signal a token worker died of. */
		return _("Bus error");
	case SIGILL:
		/* TRANSLATORS: the signal a token worker died of. */
		return _("Illegal instruction");
	case SIGFPE:
		/* TRANSLATORS: the signal a token worker died of. */
		return _("Arithmetic error");
	case SIGSYS:
		/* TRANSLATORS: the signal a token worker died of (a call its
		 * sandbox forbids). */
		return _("Forbidden system call");
	default:
		return strsignal(sig);
	}
}

/* How the worker ended, in words: "it crashed (Segmentation fault)". */
static char *describe_end(int status)
{
	char *text = NULL;

	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGKILL)
			/* TRANSLATORS: how a token worker ended. */
			text = strdup(_("it was killed"));
		else if (asprintf(&text,
				  /* TRANSLATORS: how a token worker ended; %s is the
				   * signal's name, e.g. "Segmentation fault". */
				  _("it crashed (%s)"), signal_text(sig)) < 0)
			text = NULL;
	} else if (WIFEXITED(status)) {
		if (asprintf(&text,
			     /* TRANSLATORS: how a token worker ended. */
			     _("it stopped with exit status %d"), WEXITSTATUS(status)) < 0)
			text = NULL;
	}
	return text;
}

static int worker_ended(Worker *w, const char **ret_error_name, char **ret_error_message)
{
	/* The call the worker was in when it ended stays written on the
	 * page, which outlives the worker. */
	uint32_t call;
	_cleanup_free_ char *how = NULL;
	int status = 0, r;

	r = reap(w, &status);
	call = atomic_load(&w->guard->call);
	how = r < 0 ? strdup(strerror(-r)) : describe_end(status);
	if (!how)
		return -ENOMEM;
	if (call != P11_NONE && p11_call_name(call)) {
		*ret_error_name = SAFECAD_ERROR_DRIVER_FAILED;
		if (asprintf(ret_error_message,
			     /* TRANSLATORS: the PKCS#11 call (C_Login, …), then how the
			      * worker ended ("it crashed (Segmentation fault)"). */
			     _("The token's driver failed in %s: %s."), p11_call_name(call),
			     how) < 0)
			return -ENOMEM;
		log_warning("A token worker's driver failed in %s: %s.", p11_call_name(call), how);
	} else {
		*ret_error_name = SAFECAD_ERROR_FAILED;
		if (asprintf(ret_error_message,
			     /* TRANSLATORS: how the worker ended ("it was killed"). */
			     _("The token worker stopped unexpectedly: %s."), how) < 0)
			return -ENOMEM;
		log_warning("A token worker stopped unexpectedly: %s.", how);
	}
	return -ECONNRESET;
}

int worker_receive(Worker *w, json_t **ret, const char **ret_error_name, char **ret_error_message)
{
	struct pollfd pfd = {.fd = w->socket, .events = POLLIN};
	int r;

	if (w->pid <= 0)
		return -ECHILD;
	for (;;) {
		unsigned limit = 0;
		P11Call call;

		r = poll(&pfd, 1, GUARD_POLL_MSEC);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			break;
		call = p11_guard_overdue(w->guard, w->limits.call_timeout_sec,
					 w->limits.keygen_timeout_sec, monotonic_usec(), &limit);
		if (call == P11_NONE)
			continue;
		(void)kill(w->pid, SIGKILL);
		(void)reap(w, &(int){0});
		log_warning("A token worker's driver did not return from %s within %u s: stopped.",
			    p11_call_name(call), limit);
		*ret_error_name = SAFECAD_ERROR_DRIVER_FAILED;
		if (asprintf(ret_error_message,
			     /* TRANSLATORS: the PKCS#11 call (C_Login, …), then the limit
			      * in seconds. */
			     _("The token's driver failed: %s did not return within %u s."),
			     p11_call_name(call), limit) < 0)
			return -ENOMEM;
		return -ETIMEDOUT;
	}
	r = worker_recv(w->socket, ret, NULL, NULL);
	if (r > 0)
		return r;
	if (r < 0 && r != -ECONNRESET && r != -EPIPE) {
		/* A worker that says what it should not is not trusted any
		 * further. */
		log_warning_errno(r, "A token worker sent a message that cannot be used (%m): "
				     "stopped.");
		(void)kill(w->pid, SIGKILL);
	}
	return worker_ended(w, ret_error_name, ret_error_message);
}

Worker *worker_stop(Worker *w)
{
	if (!w)
		return NULL;
	if (w->socket >= 0)
		close(w->socket);
	w->socket = -1;
	if (w->pid > 0) {
		int status;
		pid_t pid = 0;

		for (int waited = 0; waited < STOP_GRACE_MSEC; waited += 10) {
			pid = waitpid(w->pid, &status, WNOHANG);
			if (pid != 0)
				break;
			usleep(10 * 1000);
		}
		if (pid == 0) {
			(void)kill(w->pid, SIGKILL);
			(void)waitpid(w->pid, &status, 0);
		}
		w->pid = -1;
	}
	p11_guard_free(w->guard);
	free(w);
	return NULL;
}
