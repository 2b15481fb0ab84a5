/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The token methods that run as jobs (Check, Activate), and what happens
 * on the main loop when a job reports progress or ends. */
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bus-names.h"
#include "history-json.h"
#include "state/history.h"
#include "i18n.h"
#include "state/journal.h"
#include "state/removal-journal.h"
#include "log/log-event.h"
#include "log/log.h"
#include "macro.h"
#include "bus/metrics.h"
#include "bus/rescans.h"
#include "time-util.h"
#include "bus/token.h"

#define CHECK_OPTION_MAX 16
#define CHECK_BURST 10
#define CHECK_REFILL_USEC (INT64_C(6) * 1000000)

static Token *token_by_serial(Context *context, const char *serial)
{
	for (size_t i = 0; i < context->n_tokens; i++)
		if (streq(context->tokens[i]->info.serial, serial))
			return context->tokens[i];
	return NULL;
}

static int job_for_token(Token *token, JobKind kind, Job **ret)
{
	Context *context = token->context;
	Job *job = job_new(kind);
	int r = 0;

	if (!job)
		return -ENOMEM;
	job->token_serial = strdup(token->info.serial);
	job->token_label = strdup(token->info.label);
	job->token_manufacturer = strdup(token->info.manufacturer);
	job->token_model = strdup(token->info.model);
	job->module_path = strdup(token->info.module ? token->info.module : "");
	job->network =
	    (CaNetwork){context->config.connect_timeout_sec, context->config.timeout_sec};
	if (!job->token_serial || !job->token_label || !job->token_manufacturer ||
	    !job->token_model || !job->module_path)
		r = -ENOMEM;
	for (size_t i = 0; r >= 0 && i < token->info.n_certificates; i++) {
		const CertificateEntry *c = &token->info.certificates[i];
		r = job_add_certificate(job, c->der, c->der_size, c->profile, c->serial, c->key_id,
					c->has_key);
	}
	if (r < 0) {
		job_free(job);
		return r;
	}
	*ret = job;
	return 0;
}

static void emit(Token *token, const char *property)
{
	metrics_changed(token->context);
	/* What the token cannot activate follows what is pending. */
	(void)sd_bus_emit_properties_changed(
	    token->context->bus, token->path, SAFECAD_TOKEN_INTERFACE, property,
	    streq(property, "Pending") ? "NotActivatable" : NULL, NULL);
}

static void reload_journals(Context *context)
{
	json_t *journals = NULL;

	if (journal_load_all(&journals) < 0) {
		json_decref(journals);
		return;
	}
	json_decref(context->journals);
	context->journals = journals;
}

static void on_check_done(Context *context, Token *token, Job *job)
{
	/* The check may have retired activations the CA dropped. */
	reload_journals(context);
	if (token)
		emit(token, "Activation");
	if (job->error_name) {
		log_warning("Asking the CA about token %s failed: %s", job->token_serial,
			    strempty(job->error_message));
		for (size_t i = 0; i <= job->n_waiters; i++) {
			sd_bus_message *m = i == 0 ? job->request : job->waiters[i - 1];
			if (m)
				(void)sd_bus_reply_method_errorf(m, job->error_name, "%s",
								 strempty(job->error_message));
		}
		return;
	}
	if (token) {
		json_decref(token->pending);
		token->pending = json_incref(job->pending);
		emit(token, "Pending");
		size_t i;
		json_t *entry;
		json_array_foreach(job->pending, i, entry)
		    log_event(LOG_NOTICE, SAFECAD_MESSAGE_ACTION_PENDING, job->token_serial,
			      json_string_value(json_object_get(entry, "id")),
			      json_string_value(json_object_get(entry, "replaces")),
			      "Token %s: the CA has %s action %s waiting.", job->token_serial,
			      strempty(json_string_value(json_object_get(entry, "type"))),
			      strempty(json_string_value(json_object_get(entry, "id"))));
	}
	_cleanup_free_ char *text = json_dumps(job->pending, JSON_COMPACT | JSON_PRESERVE_ORDER);
	for (size_t i = 0; i <= job->n_waiters; i++) {
		sd_bus_message *m = i == 0 ? job->request : job->waiters[i - 1];
		if (m)
			(void)sd_bus_reply_method_return(m, "s", text ? text : "[]");
	}
}

