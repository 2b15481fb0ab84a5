/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <string.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "action.h"
#include "bus-names.h"
#include "i18n.h"
#include "pin.h"
#include "safectl.h"

#define ACTIVATE_TIMEOUT_USEC (20ULL * 60 * 1000000)
#define CHECK_TIMEOUT_USEC (5ULL * 60 * 1000000)

int exit_code_for_error(const sd_bus_error *error)
{
	static const struct {
		const char *name;
		int code;
	} map[] = {
	    {SAFECAD_ERROR_NOTHING_TO_DO, EXIT_NOTHING},
	    {SAFECAD_ERROR_WRONG_PIN, EXIT_WRONG_PIN},
	    {SAFECAD_ERROR_PIN_LENGTH, EXIT_FAILED},
	    {SAFECAD_ERROR_AGENCIES_PENDING, EXIT_FAILED},
	    {SAFECAD_ERROR_PIN_LOCKED, EXIT_PIN_LOCKED},
	    {SAFECAD_ERROR_CA, EXIT_CA},
	    {SD_BUS_ERROR_ACCESS_DENIED, EXIT_NOT_AUTHORIZED},
	    {"org.freedesktop.PolicyKit1.Error.NotAuthorized", EXIT_NOT_AUTHORIZED},
	    {SAFECAD_ERROR_FINAL_TRY, EXIT_FINAL_TRY},
	    {SAFECAD_ERROR_BUSY, EXIT_BUSY},
	    {SAFECAD_ERROR_DRIVER_FAILED, EXIT_FAILED},
	};

	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (sd_bus_error_has_name(error, map[i].name))
			return map[i].code;
	return EXIT_FAILED;
}

/* Text from the CA, shown as plain text (see ca_text_clean), at most 1024
 * characters. */
static void print_ca_text(const char *s)
{
	_cleanup_free_ char *clean = ca_text_clean(s, 1024);

	if (clean)
		fputs(clean, stdout);
}

int call_check(sd_bus *bus, json_t *token, json_t **ret_pending)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	const char *text;
	int r;

	r = sd_bus_message_new_method_call(bus, &call, SAFECAD_BUS_NAME, json_str(token, "path"),
					   SAFECAD_TOKEN_INTERFACE, "Check");
	if (r >= 0)
		r = sd_bus_call(bus, call, CHECK_TIMEOUT_USEC, &error, &reply);
	if (r < 0) {
		int code = exit_code_for_error(&error);
		fprintf(stderr, _("Failed to ask the CA: %s\n"),
			sd_bus_error_is_set(&error) ? error.message : strerror(-r));
		sd_bus_error_free(&error);
		return code;
	}
	r = sd_bus_message_read(reply, "s", &text);
	if (r < 0)
		return EXIT_FAILED;
	*ret_pending = json_loads(text, 0, NULL);
	return *ret_pending ? 0 : EXIT_FAILED;
}

static bool type_wanted(json_t *action)
{
	const char *type = json_str(action, "type");

	if (arg_action_type)
		return streq(type, arg_action_type);
	return true;
}

static void print_pair_list(json_t *name)
{
	size_t i;
	json_t *pair;

	json_array_foreach(name, i, pair)
	{
		printf("      %-14s ", json_string_value(json_array_get(pair, 0)));
		print_ca_text(strempty(json_string_value(json_array_get(pair, 1))));
		putchar('\n');
	}
}

static json_t *current_certificate(json_t *token)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(token, "certificates"), i,
			   c) if (json_is_true(json_object_get(c, "current"))) return c;
	return NULL;
}

