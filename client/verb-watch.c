/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <string.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "bus-names.h"
#include "i18n.h"
#include "safectl.h"
#include "time-util.h"

static void emit(const char *event, const char *path, const char *serial, json_t *extra)
{
	char now[64];

	format_rfc3339(now, sizeof(now), time(NULL));
	if (arg_json) {
		_cleanup_json_ json_t *line =
		    json_pack("{s:s,s:s,s:s?,s:s?}", "event", event, "time", now, "path", path,
			      "serial", serial);
		if (line && extra)
			json_object_update(line, extra);
		if (line) {
			json_dumpf(line, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		}
	} else {
		printf("%s  %-15s %s", now, event, serial ? serial : "");
		if (extra) {
			json_t *properties = json_object_get(extra, "properties");
			size_t i;
			json_t *p;
			json_array_foreach(properties, i, p)
			    printf("%s%s", i ? ", " : "  ", json_string_value(p));
		}
		putchar('\n');
	}
	fflush(stdout);
}

static int on_token_signal(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *path, *serial;

	if (sd_bus_message_read(m, "os", &path, &serial) < 0)
		return 0;
	emit(sd_bus_message_is_signal(m, SAFECAD_MANAGER_INTERFACE, "TokenAdded") ? "token-added"
										  : "token-removed",
	     path, serial, NULL);
	return 0;
}

static int on_history_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	emit("history-changed", NULL, NULL, NULL);
	return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	_cleanup_json_ json_t *names = json_array();
	_cleanup_free_ char *serial = NULL;
	const char *interface, *name;
	const char *path = sd_bus_message_get_path(m);
	int r;

	if (!names || sd_bus_message_read(m, "s", &interface) < 0)
		return 0;
	if (!streq(interface, SAFECAD_TOKEN_INTERFACE))
		return 0;
	if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
		return 0;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		if (sd_bus_message_read(m, "s", &name) < 0 || sd_bus_message_skip(m, "v") < 0)
			return 0;
		json_array_append_new(names, json_string(name));
		sd_bus_message_exit_container(m);
	}
	sd_bus_message_exit_container(m);
	/* The invalidated ones follow. */
	if (sd_bus_message_enter_container(m, 'a', "s") >= 0) {
		while (sd_bus_message_read(m, "s", &name) > 0)
			json_array_append_new(names, json_string(name));
		sd_bus_message_exit_container(m);
	}
	(void)sd_bus_path_decode(path, SAFECAD_TOKEN_PATH_PREFIX, &serial);
	_cleanup_json_ json_t *extra = json_pack("{s:O}", "properties", names);
	emit("token-changed", path, serial, extra);
	return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *name, *old_owner, *new_owner;

	if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
		return 0;
	if (!isempty(new_owner))
		emit("daemon-started", NULL, NULL, NULL);
	else
		emit("daemon-stopped", NULL, NULL, NULL);
	return 0;
}

int verb_watch(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	sd_event *event = NULL;
	sigset_t mask;
	int r;

	if (bus_connect(&bus) < 0)
		return EXIT_FAILED;
	r = sd_bus_match_signal(bus, NULL, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
				SAFECAD_MANAGER_INTERFACE, "TokenAdded", on_token_signal, NULL);
	if (r >= 0)
		r = sd_bus_match_signal(bus, NULL, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
					SAFECAD_MANAGER_INTERFACE, "TokenRemoved", on_token_signal,
					NULL);
	if (r >= 0)
		r = sd_bus_match_signal(bus, NULL, SAFECAD_BUS_NAME, SAFECAD_MANAGER_PATH,
					SAFECAD_MANAGER_INTERFACE, "HistoryChanged",
					on_history_changed, NULL);
	if (r >= 0)
		r = sd_bus_add_match(bus, NULL,
				     "type='signal',sender='" SAFECAD_BUS_NAME
				     "',interface='org.freedesktop.DBus.Properties',member='"
				     "PropertiesChanged',path_namespace='" SAFECAD_TOKEN_PATH_PREFIX
				     "'",
				     on_properties_changed, NULL);
	if (r >= 0)
		r = sd_bus_add_match(bus, NULL,
				     "type='signal',sender='org.freedesktop.DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
				     "arg0='" SAFECAD_BUS_NAME "'",
				     on_owner_changed, NULL);
	if (r < 0) {
		fprintf(stderr, _("Failed to watch: %s\n"), strerror(-r));
		return EXIT_FAILED;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_default(&event);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
	if (r >= 0)
		r = sd_bus_attach_event(bus, event, 0);
	if (r >= 0) {
		if (!arg_json)
			printf(_("Watching for token events; Ctrl+C stops.\n"));
		fflush(stdout);
		r = sd_event_loop(event);
	}
	sd_bus_detach_event(bus);
	sd_event_unref(event);
	if (r < 0) {
		fprintf(stderr, _("Failed to watch: %s\n"), strerror(-r));
		return EXIT_FAILED;
	}
	return EXIT_DONE;
}