static void on_activate_done(Token *token, Job *job)
{
	_cleanup_free_ char *result = NULL;

	if (token) {
		json_decref(token->running);
		token->running = NULL;
		token->last_activation_at = time(NULL);
		token->last_activation_ok = !job->error_name;
		reload_journals(token->context);
		emit(token, "Activation");
		/* The job read its token again: the caller's next look
		 * shows the new certificate at once. */
		if (job->fresh)
			token_update(token, job->fresh);
		else
			(void)scanner_request(token->context->scanner);
	}
	if (job->error_name) {
		log_event(LOG_WARNING, SAFECAD_MESSAGE_ACTIVATION_FAILED, job->token_serial,
			  job->action_id, NULL, "Activation %s on token %s failed: %s",
			  strempty(job->action_id), job->token_serial,
			  strempty(job->error_message));
		if (token)
			(void)sd_bus_emit_signal(token->context->bus, token->path,
						 SAFECAD_TOKEN_INTERFACE, "ActivationFinished",
						 "ssss", strempty(job->action_id), "",
						 job->error_name, strempty(job->error_message));
		if (job->request)
			(void)sd_bus_reply_method_errorf(job->request, job->error_name, "%s",
							 strempty(job->error_message));
		return;
	}
	result = json_dumps(job->result, JSON_COMPACT | JSON_PRESERVE_ORDER);
	log_event(LOG_NOTICE, SAFECAD_MESSAGE_ACTIVATION_DONE, job->token_serial, job->action_id,
		  json_string_value(json_object_get(job->result, "new_serial")),
		  "Activation %s on token %s done: new certificate %s%s.", job->action_id,
		  job->token_serial,
		  strempty(json_string_value(json_object_get(job->result, "new_serial"))),
		  json_is_true(json_object_get(job->result, "confirmed")) ? ", confirmed"
									  : ", NOT confirmed");
	if (token) {
		/* Confirmed: the CA no longer lists it. */
		if (json_is_true(json_object_get(job->result, "confirmed")) && token->pending) {
			size_t i;
			json_t *entry;
			json_array_foreach(
			    token->pending, i,
			    entry) if (streq_ptr(json_string_value(json_object_get(entry, "id")),
						 job->action_id))
			{
				json_array_remove(token->pending, i);
				break;
			}
			emit(token, "Pending");
		}
		(void)sd_bus_emit_signal(token->context->bus, token->path, SAFECAD_TOKEN_INTERFACE,
					 "ActivationFinished", "ssss", job->action_id,
					 strempty(result), "", "");
	}
	if (job->request) {
		_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
		int r = sd_bus_message_new_method_return(job->request, &reply);
		if (r >= 0)
			r = sd_bus_message_append(reply, "s", strempty(result));
		/* Without the token read again, the reply waits for a
		 * rescan, so the caller's next look shows the change. */
		if (r >= 0 &&
		    (!token || job->fresh || rescans_reply_after_scan(token->context, reply) < 0))
			r = sd_bus_send(NULL, reply, NULL);
		if (r < 0)
			log_warning_errno(r, "Cannot answer Activate(): %m");
	}
}

/* PIN change and removal: the token is taken as the job read it again,
 * and the caller gets the job's result (or nothing) or its error. */
static void on_token_job_done(Token *token, Job *job, const char *what)
{
	_cleanup_free_ char *result = NULL;

	if (token && job->fresh)
		token_update(token, job->fresh);
	else if (token)
		(void)scanner_request(token->context->scanner);
	if (!job->request)
		return;
	if (job->error_name) {
		log_warning("%s on token %s failed: %s", what, job->token_serial,
			    strempty(job->error_message));
		(void)sd_bus_reply_method_errorf(job->request, job->error_name, "%s",
						 strempty(job->error_message));
		return;
	}
	if (!job->result) {
		(void)sd_bus_reply_method_return(job->request, NULL);
		return;
	}
	result = json_dumps(job->result, JSON_COMPACT | JSON_PRESERVE_ORDER);
	(void)sd_bus_reply_method_return(job->request, "s", strempty(result));
}

static int on_caller_gone(sd_bus_track *track, void *userdata)
{
	Token *token = userdata;

	if (token->job && token->issued)
		job_answer(token->job, JOB_ANSWER_CALLER_GONE);
	return 0;
}

static void forget_issued(Token *token)
{
	token->caller = sd_bus_track_unref(token->caller);
	if (!token->issued)
		return;
	json_decref(token->issued);
	token->issued = NULL;
	emit(token, "IssuedCertificate");
}

