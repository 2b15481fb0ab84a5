/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "action.h"
#include "bus-names.h"
#include "i18n.h"
#include "pin.h"
#include "safectl.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Pin *, pin_free)

/* What will go, as the person should see it before saying yes. */
static void print_what_goes(json_t *certificate)
{
	size_t i;
	json_t *pair;

	printf(_("This removes from the token the certificate the latest activation replaced:\n"));
	printf(_("  Serial:   %s\n  Valid:    %s to %s\n  Key ID:   %s\n  Subject: "),
	       json_str(certificate, "serial"), json_str(certificate, "not_before"),
	       json_str(certificate, "not_after"), json_str(certificate, "key_id"));
	json_array_foreach(json_object_get(certificate, "subject"), i, pair)
	    printf(" %s=%s", json_string_value(json_array_get(pair, 0)),
		   json_string_value(json_array_get(pair, 1)));
	printf(_("\nThe current certificate and its key stay. The removed certificate is kept "
		 "in safecad's history.\n"));
}

static int get_latest(sd_bus *bus, const char *serial, json_t **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_json_ json_t *history = NULL;
	const char *text;
	size_t i;
	json_t *entry;
	int r;

	r = sd_bus_call_method(bus, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
			       SAFECAD_MANAGER_INTERFACE, "GetHistory", &error, &reply, "");
	if (r < 0) {
		report_bus_error(&error, r);
		sd_bus_error_free(&error);
		return r;
	}
	if (sd_bus_message_read(reply, "s", &text) < 0 || !(history = json_loads(text, 0, NULL)))
		return -EBADMSG;
	json_array_foreach(json_object_get(history, "activations"), i, entry)
	{
		if (streq(json_str(entry, "token"), serial)) {
			*ret = json_incref(entry);
			return 1;
		}
	}
	return 0;
}

int verb_remove_previous(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
	_cleanup_json_ json_t *tokens = NULL, *latest = NULL;
	_cleanup_(pin_freep) Pin *pin = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	json_t *token = NULL, *certificate;
	const char *text;
	int fd, r;
	bool interrupted;

	if (bus_connect(&bus) < 0 || tokens_read(bus, &tokens) < 0)
		return EXIT_FAILED;
	r = token_select(tokens, argc > 1 ? argv[1] : NULL, &token);
	if (r != 0)
		return r;
	r = get_latest(bus, json_str(token, "serial"), &latest);
	if (r < 0)
		return EXIT_FAILED;
	if (r == 0) {
		fprintf(stderr, _("No activation has replaced a certificate on this token.\n"));
		return EXIT_NOTHING;
	}
	certificate = certificate_find(json_object_get(token, "certificates"),
				       json_str(latest, "old_serial"));
	/* A removal that began (the certificate went to the history) and
	 * did not end: its key waits for a login, which this brings. */
	interrupted = !certificate && json_object_get(latest, "removed_certificate") &&
		      !json_is_true(json_object_get(latest, "previous_removed"));
	if (!certificate && !interrupted) {
		fprintf(stderr, _("The previous certificate %s is no longer on the token.\n"),
			json_str(latest, "old_serial"));
		return EXIT_NOTHING;
	}
	if (!arg_json && interrupted)
		printf(_("Removing the previous certificate %s was interrupted; its key is removed "
			 "once you give the PIN.\n"),
		       json_str(latest, "old_serial"));
	else if (!arg_json)
		print_what_goes(certificate);
	if (!arg_yes) {
		char line[16] = "";
		printf(_("Remove it? [y/N] "));
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin) || (line[0] != 'y' && line[0] != 'Y')) {
			printf(_("Nothing was removed.\n"));
			return EXIT_NOTHING;
		}
	}
	if (streq(json_str(token, "pin"), "final-try") && !arg_allow_final_try) {
		fprintf(stderr, _("The token locks at the next wrong PIN. Nothing was tried; if "
				  "you are sure of the PIN, add --allow-final-try.\n"));
		return EXIT_FINAL_TRY;
	}
	r = pin_new(&pin);
	if (r >= 0)
		r = arg_pin_fd >= 0
			? pin_read_fd(pin, arg_pin_fd, monotonic_usec() + PIN_FD_TIMEOUT_USEC)
			: pin_read_tty(pin, _("PIN (not shown): "));
	if (r < 0) {
		fprintf(stderr, _("Failed to read the PIN: %s\n"),
			r == -ENOTTY ? _("no terminal; use --pin-fd") : strerror(-r));
		return EXIT_FAILED;
	}
	fd = pin_pipe(pin);
	if (fd < 0)
		return EXIT_FAILED;
	r = sd_bus_message_new_method_call(bus, &call, SAFECAD_BUS_NAME, json_str(token, "path"),
					   SAFECAD_TOKEN_INTERFACE, "RemovePrevious");
	if (r >= 0)
		r = sd_bus_message_append(call, "ha{sv}", fd, 2, "force", "b", arg_force,
					  "allow_final_try", "b", arg_allow_final_try);
	close(fd);
	if (r >= 0)
		r = sd_bus_call(bus, call, 300 * 1000000ULL, &error, &reply);
	if (r < 0) {
		int code = sd_bus_error_is_set(&error) ? exit_code_for_error(&error) : EXIT_FAILED;
		fprintf(stderr, _("Failed to remove the previous pair: %s\n"),
			sd_bus_error_is_set(&error) ? error.message : strerror(-r));
		sd_bus_error_free(&error);
		return code;
	}
	if (sd_bus_message_read(reply, "s", &text) < 0)
		return EXIT_FAILED;
	if (arg_json) {
		_cleanup_json_ json_t *result = json_loads(text, 0, NULL);
		json_print(result);
	} else {
		_cleanup_json_ json_t *result = json_loads(text, 0, NULL);
		if (json_object_get(result, "finished")) {
			printf(json_is_true(json_object_get(result, "finished"))
				   ? _("Finished the removal that was interrupted: the previous "
				       "key is gone too.\n")
				   : _("Nothing was left to remove.\n"));
			return EXIT_DONE;
		}
		printf(
		    json_is_true(json_object_get(result, "key_removed"))
			? _("Removed certificate %s and its key.\n")
			: _("Removed certificate %s; its key stays: the current certificate uses "
			    "it.\n"),
		    json_str(result, "serial"));
	}
	return EXIT_DONE;
}
