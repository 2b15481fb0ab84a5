/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bus-json.h"
#include "bus-names.h"
#include "i18n.h"
#include "pkcs11-uri.h"
#include "safectl.h"

#define NAME_MAX_LENGTH 4096

int bus_connect(sd_bus **ret)
{
	int r = sd_bus_open_system(ret);

	if (r < 0)
		fprintf(stderr, _("Failed to connect to the system bus: %s\n"), strerror(-r));
	return r;
}

static bool error_is_absent(const sd_bus_error *error)
{
	return sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN,
				      SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_NO_REPLY,
				      SD_BUS_ERROR_DISCONNECTED);
}

void report_bus_error(const sd_bus_error *error, int r)
{
	if (error_is_absent(error))
		fprintf(stderr, _("safecad is not running (%s).\n"), error->message);
	else
		fprintf(stderr, "%s\n", sd_bus_error_is_set(error) ? error->message : strerror(-r));
}

/* (action, step, interrupted), or null when action is empty; with
 * "write_error" when the token refused the certificate it holds. */
static json_t *activation_json(json_t *activation, json_t *write_error)
{
	const char *action = json_string_value(json_array_get(activation, 0));

	if (isempty(action))
		return json_null();
	return json_pack(
	    "{s:s,s:O?,s:O?,s:o*}", "action", action, "step", json_array_get(activation, 1),
	    "interrupted", json_array_get(activation, 2), "write_error",
	    isempty(json_string_value(write_error)) ? NULL : json_deep_copy(write_error));
}

/* Moves the members of org.safecad.Token1 into status's JSON form. */
static int token_json_from_properties(json_t *props, const char *path, json_t **ret)
{
	json_t *token, *value;
	const char *current = json_string_value(json_object_get(props, "CurrentCertificate"));
	const char *profile = json_string_value(json_object_get(props, "Profile"));
	const char *pending = json_string_value(json_object_get(props, "Pending"));
	json_t *certificates = json_object_get(props, "Certificates");
	json_t *pending_json = NULL;
	size_t i;

	if (pending)
		pending_json = json_loads(pending, JSON_DECODE_ANY, NULL);
	if (!json_is_array(pending_json)) {
		json_decref(pending_json);
		pending_json = json_array();
	}
	token = json_pack(
	    "{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:o,s:o,s:[],s:o,s:o,s:O?,s:s}", "serial",
	    json_object_get(props, "Serial"), "label", json_object_get(props, "Label"),
	    "manufacturer", json_object_get(props, "Manufacturer"), "model",
	    json_object_get(props, "Model"), "present", json_object_get(props, "Present"), "pin",
	    json_object_get(props, "PinStatus"), "pin_must_change",
	    json_object_get(props, "PinMustChange"), "profile",
	    isempty(profile) ? json_null() : json_string(profile), "days_left",
	    isempty(current) ? json_null() : json_deep_copy(json_object_get(props, "DaysLeft")),
	    "certificates", "pending", pending_json, "activation",
	    activation_json(json_object_get(props, "Activation"),
			    json_object_get(props, "WriteError")),
	    "uri", json_object_get(props, "Uri"), "path", path);
	if (!token)
		return -EBADMSG;
	/* Beyond the fixed members: what `pin` and messages need. */
	json_object_set(token, "pin_min_length", json_object_get(props, "PinMinLength"));
	json_object_set(token, "pin_max_length", json_object_get(props, "PinMaxLength"));
	json_object_set(token, "support", json_object_get(props, "Support"));
	/* {"<action id>": "why"}: pending actions this token cannot carry
	 * out (a key it cannot make, no room). */
	value = json_loads(strempty(json_string_value(json_object_get(props, "NotActivatable"))), 0,
			   NULL);
	json_object_set_new(token, "not_activatable",
			    json_is_object(value) ? value : json_object());
	if (!json_is_object(value))
		json_decref(value);
	json_array_foreach(certificates, i, value)
	{
		json_t *c = json_pack(
		    "{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "serial",
		    json_object_get(value, "serial"), "subject", json_object_get(value, "subject"),
		    "issuer", json_object_get(value, "issuer"), "not_before",
		    json_object_get(value, "not_before"), "not_after",
		    json_object_get(value, "not_after"), "sha256", json_object_get(value, "sha256"),
		    "key_id", json_object_get(value, "key_id"), "current",
		    json_object_get(value, "current"), "label", json_object_get(value, "label"),
		    "has_key", json_object_get(value, "has_key"));
		if (!c) {
			json_decref(token);
			return -EBADMSG;
		}
		json_array_append_new(json_object_get(token, "certificates"), c);
	}
	*ret = token;
	return 0;
}