/* The activation stopped at verified and asks its caller (only it may
 * answer, ConfirmWrite()) whether to write; if that caller leaves the bus,
 * the answer is no. */
static void on_confirm_requested(Token *token, Job *job, json_t *certificate)
{
	_cleanup_free_ char *text = json_dumps(certificate, JSON_COMPACT | JSON_PRESERVE_ORDER);
	int r;

	if (!token || token->job != job || !job->request || !text) {
		job_answer(job, JOB_ANSWER_CANCEL);
		return;
	}
	forget_issued(token);
	r = sd_bus_track_new(token->context->bus, &token->caller, on_caller_gone, token);
	if (r >= 0)
		r = sd_bus_track_add_sender(token->caller, job->request);
	if (r < 0) {
		log_warning_errno(r, "Cannot follow the caller of activation %s: %m",
				  strempty(job->action_id));
		job_answer(job, JOB_ANSWER_CANCEL);
		return;
	}
	token->issued = json_incref(certificate);
	emit(token, "IssuedCertificate");
	(void)sd_bus_emit_signal(token->context->bus, token->path, SAFECAD_TOKEN_INTERFACE,
				 "WriteRequested", "ss", strempty(job->action_id), text);
}

int method_confirm_write(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	const char *action;
	int write, r;

	r = sd_bus_message_read(message, "sb", &action, &write);
	if (r < 0)
		return r;
	if (!token->job || !token->issued || !streq_ptr(token->job->action_id, action))
		return sd_bus_error_setf(error, SAFECAD_ERROR_NOTHING_TO_DO,
					 _("No certificate of action \"%.64s\" is waiting to be "
					   "written on token %s."),
					 action, token->info.serial);
	/* The caller that started the activation (and was authorized for
	 * it) answers; nobody else. */
	if (!streq_ptr(sd_bus_message_get_sender(message),
		       sd_bus_message_get_sender(token->job->request)))
		return sd_bus_error_set(
		    error, SD_BUS_ERROR_ACCESS_DENIED,
		    _("Only the program that started this activation may answer."));
	job_answer(token->job, write ? JOB_ANSWER_WRITE : JOB_ANSWER_CANCEL);
	forget_issued(token);
	return sd_bus_reply_method_return(message, NULL);
}

Token *token_job_event(Context *context, Job *job, JobEventKind kind, json_t *state)
{
	Token *token = token_by_serial(context, job->token_serial);

	if (kind == JOB_EVENT_CONFIRM) {
		on_confirm_requested(token, job, state);
		return token;
	}

	if (kind == JOB_EVENT_PROGRESS) {
		if (!token)
			return NULL;
		json_decref(token->running);
		token->running = json_incref(state);
		emit(token, "Activation");
		(void)sd_bus_emit_signal(context->bus, token->path, SAFECAD_TOKEN_INTERFACE,
					 "ActivationProgress", "ss",
					 json_string_value(json_object_get(state, "action")),
					 json_string_value(json_object_get(state, "step")));
		return token;
	}
	if (token && token->job == job) {
		token->job = NULL;
		forget_issued(token);
	}
	if (job->kind == JOB_CHECK)
		on_check_done(context, token, job);
	else if (job->kind == JOB_CHANGE_PIN)
		on_token_job_done(token, job, "Changing the PIN");
	else if (job->kind == JOB_REMOVE_PREVIOUS)
		on_token_job_done(token, job, "Removing the previous pair");
	else
		on_activate_done(token, job);
	job_free(job);
	/* A job (a module, OpenSSL, libcurl) used and freed a lot: hand it
	 * back to the system rather than keep it for the next one. */
	(void)malloc_trim(0);
	if (!token)
		return NULL;
	/* A job that came while a check ran goes now. */
	if (token->next_job) {
		Job *next = TAKE_PTR(token->next_job);
		if (!token->present) {
			for (size_t i = 0; i <= next->n_waiters; i++)
				(void)sd_bus_reply_method_errorf(
				    i == 0 ? next->request : next->waiters[i - 1],
				    SAFECAD_ERROR_TOKEN_GONE, _("Token %s is not plugged in."),
				    token->info.serial);
			job_free(next);
		} else if (job_start(context->jobs, next) < 0) {
			for (size_t i = 0; i <= next->n_waiters; i++)
				(void)sd_bus_reply_method_errorf(
				    i == 0 ? next->request : next->waiters[i - 1],
				    SAFECAD_ERROR_FAILED,
				    next->kind == JOB_ACTIVATE
					? _("Cannot start the activation.")
					: _("Cannot start the work on the token."));
			job_free(next);
		} else
			token->job = next;
	}
	emit(token, "Busy");
	return token;
}

