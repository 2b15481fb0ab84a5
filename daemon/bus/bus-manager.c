/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus/bus-manager.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "build-config.h"
#include "bus-names.h"
#include "i18n.h"
#include "log/log-event.h"
#include "log/log.h"
#include "macro.h"
#include "bus/metrics.h"
#include "bus/rescans.h"
#include "state/history.h"
#include "state/journal.h"
#include "bus/token.h"

static Token *manager_find(Context *context, const char *serial)
{
	for (size_t i = 0; i < context->n_tokens; i++)
		if (streq(context->tokens[i]->info.serial, serial))
			return context->tokens[i];
	return NULL;
}

static void emit_tokens_changed(Context *context)
{
	metrics_changed(context);
	int r = sd_bus_emit_properties_changed(context->bus, SAFECAD_MANAGER_PATH,
					       SAFECAD_MANAGER_INTERFACE, "Tokens", NULL);
	if (r < 0)
		log_warning_errno(r, "Cannot emit PropertiesChanged for Tokens: %m, ignoring.");
}

static void token_remove_at(Context *context, size_t index)
{
	Token *token = context->tokens[index];
	int r;

	log_event(LOG_INFO, SAFECAD_MESSAGE_TOKEN_REMOVED, token->info.serial, NULL, NULL,
		  "Token %s (%s) removed.", token->info.serial, token->info.label);
	r = sd_bus_emit_signal(context->bus, SAFECAD_MANAGER_PATH, SAFECAD_MANAGER_INTERFACE,
			       "TokenRemoved", "os", token->path, token->info.serial);
	if (r < 0)
		log_warning_errno(r, "Cannot emit TokenRemoved: %m, ignoring.");
	(void)sd_bus_emit_object_removed(context->bus, token->path);
	memmove(context->tokens + index, context->tokens + index + 1,
		(context->n_tokens - index - 1) * sizeof(Token *));
	context->n_tokens--;
	token_free(token);
}

static int token_add(Context *context, TokenInfo *info)
{
	Token **tokens;
	Token *token;
	int r;

	tokens = realloc(context->tokens, (context->n_tokens + 1) * sizeof(Token *));
	if (!tokens)
		return -ENOMEM;
	context->tokens = tokens;
	r = token_new(context, info, &token);
	if (r < 0)
		return r;
	context->tokens[context->n_tokens++] = token;
	log_event(LOG_INFO, SAFECAD_MESSAGE_TOKEN_ADDED, token->info.serial, NULL, NULL,
		  "Token %s (%s) added, %zu certificate(s).", token->info.serial, token->info.label,
		  token->info.n_certificates);
	(void)sd_bus_emit_object_added(context->bus, token->path);
	r = sd_bus_emit_signal(context->bus, SAFECAD_MANAGER_PATH, SAFECAD_MANAGER_INTERFACE,
			       "TokenAdded", "os", token->path, token->info.serial);
	if (r < 0)
		log_warning_errno(r, "Cannot emit TokenAdded: %m, ignoring.");
	return 0;
}

static void forget_if_gone(Context *context, Token *token)
{
	if (token->present || token->job || token_has_journal(token))
		return;
	for (size_t i = 0; i < context->n_tokens; i++)
		if (context->tokens[i] == token) {
			token_remove_at(context, i);
			emit_tokens_changed(context);
			return;
		}
}

void manager_apply_scan(Context *context, TokenList *list)
{
	bool listing_changed = false;

	/* Gone first, so a token that left and came back between two scans
	 * is simply updated. One with an interrupted activation stays,
	 * marked absent, so the user sees what is left to do. */
	for (size_t i = context->n_tokens; i > 0; i--) {
		Token *token = context->tokens[i - 1];
		bool found = false;
		for (size_t j = 0; j < list->n_items && !found; j++)
			found = streq(list->items[j].serial, token->info.serial);
		if (found)
			continue;
		if (token->job || token_has_journal(token)) {
			if (token->present)
				log_info("Token %s (%s) removed; its activation is kept.",
					 token->info.serial, token->info.label);
			token_set_present(token, false);
			continue;
		}
		token_remove_at(context, i - 1);
		listing_changed = true;
	}
	for (size_t j = 0; j < list->n_items; j++) {
		TokenInfo *info = &list->items[j];
		Token *token = manager_find(context, info->serial);
		int r;

		if (token) {
			bool returned = !token->present;
			token_update(token, info);
			token_set_present(token, true);
			token_check_expiry(token);
			if (returned)
				token_start_check(token);
			continue;
		}
		r = token_add(context, info);
		if (r < 0)
			log_error_errno(r, "Cannot add token %s: %m", info->serial);
		else {
			listing_changed = true;
			token_check_expiry(context->tokens[context->n_tokens - 1]);
			token_start_check(context->tokens[context->n_tokens - 1]);
		}
	}
	if (listing_changed) {
		emit_tokens_changed(context);
		/* What "systemctl status" shows. */
		(void)sd_notifyf(false, "STATUS=%zu token(s), hotplug %s", context->n_tokens,
				 context->hotplug ? "on" : "off");
	}
}

