/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-manager.h"

#include <stdlib.h>

#include "build-config.h"
#include "bus-names.h"
#include "log.h"
#include "macro.h"
#include "token.h"

#define MAX_PENDING_RESCANS 64

static Token *manager_find(Context *context, const char *serial)
{
	for (size_t i = 0; i < context->n_tokens; i++)
		if (streq(context->tokens[i]->info.serial, serial))
			return context->tokens[i];
	return NULL;
}

static void emit_tokens_changed(Context *context)
{
	int r = sd_bus_emit_properties_changed(context->bus, SAFECAD_MANAGER_PATH,
					       SAFECAD_MANAGER_INTERFACE, "Tokens", NULL);
	if (r < 0)
		log_warning_errno(r, "Cannot emit PropertiesChanged for Tokens: %m, ignoring.");
}

static void token_remove_at(Context *context, size_t index)
{
	Token *token = context->tokens[index];
	int r;

	log_info("Token %s (%s) removed.", token->info.serial, token->info.label);
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
	log_info("Token %s (%s) added, %zu certificate(s).", token->info.serial,
		 token->info.label, token->info.n_certificates);
	(void)sd_bus_emit_object_added(context->bus, token->path);
	r = sd_bus_emit_signal(context->bus, SAFECAD_MANAGER_PATH, SAFECAD_MANAGER_INTERFACE,
			       "TokenAdded", "os", token->path, token->info.serial);
	if (r < 0)
		log_warning_errno(r, "Cannot emit TokenAdded: %m, ignoring.");
	return 0;
}

void manager_apply_scan(Context *context, TokenList *list)
{
	bool listing_changed = false;

	/* Gone first, so a token that left and came back between two scans
	 * is simply updated. */
	for (size_t i = context->n_tokens; i > 0; i--) {
		bool found = false;
		for (size_t j = 0; j < list->n_items && !found; j++)
			found = streq(list->items[j].serial, context->tokens[i - 1]->info.serial);
		if (!found) {
			token_remove_at(context, i - 1);
			listing_changed = true;
		}
	}
	for (size_t j = 0; j < list->n_items; j++) {
		TokenInfo *info = &list->items[j];
		Token *token = manager_find(context, info->serial);
		int r;

		if (token) {
			token_update(token, info);
			continue;
		}
		r = token_add(context, info);
		if (r < 0)
			log_error_errno(r, "Cannot add token %s: %m", info->serial);
		else
			listing_changed = true;
	}
	if (listing_changed)
		emit_tokens_changed(context);
}

void manager_complete_rescans(Context *context, uint64_t generation)
{
	size_t kept = 0;

	for (size_t i = 0; i < context->n_rescans; i++) {
		PendingRescan *p = &context->rescans[i];
		if (p->generation <= generation) {
			int r = sd_bus_reply_method_return(p->message, NULL);
			if (r < 0)
				log_debug_errno(r, "Cannot answer Rescan(): %m, ignoring.");
			sd_bus_message_unref(p->message);
		} else
			context->rescans[kept++] = *p;
	}
	context->n_rescans = kept;
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
	for (size_t i = 0; i < context->n_rescans; i++)
		sd_bus_message_unref(context->rescans[i].message);
	free(context->rescans);
	context->rescans = NULL;
	context->n_rescans = 0;
	for (size_t i = 0; i < context->n_tokens; i++)
		token_free(context->tokens[i]);
	free(context->tokens);
	context->tokens = NULL;
	context->n_tokens = 0;
}

static int method_rescan(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Context *context = userdata;
	PendingRescan *rescans;

	if (context->n_rescans >= MAX_PENDING_RESCANS)
		return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
					"Too many rescans are waiting; try again shortly.");
	rescans = realloc(context->rescans, (context->n_rescans + 1) * sizeof(PendingRescan));
	if (!rescans)
		return -ENOMEM;
	context->rescans = rescans;
	context->rescans[context->n_rescans++] = (PendingRescan){
	    .message = sd_bus_message_ref(message),
	    .generation = scanner_request(context->scanner),
	};
	return 1;
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
    SD_BUS_SIGNAL_WITH_NAMES("TokenAdded", "os", SD_BUS_PARAM(path) SD_BUS_PARAM(serial), 0),
    SD_BUS_SIGNAL_WITH_NAMES("TokenRemoved", "os", SD_BUS_PARAM(path) SD_BUS_PARAM(serial),
			     0),
    SD_BUS_VTABLE_END,
};

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
	return bus_token_register(context);
}
