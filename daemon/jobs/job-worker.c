/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/job-worker.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-names.h"
#include "i18n.h"
#include "jobs/worker-proto.h"
#include "log/log.h"
#include "macro.h"
#include "state/pin-memory.h"
#include "token/token-x509.h"

/* How long a worker that asked the daemon to die for a crash test waits
 * for it before it carries on. */
#define CRASH_WAIT_SEC 10

static int daemon_socket = -1;

int job_parse_certificates(Job *job)
{
	int r;

	for (size_t i = 0; i < job->n_certificates; i++) {
		JobCertificate *c = &job->certificates[i];

		if (c->x509)
			continue;
		r = x509_from_der(c->der, c->der_size, &c->x509);
		if (r < 0)
			return r;
	}
	if (job->remove_der && !job->remove)
		return x509_from_der(job->remove_der, job->remove_der_size, &job->remove);
	return 0;
}

Job *job_worker_free(Job *job)
{
	if (!job)
		return NULL;
	for (size_t i = 0; i < job->n_certificates; i++)
		X509_free(TAKE_PTR(job->certificates[i].x509));
	X509_free(TAKE_PTR(job->remove));
	return job_free(job);
}

void job_worker_set_socket(int fd)
{
	daemon_socket = fd;
}

static void send_message(json_t *message)
{
	int r;

	if (!message || daemon_socket < 0)
		return;
	r = worker_send(daemon_socket, message, NULL, 0);
	if (r < 0)
		log_debug_errno(r, "Cannot reach the daemon: %m");
}

void job_progress(Job *job, const char *action_id, const char *step)
{
	json_auto_t *message =
	    json_pack("{s:s,s:s,s:s}", "type", "progress", "action", action_id, "step", step);

	send_message(message);
}

JobAnswer job_wait_answer(Job *job, json_t *certificate)
{
	json_auto_t *message =
	    json_pack("{s:s,s:o}", "type", "confirm", "certificate", certificate);
	json_auto_t *reply = NULL;
	int answer;

	if (!message || daemon_socket < 0)
		return JOB_ANSWER_SHUTDOWN;
	if (worker_send(daemon_socket, message, NULL, 0) < 0)
		return JOB_ANSWER_SHUTDOWN;
	for (;;) {
		int r = worker_recv(daemon_socket, &reply, NULL, NULL);

		if (r <= 0)
			return JOB_ANSWER_SHUTDOWN;
		if (streq(worker_message_type(reply), "answer"))
			break;
		json_decref(reply);
		reply = NULL;
	}
	answer = job_answer_from_name(json_string_value(json_object_get(reply, "answer")));
	return answer <= JOB_ANSWER_NONE ? JOB_ANSWER_SHUTDOWN : (JobAnswer)answer;
}

void job_test_crash_point(const char *step)
{
	const char *worker_at = getenv("SAFECAD_TEST_CRASH_WORKER_AT");
	const char *daemon_at = getenv("SAFECAD_TEST_CRASH_AT");

	if (worker_at && streq(worker_at, step)) {
		/* With SAFECAD_TEST_CRASH_WORKER_ONCE, only the worker that
		 * makes that file dies: the next one carries on. */
		const char *once = getenv("SAFECAD_TEST_CRASH_WORKER_ONCE");
		int fd = once ? open(once, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;

		if (!once || fd >= 0)
			raise(SIGKILL);
	}
	if (daemon_at && streq(daemon_at, step)) {
		json_auto_t *message = json_pack("{s:s,s:s}", "type", "crash", "step", step);

		send_message(message);
		/* The daemon's end takes this worker with it (its parent-death
		 * signal); nothing more happens here meanwhile. */
		for (unsigned i = 0; i < CRASH_WAIT_SEC * 10; i++)
			usleep(100 * 1000);
	}
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

int job_session_failed(Job *job, int r)
{
	if (r == -ENOTUNIQ)
		return job_fail(job, SAFECAD_ERROR_NOTHING_TO_DO,
				_("More than one token plugged in carries serial %s, and safecad "
				  "cannot tell them apart; nothing was done. Leave only the one to "
				  "use plugged in."),
				job->token_serial);
	return job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Token %s is not there any more (%s)."),
			job->token_serial, strerror(-r));
}

void job_run_on_session(Job *job, void (*fn)(Job *job, TokenSession *session))
{
	TokenSession session = {};
	int r;

	modules_use(job->modules);
	r = token_session_open(modules_functions(job->modules, job->module_path), job->token_serial,
			       &session);
	if (r < 0)
		job_session_failed(job, r);
	else
		fn(job, &session);
	token_session_close(&session);
	job_read_token_again(job);
	modules_release(job->modules);
}

int job_pin_flags(Job *job, TokenSession *session, TokenPinFlags *ret)
{
	int r = token_session_pin_flags(session, ret);

	if (r >= 0 && !ret->locked && !ret->final_try && pin_memory_final_try(job->token_serial)) {
		log_info("Token %s showed its final PIN try at an earlier failed login; its module "
			 "no longer says so.",
			 job->token_serial);
		ret->final_try = true;
	}
	return r;
}

void job_pin_outcome(Job *job, TokenSession *session, bool ok, TokenPinFlags *ret)
{
	if (ok) {
		(void)pin_memory_forget(job->token_serial);
		return;
	}
	if (token_session_pin_flags(session, ret) < 0)
		*ret = (TokenPinFlags){};
	if (ret->final_try && !ret->locked && pin_memory_note_final_try(job->token_serial) < 0)
		log_warning("Cannot note the final PIN try of token %s.", job->token_serial);
}