static int start(Token *token, Job *job, sd_bus_message *request)
{
	int r;

	job->request = sd_bus_message_ref(request);
	r = job_start(token->context->jobs, job);
	if (r < 0) {
		job_free(job);
		return r;
	}
	token->job = job;
	emit(token, "Busy");
	return 1;
}

void token_start_check(Token *token)
{
	Job *job = NULL;
	bool has_profile = false;

	for (size_t i = 0; i < token->info.n_certificates; i++)
		has_profile = has_profile || token->info.certificates[i].profile;
	if (!has_profile || token->job || !token->present)
		return;
	if (job_for_token(token, JOB_CHECK, &job) < 0)
		return;
	if (start(token, job, NULL) < 0)
		log_warning("Cannot start a CA check for token %s, ignoring.", token->info.serial);
}

static int check_busy(Token *token, sd_bus_error *error)
{
	if (!token->present)
		return sd_bus_error_setf(error, SAFECAD_ERROR_TOKEN_GONE,
					 _("Token %s is not plugged in."), token->info.serial);
	if (token->job)
		return sd_bus_error_setf(error, SAFECAD_ERROR_BUSY,
					 _("Token %s is busy with another job; try again when it "
					   "ends."),
					 token->info.serial);
	return 0;
}

/* Behind a running check (the one made on insert, say) a job from the
 * bus waits its turn; behind anything else it is refused. */
static int check_busy_unless_check(Token *token, sd_bus_error *error)
{
	if (token->present && token->job && token->job->kind == JOB_CHECK && !token->next_job)
		return 0;
	return check_busy(token, error);
}

/* Starts job, or queues it behind the running check. */
static int start_or_wait(Token *token, Job *job, sd_bus_message *message, sd_bus_error *error)
{
	if (token->job) {
		if (token->job->kind != JOB_CHECK || token->next_job) {
			job_free(job);
			return check_busy(token, error);
		}
		job->request = sd_bus_message_ref(message);
		token->next_job = job;
		return 1;
	}
	return start(token, job, message);
}

/* Whether a Check() from this caller may ask the CA now. Anyone may call
 * Check; a user other than root asks the CA at most CHECK_BURST times in
 * a row and then once per CHECK_REFILL_USEC on a token, and is answered
 * with what the CA said last in between: nobody makes the daemon hammer
 * the CA. */
static bool check_may_ask(Token *token, sd_bus_message *message)
{
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
	int64_t now = monotonic_usec();
	uid_t uid;

	if (sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID, &creds) >= 0 &&
	    sd_bus_creds_get_euid(creds, &uid) >= 0 && uid == 0)
		return true;
	if (token->check_budget_at == 0) {
		token->check_budget = CHECK_BURST;
		token->check_budget_at = now;
	}
	while (token->check_budget < CHECK_BURST &&
	       now - token->check_budget_at >= CHECK_REFILL_USEC) {
		token->check_budget++;
		token->check_budget_at += CHECK_REFILL_USEC;
	}
	if (token->check_budget == CHECK_BURST)
		token->check_budget_at = now;
	if (token->check_budget == 0)
		return false;
	token->check_budget--;
	return true;
}

int method_check(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	Job *job = NULL;
	int r;

	/* Behind a running check, this call gets a check of its own that
	 * starts after it, so that it sees what the CA says now (an action
	 * withdrawn meanwhile): the next one, shared by every call that
	 * comes meanwhile. A caller that may not ask the CA again now, or
	 * one that finds no room, takes the running check's answer. */
	if (token->present && token->job && token->job->kind == JOB_CHECK) {
		Job *next = token->next_job;

		if (next && next->kind == JOB_CHECK &&
		    next->n_waiters < ELEMENTSOF(next->waiters)) {
			next->waiters[next->n_waiters++] = sd_bus_message_ref(message);
			return 1;
		}
		if (!next && check_may_ask(token, message) &&
		    job_for_token(token, JOB_CHECK, &next) >= 0) {
			next->request = sd_bus_message_ref(message);
			token->next_job = next;
			return 1;
		}
		if (token->job->n_waiters < ELEMENTSOF(token->job->waiters)) {
			token->job->waiters[token->job->n_waiters++] = sd_bus_message_ref(message);
			return 1;
		}
	}
	r = check_busy(token, error);
	if (r < 0)
		return r;
	if (!check_may_ask(token, message)) {
		_cleanup_free_ char *text =
		    json_dumps(token->pending, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!text)
			return -ENOMEM;
		return sd_bus_reply_method_return(message, "s", text);
	}
	r = job_for_token(token, JOB_CHECK, &job);
	if (r < 0)
		return r;
	return start(token, job, message);
}

