/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "build-config.h"
#include "base64.h"
#include "bus-names.h"
#include "i18n.h"
#include "log/log.h"
#include "macro.h"
#include "bus/metrics.h"
#include "time-util.h"
#include "state/journal.h"
#include "log/log-event.h"
#include "bus/token.h"

int token_new(Context *context, TokenInfo *info, Token **ret)
{
	Token *token = calloc(1, sizeof(Token));
	int r;

	if (!token)
		return -ENOMEM;
	r = sd_bus_path_encode(SAFECAD_TOKEN_PATH_PREFIX, info->serial, &token->path);
	if (r < 0) {
		free(token);
		return r;
	}
	token->context = context;
	token->info = *info;
	*info = (TokenInfo){};
	token->present = true;
	token->pending = json_array();
	if (!token->pending) {
		token_free(token);
		return -ENOMEM;
	}
	*ret = token;
	return 0;
}

int token_new_absent(Context *context, json_t *journal, Token **ret)
{
	json_t *info = json_object_get(journal, "token_info");
	TokenInfo token_info = {
	    .serial = strdup(strempty(json_string_value(json_object_get(journal, "token")))),
	    .label = strdup(strempty(json_string_value(json_object_get(info, "label")))),
	    .manufacturer =
		strdup(strempty(json_string_value(json_object_get(info, "manufacturer")))),
	    .model = strdup(strempty(json_string_value(json_object_get(info, "model")))),
	    .module = strdup(strempty(json_string_value(json_object_get(journal, "module")))),
	};
	int r;

	if (!token_info.serial || !token_info.label || !token_info.manufacturer ||
	    !token_info.model || !token_info.module) {
		token_info_clear(&token_info);
		return -ENOMEM;
	}
	r = token_new(context, &token_info, ret);
	token_info_clear(&token_info);
	if (r >= 0)
		(*ret)->present = false;
	return r;
}

void token_set_present(Token *token, bool present)
{
	if (token->present == present)
		return;
	token->present = present;
	metrics_changed(token->context);
	(void)sd_bus_emit_properties_changed(token->context->bus, token->path,
					     SAFECAD_TOKEN_INTERFACE, "Present", NULL);
}

/* The journal of an interrupted activation on this token: from key-ready
 * on something changed on the token, and it is kept. */
static json_t *token_journal(const Token *token)
{
	size_t i;
	json_t *journal;

	json_array_foreach(token->context->journals, i, journal)
	{
		if (streq_ptr(json_string_value(json_object_get(journal, "token")),
			      token->info.serial) &&
		    journal_step(journal) >= STEP_KEY_READY &&
		    !json_is_true(json_object_get(journal, "withdrawn")))
			return journal;
	}
	return NULL;
}

bool token_has_journal(const Token *token)
{
	return token_journal(token);
}

Token *token_free(Token *token)
{
	if (!token)
		return NULL;
	job_free(token->next_job);
	json_decref(token->issued);
	sd_bus_track_unref(token->caller);
	json_decref(token->pending);
	json_decref(token->running);
	free(token->warned_sha256);
	token_info_clear(&token->info);
	free(token->path);
	free(token);
	return NULL;
}

static const char *token_profile_name(const Token *token)
{
	const CertificateEntry *current = token_info_current(&token->info, time(NULL));

	return current && current->profile ? current->profile->name : "";
}

