/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "bus-names.h"
#include "i18n.h"
#include "safectl.h"

int verb_check(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_json_ json_t *tokens = NULL, *pending = NULL;
	json_t *token = NULL, *entry;
	size_t i;
	int r;

	if (bus_connect(&bus) < 0 || tokens_read(bus, &tokens) < 0)
		return EXIT_FAILED;
	r = token_select(tokens, argc > 1 ? argv[1] : NULL, &token);
	if (r != 0)
		return r;
	r = call_check(bus, token, &pending);
	if (r != 0)
		return r;
	if (arg_json) {
		_cleanup_json_ json_t *out =
		    json_pack("{s:s,s:O}", "token", json_str(token, "serial"), "pending", pending);
		json_print(out);
		return EXIT_DONE;
	}
	if (json_array_size(pending) == 0) {
		printf(_("The CA has nothing pending for token %s.\n"), json_str(token, "serial"));
		return EXIT_DONE;
	}
	printf(_("Pending at the CA for token %s:\n"), json_str(token, "serial"));
	json_array_foreach(pending, i, entry)
	    printf("  %-20s %-7s %s .. %s\n", json_str(entry, "id"), json_str(entry, "type"),
		   json_str(entry, "not_before"), json_str(entry, "not_after"));
	printf(_("Activate with: safectl activate\n"));
	return EXIT_DONE;
}

static int get_history(sd_bus *bus, json_t **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	const char *text;
	int r;

	r = sd_bus_call_method(bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
			       SAFECAD_MANAGER_INTERFACE, "GetHistory", &error, &reply, "");
	if (r < 0) {
		report_bus_error(&error, r);
		sd_bus_error_free(&error);
		return r;
	}
	r = sd_bus_message_read(reply, "s", &text);
	if (r < 0)
		return r;
	*ret = json_loads(text, 0, NULL);
	return *ret ? 0 : -EBADMSG;
}

int verb_history(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_json_ json_t *history = NULL;
	json_t *entry, *agency;
	size_t i, k;

	if (bus_connect(&bus) < 0 || get_history(bus, &history) < 0)
		return EXIT_FAILED;
	if (arg_json) {
		json_print(history);
		return EXIT_DONE;
	}
	if (json_array_size(json_object_get(history, "activations")) == 0) {
		printf(_("No activation yet.\n"));
		return EXIT_DONE;
	}
	json_array_foreach(json_object_get(history, "activations"), i, entry)
	{
		size_t done = 0, total = json_array_size(json_object_get(entry, "agencies"));
		json_array_foreach(json_object_get(entry, "agencies"), k,
				   agency) if (json_is_true(json_object_get(agency, "done")))
		    done++;
		/* TRANSLATORS: one activation: its id, its type (renew or
		 * change), the token's serial, the old and the new certificate
		 * serial, when the CA confirmed it, and how many of the Step 3
		 * agencies are ticked, of how many. */
		printf(_("%-20s %-7s token %s  %s -> %s  %s  agencies %zu/%zu\n"),
		       json_str(entry, "action"), json_str(entry, "type"), json_str(entry, "token"),
		       json_str(entry, "old_serial"), json_str(entry, "new_serial"),
		       json_is_string(json_object_get(entry, "completed"))
			   ? json_str(entry, "completed")
			   : _("(not confirmed)"),
		       done, total);
	}
	return EXIT_DONE;
}

