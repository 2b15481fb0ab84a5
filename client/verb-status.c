/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>
#include <time.h>

#include "i18n.h"
#include "safectl.h"

#define WARN_DAYS 30

/* The value of the name's CN, or the whole name in one line. */
static void print_name(FILE *f, json_t *name, bool short_form)
{
	size_t i;
	json_t *pair;
	bool first = true;

	if (short_form)
		json_array_foreach(
		    name, i,
		    pair) if (streq(json_string_value(json_array_get(pair, 0)) ?: "", "CN"))
		{
			fputs(json_string_value(json_array_get(pair, 1)), f);
			return;
		}
	json_array_foreach(name, i, pair)
	{
		fprintf(f, "%s%s=%s", first ? "" : ", ", json_string_value(json_array_get(pair, 0)),
			json_string_value(json_array_get(pair, 1)));
		first = false;
	}
}

static const char *pin_text(const char *pin)
{
	if (streq(pin, "ok"))
		return _("ok");
	if (streq(pin, "count-low"))
		return _("a wrong PIN was entered: tries are running out");
	if (streq(pin, "final-try"))
		return _("FINAL TRY: one more wrong PIN locks the token");
	if (streq(pin, "locked"))
		return _("LOCKED: the CA must unlock it");
	return pin;
}

static void print_days(json_t *days)
{
	json_int_t d = json_integer_value(days);

	if (d < 0)
		printf(_("EXPIRED %lld day(s) ago"), (long long)-d);
	else if (d < WARN_DAYS)
		printf(_("%lld day(s) left  <-- renew soon"), (long long)d);
	else
		printf(_("%lld day(s) left"), (long long)d);
}

static void print_date(const char *rfc3339)
{
	/* "2026-12-01T00:00:00Z" → "2026-12-01 00:00 UTC" */
	if (strlen(rfc3339) >= 16)
		printf("%.10s %.5s UTC", rfc3339, rfc3339 + 11);
	else
		fputs(rfc3339, stdout);
}

static void print_token(json_t *token, bool details)
{
	json_t *certificates = json_object_get(token, "certificates");
	json_t *profile = json_object_get(token, "profile");
	json_t *days = json_object_get(token, "days_left");
	json_t *c, *current = NULL;
	size_t i;

	json_array_foreach(certificates, i, c) if (json_is_true(json_object_get(c, "current")))
	    current = c;

	if (json_is_true(json_object_get(token, "present")))
		printf("%s\n", json_str(token, "label"));
	else
		printf("%s %s\n", json_str(token, "label"), _("(not plugged in)"));
	printf("  %-13s %s\n", _("Serial:"), json_str(token, "serial"));
	printf("  %-13s %s %s\n", _("Token:"), json_str(token, "manufacturer"),
	       json_str(token, "model"));
	printf("  %-13s %s\n", _("PIN:"), pin_text(json_str(token, "pin")));
	if (json_is_true(json_object_get(token, "pin_must_change")))
		printf("  %-13s %s\n", "", _("the token asks for a new PIN"));
	printf("  %-13s %s\n", _("CA:"),
	       json_is_string(profile) ? json_string_value(profile) : _("unknown"));
	if (current) {
		printf("  %-13s ", _("Certificate:"));
		print_name(stdout, json_object_get(current, "subject"), true);
		printf("\n  %-13s %s\n", _("Serial no.:"), json_str(current, "serial"));
		printf("  %-13s ", _("Expires:"));
		print_date(json_str(current, "not_after"));
		printf(", ");
		print_days(days);
		putchar('\n');
	} else
		printf("  %-13s %s\n", _("Certificate:"), _("none with its key on the token"));
	if (details) {
		printf("  %-13s %s\n", _("URI:"), json_str(token, "uri"));
		json_array_foreach(certificates, i, c)
		{
			printf("\n  %s %s%s\n", _("Certificate"), json_str(c, "serial"),
			       json_is_true(json_object_get(c, "current")) ? _(" (current)") : "");
			printf("    %-11s ", _("Subject:"));
			print_name(stdout, json_object_get(c, "subject"), false);
			printf("\n    %-11s ", _("Issuer:"));
			print_name(stdout, json_object_get(c, "issuer"), false);
			printf("\n    %-11s ", _("Valid:"));
			print_date(json_str(c, "not_before"));
			printf(" – ");
			print_date(json_str(c, "not_after"));
			printf("\n    %-11s %s\n", _("SHA-256:"), json_str(c, "sha256"));
			printf("    %-11s %s%s\n", _("Key ID:"), json_str(c, "key_id"),
			       json_is_false(json_object_get(c, "has_key"))
				   ? _(" (no key on the token)")
				   : "");
		}
	}
	if (json_array_size(json_object_get(token, "pending")) > 0)
		printf("  %-13s %zu\n", _("Pending:"),
		       json_array_size(json_object_get(token, "pending")));
}

int verb_status(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_json_ json_t *tokens = NULL;
	json_t *token;
	size_t i;

	if (bus_connect(&bus) < 0 || tokens_read(bus, &tokens) < 0)
		return EXIT_FAILED;
	if (arg_json) {
		_cleanup_json_ json_t *out = json_pack("{s:O}", "tokens", tokens);
		json_print(out);
		return EXIT_DONE;
	}
	if (json_array_size(tokens) == 0) {
		printf(_("No token found. Plug in your token.\n"));
		return EXIT_DONE;
	}
	json_array_foreach(tokens, i, token)
	{
		if (i > 0)
			putchar('\n');
		print_token(token, false);
	}
	return EXIT_DONE;
}

int verb_show(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_json_ json_t *tokens = NULL;
	json_t *token = NULL;
	int r;

	if (bus_connect(&bus) < 0 || tokens_read(bus, &tokens) < 0)
		return EXIT_FAILED;
	r = token_select(tokens, argc > 1 ? argv[1] : NULL, &token);
	if (r != 0)
		return r;
	if (arg_json)
		json_print(token);
	else
		print_token(token, true);
	return EXIT_DONE;
}