void token_update(Token *token, TokenInfo *info)
{
	TokenInfo *old = &token->info;
	const char *changed[16];
	size_t n = 0;
	bool certificates_changed = !token_info_certificates_equal(old, info);
	_cleanup_free_ char *old_profile = strdup(token_profile_name(token));

	if (!streq(old->label, info->label))
		changed[n++] = "Label";
	if (!streq(old->manufacturer, info->manufacturer))
		changed[n++] = "Manufacturer";
	if (!streq(old->model, info->model))
		changed[n++] = "Model";
	if (n > 0)
		changed[n++] = "Uri";
	if (!streq(token_info_pin_status(old), token_info_pin_status(info)))
		changed[n++] = "PinStatus";
	if (old->pin_must_change != info->pin_must_change)
		changed[n++] = "PinMustChange";
	if (old->pin_min_length != info->pin_min_length)
		changed[n++] = "PinMinLength";
	if (old->pin_max_length != info->pin_max_length)
		changed[n++] = "PinMaxLength";
	if (memcmp(&old->caps, &info->caps, sizeof(info->caps)) != 0 ||
	    old->same_serial != info->same_serial)
		changed[n++] = "NotActivatable";
	if (certificates_changed) {
		changed[n++] = "Certificates";
		changed[n++] = "CurrentCertificate";
		changed[n++] = "DaysLeft";
	}

	token_info_clear(old);
	token->info = *info;
	*info = (TokenInfo){};

	if (!streq_ptr(old_profile, token_profile_name(token))) {
		changed[n++] = "Profile";
		changed[n++] = "Support";
	}
	changed[n] = NULL;
	if (n > 0)
		metrics_changed(token->context);
	if (n > 0) {
		int r = sd_bus_emit_properties_changed_strv(
		    token->context->bus, token->path, SAFECAD_TOKEN_INTERFACE, (char **)changed);
		if (r < 0)
			log_warning_errno(r, "Cannot emit PropertiesChanged for %s: %m, ignoring.",
					  token->path);
	}
}

void token_check_expiry(Token *token)
{
	const Config *config = &token->context->config;
	int64_t now = now_usec();
	const CertificateEntry *current = token_info_current(&token->info, now / 1000000);
	int64_t days;
	int threshold = -1;
	int r;

	if (!current || !token->present)
		return;
	days = days_until(current->not_after, now);
	/* The smallest threshold reached; 0 stands for "expired". */
	if (days < 0)
		threshold = 0;
	else
		for (size_t i = 0; i < config->n_warn_days; i++)
			if (days <= (int64_t)config->warn_days[i] &&
			    (threshold < 0 || (int)config->warn_days[i] < threshold))
				threshold = (int)config->warn_days[i];
	if (threshold < 0)
		return;
	if (streq_ptr(token->warned_sha256, current->sha256) && token->warned_days <= threshold)
		return;
	free(token->warned_sha256);
	token->warned_sha256 = strdup(current->sha256);
	token->warned_days = threshold;
	if (days < 0)
		log_event(LOG_WARNING, SAFECAD_MESSAGE_EXPIRY_WARNING, token->info.serial, NULL,
			  current->serial,
			  "The certificate %s on token %s expired %lld day(s) ago.",
			  current->serial, token->info.serial, (long long)-days);
	else
		log_event(LOG_WARNING, SAFECAD_MESSAGE_EXPIRY_WARNING, token->info.serial, NULL,
			  current->serial, "The certificate %s on token %s expires in %lld day(s).",
			  current->serial, token->info.serial, (long long)days);
	r = sd_bus_emit_signal(token->context->bus, token->path, SAFECAD_TOKEN_INTERFACE,
			       "ExpiryWarning", "si", current->serial,
			       (int32_t)(days < INT32_MIN ? INT32_MIN : days));
	if (r < 0)
		log_debug_errno(r, "Cannot emit ExpiryWarning: %m");
}

static int find_token(sd_bus *bus, const char *path, const char *interface, void *userdata,
		      void **found, sd_bus_error *error)
{
	Context *context = userdata;

	for (size_t i = 0; i < context->n_tokens; i++)
		if (streq(context->tokens[i]->path, path)) {
			*found = context->tokens[i];
			return 1;
		}
	return 0;
}

static int enumerate_tokens(sd_bus *bus, const char *prefix, void *userdata, char ***ret,
			    sd_bus_error *error)
{
	Context *context = userdata;
	char **paths = calloc(context->n_tokens + 1, sizeof(char *));

	if (!paths)
		return -ENOMEM;
	for (size_t i = 0; i < context->n_tokens; i++) {
		paths[i] = strdup(context->tokens[i]->path);
		if (!paths[i]) {
			strv_free(paths);
			return -ENOMEM;
		}
	}
	*ret = paths;
	return 0;
}

static int property_string(sd_bus *bus, const char *path, const char *interface,
			   const char *property, sd_bus_message *reply, void *userdata,
			   sd_bus_error *error)
{
	Token *token = userdata;
	const char *value;

	if (streq(property, "Serial"))
		value = token->info.serial;
	else if (streq(property, "Label"))
		value = token->info.label;
	else if (streq(property, "Manufacturer"))
		value = token->info.manufacturer;
	else if (streq(property, "Model"))
		value = token->info.model;
	else if (streq(property, "PinStatus"))
		value = token_info_pin_status(&token->info);
	else if (streq(property, "Profile"))
		value = token_profile_name(token);
	else
		return -ENOENT;
	return sd_bus_message_append(reply, "s", value);
}

