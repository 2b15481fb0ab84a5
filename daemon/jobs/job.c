/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/job.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-names.h"
#include "i18n.h"
#include "macro.h"
#include "time-util.h"
#include "token/token-info-json.h"

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
		free(job->certificates[i].der);
		free(job->certificates[i].serial);
		free(job->certificates[i].key_id);
	}
	free(job->certificates);
	free(job->action_id);
	free(job->remove_der);
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

int job_add_certificate(Job *job, const unsigned char *der, size_t der_size, const Profile *profile,
			const char *serial, const char *key_id, bool has_key)
{
	JobCertificate *c =
	    realloc(job->certificates, (job->n_certificates + 1) * sizeof(JobCertificate));

	if (!c)
		return -ENOMEM;
	job->certificates = c;
	c = &job->certificates[job->n_certificates];
	*c = (JobCertificate){
	    .der = malloc(der_size ? der_size : 1),
	    .der_size = der_size,
	    .profile = profile,
	    .serial = strdup(serial),
	    .key_id = strdup(key_id),
	    .has_key = has_key,
	};
	if (!c->der || !c->serial || !c->key_id) {
		free(c->der);
		free(c->serial);
		free(c->key_id);
		return -ENOMEM;
	}
	memcpy(c->der, der, der_size);
	job->n_certificates++;
	return 0;
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

static const char *const kind_names[_JOB_KIND_MAX] = {
    [JOB_CHECK] = "check",
    [JOB_ACTIVATE] = "activate",
    [JOB_CHANGE_PIN] = "change-pin",
    [JOB_REMOVE_PREVIOUS] = "remove-previous",
};

static const char *const answer_names[_JOB_ANSWER_MAX] = {
    [JOB_ANSWER_NONE] = "none",	      [JOB_ANSWER_WRITE] = "write",
    [JOB_ANSWER_CANCEL] = "cancel",   [JOB_ANSWER_CALLER_GONE] = "caller-gone",
    [JOB_ANSWER_TIMEOUT] = "timeout", [JOB_ANSWER_SHUTDOWN] = "shutdown",
};

static int name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (streq(names[i], name))
			return (int)i;
	return -1;
}

const char *job_kind_name(JobKind kind)
{
	return kind < _JOB_KIND_MAX ? kind_names[kind] : NULL;
}

int job_kind_from_name(const char *name)
{
	return name_index(kind_names, _JOB_KIND_MAX, name);
}

const char *job_answer_name(JobAnswer answer)
{
	return answer < _JOB_ANSWER_MAX ? answer_names[answer] : NULL;
}

int job_answer_from_name(const char *name)
{
	return name_index(answer_names, _JOB_ANSWER_MAX, name);
}

/* The named errors a worker may end a job with. */
static const char *const error_names[] = {
    SAFECAD_ERROR_FAILED,
    SAFECAD_ERROR_NOTHING_TO_DO,
    SAFECAD_ERROR_WRONG_PIN,
    SAFECAD_ERROR_PIN_LENGTH,
    SAFECAD_ERROR_AGENCIES_PENDING,
    SAFECAD_ERROR_PIN_LOCKED,
    SAFECAD_ERROR_CA,
    SAFECAD_ERROR_FINAL_TRY,
    SAFECAD_ERROR_BUSY,
    SAFECAD_ERROR_TOKEN_GONE,
    SAFECAD_ERROR_NOT_WRITTEN,
    SAFECAD_ERROR_DRIVER_FAILED,
    SAFECAD_ERROR_TOKEN_REFUSED,
};

static const char *known_error_name(const char *name)
{
	for (size_t i = 0; name && i < ELEMENTSOF(error_names); i++)
		if (streq(error_names[i], name))
			return error_names[i];
	return NULL;
}

static json_t *certificates_to_json(const Job *job)
{
	json_t *array = json_array();

	for (size_t i = 0; array && i < job->n_certificates; i++) {
		const JobCertificate *c = &job->certificates[i];
		_cleanup_free_ char *der = der_to_text(c->der, c->der_size);

		if (!der ||
		    json_array_append_new(
			array, json_pack("{s:s,s:s,s:s,s:b,s:s*}", "der", der, "serial", c->serial,
					 "key_id", c->key_id, "has_key", c->has_key, "profile",
					 c->profile ? c->profile->file_name : NULL)) < 0) {
			json_decref(array);
			return NULL;
		}
	}
	return array;
}

json_t *job_to_json(const Job *job)
{
	_cleanup_free_ char *remove =
	    job->remove_der ? der_to_text(job->remove_der, job->remove_der_size) : NULL;
	json_t *certificates = certificates_to_json(job);

	if (!certificates || (job->remove_der && !remove)) {
		json_decref(certificates);
		return NULL;
	}
	return json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:I,s:I},s:o,s:s*,s:s*,s:s*,s:b,s:b,s:b,"
	    "s:b}",
	    "kind", job_kind_name(job->kind), "token_serial", job->token_serial, "token_label",
	    job->token_label, "token_manufacturer", job->token_manufacturer, "token_model",
	    job->token_model, "module_path", job->module_path, "network", "connect_timeout_sec",
	    (json_int_t)job->network.connect_timeout_sec, "timeout_sec",
	    (json_int_t)job->network.timeout_sec, "certificates", certificates, "action_id",
	    job->action_id, "remove", remove, "remove_key_id", job->remove_key_id, "remove_key",
	    job->remove_key, "keep_previous", job->keep_previous, "allow_final_try",
	    job->allow_final_try, "confirm_write", job->confirm_write);
}

