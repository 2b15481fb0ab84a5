/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safecad-worker: where token and network work runs. The daemon starts it
 * with a socket on fd 3 and its guard page on fd 4 (jobs/worker-proto.h,
 * token/p11-guard.h), never from a shell. It loads the PKCS#11 modules,
 * and either answers scans until the daemon lets it go (a scan worker), or
 * runs one job and exits (a job worker). docs/workers.md describes the
 * messages and what each worker may do. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "build-config.h"
#include "ca/ca-client.h"
#include "i18n.h"
#include "jobs/job-worker.h"
#include "jobs/worker-proto.h"
#include "log/log.h"
#include "macro.h"
#include "state/config.h"
#include "state/history.h"
#include "token/modules.h"
#include "token/p11-guard.h"
#include "token/token-info-json.h"
#include "worker-sandbox.h"

/* Every kind of job a worker runs. */
static const JobKindInfo *const job_kinds[] = {
    &job_kind_check,
    &job_kind_activate,
    &job_kind_change_pin,
    &job_kind_remove_previous,
};

typedef struct WorkerState {
	Config config;
	Profiles profiles;
	Modules modules;
	bool network_dropped;
} WorkerState;

/* Sends message (taken) to the daemon. */
static int send_or_log(json_t *message)
{
	int r;

	if (!message)
		return log_oom();
	r = worker_send(WORKER_SOCKET_FD, message, NULL, 0);
	json_decref(message);
	if (r < 0)
		log_error_errno(r, "Cannot answer the daemon: %m");
	return r;
}

/* The daemon tells the bus when the history changes; a change a job or a
 * scan makes here is said to it. */
static void on_history_changed(void *userdata)
{
	json_t *message = json_pack("{s:s}", "type", "history-changed");

	if (message)
		(void)worker_send(WORKER_SOCKET_FD, message, NULL, 0);
	json_decref(message);
}

static int drop_network(WorkerState *w)
{
	int r;

	if (w->network_dropped)
		return 0;
	r = sandbox_no_network();
	if (r < 0)
		return log_error_errno(r, "Cannot shut the worker off the network: %m");
	w->network_dropped = true;
	return 0;
}

/* From here on the worker writes only to the state folder and the folders
 * safecad.conf allows its modules: everything it needs from elsewhere
 * (the modules, the profiles) is loaded. */
static int restrict_writes(const WorkerState *w)
{
	int r = sandbox_writable_only(state_directory(), w->config.writable_paths);

	if (r < 0)
		return log_error_errno(r, "Cannot restrict where the worker writes: %m");
	return 0;
}

static int answer_scan(WorkerState *w)
{
	TokenList list = {};
	json_t *answer;
	int r;

	r = drop_network(w);
	if (r < 0)
		return r;
	modules_use(&w->modules);
	removals_recover(&w->modules);
	r = modules_scan(&w->modules, &w->profiles, &list);
	modules_release(&w->modules);
	if (r < 0)
		answer = json_pack("{s:s,s:i}", "type", "scan-failed", "errno", -r);
	else
		answer =
		    json_pack("{s:s,s:o}", "type", "tokens", "tokens", token_list_to_json(&list));
	token_list_clear(&list);
	return send_or_log(answer);
}

static const JobKindInfo *kind_info(JobKind kind)
{
	for (size_t i = 0; i < ELEMENTSOF(job_kinds); i++)
		if (job_kinds[i]->kind == kind)
			return job_kinds[i];
	return NULL;
}

