/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "i18n.h"
#include "safectl.h"

#define WARN_DAYS 30
/* Columns of the labels in status and show, and of a certificate's in show. */
#define LABEL_WIDTH 13
#define DETAIL_WIDTH 11

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
		printf(ngettext("EXPIRED %lld day ago", "EXPIRED %lld days ago", (unsigned long)-d),
		       (long long)-d);
	else if (d < WARN_DAYS)
		printf(ngettext("%lld day left  <-- renew soon", "%lld days left  <-- renew soon",
				(unsigned long)d),
		       (long long)d);
	else
		printf(ngettext("%lld day left", "%lld days left", (unsigned long)d), (long long)d);
}

/* Blanks after label up to width columns, then one more: printf's %-13s
 * counts bytes, and most Vietnamese letters take two or three. */
static void print_label(int indent, const char *label, int width)
{
	int columns = -1;
	size_t n = mbstowcs(NULL, label, 0);

	if (n != (size_t)-1) {
		wchar_t *wide = calloc(n + 1, sizeof(wchar_t));
		if (wide && mbstowcs(wide, label, n + 1) != (size_t)-1)
			columns = wcswidth(wide, n);
		free(wide);
	}
	if (columns < 0)
		columns = (int)strlen(label);
	printf("%*s%s%*s ", indent, "", label, columns < width ? width - columns : 0, "");
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
	json_t *c, *current = NULL, *activation;
	size_t i;

	json_array_foreach(certificates, i, c) if (json_is_true(json_object_get(c, "current")))
	    current = c;

	if (json_is_true(json_object_get(token, "present")))
		printf("%s\n", json_str(token, "label"));
	else
		printf("%s %s\n", json_str(token, "label"), _("(not plugged in)"));
	/* TRANSLATORS: this label and the others of status and show before a
	 * value: at most 13 columns, or the values no longer line up. */
	print_label(2, _("Serial:"), LABEL_WIDTH);
	printf("%s\n", json_str(token, "serial"));
	print_label(2, _("Token:"), LABEL_WIDTH);
	printf("%s %s\n", json_str(token, "manufacturer"), json_str(token, "model"));
	print_label(2, _("PIN:"), LABEL_WIDTH);
	printf("%s\n", pin_text(json_str(token, "pin")));
	if (json_is_true(json_object_get(token, "pin_must_change"))) {
		print_label(2, "", LABEL_WIDTH);
		printf("%s\n", _("the token asks for a new PIN"));
	}
	print_label(2, _("CA:"), LABEL_WIDTH);
	printf("%s\n", json_is_string(profile) ? json_string_value(profile) : _("unknown"));
	print_label(2, _("Certificate:"), LABEL_WIDTH);
	if (current) {
		print_name(stdout, json_object_get(current, "subject"), true);
		putchar('\n');
		print_label(2, _("Serial no.:"), LABEL_WIDTH);
		printf("%s\n", json_str(current, "serial"));
		print_label(2, _("Expires:"), LABEL_WIDTH);
		print_date(json_str(current, "not_after"));
		printf(", ");
		print_days(days);
		putchar('\n');
	} else
		printf("%s\n", _("none with its key on the token"));
	if (details) {
		print_label(2, _("URI:"), LABEL_WIDTH);
		printf("%s\n", json_str(token, "uri"));
		json_array_foreach(certificates, i, c)
		{
			printf(json_is_true(json_object_get(c, "current"))
				   ? _("\n  Certificate %s (current)\n")
				   : _("\n  Certificate %s\n"),
			       json_str(c, "serial"));
			/* TRANSLATORS: this label and the four below it: at
			 * most 11 columns, or the values no longer line up. */
			print_label(4, _("Subject:"), DETAIL_WIDTH);
			print_name(stdout, json_object_get(c, "subject"), false);
			putchar('\n');
			print_label(4, _("Issuer:"), DETAIL_WIDTH);
			print_name(stdout, json_object_get(c, "issuer"), false);
			putchar('\n');
			print_label(4, _("Valid:"), DETAIL_WIDTH);
			print_date(json_str(c, "not_before"));
			printf(" – ");
			print_date(json_str(c, "not_after"));
			putchar('\n');
			print_label(4, _("SHA-256:"), DETAIL_WIDTH);
			printf("%s\n", json_str(c, "sha256"));
			print_label(4, _("Key ID:"), DETAIL_WIDTH);
			printf(json_is_false(json_object_get(c, "has_key"))
				   ? _("%s (no key on the token)\n")
				   : "%s\n",
			       json_str(c, "key_id"));
		}
	}
	if (json_array_size(json_object_get(token, "pending")) > 0) {
		const char *id;
		json_t *why;

		print_label(2, _("Pending:"), LABEL_WIDTH);
		printf("%zu\n", json_array_size(json_object_get(token, "pending")));
		json_object_foreach(json_object_get(token, "not_activatable"), id, why)
		{
			print_label(2, "", LABEL_WIDTH);
			/* TRANSLATORS: the action id, then why (e.g. "the token
			 * cannot make P-256 keys"). */
			printf(_("\"%s\" cannot be activated on this token: %s\n"), id,
			       json_string_value(why));
		}
	}
	activation = json_object_get(token, "activation");
	if (json_is_string(json_object_get(activation, "write_error"))) {
		print_label(2, _("Kept:"), LABEL_WIDTH);
		/* TRANSLATORS: why the token did not take the certificate,
		 * then the token's serial. */
		printf(_("the CA's new certificate, checked; the token did not take it (%s). Save "
			 "it with \"safectl export %s --issued\", or activate again once the token "
			 "can take it.\n"),
		       json_str(activation, "write_error"), json_str(token, "serial"));
	}
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