static bool action_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len > 64)
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") ==
	       len;
}

/* One boolean option of a method's a{sv}. */
typedef struct BoolOption {
	const char *name;
	int *value;
} BoolOption;

/* Reads the a{sv} of options that comes next in m: every key must be one
 * of options, with a boolean value. */
static int read_bool_options(sd_bus_message *m, const BoolOption *options, size_t n_options,
			     sd_bus_error *error)
{
	int r;

	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	for (int n = 0; (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0; n++) {
		const BoolOption *option = NULL;
		const char *key;

		if (n >= CHECK_OPTION_MAX)
			return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
						_("Too many options."));
		r = sd_bus_message_read(m, "s", &key);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n_options; i++)
			if (streq(options[i].name, key))
				option = &options[i];
		if (!option)
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 _("Unknown option \"%s\"."), key);
		r = sd_bus_message_read(m, "v", "b", option->value);
		if (r < 0)
			return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
						 _("Option \"%s\" takes a boolean."), key);
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

int method_activate(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	const char *action_id;
	int pin_fd, keep_previous = true, allow_final_try = false, confirm_write = false, r;
	Job *job = NULL;

	/* A call that polkit held comes through here again, read anew. */
	r = sd_bus_message_rewind(message, true);
	if (r < 0)
		return r;
	r = sd_bus_message_read(message, "sh", &action_id, &pin_fd);
	if (r < 0)
		return r;
	r = read_bool_options(message,
			      (const BoolOption[]){{"keep_previous", &keep_previous},
						   {"allow_final_try", &allow_final_try},
						   {"confirm_before_write", &confirm_write}},
			      3, error);
	if (r < 0)
		return r;
	if (!action_id_valid(action_id))
		return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
					 _("\"%.64s\" is not an action id."), action_id);
	r = check_busy_unless_check(token, error);
	if (r < 0)
		return r;
	r = polkit_verify(message, "org.safecad.activate", &token->context->polkit_queries, error);
	if (r <= 0)
		return r < 0 ? r : 1;

	r = job_for_token(token, JOB_ACTIVATE, &job);
	if (r < 0)
		return r;
	job->action_id = strdup(action_id);
	job->pin_fd = fcntl(pin_fd, F_DUPFD_CLOEXEC, 3);
	job->keep_previous = keep_previous;
	job->allow_final_try = allow_final_try;
	job->confirm_write = confirm_write;
	job->confirm_timeout_usec = (int64_t)token->context->config.confirm_timeout_sec * 1000000;
	if (!job->action_id || job->pin_fd < 0) {
		job_free(job);
		return -ENOMEM;
	}
	log_info("Activating action %s on token %s.", action_id, token->info.serial);
	return start_or_wait(token, job, message, error);
}

int method_change_pin(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	int old_fd, new_fd, allow_final_try = false, r;
	Job *job = NULL;

	r = sd_bus_message_rewind(message, true);
	if (r >= 0)
		r = sd_bus_message_read(message, "hh", &old_fd, &new_fd);
	if (r >= 0)
		r = read_bool_options(
		    message, (const BoolOption[]){{"allow_final_try", &allow_final_try}}, 1, error);
	if (r < 0)
		return r;
	r = check_busy_unless_check(token, error);
	if (r < 0)
		return r;
	r = polkit_verify(message, "org.safecad.change-pin", &token->context->polkit_queries,
			  error);
	if (r <= 0)
		return r < 0 ? r : 1;

	r = job_for_token(token, JOB_CHANGE_PIN, &job);
	if (r < 0)
		return r;
	job->allow_final_try = allow_final_try;
	job->pin_fd = fcntl(old_fd, F_DUPFD_CLOEXEC, 3);
	job->new_pin_fd = fcntl(new_fd, F_DUPFD_CLOEXEC, 3);
	if (job->pin_fd < 0 || job->new_pin_fd < 0) {
		job_free(job);
		return -errno;
	}
	return start_or_wait(token, job, message, error);
}