static void print_action(json_t *token, json_t *action)
{
	json_t *current = current_certificate(token);
	bool renew = streq(json_str(action, "type"), "renew");

	printf(renew ? _("The CA has a RENEWAL (gia hạn) ready for token %s.\n")
		     : _("The CA has a CHANGE OF INFORMATION (thay đổi thông tin) ready for token "
			 "%s.\n"),
	       json_str(token, "serial"));
	printf(_("  Action:          %s\n"), json_str(action, "id"));
	if (current)
		printf(_("  Now:             certificate %s, valid %s to %s\n"),
		       json_str(current, "serial"), json_str(current, "not_before"),
		       json_str(current, "not_after"));
	if (json_is_string(json_object_get(action, "not_after")))
		printf(_("  New validity:    %s to %s\n"), json_str(action, "not_before"),
		       json_str(action, "not_after"));
	else
		/* A CMP renewal: the CA sets it when it issues. */
		printf(_("  New validity:    set by the CA when it issues the certificate\n"));
	if (!renew && current) {
		printf(_("  Details now:\n"));
		print_pair_list(json_object_get(current, "subject"));
	}
	printf(_("  New details:\n"));
	print_pair_list(json_object_get(action, "subject"));
	printf(json_is_true(json_object_get(json_object_get(action, "key"), "generate"))
		   ? _("  Key:             a new key is made on the token\n")
		   : _("  Key:             the token's current key is certified again\n"));
	if (json_is_string(json_object_get(action, "message"))) {
		printf(_("  Message from the CA:\n    "));
		print_ca_text(json_str(action, "message"));
		putchar('\n');
	}
	printf(_("\nBefore you activate, know three things:\n"
		 "  1. The certificate's serial number changes. You MUST register the new\n"
		 "     certificate again with every agency you use (tax, customs, e-invoice,\n"
		 "     social insurance, national e-procurement).\n"
		 "  2. Customs and e-invoice systems accept a newly registered certificate\n"
		 "     only 24 hours after registration: sign every pending invoice and\n"
		 "     declaration BEFORE activating.\n"));
	/* A CMP CA is never told to keep the previous registration. */
	if (streq(json_str(action, "protocol"), "cmp"))
		printf(_("  3. To keep bidding on muasamcong.mpi.gov.vn without interruption, ask\n"
			 "     the CA yourself to keep the previous certificate's registration:\n"
			 "     this renewal does not tell it.\n\n"));
	else
		printf(_("  3. To keep bidding on muasamcong.mpi.gov.vn without interruption, the "
			 "CA\n"
			 "     can keep the previous certificate's registration.\n\n"));
}

static bool ask_yes_no(const char *question, bool default_yes)
{
	char line[16] = "";

	printf("%s %s ", question, default_yes ? "[Y/n]" : "[y/N]");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	/* Answers from a pipe are shown, as a terminal would echo them. */
	if (!isatty(STDIN_FILENO))
		fputs(line, stdout);
	if (line[0] == '\n')
		return default_yes;
	return line[0] == 'y' || line[0] == 'Y';
}

static int on_progress(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	static const struct {
		const char *step;
		const char *text;
	} steps[] = {
	    {"accepted", N_("Accepted")},
	    {"logged-in", N_("Logged in to the token")},
	    {"key-ready", N_("Key ready")},
	    {"csr-sent", N_("Request sent to the CA")},
	    {"issued", N_("Certificate received")},
	    {"verified", N_("Certificate checked")},
	    {"written", N_("Certificate written to the token")},
	    {"confirmed", N_("Confirmed with the CA")},
	};
	const char *action, *step;

	if (sd_bus_message_read(m, "ss", &action, &step) < 0)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(steps); i++)
		if (streq(steps[i].step, step))
			fprintf(arg_json ? stderr : stdout, "  [%zu/8] %s\n", i + 1,
				_(steps[i].text));
	fflush(stdout);
	return 0;
}

typedef struct CallState {
	sd_bus_message *reply;
	sd_bus_error error;
	bool done;
	bool declined; /* the person said not to write the certificate */
} CallState;

static void print_name(const char *label, json_t *name)
{
	size_t i;
	json_t *pair;

	printf("  %s", label);
	json_array_foreach(name, i, pair)
	    printf("%s%s=%s", i ? ", " : "", json_string_value(json_array_get(pair, 0)),
		   json_string_value(json_array_get(pair, 1)));
	printf("\n");
}

