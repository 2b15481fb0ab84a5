/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "i18n.h"
#include "safectl.h"
#include "terminal-text.h"
#include "util.h"

bool arg_json;
bool arg_yes;
int arg_pin_fd = -1;
int arg_new_pin_fd = -1;
bool arg_keep_previous = true;
bool arg_keep_previous_set;
bool arg_allow_final_try;
const char *arg_action_type;
const char *arg_action;
bool arg_der;
bool arg_issued;
bool arg_force;
const char *arg_output;

typedef struct Verb {
	const char *name;
	int min_args; /* counting the verb */
	int max_args;
	int (*run)(int argc, char *argv[]);
	bool is_default;
} Verb;

static const Verb verbs[] = {
    {"status", 1, 1, verb_status, true},
    {"show", 1, 2, verb_show, false},
    {"watch", 1, 1, verb_watch, false},
    {"check", 1, 2, verb_check, false},
    {"activate", 1, 3, verb_activate, false},
    {"renew", 1, 3, verb_activate, false},
    {"change", 1, 3, verb_activate, false},
    {"history", 1, 1, verb_history, false},
    {"agencies", 1, 66, verb_agencies, false},
    {"export", 1, 2, verb_export, false},
    {"pin", 1, 3, verb_pin, false},
    {"remove-previous", 1, 2, verb_remove_previous, false},
};

static void help(void)
{
	printf(_(
	    "safectl [OPTIONS] [COMMAND] ...\n\n"
	    "Look after the certificate tokens that safecad manages.\n\n"
	    "Commands:\n"
	    "  status            Show every token, its certificate and days left (default)\n"
	    "  show [TOKEN]      Show one token in detail, with every certificate\n"
	    "  watch             Print token events as they come\n"
	    "  check [TOKEN]     Ask the CA now what is pending for the token\n"
	    "  activate [TOKEN [ACTION-ID]]\n"
	    "                    Activate what the CA prepared (renewal or change)\n"
	    "  renew [TOKEN]     Activate the pending renewal\n"
	    "  change [TOKEN]    Activate the pending change of information\n"
	    "  history           List the activations done\n"
	    "  agencies [done ID...]\n"
	    "                    Show (or tick) the Step 3 agencies of the latest activation\n"
	    "  export [TOKEN]    Write the current certificate (PEM, or DER with --der)\n"
	    "  pin [TOKEN]       Show the PIN status\n"
	    "  pin change [TOKEN]\n"
	    "                    Change the PIN (asked without echo, or --pin-fd/--new-pin-fd)\n"
	    "  remove-previous [TOKEN]\n"
	    "                    Remove the certificate and key the latest activation replaced\n\n"
	    "TOKEN is a serial number, a label or a PKCS#11 URI; it may be left out when\n"
	    "only one token is present.\n\n"
	    "Options:\n"
	    "  -h --help         Show this help\n"
	    "     --version      Show the version\n"
	    "     --json         Print JSON, the stable form for scripts\n"
	    "     --yes          Ask no questions (activate)\n"
	    "     --pin-fd N     Read the PIN from file descriptor N (never give it as an "
	    "argument)\n"
	    "     --keep-previous / --no-keep-previous\n"
	    "                    Ask the CA to keep (or not) the previous certificate's "
	    "registration\n"
	    "     --old-pin-fd N, --new-pin-fd M\n"
	    "                    Read the current and the new PIN from descriptors (pin change)\n"
	    "     --allow-final-try\n"
	    "                    Log in even when one more wrong PIN locks the token\n"
	    "     --action ID    The activation that agencies refers to (default: the latest)\n"
	    "     --force        remove-previous even though Step 3 is not ticked off\n"
	    "     --der          Export DER instead of PEM\n"
	    "     --issued       Export the certificate the CA issued that the token did not take\n"
	    "  -o --output FILE  Export to FILE instead of standard output\n"));
}