/* Authorizes and starts a removal of old (NULL: only the key an
 * interrupted removal left for a login). */
static int start_removal(Token *token, sd_bus_message *message, json_t *entry,
			 const CertificateEntry *old, bool remove_key, bool allow_final_try,
			 int pin_fd, sd_bus_error *error)
{
	Job *job = NULL;
	int r;

	r = check_busy_unless_check(token, error);
	if (r < 0)
		return r;
	r = polkit_verify(message, "org.safecad.manage", &token->context->polkit_queries, error);
	if (r <= 0)
		return r < 0 ? r : 1;

	r = job_for_token(token, JOB_REMOVE_PREVIOUS, &job);
	if (r < 0)
		return r;
	job->action_id = strdup(strempty(json_string_value(json_object_get(entry, "action"))));
	if (old) {
		job->remove_der = malloc(old->der_size);
		if (job->remove_der) {
			memcpy(job->remove_der, old->der, old->der_size);
			job->remove_der_size = old->der_size;
		}
	}
	job->remove_key_id = strdup(old ? old->key_id : "");
	job->remove_key = old && remove_key && !isempty(old->key_id);
	job->allow_final_try = allow_final_try;
	job->pin_fd = fcntl(pin_fd, F_DUPFD_CLOEXEC, 3);
	if (!job->action_id || (old && !job->remove_der) || !job->remove_key_id ||
	    job->pin_fd < 0) {
		job_free(job);
		return -ENOMEM;
	}
	return start_or_wait(token, job, message, error);
}

int method_remove_previous(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	json_auto_t *history = NULL;
	const CertificateEntry *current = token_info_current(&token->info, time(NULL)), *old = NULL;
	const char *old_serial;
	json_t *entry;
	int pin_fd, force = false, allow_final_try = false, r;
	bool remove_key = true;

	r = sd_bus_message_rewind(message, true);
	if (r >= 0)
		r = sd_bus_message_read(message, "h", &pin_fd);
	if (r >= 0)
		r = read_bool_options(
		    message,
		    (const BoolOption[]){{"force", &force}, {"allow_final_try", &allow_final_try}},
		    2, error);
	if (r < 0)
		return r;

	if (history_read(&history) < 0 || !(entry = history_latest(history, token->info.serial)))
		return sd_bus_error_setf(error, SAFECAD_ERROR_NOTHING_TO_DO,
					 _("No activation has replaced a certificate on token %s."),
					 token->info.serial);
	old_serial = json_string_value(json_object_get(entry, "old_serial"));
	for (size_t i = 0; old_serial && i < token->info.n_certificates; i++)
		if (strcasecmp(token->info.certificates[i].serial, old_serial) == 0)
			old = &token->info.certificates[i];
	/* An interrupted removal took the certificate and waits for a login
	 * to take the key: this call's login finishes it. */
	if (!old && removal_pending(token->info.serial))
		return start_removal(token, message, entry, NULL, false, allow_final_try, pin_fd,
				     error);
	if (!old)
		return sd_bus_error_setf(error, SAFECAD_ERROR_NOTHING_TO_DO,
					 _("The previous certificate %s is no longer on token %s."),
					 strempty(old_serial), token->info.serial);
	if (old == current)
		return sd_bus_error_setf(
		    error, SAFECAD_ERROR_FAILED,
		    _("Certificate %s is the current one; it is never removed."), old->serial);
	if (!history_agencies_done(entry) && !force)
		return sd_bus_error_setf(
		    error, SAFECAD_ERROR_AGENCIES_PENDING,
		    _("Step 3 is not done: not every agency of activation %s is ticked "
		      "(safectl agencies). Use --force to remove anyway."),
		    strempty(json_string_value(json_object_get(entry, "action"))));
	/* Never a key another certificate on the token still uses (a
	 * re-certified key is the current certificate's too). */
	for (size_t i = 0; i < token->info.n_certificates; i++)
		if (&token->info.certificates[i] != old &&
		    streq(token->info.certificates[i].key_id, old->key_id))
			remove_key = false;
	return start_removal(token, message, entry, old, remove_key, allow_final_try, pin_fd,
			     error);
}