/* The guide's "check the issued certificate's details → Confirm": the
 * daemon stopped before writing and waits for this answer. */
static int on_write_requested(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	CallState *state = userdata;
	_cleanup_json_ json_t *certificate = NULL;
	const char *action, *text;
	bool write;

	if (sd_bus_message_read(m, "ss", &action, &text) < 0 ||
	    !(certificate = json_loads(text, 0, NULL)))
		return 0;
	printf(_("\nThe CA issued this certificate, and it passed every check:\n"));
	print_name(_("Subject:  "), json_object_get(certificate, "subject"));
	printf(_("  Serial:   %s\n  Valid:    %s to %s\n"), json_str(certificate, "serial"),
	       json_str(certificate, "not_before"), json_str(certificate, "not_after"));
	print_name(_("Issuer:   "), json_object_get(certificate, "issuer"));
	write = ask_yes_no(_("Write this certificate to the token?"), false);
	state->declined = !write;
	(void)sd_bus_call_method_async(sd_bus_message_get_bus(m), NULL, SAFECAD_BUS_NAME,
				       sd_bus_message_get_path(m), SAFECAD_TOKEN_INTERFACE,
				       "ConfirmWrite", NULL, NULL, "sb", action, write);
	return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	CallState *state = userdata;

	state->done = true;
	if (sd_bus_message_is_method_error(m, NULL))
		sd_bus_error_copy(&state->error, sd_bus_message_get_error(m));
	else
		state->reply = sd_bus_message_ref(m);
	return 0;
}

static void print_result(json_t *result)
{
	size_t i;
	json_t *agency;

	printf(_("\nThe new certificate is loaded on the token.\n"));
	printf(_("  Previous serial: %s\n  New serial:      %s\n"), json_str(result, "old_serial"),
	       json_str(result, "new_serial"));
	if (json_is_true(json_object_get(result, "closed")))
		printf(_("  The CA was never told this certificate was received (%s), and it "
			 "cannot be told now: the activation is closed. If the CA asks, call its "
			 "support.\n"),
		       json_str(result, "confirm_error"));
	else if (!json_is_true(json_object_get(result, "confirmed")))
		printf(_("  The CA has not confirmed yet (%s). Run the same activate command "
			 "again later: only the confirmation is left.\n"),
		       json_str(result, "confirm_error"));
	printf(_("\nStep 3 (mandatory): register the new certificate with every agency:\n"));
	json_array_foreach(json_object_get(result, "agencies"), i, agency)
	    printf("  [ ] %-14s %s  %s\n", json_str(agency, "id"), json_str(agency, "name"),
		   json_str(agency, "url"));
	printf(_("Tick each one when done: safectl agencies done ID...\n"));
}

