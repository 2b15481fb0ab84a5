/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A message from a token worker, as the daemon reads it (a frame's JSON,
 * up to the protocol's cap): a worker runs vendor modules and parses CA
 * answers, so the daemon reads it as input from outside. "tokens" →
 * token_list_from_json(), "done" → job_take_outputs(), and a "job" (what
 * a worker reads) → job_from_json(). What is taken must survive the trip
 * back to JSON and in again. */
#include <jansson.h>
#include <string.h>

#include "bus-names.h"
#include "fuzz.h"
#include "jobs/job.h"
#include "jobs/worker-proto.h"
#include "token/token-info-json.h"

static void tokens(json_t *message)
{
	TokenList list = {}, again = {};
	json_t *json;

	if (token_list_from_json(json_object_get(message, "tokens"), NULL, &list) < 0)
		return;
	fuzz_check(list.n_items <= TOKEN_JSON_MAX_TOKENS);
	for (size_t i = 0; i < list.n_items; i++) {
		fuzz_check(list.items[i].serial && list.items[i].label);
		fuzz_check(list.items[i].n_certificates <= TOKEN_JSON_MAX_CERTIFICATES);
		for (size_t k = 0; k < list.items[i].n_certificates; k++)
			fuzz_check(list.items[i].certificates[k].der &&
				   list.items[i].certificates[k].sha256);
	}
	json = token_list_to_json(&list);
	fuzz_check(json);
	fuzz_check(token_list_from_json(json, NULL, &again) == 0);
	fuzz_check(again.n_items == list.n_items);
	json_decref(json);
	token_list_clear(&again);
	token_list_clear(&list);
}

static void done(json_t *message)
{
	Job *job = job_new(JOB_ACTIVATE);

	fuzz_check(job);
	if (job_take_outputs(job, json_object_get(message, "outputs"), NULL) == 0) {
		json_t *json;

		fuzz_check(!job->error_name || strncmp(job->error_name, "org.safecad.Error.",
						       strlen("org.safecad.Error.")) == 0);
		fuzz_check(!job->pending || json_is_array(job->pending));
		fuzz_check(!job->result || json_is_object(job->result));
		json = job_outputs_to_json(job);
		fuzz_check(json);
		fuzz_check(job_take_outputs(job, json, NULL) == 0);
		json_decref(json);
	}
	job_free(job);
}

static void job(json_t *message)
{
	Job *job = NULL, *again = NULL;
	json_t *json;

	if (job_from_json(message, NULL, &job) < 0)
		return;
	fuzz_check(job->token_serial && job->module_path);
	fuzz_check(job_kind_name(job->kind));
	json = job_to_json(job);
	fuzz_check(json);
	fuzz_check(job_from_json(json, NULL, &again) == 0);
	fuzz_check(again->kind == job->kind && again->n_certificates == job->n_certificates);
	json_decref(json);
	job_free(again);
	job_free(job);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *message;
	const char *type;

	if (size > WORKER_FRAME_MAX)
		return 0;
	message = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(message)) {
		json_decref(message);
		return 0;
	}
	type = worker_message_type(message);
	if (strcmp(type, "tokens") == 0)
		tokens(message);
	else if (strcmp(type, "done") == 0)
		done(message);
	else if (strcmp(type, "job") == 0)
		job(message);
	json_decref(message);
	return 0;
}
