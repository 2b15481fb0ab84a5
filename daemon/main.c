/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "bus/bus-manager.h"
#include "bus-names.h"
#include "state/config.h"
#include "i18n.h"
#include "state/journal.h"
#include "bus/token.h"
#include "bus/context.h"
#include "log/log.h"
#include "macro.h"
#include "bus/metrics.h"
#include "bus/rescans.h"
#include "util.h"

#define DAILY_USEC (24ULL * 3600 * 1000000)

static void context_clear(Context *context)
{
	/* The threads first: they post to sources of the loop. */
	context->jobs = job_queue_free(context->jobs);
	metrics_clear(context);
	context->pcsc = pcsc_watch_free(context->pcsc);
	context->scanner = scanner_free(context->scanner);
	manager_clear(context);
	polkit_queries_free(&context->polkit_queries);
	context->token_slot = sd_bus_slot_unref(context->token_slot);
	context->object_manager_slot = sd_bus_slot_unref(context->object_manager_slot);
	context->manager_slot = sd_bus_slot_unref(context->manager_slot);
	context->bus = sd_bus_flush_close_unref(context->bus);
	context->event = sd_event_unref(context->event);
	profiles_clear(&context->profiles);
	config_clear(&context->config);
	json_decref(context->journals);
	context->journals = NULL;
	context->daily = sd_event_source_disable_unref(context->daily);
}

/* Activations that stopped before their key was ready changed nothing:
 * they go. The rest stay, shown as interrupted, until finished. */
static int load_journals(Context *context)
{
	json_t *journals = NULL, *kept = json_array();
	size_t i;
	json_t *journal;
	int r;

	r = journal_load_all(&journals);
	if (r < 0 || !kept) {
		json_decref(journals);
		json_decref(kept);
		return log_error_errno(r < 0 ? r : -ENOMEM,
				       "Failed to read the activation journals: %m");
	}
	json_array_foreach(journals, i, journal)
	{
		if (journal_step(journal) >= STEP_KEY_READY) {
			log_info("Activation %s of token %s was interrupted after %s.",
				 json_string_value(json_object_get(journal, "action_id")),
				 json_string_value(json_object_get(journal, "token")),
				 json_string_value(json_object_get(journal, "step")));
			json_array_append(kept, journal);
		} else if (json_object_get(journal, "new_key_id"))
			/* Stopped between naming the new key and recording it
			 * ready: kept out of sight, so the next attempt finds
			 * the key instead of making another. */
			json_array_append(kept, journal);
		else
			(void)journal_remove(journal);
	}
	json_decref(journals);
	context->journals = kept;
	return 0;
}

static int on_daily(sd_event_source *source, uint64_t usec, void *userdata)
{
	Context *context = userdata;

	for (size_t i = 0; i < context->n_tokens; i++) {
		token_check_expiry(context->tokens[i]);
		token_start_check(context->tokens[i]);
	}
	/* Days left changed. */
	metrics_changed(context);
	return sd_event_source_set_time_relative(source, DAILY_USEC);
}

static void on_scan_done(TokenList *list, uint64_t generation, void *userdata)
{
	Context *context = userdata;

	if (list) {
		manager_apply_scan(context, list);
		token_list_free(list);
	}
	rescans_complete(context, generation);
}

static void on_pcsc_changed(void *userdata)
{
	Context *context = userdata;

	(void)scanner_request(context->scanner);
}

static void on_pcsc_state(bool enabled, void *userdata)
{
	manager_set_hotplug(userdata, enabled);
}

static int start_tokens(Context *context)
{
	WorkerLimits limits = {
	    .call_timeout_sec = context->config.call_timeout_sec,
	    .keygen_timeout_sec = context->config.keygen_timeout_sec,
	};
	TokenList list = {};
	int r;

	r = scanner_new(context->event, &limits, &context->profiles, on_scan_done, context,
			&context->scanner);
	if (r < 0)
		return log_error_errno(r, "Failed to start the token scanner: %m");
	r = job_queue_new(context->event, &limits, &context->profiles, manager_job_event, context,
			  &context->jobs);
	if (r < 0)
		return log_error_errno(r, "Failed to set up token jobs: %m");
	/* A module that fails here (it crashed, it hangs) must not keep the
	 * service off the bus: it starts with no tokens, and the next rescan
	 * or hotplug event tries again. */
	r = scanner_scan_now(context->scanner, &list);
	if (r < 0)
		log_warning_errno(r, "Cannot read the tokens at start (%m); carrying on without "
				     "them until the next scan.");
	manager_apply_scan(context, &list);
	token_list_clear(&list);
	r = manager_add_absent_tokens(context);
	if (r < 0)
		return log_error_errno(r, "Failed to list interrupted activations: %m");
	/* While a token stays in, the CA is asked once a day. */
	r = sd_event_add_time_relative(context->event, &context->daily, CLOCK_BOOTTIME, DAILY_USEC,
				       3600 * 1000000ULL, on_daily, context);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the daily check: %m");
	return sd_event_source_set_enabled(context->daily, SD_EVENT_ON);
}