static int run_activation(sd_bus *bus, json_t *token, const char *action_id, Pin *pin)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
	CallState state = {.error = SD_BUS_ERROR_NULL};
	int fd;
	sd_event *event = NULL;
	const char *text;
	int r, code;

	fd = pin_pipe(pin);
	if (fd < 0)
		return EXIT_FAILED;

	r = sd_bus_match_signal(bus, NULL, SAFECAD_BUS_NAME, json_str(token, "path"),
				SAFECAD_TOKEN_INTERFACE, "ActivationProgress", on_progress, NULL);
	/* Without --yes the person sees the issued certificate and says
	 * whether it is written. */
	if (r >= 0 && !arg_yes)
		r = sd_bus_match_signal(bus, NULL, SAFECAD_BUS_NAME, json_str(token, "path"),
					SAFECAD_TOKEN_INTERFACE, "WriteRequested",
					on_write_requested, &state);
	if (r >= 0)
		r = sd_bus_message_new_method_call(bus, &call, SAFECAD_BUS_NAME,
						   json_str(token, "path"), SAFECAD_TOKEN_INTERFACE,
						   "Activate");
	if (r >= 0)
		r = sd_bus_message_append(call, "sh", action_id, fd);
	close(fd);
	if (r >= 0)
		r = sd_bus_message_append(call, "a{sv}", 3, "keep_previous", "b", arg_keep_previous,
					  "allow_final_try", "b", arg_allow_final_try,
					  "confirm_before_write", "b", !arg_yes);
	if (r >= 0)
		r = sd_bus_call_async(bus, NULL, call, on_reply, &state, ACTIVATE_TIMEOUT_USEC);
	if (r >= 0)
		r = sd_event_default(&event);
	if (r >= 0)
		r = sd_bus_attach_event(bus, event, 0);
	while (r >= 0 && !state.done)
		r = sd_event_run(event, UINT64_MAX);
	sd_bus_detach_event(bus);
	sd_event_unref(event);
	if (r < 0) {
		fprintf(stderr, _("Failed to activate: %s\n"), strerror(-r));
		return EXIT_FAILED;
	}
	if (sd_bus_error_is_set(&state.error) && state.declined &&
	    sd_bus_error_has_name(&state.error, SAFECAD_ERROR_NOT_WRITTEN)) {
		/* safecad says what became of the certificate (kept, or for
		 * CMP refused at the CA). */
		printf("%s\n", state.error.message);
		sd_bus_error_free(&state.error);
		return EXIT_NOTHING;
	}
	if (sd_bus_error_is_set(&state.error)) {
		code = exit_code_for_error(&state.error);
		if (code == EXIT_FAILED &&
		    (sd_bus_error_has_name(&state.error, SD_BUS_ERROR_NO_REPLY) ||
		     sd_bus_error_has_name(&state.error, SD_BUS_ERROR_SERVICE_UNKNOWN)))
			fprintf(stderr, _("Failed to activate: safecad stopped answering (%s).\n"),
				state.error.message);
		else
			fprintf(stderr, _("Failed to activate: %s\n"), state.error.message);
		sd_bus_error_free(&state.error);
		return code;
	}
	r = sd_bus_message_read(state.reply, "s", &text);
	if (r >= 0) {
		_cleanup_json_ json_t *result = json_loads(text, 0, NULL);
		if (arg_json)
			json_print(result);
		else if (result)
			print_result(result);
	}
	sd_bus_message_unref(state.reply);
	return EXIT_DONE;
}

static int read_pin(Pin **ret)
{
	Pin *pin = NULL;
	int r = pin_new(&pin);

	if (r < 0)
		return r;
	if (arg_pin_fd >= 0)
		r = pin_read_fd(pin, arg_pin_fd, monotonic_usec() + PIN_FD_TIMEOUT_USEC);
	else
		r = pin_read_tty(pin, _("PIN (not shown): "));
	if (r < 0) {
		pin_free(pin);
		if (r == -ENOTTY)
			fprintf(stderr, _("No terminal to ask the PIN on; use --pin-fd.\n"));
		else
			fprintf(stderr, _("Failed to read the PIN: %s\n"),
				r == -ENODATA ? _("it is empty") : strerror(-r));
		return r;
	}
	*ret = pin;
	return 0;
}