int verb_agencies(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_json_ json_t *history = NULL;
	json_t *entry = NULL, *e, *agency;
	size_t i;

	if (bus_connect(&bus) < 0)
		return EXIT_FAILED;
	if (argc > 1 && streq(argv[1], "done")) {
		_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
		sd_bus_error error = SD_BUS_ERROR_NULL;
		int r;

		if (argc < 3) {
			fprintf(stderr,
				_("Name the agencies to tick: safectl agencies done ID...\n"));
			return EXIT_FAILED;
		}
		r = sd_bus_message_new_method_call(bus, &call, SAFECAD_BUS_NAME,
						   SAFECAD_MANAGER_PATH, SAFECAD_MANAGER_INTERFACE,
						   "TickAgencies");
		if (r >= 0)
			r = sd_bus_message_append(call, "s", arg_action ? arg_action : "");
		if (r >= 0)
			r = sd_bus_message_append_strv(call, argv + 2);
		if (r >= 0)
			r = sd_bus_call(bus, call, 0, &error, NULL);
		if (r < 0) {
			int code = exit_code_for_error(&error);
			fprintf(stderr, _("Failed to tick agencies: %s\n"),
				sd_bus_error_is_set(&error) ? error.message : strerror(-r));
			sd_bus_error_free(&error);
			return code;
		}
	} else if (argc > 1) {
		fprintf(stderr, _("Unknown agencies command \"%s\".\n"), argv[1]);
		return EXIT_FAILED;
	}
	if (get_history(bus, &history) < 0)
		return EXIT_FAILED;
	json_array_foreach(json_object_get(history, "activations"), i, e)
	{
		if (!arg_action || streq(json_str(e, "action"), arg_action)) {
			entry = e;
			break;
		}
	}
	if (!entry) {
		fprintf(stderr, _("No activation is recorded yet.\n"));
		return EXIT_NOTHING;
	}
	if (arg_json) {
		_cleanup_json_ json_t *out =
		    json_pack("{s:O?,s:O?}", "action", json_object_get(entry, "action"), "agencies",
			      json_object_get(entry, "agencies"));
		json_print(out);
		return EXIT_DONE;
	}
	printf(_("Step 3 for activation %s (new serial %s):\n"), json_str(entry, "action"),
	       json_str(entry, "new_serial"));
	json_array_foreach(json_object_get(entry, "agencies"), i, agency) printf(
	    "  [%s] %-14s %s  %s\n", json_is_true(json_object_get(agency, "done")) ? "x" : " ",
	    json_str(agency, "id"), json_str(agency, "name"), json_str(agency, "url"));
	return EXIT_DONE;
}

static int write_all(int fd, const void *data, size_t size)
{
	const char *p = data;

	while (size > 0) {
		ssize_t n = write(fd, p, size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		size -= (size_t)n;
	}
	return 0;
}

int verb_export(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_json_ json_t *tokens = NULL;
	_cleanup_free_ char *b64 = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	json_t *token = NULL;
	const void *der;
	size_t size;
	int r, fd = STDOUT_FILENO;

	if (bus_connect(&bus) < 0 || tokens_read(bus, &tokens) < 0)
		return EXIT_FAILED;
	r = token_select(tokens, argc > 1 ? argv[1] : NULL, &token);
	if (r != 0)
		return r;
	r = sd_bus_call_method(bus, SAFECAD_BUS_NAME, json_str(token, "path"),
			       SAFECAD_TOKEN_INTERFACE, arg_issued ? "ExportIssued" : "Export",
			       &error, &reply, "");
	if (r < 0) {
		int code = exit_code_for_error(&error);
		fprintf(stderr, _("Failed to export: %s\n"),
			sd_bus_error_is_set(&error) ? error.message : strerror(-r));
		sd_bus_error_free(&error);
		return code;
	}
	r = sd_bus_message_read_array(reply, 'y', &der, &size);
	if (r < 0)
		return EXIT_FAILED;
	if (arg_output) {
		fd = open(arg_output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, _("Failed to export: cannot write %s: %s\n"), arg_output,
				strerror(errno));
			return EXIT_FAILED;
		}
	}
	if (arg_der)
		r = write_all(fd, der, size);
	else {
		b64 = base64_encode(der, size);
		r = b64 ? write_all(fd, "-----BEGIN CERTIFICATE-----\n", 28) : -ENOMEM;
		for (size_t off = 0; r >= 0 && b64[off]; off += 64) {
			size_t len = strnlen(b64 + off, 64);
			r = write_all(fd, b64 + off, len);
			if (r >= 0)
				r = write_all(fd, "\n", 1);
			if (len < 64)
				break;
		}
		if (r >= 0)
			r = write_all(fd, "-----END CERTIFICATE-----\n", 26);
	}
	if (fd != STDOUT_FILENO && close(fd) < 0 && r >= 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, _("Failed to export: %s\n"), strerror(-r));
		return EXIT_FAILED;
	}
	return EXIT_DONE;
}