int manager_add_absent_tokens(Context *context)
{
	size_t i;
	json_t *journal;
	bool changed = false;

	json_array_foreach(context->journals, i, journal)
	{
		const char *serial = json_string_value(json_object_get(journal, "token"));
		Token **tokens, *token;
		int r;

		if (journal_step(journal) < STEP_KEY_READY ||
		    json_is_true(json_object_get(journal, "withdrawn")) ||
		    manager_find(context, serial))
			continue;
		tokens = realloc(context->tokens, (context->n_tokens + 1) * sizeof(Token *));
		if (!tokens)
			return -ENOMEM;
		context->tokens = tokens;
		r = token_new_absent(context, journal, &token);
		if (r < 0)
			return r;
		context->tokens[context->n_tokens++] = token;
		log_info("Token %s is not plugged in; its activation %s stopped after %s.", serial,
			 json_string_value(json_object_get(journal, "action_id")),
			 json_string_value(json_object_get(journal, "step")));
		(void)sd_bus_emit_object_added(context->bus, token->path);
		changed = true;
	}
	if (changed)
		emit_tokens_changed(context);
	return 0;
}

void manager_set_hotplug(Context *context, bool enabled)
{
	if (context->hotplug == enabled)
		return;
	context->hotplug = enabled;
	(void)sd_bus_emit_properties_changed(context->bus, SAFECAD_MANAGER_PATH,
					     SAFECAD_MANAGER_INTERFACE, "Hotplug", NULL);
}

void manager_clear(Context *context)
{
	/* After the jobs: no thread changes the history any more. */
	history_set_observer(NULL, NULL);
	context->history_changed = sd_event_source_disable_unref(context->history_changed);
	rescans_clear(context);
	for (size_t i = 0; i < context->n_tokens; i++)
		token_free(context->tokens[i]);
	free(context->tokens);
	context->tokens = NULL;
	context->n_tokens = 0;
}

static int method_rescan(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(message, &reply);
	if (r < 0)
		return r;
	r = rescans_reply_after_scan(userdata, reply);
	if (r == -EBUSY)
		return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
					_("Too many rescans are waiting; try again shortly."));
	return r < 0 ? r : 1;
}

static int method_get_history(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	json_t *history = NULL;
	_cleanup_free_ char *text = NULL;
	int r;

	r = history_read(&history);
	if (r < 0)
		return sd_bus_error_setf(error, SAFECAD_ERROR_FAILED,
					 _("The history cannot be read: %s"), strerror(-r));
	text = json_dumps(history, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(history);
	if (!text)
		return -ENOMEM;
	return sd_bus_reply_method_return(message, "s", text);
}

#define TICK_MAX_AGENCIES 64

static int method_tick_agencies(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Context *context = userdata;
	const char *action, *ids[TICK_MAX_AGENCIES + 1];
	size_t n = 0;
	int r;

	r = sd_bus_message_rewind(message, true);
	if (r < 0)
		return r;
	r = sd_bus_message_read(message, "s", &action);
	if (r < 0)
		return r;
	if (!isempty(action) && strlen(action) > 64)
		return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
					_("That is not an action id."));
	/* One element at a time, and no further than the limit: a caller
	 * may send millions, and reading them all is what it wants. */
	r = sd_bus_message_enter_container(message, 'a', "s");
	if (r < 0)
		return r;
	while (n <= TICK_MAX_AGENCIES && (r = sd_bus_message_read(message, "s", &ids[n])) > 0)
		n++;
	if (r < 0)
		return r;
	if (n == 0 || n > TICK_MAX_AGENCIES)
		return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
					_("Name between 1 and 64 agencies."));
	ids[n] = NULL;
	r = polkit_verify(message, "org.safecad.manage", &context->polkit_queries, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = history_tick_agencies(isempty(action) ? NULL : action, ids, n);
	if (r == -ENOENT && isempty(action))
		return sd_bus_error_set(error, SAFECAD_ERROR_NOTHING_TO_DO,
					_("No activation is recorded yet."));
	if (r == -ENOENT)
		return sd_bus_error_setf(error, SAFECAD_ERROR_NOTHING_TO_DO,
					 _("No activation \"%s\" is recorded."), action);
	if (r == -ESRCH)
		return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
					_("An agency named is not on that activation's list; "
					  "nothing was ticked."));
	if (r < 0)
		return sd_bus_error_setf(error, SAFECAD_ERROR_FAILED,
					 _("The history cannot be written: %s"), strerror(-r));
	metrics_changed(context);
	return sd_bus_reply_method_return(message, NULL);
}

