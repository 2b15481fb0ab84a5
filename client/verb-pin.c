/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "bus-names.h"
#include "i18n.h"
#include "pin.h"
#include "safectl.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Pin *, pin_free)

static int show_pin(json_t *token)
{
	const char *pin = json_str(token, "pin");
	const char *support = json_str(token, "support");
	json_int_t min = json_integer_value(json_object_get(token, "pin_min_length"));
	json_int_t max = json_integer_value(json_object_get(token, "pin_max_length"));
	/* Tries are shown only where the token's flags say them. */
	json_t *tries = streq(pin, "final-try") ? json_integer(1)
			: streq(pin, "locked")	? json_integer(0)
						: json_null();

	if (arg_json) {
		_cleanup_json_ json_t *out = json_pack(
		    "{s:s,s:s,s:O?,s:o,s:O?,s:O?}", "serial", json_str(token, "serial"), "pin", pin,
		    "pin_must_change", json_object_get(token, "pin_must_change"), "tries_left",
		    tries, "min_length", json_object_get(token, "pin_min_length"), "max_length",
		    json_object_get(token, "pin_max_length"));
		json_print(out);
		return EXIT_DONE;
	}
	json_decref(tries);
	printf(_("Token %s (%s)\n"), json_str(token, "serial"), json_str(token, "label"));
	if (streq(pin, "ok"))
		printf(_("  PIN: ok.\n"));
	else if (streq(pin, "count-low"))
		printf(_("  PIN: a wrong PIN was entered since the last right one; the token "
			 "allows only a few more.\n"));
	else if (streq(pin, "final-try"))
		printf(_("  PIN: 1 try left. One more wrong PIN locks the token, and only the CA "
			 "can unlock it. Be sure of the PIN before you try.\n"));
	else if (streq(pin, "locked"))
		printf(_("  PIN: LOCKED (0 tries left). Only the CA can unlock it: %s\n"),
		       *support ? support : _("call your CA"));
	if (json_is_true(json_object_get(token, "pin_must_change")))
		printf(_("  The token asks for a new PIN: safectl pin change\n"));
	if (min > 0 || max > 0)
		printf(_("  A PIN has %lld to %lld characters.\n"), (long long)min, (long long)max);
	return EXIT_DONE;
}

static int read_twice(Pin **ret)
{
	_cleanup_(pin_freep) Pin *first = NULL, *second = NULL;
	int r;

	r = pin_new(&first);
	if (r >= 0)
		r = pin_new(&second);
	if (r >= 0)
		r = pin_read_tty(first, _("New PIN (not shown): "));
	if (r >= 0)
		r = pin_read_tty(second, _("New PIN again: "));
	if (r < 0)
		return r;
	if (first->size != second->size || memcmp(first->data, second->data, first->size) != 0) {
		fprintf(stderr,
			_("The two new PINs differ; nothing was changed. A Vietnamese input "
			  "method (Unikey, ibus-bamboo) may have changed what you typed: "
			  "switch it to English (E) and try again.\n"));
		return -EINVAL;
	}
	*ret = TAKE_PTR(first);
	return 0;
}

static int change_pin(sd_bus *bus, json_t *token)
{
	_cleanup_(pin_freep) Pin *old_pin = NULL, *new_pin = NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	json_int_t min = json_integer_value(json_object_get(token, "pin_min_length"));
	json_int_t max = json_integer_value(json_object_get(token, "pin_max_length"));
	const char *pin = json_str(token, "pin");
	int old_fd = -1, new_fd = -1, r;

	if (streq(pin, "locked")) {
		fprintf(stderr, _("The PIN is locked; only the CA can unlock it.\n"));
		return EXIT_PIN_LOCKED;
	}
	if (streq(pin, "final-try") && !arg_allow_final_try) {
		fprintf(stderr,
			_("The token locks at the next wrong PIN. Nothing was tried; if you "
			  "are sure of the current PIN, add --allow-final-try.\n"));
		return EXIT_FINAL_TRY;
	}
	r = pin_new(&old_pin);
	if (r < 0)
		return EXIT_FAILED;
	r = arg_pin_fd >= 0
		? pin_read_fd(old_pin, arg_pin_fd, monotonic_usec() + PIN_FD_TIMEOUT_USEC)
		: pin_read_tty(old_pin, _("Current PIN (not shown): "));
	if (r >= 0) {
		if (arg_new_pin_fd >= 0) {
			r = pin_new(&new_pin);
			if (r >= 0)
				r = pin_read_fd(new_pin, arg_new_pin_fd,
						monotonic_usec() + PIN_FD_TIMEOUT_USEC);
		} else
			r = read_twice(&new_pin);
	}
	if (r == -EINVAL)
		return EXIT_FAILED;
	if (r < 0) {
		fprintf(stderr, _("Failed to read the PIN: %s\n"),
			r == -ENOTTY	 ? _("no terminal; use --old-pin-fd and --new-pin-fd")
			: r == -ENODATA	 ? _("it is empty")
			: r == -EMSGSIZE ? _("it is longer than 255 characters")
					 : strerror(-r));
		return EXIT_FAILED;
	}
	if ((min > 0 && new_pin->size < (size_t)min) || (max > 0 && new_pin->size > (size_t)max)) {
		fprintf(stderr,
			_("The new PIN must have %lld to %lld characters; nothing was "
			  "changed.\n"),
			(long long)min, (long long)max);
		return EXIT_FAILED;
	}

	old_fd = pin_pipe(old_pin);
	new_fd = old_fd >= 0 ? pin_pipe(new_pin) : -1;
	r = new_fd < 0 ? -EIO : 0;
	if (r >= 0)
		r = sd_bus_message_new_method_call(bus, &call, SAFECAD_BUS_NAME,
						   json_str(token, "path"), SAFECAD_TOKEN_INTERFACE,
						   "ChangePin");
	if (r >= 0)
		r = sd_bus_message_append(call, "hha{sv}", old_fd, new_fd, 1, "allow_final_try",
					  "b", arg_allow_final_try);
	if (old_fd >= 0)
		close(old_fd);
	if (new_fd >= 0)
		close(new_fd);
	if (r >= 0)
		r = sd_bus_call(bus, call, 120 * 1000000ULL, &error, NULL);
	if (r < 0) {
		int code = sd_bus_error_is_set(&error) ? exit_code_for_error(&error) : EXIT_FAILED;
		fprintf(stderr, _("Failed to change the PIN: %s\n"),
			sd_bus_error_is_set(&error) ? error.message : strerror(-r));
		if (code == EXIT_PIN_LOCKED && *json_str(token, "support"))
			fprintf(stderr, _("Only the CA can unlock it: %s\n"),
				json_str(token, "support"));
		sd_bus_error_free(&error);
		return code;
	}
	printf(_("The PIN of token %s was changed.\n"), json_str(token, "serial"));
	return EXIT_DONE;
}

int verb_pin(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_json_ json_t *tokens = NULL;
	json_t *token = NULL;
	bool change = argc > 1 && streq(argv[1], "change");
	const char *name = change ? (argc > 2 ? argv[2] : NULL) : (argc > 1 ? argv[1] : NULL);
	int r;

	if ((change && argc > 3) || (!change && argc > 2)) {
		fprintf(stderr, _("Usage: safectl pin [TOKEN] | safectl pin change [TOKEN]\n"));
		return EXIT_FAILED;
	}
	if (bus_connect(&bus) < 0 || tokens_read(bus, &tokens) < 0)
		return EXIT_FAILED;
	r = token_select(tokens, name, &token);
	if (r != 0)
		return r;
	return change ? change_pin(bus, token) : show_pin(token);
}