int verb_activate(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_json_ json_t *tokens = NULL, *pending = NULL;
	json_t *token = NULL, *action = NULL, *entry, *activation;
	const char *action_id = argc > 2 ? argv[2] : NULL;
	Pin *pin = NULL;
	size_t i, n = 0;
	int r;

	if (streq(argv[0], "renew"))
		arg_action_type = "renew";
	else if (streq(argv[0], "change"))
		arg_action_type = "change";
	if (bus_connect(&bus) < 0 || tokens_read(bus, &tokens) < 0)
		return EXIT_FAILED;
	r = token_select(tokens, argc > 1 ? argv[1] : NULL, &token);
	if (r != 0)
		return r;

	/* An interrupted activation is carried on with the same action. */
	activation = json_object_get(token, "activation");
	if (!action_id && json_is_object(activation))
		action_id = json_str(activation, "action");

	/* Named, with no questions: the daemon asks the CA itself, so there
	 * is nothing to show first. */
	if (!(action_id && arg_yes) && (!action_id || !json_is_object(activation) ||
					!streq(json_str(activation, "action"), action_id))) {
		r = call_check(bus, token, &pending);
		if (r != 0)
			return r;
		json_array_foreach(pending, i, entry)
		{
			if (action_id ? streq(json_str(entry, "id"), action_id)
				      : (type_wanted(entry) && action_activatable(entry))) {
				action = entry;
				n++;
			}
		}
		if (n == 0) {
			if (action_id)
				fprintf(stderr, _("The CA has no action \"%s\" for this token.\n"),
					action_id);
			else if (streq_ptr(arg_action_type, "renew"))
				fputs(
				    _("Nothing to activate: the CA has no pending renewal for this "
				      "token.\n"),
				    stderr);
			else if (streq_ptr(arg_action_type, "change"))
				fputs(_("Nothing to activate: the CA has no pending change of "
					"information for this token.\n"),
				      stderr);
			else
				fputs(
				    _("Nothing to activate: the CA has no pending action for this "
				      "token.\n"),
				    stderr);
			return EXIT_NOTHING;
		}
		if (n > 1) {
			fprintf(stderr, _("Several actions are pending; name one:\n"));
			json_array_foreach(pending, i, entry) if (type_wanted(entry) &&
								  action_activatable(entry))
			    /* TRANSLATORS: an action id, its type (renew or change, as
			     * the CA names it), and the new certificate's validity. */
			    fprintf(stderr, _("  %-20s %s, %s to %s\n"), json_str(entry, "id"),
				    json_str(entry, "type"), json_str(entry, "not_before"),
				    json_str(entry, "not_after"));
			return EXIT_FAILED;
		}
		if (!action_activatable(action)) {
			fprintf(stderr, _("Action %s (%s) is not one safecad can activate.\n"),
				json_str(action, "id"), json_str(action, "type"));
			return EXIT_NOTHING;
		}
		/* Known before the PIN is asked: this token cannot do it. */
		if (json_is_string(json_object_get(json_object_get(token, "not_activatable"),
						   json_str(action, "id")))) {
			fprintf(stderr,
				_("Action %s cannot be activated on token %s: %s. Nothing was "
				  "sent to the CA. Support: %s.\n"),
				json_str(action, "id"), json_str(token, "serial"),
				json_str(json_object_get(token, "not_activatable"),
					 json_str(action, "id")),
				json_str(token, "support"));
			return EXIT_NOTHING;
		}
		action_id = json_str(action, "id");
	}

	if (!arg_yes) {
		if (action)
			print_action(token, action);
		else
			/* TRANSLATORS: the action id, the token's serial, and the
			 * last step done as safecad names it (key-ready, …). */
			printf(_("Continuing the interrupted activation %s of token %s (stopped "
				 "after: %s).\n"),
			       action_id, json_str(token, "serial"), json_str(activation, "step"));
		if (!ask_yes_no(_("Accept and activate?"), false)) {
			printf(_("Nothing was changed.\n"));
			return EXIT_NOTHING;
		}
		if (!arg_keep_previous_set && !streq(json_str(action, "protocol"), "cmp"))
			arg_keep_previous = ask_yes_no(
			    _("Ask the CA to keep the previous certificate's registration?"), true);
	}
	if (streq(json_str(token, "pin"), "final-try") && !arg_allow_final_try) {
		fprintf(stderr, _("The token locks at the next wrong PIN. Nothing was tried; if "
				  "you are sure of the PIN, add --allow-final-try.\n"));
		return EXIT_FINAL_TRY;
	}
	if (read_pin(&pin) < 0)
		return EXIT_FAILED;
	r = run_activation(bus, token, action_id, pin);
	pin_free(pin);
	return r;
}