static int property_tokens(sd_bus *bus, const char *path, const char *interface,
			   const char *property, sd_bus_message *reply, void *userdata,
			   sd_bus_error *error)
{
	Context *context = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "o");
	if (r < 0)
		return r;
	for (size_t i = 0; i < context->n_tokens; i++) {
		r = sd_bus_message_append(reply, "o", context->tokens[i]->path);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

static int property_version(sd_bus *bus, const char *path, const char *interface,
			    const char *property, sd_bus_message *reply, void *userdata,
			    sd_bus_error *error)
{
	return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static const sd_bus_vtable manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Tokens", "ao", property_tokens, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Hotplug", "b", NULL, offsetof(Context, hotplug),
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD("Rescan", "", "", method_rescan, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetHistory", "", , "s", SD_BUS_PARAM(history), method_get_history,
			     SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("TickAgencies", "sas", SD_BUS_PARAM(action) SD_BUS_PARAM(agencies), "",
			     , method_tick_agencies, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("TokenAdded", "os", SD_BUS_PARAM(path) SD_BUS_PARAM(serial), 0),
    SD_BUS_SIGNAL_WITH_NAMES("TokenRemoved", "os", SD_BUS_PARAM(path) SD_BUS_PARAM(serial), 0),
    SD_BUS_SIGNAL("HistoryChanged", "", 0),
    SD_BUS_VTABLE_END,
};

/* On whatever thread changed the history (a job's, or the main loop's):
 * only a wake-up of the main loop, which announces it. */
static void on_history_changed(void *userdata)
{
	(void)eventfd_write((int)(intptr_t)userdata, 1);
}

static int on_history_event(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
	Context *context = userdata;
	eventfd_t value;
	int r;

	/* Changes made before the loop got here are announced together. */
	(void)eventfd_read(fd, &value);
	r = sd_bus_emit_signal(context->bus, SAFECAD_MANAGER_PATH, SAFECAD_MANAGER_INTERFACE,
			       "HistoryChanged", "");
	if (r < 0)
		log_warning_errno(r, "Cannot emit HistoryChanged: %m, ignoring.");
	return 0;
}

static int history_follow(Context *context)
{
	int fd, r;

	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	r = sd_event_add_io(context->event, &context->history_changed, fd, EPOLLIN,
			    on_history_event, context);
	if (r < 0) {
		close(fd);
		return r;
	}
	(void)sd_event_source_set_io_fd_own(context->history_changed, true);
	(void)sd_event_source_set_description(context->history_changed, "history");
	history_set_observer(on_history_changed, (void *)(intptr_t)fd);
	return 0;
}

int bus_manager_register(Context *context)
{
	int r;

	r = sd_bus_add_object_vtable(context->bus, &context->manager_slot, SAFECAD_MANAGER_PATH,
				     SAFECAD_MANAGER_INTERFACE, manager_vtable, context);
	if (r < 0)
		return r;
	r = sd_bus_add_object_manager(context->bus, &context->object_manager_slot,
				      SAFECAD_OBJECT_MANAGER_PATH);
	if (r < 0)
		return r;
	r = history_follow(context);
	if (r < 0)
		return r;
	return bus_token_register(context);
}

void manager_job_event(Job *job, JobEventKind kind, json_t *state, void *userdata)
{
	Context *context = userdata;
	Token *token = token_job_event(context, job, kind, state);

	/* A pulled token with nothing left to show goes once its job ends. */
	if (token && kind == JOB_EVENT_DONE)
		forget_if_gone(context, token);
}