static int parse_argv(int argc, char *argv[])
{
	enum {
		ARG_VERSION = 0x100,
		ARG_JSON,
		ARG_YES,
		ARG_PIN_FD,
		ARG_KEEP,
		ARG_NO_KEEP,
		ARG_FINAL_TRY,
		ARG_ACTION,
		ARG_DER,
		ARG_ISSUED,
		ARG_OLD_PIN_FD,
		ARG_NEW_PIN_FD,
		ARG_FORCE,
	};
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, ARG_VERSION},
	    {"json", no_argument, NULL, ARG_JSON},
	    {"yes", no_argument, NULL, ARG_YES},
	    {"pin-fd", required_argument, NULL, ARG_PIN_FD},
	    {"keep-previous", no_argument, NULL, ARG_KEEP},
	    {"no-keep-previous", no_argument, NULL, ARG_NO_KEEP},
	    {"allow-final-try", no_argument, NULL, ARG_FINAL_TRY},
	    {"action", required_argument, NULL, ARG_ACTION},
	    {"der", no_argument, NULL, ARG_DER},
	    {"issued", no_argument, NULL, ARG_ISSUED},
	    {"old-pin-fd", required_argument, NULL, ARG_OLD_PIN_FD},
	    {"new-pin-fd", required_argument, NULL, ARG_NEW_PIN_FD},
	    {"force", no_argument, NULL, ARG_FORCE},
	    {"output", required_argument, NULL, 'o'},
	    {},
	};
	unsigned fd;
	int c;

	while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0)
		switch (c) {
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("safectl %s\n", PACKAGE_VERSION);
			return 0;
		case ARG_JSON:
			arg_json = true;
			break;
		case ARG_YES:
			arg_yes = true;
			break;
		case ARG_PIN_FD:
		case ARG_OLD_PIN_FD:
		case ARG_NEW_PIN_FD:
			if (parse_unsigned(optarg, 0, 65535, &fd) < 0 ||
			    fcntl((int)fd, F_GETFD) < 0) {
				fprintf(stderr,
					_("%s needs an open file descriptor, not \"%s\".\n"),
					c == ARG_NEW_PIN_FD ? "--new-pin-fd" : "--pin-fd", optarg);
				return -EINVAL;
			}
			if (c == ARG_NEW_PIN_FD)
				arg_new_pin_fd = (int)fd;
			else
				arg_pin_fd = (int)fd;
			break;
		case ARG_KEEP:
		case ARG_NO_KEEP:
			arg_keep_previous = c == ARG_KEEP;
			arg_keep_previous_set = true;
			break;
		case ARG_FINAL_TRY:
			arg_allow_final_try = true;
			break;
		case ARG_ACTION:
			arg_action = optarg;
			break;
		case ARG_FORCE:
			arg_force = true;
			break;
		case ARG_DER:
			arg_der = true;
			break;
		case ARG_ISSUED:
			arg_issued = true;
			break;
		case 'o':
			arg_output = optarg;
			break;
		default:
			return -EINVAL;
		}
	return 1;
}

static int dispatch(int argc, char *argv[])
{
	const Verb *verb = NULL;
	char *default_argv[] = {(char *)"status", NULL};

	if (argc == 0) {
		argc = 1;
		argv = default_argv;
	}
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		if (streq(verbs[i].name, argv[0]))
			verb = &verbs[i];
	if (!verb) {
		fprintf(stderr, _("Unknown command \"%s\". See safectl --help.\n"), argv[0]);
		return EXIT_FAILED;
	}
	if (argc < verb->min_args || argc > verb->max_args) {
		fprintf(stderr, _("Wrong number of arguments for \"%s\". See safectl --help.\n"),
			verb->name);
		return EXIT_FAILED;
	}
	return verb->run(argc, argv);
}

int main(int argc, char *argv[])
{
	int r;

	i18n_init();

	r = parse_argv(argc, argv);
	if (r <= 0)
		return r < 0 ? EXIT_FAILED : EXIT_DONE;
	/* What a token, a certificate or a CA says reaches the terminal
	 * cleaned; a script's JSON and an exported certificate go out as
	 * they are. */
	r = terminal_text_install(arg_json || (optind < argc && streq(argv[optind], "export")));
	if (r < 0) {
		fprintf(stderr, "safectl: %s\n", strerror(-r));
		return EXIT_FAILED;
	}
	/* Options may also follow the verb ("safectl status --json"). */
	return dispatch(argc - optind, argv + optind);
}
