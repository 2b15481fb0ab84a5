/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus/metrics.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/context.h"
#include "history-json.h"
#include "state/history.h"
#include "log/log.h"
#include "macro.h"
#include "bus/token.h"

static const char *const pin_states[] = {"ok", "count-low", "final-try", "locked"};

/* A label value as the exposition format wants it: backslash, double
 * quote and newline escaped. */
static void put_label(FILE *f, const char *name, const char *value, bool last)
{
	fprintf(f, "%s=\"", name);
	for (const char *p = value ? value : ""; *p; p++)
		if (*p == '\\' || *p == '"')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	fputs(last ? "\"}" : "\",", f);
}

static void header(FILE *f, const char *name, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static const char *token_profile(const Token *token, int64_t now)
{
	const CertificateEntry *current = token_info_current(&token->info, now);

	return current && current->profile ? current->profile->name : "";
}

int metrics_format(Context *context, FILE *f)
{
	json_auto_t *history = NULL;
	int64_t now = time(NULL);
	size_t present = 0;

	if (history_read(&history) < 0)
		history = NULL;
	for (size_t i = 0; i < context->n_tokens; i++)
		present += context->tokens[i]->present;

	header(f, "safecad_tokens_present", "Tokens plugged in now.");
	fprintf(f, "safecad_tokens_present %zu\n", present);

	header(f, "safecad_token_info",
	       "A token safecad lists (plugged in, or kept by an interrupted activation).");
	for (size_t i = 0; i < context->n_tokens; i++) {
		Token *t = context->tokens[i];
		fputs("safecad_token_info{", f);
		put_label(f, "token", t->info.serial, false);
		put_label(f, "label", t->info.label, false);
		put_label(f, "profile", token_profile(t, now), false);
		put_label(f, "present", t->present ? "true" : "false", true);
		fputs(" 1\n", f);
	}

	/* Days left as a timestamp, not a count of days that would go stale
	 * between writes (and Prometheus wants base units): days left is
	 * floor((this - time()) / 86400) in PromQL. */
	header(f, "safecad_certificate_not_after_timestamp_seconds",
	       "The certificate's not-after, seconds since the epoch.");
	for (size_t i = 0; i < context->n_tokens; i++) {
		Token *t = context->tokens[i];
		const CertificateEntry *current = token_info_current(&t->info, now);
		for (size_t k = 0; k < t->info.n_certificates; k++) {
			const CertificateEntry *c = &t->info.certificates[k];
			fputs("safecad_certificate_not_after_timestamp_seconds{", f);
			put_label(f, "token", t->info.serial, false);
			put_label(f, "certificate", c->serial, false);
			put_label(f, "profile", c->profile ? c->profile->name : "", false);
			put_label(f, "current", c == current ? "true" : "false", true);
			fprintf(f, " %lld\n", (long long)c->not_after);
		}
	}

	header(f, "safecad_pending_actions", "Actions the CA has waiting for the token.");
	for (size_t i = 0; i < context->n_tokens; i++) {
		fputs("safecad_pending_actions{", f);
		put_label(f, "token", context->tokens[i]->info.serial, true);
		fprintf(f, " %zu\n", json_array_size(context->tokens[i]->pending));
	}

	header(f, "safecad_token_pin_state",
	       "The token's PIN state: 1 for the state it is in, 0 for the others.");
	for (size_t i = 0; i < context->n_tokens; i++) {
		Token *t = context->tokens[i];
		for (size_t k = 0; k < ELEMENTSOF(pin_states); k++) {
			fputs("safecad_token_pin_state{", f);
			put_label(f, "token", t->info.serial, false);
			put_label(f, "state", pin_states[k], true);
			fprintf(f, " %d\n", streq(token_info_pin_status(&t->info), pin_states[k]));
		}
	}

	header(f, "safecad_activation_interrupted",
	       "1 when an activation of the token stopped and waits to be resumed.");
	for (size_t i = 0; i < context->n_tokens; i++) {
		fputs("safecad_activation_interrupted{", f);
		put_label(f, "token", context->tokens[i]->info.serial, true);
		fprintf(f, " %d\n", token_has_journal(context->tokens[i]));
	}

	header(f, "safecad_last_activation_success",
	       "1 when the token's last activation since safecad started succeeded, 0 when it "
	       "failed.");
	for (size_t i = 0; i < context->n_tokens; i++) {
		Token *t = context->tokens[i];
		if (t->last_activation_at == 0)
			continue;
		fputs("safecad_last_activation_success{", f);
		put_label(f, "token", t->info.serial, true);
		fprintf(f, " %d\n", t->last_activation_ok);
	}

	header(f, "safecad_last_activation_timestamp_seconds",
	       "When the token's last activation since safecad started ended, seconds since the "
	       "epoch.");
	for (size_t i = 0; i < context->n_tokens; i++) {
		Token *t = context->tokens[i];
		if (t->last_activation_at == 0)
			continue;
		fputs("safecad_last_activation_timestamp_seconds{", f);
		put_label(f, "token", t->info.serial, true);
		fprintf(f, " %lld\n", (long long)t->last_activation_at);
	}

	header(f, "safecad_agencies_unticked",
	       "Step 3 agencies of the token's latest activation not yet ticked.");
	for (size_t i = 0; i < context->n_tokens; i++) {
		json_t *entry = history_latest(history, context->tokens[i]->info.serial);
		size_t k, unticked = 0;
		json_t *agency;

		if (!entry)
			continue;
		json_array_foreach(json_object_get(entry, "agencies"), k, agency) unticked +=
		    !json_is_true(json_object_get(agency, "done"));
		fputs("safecad_agencies_unticked{", f);
		put_label(f, "token", context->tokens[i]->info.serial, false);
		put_label(f, "action", json_string_value(json_object_get(entry, "action")), true);
		fprintf(f, " %zu\n", unticked);
	}
	return ferror(f) ? -EIO : 0;
}

static int write_textfile(Context *context, const char *path)
{
	_cleanup_free_ char *text = NULL, *temporary = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	int r, fd;

	if (!f)
		return -ENOMEM;
	r = metrics_format(context, f);
	if (fclose(f) != 0 && r >= 0)
		r = -ENOMEM;
	if (r < 0)
		return r;
	/* The collector reads *.prom only: the temporary name is not one,
	 * and the rename makes the whole new file appear at once. */
	if (asprintf(&temporary, "%s.%d.tmp", path, (int)getpid()) < 0)
		return -ENOMEM;
	fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, text + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(temporary, path) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(temporary);
	return r;
}

static int on_write(sd_event_source *source, void *userdata)
{
	Context *context = userdata;
	int r;

	context->metrics_defer = sd_event_source_disable_unref(context->metrics_defer);
	r = write_textfile(context, context->config.metrics_textfile);
	/* Said when it starts failing and when it works again, not at
	 * every change. */
	if (r < 0 && !context->metrics_failing)
		log_warning_errno(r, "Cannot write the metrics to %s: %m, ignoring.",
				  context->config.metrics_textfile);
	else if (r >= 0 && context->metrics_failing)
		log_info("The metrics are written to %s again.", context->config.metrics_textfile);
	context->metrics_failing = r < 0;
	return 0;
}

void metrics_changed(Context *context)
{
	int r;

	if (!context->config.metrics_textfile || context->metrics_defer || !context->event)
		return;
	r = sd_event_add_defer(context->event, &context->metrics_defer, on_write, context);
	if (r >= 0)
		r = sd_event_source_set_priority(context->metrics_defer, SD_EVENT_PRIORITY_IDLE);
	if (r < 0)
		log_warning_errno(r, "Cannot schedule the metrics: %m, ignoring.");
}

void metrics_clear(Context *context)
{
	context->metrics_defer = sd_event_source_disable_unref(context->metrics_defer);
}
