/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prop-latency: times D-Bus property reads, one round trip at a time.
 *
 *   prop-latency [--warmup N] SERVICE PATHS INTERFACE PROPERTY COUNT
 *
 * Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS picks a private one),
 * reads PROPERTY of INTERFACE with org.freedesktop.DBus.Properties.Get
 * COUNT times, going round the object PATHS in turn, and prints one line:
 *
 *   count=10000 paths=32 p50_us=… p99_us=… max_us=… mean_us=… type=…
 *
 * PATHS is a comma-separated list of object paths, or "-" to read them from
 * stdin, one a line. Each Get call is timed alone with CLOCK_MONOTONIC; the
 * reply is decoded after the clock stops. The client is in C so that its own
 * share of the figure stays small: the benchmark is about the service, not
 * about a client's language runtime.
 *
 * The call is sd_bus_call_method(…, "Get", "ss", …), which is what
 * sd_bus_get_property() does inside, because sd_bus_get_property() refuses
 * property names that are not valid member names, and certmonger's have
 * hyphens ("not-valid-after"). Both services are read the same way.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#define MAX_PATHS 4096
#define MAX_PATHS_INPUT (1U << 20)
#define MAX_COUNT 10000000UL

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_(f) __attribute__((cleanup(f)))

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Nearest-rank percentile of a sorted array, per_mille in 1…1000. */
static uint64_t percentile(const uint64_t *sorted, size_t n, unsigned per_mille)
{
	size_t rank = (n * per_mille + 999) / 1000;
	return sorted[rank > 0 ? rank - 1 : 0];
}

static int parse_count(const char *s, unsigned long min, unsigned long *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > MAX_COUNT)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Splits LIST in place into object paths. */
static int split_paths(char *list, char **paths, size_t *ret_n)
{
	size_t n = 0;
	char *save = NULL;

	for (char *p = strtok_r(list, ",\n", &save); p; p = strtok_r(NULL, ",\n", &save)) {
		if (!sd_bus_object_path_is_valid(p)) {
			fprintf(stderr, "prop-latency: not an object path: '%s'\n", p);
			return -EINVAL;
		}
		if (n == MAX_PATHS) {
			fprintf(stderr, "prop-latency: more than %d object paths\n", MAX_PATHS);
			return -E2BIG;
		}
		paths[n++] = p;
	}
	if (n == 0) {
		fprintf(stderr, "prop-latency: no object paths given\n");
		return -EINVAL;
	}
	*ret_n = n;
	return 0;
}

static char *read_all(FILE *f)
{
	_cleanup_free_ char *buf = malloc(MAX_PATHS_INPUT + 1);
	if (!buf)
		return NULL;
	size_t size = fread(buf, 1, MAX_PATHS_INPUT, f);
	if (ferror(f) || !feof(f))
		return NULL;
	buf[size] = '\0';
	char *ret = buf;
	buf = NULL;
	return ret;
}

static const char *error_text(const sd_bus_error *error, int r)
{
	return error->message ? error->message : strerror(-r);
}

/* The property's D-Bus type, from one untimed read, to check every reply against. */
static int probe_type(sd_bus *bus, const char *service, const char *path, const char *interface,
		      const char *property, char **ret_type)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *contents = NULL;
	char type;
	int r;

	r = sd_bus_call_method(bus, service, path, "org.freedesktop.DBus.Properties", "Get", &error,
			       &reply, "ss", interface, property);
	if (r < 0) {
		fprintf(stderr, "prop-latency: Get %s.%s on %s failed: %s\n", interface, property,
			path, error_text(&error, r));
		return r;
	}
	r = sd_bus_message_peek_type(reply, &type, &contents);
	if (r < 0)
		return r;
	if (type != 'v' || !contents)
		return -EBADMSG;
	char *copy = strdup(contents);
	if (!copy)
		return -ENOMEM;
	*ret_type = copy;
	return 0;
}