static int certificates_from_json(Job *job, json_t *array, const Profiles *profiles)
{
	json_t *item;
	size_t i;

	if (!json_is_array(array) || json_array_size(array) > TOKEN_JSON_MAX_CERTIFICATES)
		return -EBADMSG;
	json_array_foreach(array, i, item)
	{
		const char *der, *serial, *key_id, *profile = NULL;
		_cleanup_free_ unsigned char *bytes = NULL;
		size_t size;
		int has_key, r;

		if (json_unpack(item, "{s:s,s:s,s:s,s:b,s?s}", "der", &der, "serial", &serial,
				"key_id", &key_id, "has_key", &has_key, "profile", &profile) < 0)
			return -EBADMSG;
		r = der_from_text(der, &bytes, &size);
		if (r < 0)
			return r;
		r = job_add_certificate(job, bytes, size,
					profiles ? profiles_find(profiles, profile) : NULL, serial,
					key_id, has_key);
		if (r < 0)
			return r;
	}
	return 0;
}

static int dup_string(const char *s, char **ret)
{
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int job_from_json(json_t *json, const Profiles *profiles, Job **ret)
{
	const char *kind, *serial, *label, *manufacturer, *model, *module;
	const char *action = NULL, *remove = NULL, *remove_key_id = NULL;
	json_int_t connect_timeout, timeout;
	int remove_key, keep_previous, allow_final_try, confirm_write, k, r;
	json_t *certificates;
	Job *job;

	if (json_unpack(
		json, "{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:I,s:I},s:o,s?s,s?s,s?s,s:b,s:b,s:b,s:b}",
		"kind", &kind, "token_serial", &serial, "token_label", &label, "token_manufacturer",
		&manufacturer, "token_model", &model, "module_path", &module, "network",
		"connect_timeout_sec", &connect_timeout, "timeout_sec", &timeout, "certificates",
		&certificates, "action_id", &action, "remove", &remove, "remove_key_id",
		&remove_key_id, "remove_key", &remove_key, "keep_previous", &keep_previous,
		"allow_final_try", &allow_final_try, "confirm_write", &confirm_write) < 0)
		return -EBADMSG;
	k = job_kind_from_name(kind);
	if (k < 0 || connect_timeout <= 0 || connect_timeout > 3600 || timeout <= 0 ||
	    timeout > 3600)
		return -EBADMSG;
	job = job_new((JobKind)k);
	if (!job)
		return -ENOMEM;
	job->network = (CaNetwork){(unsigned)connect_timeout, (unsigned)timeout};
	job->remove_key = remove_key;
	job->keep_previous = keep_previous;
	job->allow_final_try = allow_final_try;
	job->confirm_write = confirm_write;
	r = dup_string(serial, &job->token_serial);
	if (r >= 0)
		r = dup_string(label, &job->token_label);
	if (r >= 0)
		r = dup_string(manufacturer, &job->token_manufacturer);
	if (r >= 0)
		r = dup_string(model, &job->token_model);
	if (r >= 0)
		r = dup_string(module, &job->module_path);
	if (r >= 0)
		r = dup_string(action, &job->action_id);
	if (r >= 0)
		r = dup_string(remove_key_id, &job->remove_key_id);
	if (r >= 0 && remove)
		r = der_from_text(remove, &job->remove_der, &job->remove_der_size);
	if (r >= 0)
		r = certificates_from_json(job, certificates, profiles);
	if (r < 0) {
		job_free(job);
		return r;
	}
	*ret = job;
	return 0;
}

json_t *job_outputs_to_json(const Job *job)
{
	json_t *fresh = job->fresh ? token_info_to_json(job->fresh) : NULL;

	return json_pack("{s:s*,s:s*,s:O*,s:O*,s:o*}", "error_name", job->error_name,
			 "error_message", job->error_message, "pending", job->pending, "result",
			 job->result, "fresh", fresh);
}

int job_take_outputs(Job *job, json_t *json, const Profiles *profiles)
{
	const char *error_name = NULL, *error_message = NULL;
	json_t *pending = NULL, *result = NULL, *fresh = NULL;
	TokenInfo *info = NULL;
	int r;

	if (json_unpack(json, "{s?s,s?s,s?o,s?o,s?o}", "error_name", &error_name, "error_message",
			&error_message, "pending", &pending, "result", &result, "fresh",
			&fresh) < 0)
		return -EBADMSG;
	if (error_name && !known_error_name(error_name))
		return -EBADMSG;
	if (pending && !json_is_array(pending))
		return -EBADMSG;
	if (result && !json_is_object(result))
		return -EBADMSG;
	if (fresh) {
		info = calloc(1, sizeof(TokenInfo));
		if (!info)
			return -ENOMEM;
		r = token_info_from_json(fresh, profiles, info);
		if (r < 0) {
			free(info);
			return r;
		}
	}
	if (error_name) {
		job->error_name = known_error_name(error_name);
		free(job->error_message);
		job->error_message = error_message ? strdup(error_message) : NULL;
	}
	json_decref(job->pending);
	job->pending = json_incref(pending);
	json_decref(job->result);
	job->result = json_incref(result);
	if (job->fresh) {
		token_info_clear(job->fresh);
		free(job->fresh);
	}
	job->fresh = info;
	return 0;
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
