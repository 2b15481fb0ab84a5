/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "build-config.h"
#include "i18n.h"
#include "safectl.h"

bool arg_json;

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
};

static void help(void)
{
	printf(_("safectl [OPTIONS] [COMMAND] ...\n\n"
		 "Look after the certificate tokens that safecad manages.\n\n"
		 "Commands:\n"
		 "  status            Show every token, its certificate and days left (default)\n"
		 "  show [TOKEN]      Show one token in detail, with every certificate\n"
		 "  watch             Print token events as they come\n\n"
		 "TOKEN is a serial number, a label or a PKCS#11 URI; it may be left out when\n"
		 "only one token is present.\n\n"
		 "Options:\n"
		 "  -h --help         Show this help\n"
		 "     --version      Show the version\n"
		 "     --json         Print JSON, the stable form for scripts\n"));
}

static int parse_argv(int argc, char *argv[])
{
	enum { ARG_VERSION = 0x100, ARG_JSON };
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, ARG_VERSION},
	    {"json", no_argument, NULL, ARG_JSON},
	    {},
	};
	int c;

	while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
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

	setlocale(LC_ALL, "");
	bindtextdomain("safecad", SAFECAD_LOCALEDIR);
	textdomain("safecad");

	r = parse_argv(argc, argv);
	if (r <= 0)
		return r < 0 ? EXIT_FAILED : EXIT_DONE;
	/* Options may also follow the verb ("safectl status --json"). */
	return dispatch(argc - optind, argv + optind);
}