static int property_pin_length(sd_bus *bus, const char *path, const char *interface,
			       const char *property, sd_bus_message *reply, void *userdata,
			       sd_bus_error *error)
{
	Token *token = userdata;
	unsigned long value = streq(property, "PinMinLength") ? token->info.pin_min_length
							      : token->info.pin_max_length;

	return sd_bus_message_append(reply, "u", (uint32_t)(value > UINT32_MAX ? 0 : value));
}

static int property_support(sd_bus *bus, const char *path, const char *interface,
			    const char *property, sd_bus_message *reply, void *userdata,
			    sd_bus_error *error)
{
	Token *token = userdata;
	const CertificateEntry *current = token_info_current(&token->info, time(NULL));

	return sd_bus_message_append(reply, "s",
				     current && current->profile && current->profile->support
					 ? current->profile->support
					 : "");
}

static int property_uri(sd_bus *bus, const char *path, const char *interface, const char *property,
			sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	_cleanup_free_ char *uri = token_info_uri(&token->info);

	if (!uri)
		return -ENOMEM;
	return sd_bus_message_append(reply, "s", uri);
}

static int property_current(sd_bus *bus, const char *path, const char *interface,
			    const char *property, sd_bus_message *reply, void *userdata,
			    sd_bus_error *error)
{
	Token *token = userdata;
	const CertificateEntry *current = token_info_current(&token->info, time(NULL));

	return sd_bus_message_append(reply, "s", current ? current->sha256 : "");
}

static int property_days_left(sd_bus *bus, const char *path, const char *interface,
			      const char *property, sd_bus_message *reply, void *userdata,
			      sd_bus_error *error)
{
	Token *token = userdata;
	int64_t now = now_usec();
	const CertificateEntry *current = token_info_current(&token->info, now / 1000000);
	int64_t days = current ? days_until(current->not_after, now) : 0;

	if (days > INT32_MAX)
		days = INT32_MAX;
	if (days < INT32_MIN)
		days = INT32_MIN;
	return sd_bus_message_append(reply, "i", (int32_t)days);
}

static int append_name(sd_bus_message *reply, const char *key, const Name *name)
{
	int r;

	r = sd_bus_message_open_container(reply, 'e', "sv");
	if (r < 0)
		return r;
	r = sd_bus_message_append(reply, "s", key);
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'v', "a(ss)");
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'a', "(ss)");
	if (r < 0)
		return r;
	for (size_t i = 0; i < name->n_pairs; i++) {
		r = sd_bus_message_append(reply, "(ss)", name->pairs[i].attribute,
					  name->pairs[i].value);
		if (r < 0)
			return r;
	}
	r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

static int append_certificate(sd_bus_message *reply, const CertificateEntry *c, bool current)
{
	int r;

	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r < 0)
		return r;
	r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "serial", "s",
				  c->serial, "not_before", "t", (uint64_t)c->not_before,
				  "not_after", "t", (uint64_t)c->not_after, "sha256", "s",
				  c->sha256, "key_id", "s", c->key_id, "label", "s", c->label,
				  "has_key", "b", c->has_key, "current", "b", current);
	if (r < 0)
		return r;
	r = sd_bus_message_append(reply, "{sv}", "profile", "s",
				  c->profile ? c->profile->name : "");
	if (r < 0)
		return r;
	r = append_name(reply, "subject", &c->subject);
	if (r < 0)
		return r;
	r = append_name(reply, "issuer", &c->issuer);
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