static void start_hotplug(Context *context)
{
	int r =
	    pcsc_watch_new(context->event, on_pcsc_changed, on_pcsc_state, context, &context->pcsc);

	context->hotplug = r >= 0;
	if (r == -ENXIO)
		log_notice("pcscd cannot be reached: hotplug is off. Tokens are read at start "
			   "and on Rescan().");
	else if (r < 0)
		log_warning_errno(r, "Cannot watch PC/SC (%m): hotplug is off. Tokens are read at "
				     "start and on Rescan().");
}

static int run(void)
{
	_cleanup_(context_clear) Context context = {};
	sigset_t mask;
	int r;

	r = config_load_all(&context.config, &context.profiles);
	if (r < 0)
		return r;
	r = load_journals(&context);
	if (r < 0)
		return r;
	/* Blocked before any thread starts, so only the loop sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(errno, "Failed to block signals: %m");
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_default(&context.event);
	if (r < 0)
		return log_error_errno(r, "Failed to allocate the event loop: %m");
	r = sd_event_add_signal(context.event, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(context.event, NULL, SIGINT, NULL, NULL);
	if (r < 0)
		return log_error_errno(r, "Failed to install signal handlers: %m");
	/* Pings only when systemd asks for it (WATCHDOG_USEC). */
	r = sd_event_set_watchdog(context.event, true);
	if (r < 0)
		log_warning_errno(r, "Cannot set up the watchdog: %m, ignoring.");

	r = sd_bus_open_system(&context.bus);
	if (r < 0)
		return log_error_errno(r, "Failed to connect to the system bus: %m");
	/* Without the bus there is no service: stop, and let systemd start
	 * it again. */
	r = sd_bus_set_exit_on_disconnect(context.bus, true);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the bus connection: %m");
	r = sd_bus_attach_event(context.bus, context.event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return log_error_errno(r, "Failed to attach the bus to the loop: %m");
	r = bus_manager_register(&context);
	if (r < 0)
		return log_error_errno(r, "Failed to register the bus objects: %m");

	r = start_tokens(&context);
	if (r < 0)
		return r;
	start_hotplug(&context);

	r = sd_bus_request_name(context.bus, SAFECAD_BUS_NAME, 0);
	if (r < 0)
		return log_error_errno(r, "Failed to own the bus name %s: %m", SAFECAD_BUS_NAME);

	log_info("safecad %s ready: %zu token(s), %zu CA profile(s).", PACKAGE_VERSION,
		 context.n_tokens, context.profiles.n_items);
	(void)sd_notifyf(false, "READY=1\nSTATUS=%zu token(s), hotplug %s", context.n_tokens,
			 context.hotplug ? "on" : "off");
	metrics_changed(&context);

	r = sd_event_loop(context.event);
	(void)sd_notify(false, "STOPPING=1");
	if (r < 0)
		return log_error_errno(r, "Event loop failed: %m");
	if (r > 0)
		return log_error_errno(ECONNRESET, "Lost the connection to the system bus.");
	return 0;
}

static void help(void)
{
	printf(_("safecad [OPTIONS]\n\n"
		 "The certificate token manager service. Runs in the foreground.\n\n"
		 "  -h --help     Show this help\n"
		 "     --version  Show the version\n\n"
		 "Configuration: $CONFIGURATION_DIRECTORY (default %s)/safecad.conf\n"
		 "State:         $STATE_DIRECTORY (default %s)\n"),
	       SAFECAD_CONFDIR, SAFECAD_STATEDIR);
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {},
	};
	int c;

	/* A long-running, mostly idle service whose worker threads come and
	 * go: glibc would give them arenas of their own, which keep their
	 * freed memory for good. Two are enough for the loop and a job. */
	(void)mallopt(M_ARENA_MAX, 2);
	/* Callers read the errors it sends them in its language; its log and
	 * everything else stay in the C locale. */
	i18n_init_messages();
	log_open();
	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
		switch (c) {
		case 'h':
			help();
			return EXIT_SUCCESS;
		case 'V':
			printf("safecad %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		default:
			return EXIT_FAILURE;
		}
	if (optind < argc) {
		log_error("safecad takes no arguments.");
		return EXIT_FAILURE;
	}
	return run() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