static int read_token(sd_bus *bus, const char *path, json_t **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_json_ json_t *props = NULL;
	int r;

	r = sd_bus_call_method(bus, SAFECAD_BUS_NAME, path, "org.freedesktop.DBus.Properties",
			       "GetAll", &error, &reply, "s", SAFECAD_TOKEN_INTERFACE);
	if (r < 0) {
		/* Gone between the listing and now: it is no longer there. */
		bool gone = sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
			    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE);
		if (!gone)
			report_bus_error(&error, r);
		sd_bus_error_free(&error);
		return gone ? 0 : r;
	}
	r = bus_read_json(reply, NULL, &props);
	if (r < 0) {
		fprintf(stderr, _("safecad sent an answer that cannot be read: %s\n"),
			strerror(-r));
		return r;
	}
	r = token_json_from_properties(props, path, ret);
	return r < 0 ? r : 1;
}

int tokens_read(sd_bus *bus, json_t **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_json_ json_t *tokens = json_array();
	const char *path;
	int r;

	if (!tokens)
		return -ENOMEM;
	r = sd_bus_get_property(bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
				SAFECAD_MANAGER_INTERFACE, "Tokens", &error, &reply, "ao");
	if (r < 0) {
		report_bus_error(&error, r);
		sd_bus_error_free(&error);
		return r;
	}
	r = sd_bus_message_enter_container(reply, 'a', "o");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(reply, "o", &path)) > 0) {
		json_t *token = NULL;
		int k = read_token(bus, path, &token);
		if (k < 0)
			return k;
		if (k > 0)
			json_array_append_new(tokens, token);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(tokens);
	return 0;
}

/* Whether token has every token attribute the URI names. */
static bool uri_matches(const Pkcs11Uri *uri, json_t *token)
{
	const struct {
		const char *value;
		const char *member;
	} map[] = {
	    {uri->token, "label"},
	    {uri->serial, "serial"},
	    {uri->manufacturer, "manufacturer"},
	    {uri->model, "model"},
	};

	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (map[i].value &&
		    !streq_ptr(json_string_value(json_object_get(token, map[i].member)),
			       map[i].value))
			return false;
	return true;
}

static void print_choices(json_t *tokens)
{
	size_t i;
	json_t *t;

	if (json_array_size(tokens) == 0) {
		fprintf(stderr, _("No token is present.\n"));
		return;
	}
	fprintf(stderr, _("Tokens present (name one by serial, label or PKCS#11 URI):\n"));
	json_array_foreach(tokens, i, t)
	    fprintf(stderr, "  %-20s %s\n", json_string_value(json_object_get(t, "serial")),
		    json_string_value(json_object_get(t, "label")));
}

int token_select(json_t *tokens, const char *name, json_t **ret)
{
	_cleanup_(pkcs11_uri_clear) Pkcs11Uri uri = {};
	bool is_uri = false;
	json_t *found = NULL, *t;
	size_t i, n_found = 0;

	if (!name) {
		if (json_array_size(tokens) == 1) {
			*ret = json_array_get(tokens, 0);
			return 0;
		}
		if (json_array_size(tokens) == 0) {
			fprintf(stderr, _("No token is present. Plug in your token.\n"));
			return EXIT_NOTHING;
		}
		fprintf(stderr, _("Several tokens are present; say which one.\n"));
		print_choices(tokens);
		return EXIT_FAILED;
	}
	if (strlen(name) > NAME_MAX_LENGTH) {
		fprintf(stderr, _("The token name is too long.\n"));
		return EXIT_FAILED;
	}
	if (strncasecmp(name, "pkcs11:", 7) == 0) {
		if (pkcs11_uri_parse(name, &uri) < 0) {
			fprintf(stderr, _("\"%s\" is not a valid PKCS#11 URI.\n"), name);
			return EXIT_FAILED;
		}
		is_uri = true;
	}
	json_array_foreach(tokens, i, t)
	{
		bool match;
		if (is_uri)
			match = uri_matches(&uri, t);
		else
			match = strcasecmp(name, json_string_value(json_object_get(t, "serial"))) ==
				    0 ||
				streq(name, json_string_value(json_object_get(t, "label")));
		if (match) {
			found = t;
			n_found++;
		}
	}
	if (n_found == 1) {
		*ret = found;
		return 0;
	}
	if (n_found == 0)
		fprintf(stderr, _("No token matches \"%s\".\n"), name);
	else
		fprintf(stderr, _("Several tokens match \"%s\".\n"), name);
	print_choices(tokens);
	return EXIT_FAILED;
}

void json_print(json_t *v)
{
	size_t flags = JSON_PRESERVE_ORDER;

	if (isatty(STDOUT_FILENO))
		flags |= JSON_INDENT(2);
	else
		flags |= JSON_COMPACT;
	json_dumpf(v, stdout, flags);
	fputc('\n', stdout);
	fflush(stdout);
}