static int property_certificates(sd_bus *bus, const char *path, const char *interface,
				 const char *property, sd_bus_message *reply, void *userdata,
				 sd_bus_error *error)
{
	Token *token = userdata;
	const CertificateEntry *current = token_info_current(&token->info, time(NULL));
	int r;

	r = sd_bus_message_open_container(reply, 'a', "a{sv}");
	if (r < 0)
		return r;
	for (size_t i = 0; i < token->info.n_certificates; i++) {
		const CertificateEntry *c = &token->info.certificates[i];
		r = append_certificate(reply, c, c == current);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

static int property_pending(sd_bus *bus, const char *path, const char *interface,
			    const char *property, sd_bus_message *reply, void *userdata,
			    sd_bus_error *error)
{
	Token *token = userdata;
	_cleanup_free_ char *text = json_dumps(token->pending, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (!text)
		return -ENOMEM;
	return sd_bus_message_append(reply, "s", text);
}

/* {"<action id>": "why"} for each pending action this token cannot carry
 * out (a key it cannot make, no room for objects): known from the token's
 * mechanisms before the CA is asked anything. */
json_t *token_not_activatable(const Token *token)
{
	json_t *refusals = json_object();
	size_t i;
	json_t *entry;

	json_array_foreach(token->pending, i, entry)
	{
		_cleanup_free_ char *reason =
		    token->info.same_serial > 1
			? strdup(_("another token plugged in carries the same serial; leave only "
				   "one plugged in"))
			: token_capabilities_refusal(&token->info.caps,
						     json_object_get(entry, "key"));
		const char *id = json_string_value(json_object_get(entry, "id"));

		if (refusals && reason && id)
			json_object_set_new(refusals, id, json_string(reason));
	}
	return refusals;
}

static int property_not_activatable(sd_bus *bus, const char *path, const char *interface,
				    const char *property, sd_bus_message *reply, void *userdata,
				    sd_bus_error *error)
{
	json_auto_t *refusals = token_not_activatable(userdata);
	_cleanup_free_ char *text =
	    refusals ? json_dumps(refusals, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	if (!text)
		return -ENOMEM;
	return sd_bus_message_append(reply, "s", text);
}

static int property_activation(sd_bus *bus, const char *path, const char *interface,
			       const char *property, sd_bus_message *reply, void *userdata,
			       sd_bus_error *error)
{
	Token *token = userdata;
	json_t *journal;

	if (token->running)
		return sd_bus_message_append(
		    reply, "(ssb)", json_string_value(json_object_get(token->running, "action")),
		    json_string_value(json_object_get(token->running, "step")), false);
	journal = token_journal(token);
	if (journal)
		return sd_bus_message_append(
		    reply, "(ssb)", json_string_value(json_object_get(journal, "action_id")),
		    json_string_value(json_object_get(journal, "step")), true);
	return sd_bus_message_append(reply, "(ssb)", "", "", false);
}

static int property_issued(sd_bus *bus, const char *path, const char *interface,
			   const char *property, sd_bus_message *reply, void *userdata,
			   sd_bus_error *error)
{
	Token *token = userdata;
	_cleanup_free_ char *text =
	    token->issued ? json_dumps(token->issued, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	if (token->issued && !text)
		return -ENOMEM;
	return sd_bus_message_append(reply, "s", strempty(text));
}

static int property_busy(sd_bus *bus, const char *path, const char *interface, const char *property,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;

	return sd_bus_message_append(reply, "b", token->job != NULL);
}

static int method_export(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	const CertificateEntry *current = token_info_current(&token->info, time(NULL));
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	int r;

	if (!current)
		return sd_bus_error_setf(error, SAFECAD_ERROR_NOTHING_TO_DO,
					 _("Token %s has no current certificate."),
					 token->info.serial);
	/* A certificate is public, and the shipped policy lets anyone
	 * export; an admin may restrict it. */
	r = polkit_verify(message, "org.safecad.export", &token->context->polkit_queries, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = sd_bus_message_new_method_return(message, &reply);
	if (r >= 0)
		r = sd_bus_message_append_array(reply, 'y', current->der, current->der_size);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

/* The certificate an interrupted activation holds but the token has not
 * taken (it refused the write, or was pulled out): it passed every check
 * and is the user's, so it can be saved elsewhere meanwhile. */
static json_t *kept_certificate_journal(const Token *token)
{
	json_t *journal = token_journal(token);

	if (!journal || journal_step(journal) < STEP_VERIFIED ||
	    journal_step(journal) >= STEP_WRITTEN ||
	    !json_string_value(json_object_get(journal, "certificate")))
		return NULL;
	return journal;
}

static int property_write_error(sd_bus *bus, const char *path, const char *interface,
				const char *property, sd_bus_message *reply, void *userdata,
				sd_bus_error *error)
{
	json_t *journal = kept_certificate_journal(userdata);

	return sd_bus_message_append(
	    reply, "s",
	    journal ? strempty(json_string_value(json_object_get(journal, "write_error"))) : "");
}

static int method_export_issued(sd_bus_message *message, void *userdata, sd_bus_error *error)
{
	Token *token = userdata;
	json_t *journal = kept_certificate_journal(token);
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_free_ unsigned char *der = NULL;
	size_t size = 0;
	int r;

	if (!journal)
		return sd_bus_error_setf(error, SAFECAD_ERROR_NOTHING_TO_DO,
					 _("Token %s has no issued certificate waiting to be "
					   "written."),
					 token->info.serial);
	r = polkit_verify(message, "org.safecad.export", &token->context->polkit_queries, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = pem_certificate_to_der(json_string_value(json_object_get(journal, "certificate")), &der,
				   &size);
	if (r < 0)
		return sd_bus_error_setf(error, SAFECAD_ERROR_FAILED,
					 _("The activation journal of token %s is damaged."),
					 token->info.serial);
	r = sd_bus_message_new_method_return(message, &reply);
	if (r >= 0)
		r = sd_bus_message_append_array(reply, 'y', der, size);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable token_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Serial", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Label", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Manufacturer", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Model", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Uri", "s", property_uri, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Present", "b", NULL, offsetof(Token, present),
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PinStatus", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PinMinLength", "u", property_pin_length, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PinMaxLength", "u", property_pin_length, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Support", "s", property_support, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("PinMustChange", "b", NULL, offsetof(Token, info.pin_must_change),
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Profile", "s", property_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("CurrentCertificate", "s", property_current, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_PROPERTY("DaysLeft", "i", property_days_left, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_PROPERTY("Certificates", "aa{sv}", property_certificates, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
    SD_BUS_PROPERTY("Pending", "s", property_pending, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("NotActivatable", "s", property_not_activatable, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Activation", "(ssb)", property_activation, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Busy", "b", property_busy, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("IssuedCertificate", "s", property_issued, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("WriteError", "s", property_write_error, 0,
		    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD_WITH_NAMES("Check", "", , "s", SD_BUS_PARAM(pending), method_check,
			     SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Activate", "sha{sv}",
			     SD_BUS_PARAM(action) SD_BUS_PARAM(pin) SD_BUS_PARAM(options), "s",
			     SD_BUS_PARAM(result), method_activate, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ChangePin", "hha{sv}",
			     SD_BUS_PARAM(old_pin) SD_BUS_PARAM(new_pin) SD_BUS_PARAM(options), "",
			     , method_change_pin, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RemovePrevious", "ha{sv}", SD_BUS_PARAM(pin) SD_BUS_PARAM(options),
			     "s", SD_BUS_PARAM(result), method_remove_previous,
			     SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Export", "", , "ay", SD_BUS_PARAM(certificate), method_export,
			     SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ExportIssued", "", , "ay", SD_BUS_PARAM(certificate),
			     method_export_issued, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ConfirmWrite", "sb", SD_BUS_PARAM(action) SD_BUS_PARAM(write), "", ,
			     method_confirm_write, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("ActivationProgress", "ss", SD_BUS_PARAM(action) SD_BUS_PARAM(step),
			     0),
    SD_BUS_SIGNAL_WITH_NAMES("WriteRequested", "ss", SD_BUS_PARAM(action) SD_BUS_PARAM(certificate),
			     0),
    SD_BUS_SIGNAL_WITH_NAMES("ExpiryWarning", "si",
			     SD_BUS_PARAM(certificate) SD_BUS_PARAM(days_left), 0),
    SD_BUS_SIGNAL_WITH_NAMES(
	"ActivationFinished", "ssss",
	SD_BUS_PARAM(action) SD_BUS_PARAM(result) SD_BUS_PARAM(error) SD_BUS_PARAM(message), 0),
    SD_BUS_VTABLE_END,
};

int bus_token_register(Context *context)
{
	int r;

	r = sd_bus_add_fallback_vtable(context->bus, &context->token_slot,
				       SAFECAD_TOKEN_PATH_PREFIX, SAFECAD_TOKEN_INTERFACE,
				       token_vtable, find_token, context);
	if (r < 0)
		return r;
	return sd_bus_add_node_enumerator(context->bus, NULL, SAFECAD_TOKEN_PATH_PREFIX,
					  enumerate_tokens, context);
}