static int run_job(WorkerState *w, json_t *request, int *fds, size_t n_fds)
{
	const JobKindInfo *info;
	json_int_t expected = json_integer_value(json_object_get(request, "n_fds"));
	json_auto_t *outputs = NULL;
	Job *job = NULL;
	int r;

	r = job_from_json(request, &w->profiles, &job);
	if (r >= 0)
		r = job_parse_certificates(job);
	if (r < 0 || expected != (json_int_t)n_fds) {
		for (size_t i = 0; i < n_fds; i++)
			close(fds[i]);
		job_worker_free(job);
		return log_error_errno(r < 0 ? r : -EBADMSG, "The daemon's job cannot be used: %m");
	}
	/* The PIN, then the new PIN (a PIN change); a check has none. */
	if (n_fds > 0)
		job->pin_fd = fds[0];
	if (n_fds > 1)
		job->new_pin_fd = fds[1];
	info = kind_info(job->kind);
	if (!info) {
		job_worker_free(job);
		return log_error_errno(-EBADMSG, "No such job kind.");
	}
	if (!info->network) {
		r = drop_network(w);
		if (r < 0) {
			job_worker_free(job);
			return r;
		}
	}
	job->modules = &w->modules;
	job->profiles = &w->profiles;
	info->run(job);
	outputs = job_outputs_to_json(job);
	job_worker_free(job);
	return send_or_log(json_pack("{s:s,s:O}", "type", "done", "outputs", outputs));
}

static int serve(WorkerState *w)
{
	for (;;) {
		json_auto_t *request = NULL;
		int fds[WORKER_MAX_FDS];
		size_t n_fds = 0;
		const char *type;
		int r;

		r = worker_recv(WORKER_SOCKET_FD, &request, fds, &n_fds);
		if (r == 0)
			return 0; /* let go */
		if (r < 0)
			return log_error_errno(r, "Cannot read the daemon's request: %m");
		type = worker_message_type(request);
		if (streq(type, "scan") && n_fds == 0) {
			r = answer_scan(w);
			if (r < 0)
				return r;
		} else if (streq(type, "job"))
			/* A job worker runs one job. */
			return run_job(w, request, fds, n_fds);
		else {
			for (size_t i = 0; i < n_fds; i++)
				close(fds[i]);
			return log_error_errno(-EBADMSG,
					       "The daemon sent an unknown request \"%s\".", type);
		}
	}
}

int main(int argc, char *argv[])
{
	WorkerState w = {};
	bool announce = false, for_a_job = false, usage = false;
	int level, r;

	i18n_init_messages();
	log_open();
	/* The daemon's first worker says what is wrong with the profiles'
	 * issuer certificates; the rest read them quietly: the daemon runs
	 * many. A worker for one job maps the modules while it waits for it
	 * (worker-process.h). */
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--announce"))
			announce = true;
		else if (streq(argv[i], "--job"))
			for_a_job = true;
		else
			usage = true;
	}
	if (usage || fcntl(WORKER_SOCKET_FD, F_GETFD) < 0 || fcntl(WORKER_GUARD_FD, F_GETFD) < 0) {
		log_error("safecad-worker is started by safecad only.");
		return 2;
	}
	(void)fcntl(WORKER_SOCKET_FD, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	r = sandbox_base();
	if (r < 0) {
		log_error_errno(r, "Cannot set up the worker's sandbox: %m");
		return EXIT_FAILURE;
	}
	r = p11_guard_attach(WORKER_GUARD_FD);
	close(WORKER_GUARD_FD);
	if (r < 0) {
		log_error_errno(r, "Cannot map the guard page: %m");
		return EXIT_FAILURE;
	}
	/* The daemon said what it found wrong in safecad.conf and the
	 * profiles' files already; the issuer certificates only workers read. */
	level = log_get_max_level();
	log_set_max_level(LOG_ERR);
	r = config_load_all(&w.config, &w.profiles);
	log_set_max_level(level);
	if (r >= 0)
		r = profiles_load_issuers(&w.profiles, announce);
	if (r >= 0)
		r = modules_load(w.config.modules, &w.modules);
	if (r >= 0)
		r = ca_client_global_init();
	if (r >= 0)
		r = restrict_writes(&w);
	/* Under the same sandbox as the job that will use them. */
	if (r >= 0 && for_a_job)
		modules_map(&w.modules);
	if (r >= 0) {
		job_worker_set_socket(WORKER_SOCKET_FD);
		history_set_observer(on_history_changed, NULL);
		r = serve(&w);
	}
	modules_clear(&w.modules);
	ca_client_global_cleanup();
	profiles_clear(&w.profiles);
	config_clear(&w.config);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