/* One timed read; the reply is checked after the clock has stopped. */
static int timed_read(sd_bus *bus, const char *service, const char *path, const char *interface,
		      const char *property, const char *type, uint64_t *ret_ns)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	int r;

	uint64_t start = now_ns();
	r = sd_bus_call_method(bus, service, path, "org.freedesktop.DBus.Properties", "Get", &error,
			       &reply, "ss", interface, property);
	uint64_t stop = now_ns();
	if (r < 0) {
		fprintf(stderr, "prop-latency: reading %s on %s failed: %s\n", property, path,
			error_text(&error, r));
		return r;
	}
	r = sd_bus_message_enter_container(reply, 'v', type);
	if (r >= 0)
		r = sd_bus_message_skip(reply, type);
	if (r >= 0)
		r = sd_bus_message_exit_container(reply);
	if (r < 0) {
		fprintf(stderr, "prop-latency: bad reply from %s: %s\n", path, strerror(-r));
		return r;
	}
	*ret_ns = stop - start;
	return 0;
}

int main(int argc, char *argv[])
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_free_ uint64_t *samples = NULL;
	_cleanup_free_ char *path_list = NULL, *type = NULL;
	char *paths[MAX_PATHS];
	unsigned long warmup = 100, count;
	size_t n_paths = 0;
	int arg = 1, r;

	if (argc > arg + 1 && strcmp(argv[arg], "--warmup") == 0) {
		if (parse_count(argv[arg + 1], 0, &warmup) < 0) {
			fprintf(stderr, "prop-latency: bad --warmup '%s'\n", argv[arg + 1]);
			return 2;
		}
		arg += 2;
	}
	if (argc - arg != 5) {
		fprintf(stderr,
			"usage: %s [--warmup N] SERVICE PATHS INTERFACE PROPERTY COUNT\n"
			"  PATHS: comma-separated object paths, or - to read them from stdin\n"
			"  the bus is the system bus: DBUS_SYSTEM_BUS_ADDRESS picks another one\n",
			argv[0]);
		return 2;
	}
	const char *service = argv[arg], *interface = argv[arg + 2], *property = argv[arg + 3];
	if (parse_count(argv[arg + 4], 1, &count) < 0) {
		fprintf(stderr, "prop-latency: bad COUNT '%s' (1…%lu)\n", argv[arg + 4], MAX_COUNT);
		return 2;
	}

	path_list = strcmp(argv[arg + 1], "-") == 0 ? read_all(stdin) : strdup(argv[arg + 1]);
	if (!path_list) {
		fprintf(stderr, "prop-latency: cannot read the object paths\n");
		return 1;
	}
	if (split_paths(path_list, paths, &n_paths) < 0)
		return 2;

	samples = calloc(count, sizeof(uint64_t));
	if (!samples)
		return 1;

	r = sd_bus_open_system(&bus);
	if (r < 0) {
		fprintf(stderr, "prop-latency: cannot connect to the system bus: %s\n",
			strerror(-r));
		return 1;
	}
	if (probe_type(bus, service, paths[0], interface, property, &type) < 0)
		return 1;

	for (unsigned long i = 0; i < warmup + count; i++) {
		uint64_t ns;
		if (timed_read(bus, service, paths[i % n_paths], interface, property, type, &ns) <
		    0)
			return 1;
		if (i >= warmup)
			samples[i - warmup] = ns;
	}

	uint64_t total = 0;
	for (unsigned long i = 0; i < count; i++)
		total += samples[i];
	qsort(samples, count, sizeof(uint64_t), compare_u64);

	printf("count=%lu paths=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f type=%s\n",
	       count, n_paths, percentile(samples, count, 500) / 1000.0,
	       percentile(samples, count, 990) / 1000.0, samples[count - 1] / 1000.0,
	       (double)total / (double)count / 1000.0, type);
	return 0;
}
