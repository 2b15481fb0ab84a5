/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * soak-client: the status load of bench/soak.py. Compiled by the script
 * (gcc, libsystemd, jansson), not by meson.
 *
 *   soak-client --calls N --clients N --stable PATH,PATH… [--safectl BINARY]
 *               [--safectl-every K] [--rss-pid PID] [--rss-at N] [--rss-every N]
 *               [--seed S]
 *
 * N threads, each with its own connection to the system bus
 * (DBUS_SYSTEM_BUS_ADDRESS), make N calls in all to org.safecad.Manager1,
 * one at a time per thread, mixed:
 *
 *   - Properties.Get of a token property (DaysLeft, Certificates, Serial,
 *     PinStatus, Pending, Activation, Busy, Profile, CurrentCertificate),
 *   - Properties.GetAll of org.safecad.Token1,
 *   - Properties.Get of the manager's Tokens (the thread's list of tokens
 *     to read is refreshed from it), Properties.GetAll of the manager,
 *   - ObjectManager.GetManagedObjects on /org/safecad,
 *   - every K-th call, `safectl --json status` run as a process (exit 0,
 *     stdout one JSON object with a "tokens" array, stderr without a
 *     sanitizer report).
 *
 * Every reply is read through to its end. A call that fails is an error,
 * except when it names a token that is not one of the --stable paths and
 * the error says the object is gone (UnknownObject, UnknownInterface,
 * UnknownMethod, UnknownProperty): that token was pulled out between the
 * thread's last look at Tokens and the call, and the call is counted as
 * "vanished".
 *
 * With --rss-pid, VmRSS of that process is read when the number of
 * completed calls reaches --rss-at, every --rss-every, and the total; each
 * sample is printed at once as "rss CALLS KIB"; "progress CALLS" comes
 * every hundredth of the calls. SIGUSR1 stops it early: no new calls, the
 * ones under way end (or time out, 25 s), and the result is printed. At the
 * end one line "result {JSON}" gives the counts, the errors (the first few in full) and
 * the latencies (p50, p99, max, in microseconds; safectl runs in
 * milliseconds).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <systemd/sd-bus.h>

extern char **environ;

#define SERVICE "org.safecad.Manager1"
#define MANAGER_PATH "/org/safecad/Manager1"
#define MANAGER_IFACE "org.safecad.Manager1"
#define TOKEN_IFACE "org.safecad.Token1"
#define OM_PATH "/org/safecad"
#define PROPS_IFACE "org.freedesktop.DBus.Properties"
#define OM_IFACE "org.freedesktop.DBus.ObjectManager"

#define MAX_PATHS 256
#define MAX_ERRORS_KEPT 20
#define MAX_OUTPUT (4U << 20)

#define _cleanup_(f) __attribute__((cleanup(f)))

enum op {
	OP_GET_DAYS_LEFT,
	OP_GET_CERTIFICATES,
	OP_GET_OTHER,
	OP_GETALL_TOKEN,
	OP_GET_TOKENS,
	OP_GETALL_MANAGER,
	OP_GET_MANAGED_OBJECTS,
	OP_SAFECTL,
	N_OPS,
};

static const char *const op_names[N_OPS] = {
    "Get DaysLeft", "Get Certificates", "Get (other Token1 property)", "GetAll Token1",
    "Get Tokens",   "GetAll Manager1",	"GetManagedObjects",	       "safectl --json status",
};

/* The D-Bus calls and their weights, in percent (they add up to 100). */
static const struct {
	enum op op;
	int weight;
} mix[] = {
    {OP_GET_DAYS_LEFT, 30},	  {OP_GET_CERTIFICATES, 15}, {OP_GET_OTHER, 15},
    {OP_GETALL_TOKEN, 13},	  {OP_GET_TOKENS, 12},	     {OP_GETALL_MANAGER, 3},
    {OP_GET_MANAGED_OBJECTS, 12},
};

static const char *const other_properties[] = {
    "Serial", "PinStatus", "Pending", "Activation", "Busy", "Profile", "CurrentCertificate",
};

static const char *const gone_errors[] = {
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownInterface",
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownProperty",
};

static const char *const sanitizer_markers[] = {
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
};

/* Options. */
static unsigned long n_calls = 100000, n_clients = 16, safectl_every = 250;
static unsigned long rss_at = 10000, rss_every = 10000, progress_every = 1000;
static long rss_pid = 0;
static unsigned long seed = 1;
static const char *safectl;
static char *stable[MAX_PATHS];
static size_t n_stable;

/* Shared state. */
static atomic_ulong next_call;
static atomic_ulong done_calls;
static volatile sig_atomic_t stop_now; /* SIGUSR1: no new calls */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *errors_kept;
static unsigned long errors_total;
static json_t *error_names; /* name -> count */

typedef struct {
	uint64_t *v;
	size_t n, cap;
} Samples;

typedef struct {
	unsigned id;
	sd_bus *bus;
	uint64_t rng;
	char *tokens[MAX_PATHS];
	size_t n_tokens;
	unsigned long count[N_OPS];
	unsigned long errors[N_OPS];
	unsigned long vanished[N_OPS];
	Samples latency[N_OPS];
	int setup_error;
} Client;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t next_random(Client *c)
{
	/* xorshift64* */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ULL;
}

static int add_sample(Samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *v = realloc(s->v, cap * sizeof(uint64_t));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	return 0;
}

static bool is_stable(const char *path)
{
	for (size_t i = 0; i < n_stable; i++)
		if (strcmp(stable[i], path) == 0)
			return true;
	return false;
}

static bool is_gone_error(const char *name)
{
	if (!name)
		return false;
	for (size_t i = 0; i < sizeof(gone_errors) / sizeof(gone_errors[0]); i++)
		if (strcmp(gone_errors[i], name) == 0)
			return true;
	return false;
}

static void note_error(Client *c, enum op op, const char *path, const char *what, const char *name,
		       const char *message)
{
	pthread_mutex_lock(&out_lock);
	errors_total++;
	const char *key = name ? name : what;
	json_t *n = json_object_get(error_names, key);
	json_object_set_new(error_names, key, json_integer(n ? json_integer_value(n) + 1 : 1));
	if (json_array_size(errors_kept) < MAX_ERRORS_KEPT) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		json_array_append_new(errors_kept,
				      json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:I, s:i}", "op",
						op_names[op], "path", path ? path : "", "what",
						what, "name", name, "message", message, "unix_ms",
						(json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
						"client", (int)c->id));
	}
	pthread_mutex_unlock(&out_lock);
	c->errors[op]++;
}

static long read_rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", rss_pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void call_done(void)
{
	unsigned long n = atomic_fetch_add(&done_calls, 1) + 1;

	if (progress_every && n % progress_every == 0) {
		pthread_mutex_lock(&out_lock);
		printf("progress %lu\n", n);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
	}
	if (rss_pid <= 0)
		return;
	if (n == rss_at || n == n_calls || (rss_every && n % rss_every == 0)) {
		long kib = read_rss_kib();
		pthread_mutex_lock(&out_lock);
		printf("rss %lu %ld\n", n, kib);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
	}
}

/* Replaces the thread's token list with the object paths of the reply
 * (positioned at the variant of Get Tokens). */
static int read_token_list(Client *c, sd_bus_message *reply)
{
	const char *p;
	int r;

	for (size_t i = 0; i < c->n_tokens; i++)
		free(c->tokens[i]);
	c->n_tokens = 0;
	r = sd_bus_message_enter_container(reply, 'v', "ao");
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'a', "o");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(reply, "o", &p)) > 0) {
		if (c->n_tokens < MAX_PATHS) {
			c->tokens[c->n_tokens] = strdup(p);
			if (!c->tokens[c->n_tokens])
				return -ENOMEM;
			c->n_tokens++;
		}
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(reply);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(reply);
}

static const char *pick_token(Client *c)
{
	if (c->n_tokens > 0)
		return c->tokens[next_random(c) % c->n_tokens];
	return stable[next_random(c) % n_stable];
}

static bool has_sanitizer_report(const char *text)
{
	for (size_t i = 0; i < sizeof(sanitizer_markers) / sizeof(sanitizer_markers[0]); i++)
		if (strstr(text, sanitizer_markers[i]))
			return true;
	return false;
}

/* Runs `safectl --json status` and checks what it did. */
static void run_safectl(Client *c)
{
	int out[2] = {-1, -1}, err[2] = {-1, -1};
	posix_spawn_file_actions_t actions;
	char *argv[] = {(char *)safectl, "--json", "status", NULL};
	char *buf[2] = {NULL, NULL};
	size_t len[2] = {0, 0}, cap[2] = {0, 0};
	bool open_[2] = {true, true};
	pid_t pid;
	int status = 0, r;
	char what[160];

	uint64_t start = now_ns();
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		note_error(c, OP_SAFECTL, NULL, "pipe failed", NULL, strerror(errno));
		goto finish;
	}
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out[1], 1);
	posix_spawn_file_actions_adddup2(&actions, err[1], 2);
	r = posix_spawn(&pid, safectl, &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	close(out[1]);
	close(err[1]);
	out[1] = err[1] = -1;
	if (r != 0) {
		note_error(c, OP_SAFECTL, NULL, "spawn failed", NULL, strerror(r));
		goto finish;
	}
	while (open_[0] || open_[1]) {
		struct pollfd fds[2] = {{open_[0] ? out[0] : -1, POLLIN, 0},
					{open_[1] ? err[0] : -1, POLLIN, 0}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int k = 0; k < 2; k++) {
			if (!open_[k] || !fds[k].revents)
				continue;
			if (cap[k] - len[k] < 65536) {
				size_t ncap = cap[k] ? cap[k] * 2 : 131072;
				char *nb = ncap <= MAX_OUTPUT ? realloc(buf[k], ncap + 1) : NULL;
				if (!nb) {
					open_[k] = false;
					continue;
				}
				buf[k] = nb;
				cap[k] = ncap;
			}
			ssize_t n =
			    read(k == 0 ? out[0] : err[0], buf[k] + len[k], cap[k] - len[k]);
			if (n <= 0)
				open_[k] = false;
			else
				len[k] += (size_t)n;
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (int k = 0; k < 2; k++)
		if (buf[k])
			buf[k][len[k]] = '\0';

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(what, sizeof(what), "safectl exited %d (signal %d)",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		note_error(c, OP_SAFECTL, NULL, what, NULL, buf[1] ? buf[1] : "");
	} else if (buf[1] && has_sanitizer_report(buf[1])) {
		note_error(c, OP_SAFECTL, NULL, "safectl sanitizer report", NULL, buf[1]);
	} else {
		json_error_t jerr;
		json_t *obj = buf[0] ? json_loads(buf[0], 0, &jerr) : NULL;
		if (!json_is_object(obj) || !json_is_array(json_object_get(obj, "tokens")))
			note_error(c, OP_SAFECTL, NULL, "safectl printed no status object", NULL,
				   buf[0] ? buf[0] : "");
		else if (add_sample(&c->latency[OP_SAFECTL], now_ns() - start) < 0)
			note_error(c, OP_SAFECTL, NULL, "out of memory", NULL, NULL);
		json_decref(obj);
	}
finish:
	for (int k = 0; k < 2; k++) {
		free(buf[k]);
		if (out[k] >= 0)
			close(out[k]);
		if (err[k] >= 0)
			close(err[k]);
	}
	c->count[OP_SAFECTL]++;
}

static void dbus_call(Client *c, enum op op)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *path = NULL;
	int r;

	uint64_t start = now_ns();
	switch (op) {
	case OP_GET_DAYS_LEFT:
	case OP_GET_CERTIFICATES:
	case OP_GET_OTHER: {
		const char *prop =
		    op == OP_GET_DAYS_LEFT ? "DaysLeft"
		    : op == OP_GET_CERTIFICATES
			? "Certificates"
			: other_properties[next_random(c) % (sizeof(other_properties) /
							     sizeof(other_properties[0]))];
		path = pick_token(c);
		start = now_ns();
		r = sd_bus_call_method(c->bus, SERVICE, path, PROPS_IFACE, "Get", &error, &reply,
				       "ss", TOKEN_IFACE, prop);
		break;
	}
	case OP_GETALL_TOKEN:
		path = pick_token(c);
		start = now_ns();
		r = sd_bus_call_method(c->bus, SERVICE, path, PROPS_IFACE, "GetAll", &error, &reply,
				       "s", TOKEN_IFACE);
		break;
	case OP_GET_TOKENS:
		path = MANAGER_PATH;
		r = sd_bus_call_method(c->bus, SERVICE, path, PROPS_IFACE, "Get", &error, &reply,
				       "ss", MANAGER_IFACE, "Tokens");
		break;
	case OP_GETALL_MANAGER:
		path = MANAGER_PATH;
		r = sd_bus_call_method(c->bus, SERVICE, path, PROPS_IFACE, "GetAll", &error, &reply,
				       "s", MANAGER_IFACE);
		break;
	case OP_GET_MANAGED_OBJECTS:
		path = OM_PATH;
		r = sd_bus_call_method(c->bus, SERVICE, path, OM_IFACE, "GetManagedObjects", &error,
				       &reply, NULL);
		break;
	default:
		return;
	}
	uint64_t stop = now_ns();
	c->count[op]++;

	if (r < 0) {
		if (path && !is_stable(path) && strcmp(path, MANAGER_PATH) != 0 &&
		    strcmp(path, OM_PATH) != 0 && is_gone_error(error.name)) {
			c->vanished[op]++;
			return;
		}
		note_error(c, op, path, "call failed", error.name ? error.name : "(no name)",
			   error.message ? error.message : strerror(-r));
		return;
	}
	/* The whole reply, read through. */
	if (op == OP_GET_TOKENS)
		r = read_token_list(c, reply);
	else
		r = sd_bus_message_skip(reply, NULL);
	if (r < 0) {
		note_error(c, op, path, "malformed reply", NULL, strerror(-r));
		return;
	}
	if (add_sample(&c->latency[op], stop - start) < 0)
		note_error(c, op, path, "out of memory", NULL, NULL);
}

static enum op pick_op(Client *c, unsigned long i)
{
	if (safectl && safectl_every && i % safectl_every == safectl_every - 1)
		return OP_SAFECTL;
	int x = (int)(next_random(c) % 100), acc = 0;
	for (size_t k = 0; k < sizeof(mix) / sizeof(mix[0]); k++) {
		acc += mix[k].weight;
		if (x < acc)
			return mix[k].op;
	}
	return OP_GET_DAYS_LEFT;
}

static void *client_thread(void *userdata)
{
	Client *c = userdata;

	for (;;) {
		if (stop_now)
			break;
		unsigned long i = atomic_fetch_add(&next_call, 1);
		if (i >= n_calls)
			break;
		enum op op = pick_op(c, i);
		if (op == OP_SAFECTL)
			run_safectl(c);
		else
			dbus_call(c, op);
		call_done();
	}
	return NULL;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t percentile(const uint64_t *sorted, size_t n, unsigned per_mille)
{
	size_t rank = (n * per_mille + 999) / 1000;
	return sorted[rank > 0 ? rank - 1 : 0];
}

/* {count, p50, p99, max, mean} of the merged samples, in µs (ms for safectl). */
static json_t *summarize(Samples *all, double unit)
{
	if (all->n == 0)
		return json_pack("{s:i}", "count", 0);
	qsort(all->v, all->n, sizeof(uint64_t), compare_u64);
	uint64_t total = 0;
	for (size_t i = 0; i < all->n; i++)
		total += all->v[i];
	return json_pack("{s:I, s:f, s:f, s:f, s:f}", "count", (json_int_t)all->n, "p50",
			 percentile(all->v, all->n, 500) / unit, "p99",
			 percentile(all->v, all->n, 990) / unit, "max", all->v[all->n - 1] / unit,
			 "mean", (double)total / (double)all->n / unit);
}

static int merge(Samples *into, const Samples *from)
{
	for (size_t i = 0; i < from->n; i++)
		if (add_sample(into, from->v[i]) < 0)
			return -ENOMEM;
	return 0;
}

static int parse_ulong(const char *s, unsigned long *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static void on_sigusr1(int sig)
{
	(void)sig;
	stop_now = 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: soak-client --calls N --clients N --stable PATH,PATH… [--safectl BINARY]\n"
		"       [--safectl-every K] [--rss-pid PID] [--rss-at N] [--rss-every N] [--seed "
		"S]\n");
}

int main(int argc, char *argv[])
{
	char *stable_list = NULL;
	unsigned long pid = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;
		if (!v) {
			usage();
			return 2;
		}
		if (strcmp(a, "--calls") == 0)
			bad = parse_ulong(v, &n_calls);
		else if (strcmp(a, "--clients") == 0)
			bad = parse_ulong(v, &n_clients);
		else if (strcmp(a, "--safectl-every") == 0)
			bad = parse_ulong(v, &safectl_every);
		else if (strcmp(a, "--rss-at") == 0)
			bad = parse_ulong(v, &rss_at);
		else if (strcmp(a, "--rss-every") == 0)
			bad = parse_ulong(v, &rss_every);
		else if (strcmp(a, "--seed") == 0)
			bad = parse_ulong(v, &seed);
		else if (strcmp(a, "--rss-pid") == 0) {
			bad = parse_ulong(v, &pid);
			rss_pid = (long)pid;
		} else if (strcmp(a, "--safectl") == 0)
			safectl = v;
		else if (strcmp(a, "--stable") == 0)
			stable_list = strdup(v);
		else {
			usage();
			return 2;
		}
		if (bad) {
			fprintf(stderr, "soak-client: bad value for %s: '%s'\n", a, v);
			return 2;
		}
		i++;
	}
	if (!stable_list || n_calls == 0 || n_clients == 0 || n_clients > 1024) {
		usage();
		return 2;
	}
	char *save = NULL;
	for (char *p = strtok_r(stable_list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (!sd_bus_object_path_is_valid(p) || n_stable == MAX_PATHS) {
			fprintf(stderr, "soak-client: bad object path '%s'\n", p);
			return 2;
		}
		stable[n_stable++] = p;
	}
	if (n_stable == 0) {
		fprintf(stderr, "soak-client: no --stable paths\n");
		return 2;
	}

	errors_kept = json_array();
	error_names = json_object();
	Client *clients = calloc(n_clients, sizeof(Client));
	pthread_t *threads = calloc(n_clients, sizeof(pthread_t));
	if (!errors_kept || !error_names || !clients || !threads)
		return 1;

	for (unsigned long k = 0; k < n_clients; k++) {
		Client *c = &clients[k];
		c->id = (unsigned)k;
		c->rng = (seed + 1) * 0x9E3779B97F4A7C15ULL + k * 0xBF58476D1CE4E5B9ULL + 1;
		int r = sd_bus_open_system(&c->bus);
		if (r < 0) {
			fprintf(stderr, "soak-client: cannot connect to the system bus: %s\n",
				strerror(-r));
			return 1;
		}
	}
	struct sigaction sa = {.sa_handler = on_sigusr1};
	sigaction(SIGUSR1, &sa, NULL);
	progress_every = n_calls / 100 ? n_calls / 100 : 1;
	uint64_t t0 = now_ns();
	for (unsigned long k = 0; k < n_clients; k++)
		if (pthread_create(&threads[k], NULL, client_thread, &clients[k]) != 0) {
			fprintf(stderr, "soak-client: cannot start a thread\n");
			return 1;
		}
	for (unsigned long k = 0; k < n_clients; k++)
		pthread_join(threads[k], NULL);
	double seconds = (double)(now_ns() - t0) / 1e9;

	json_t *ops = json_object();
	Samples reads = {0}, all_op[N_OPS] = {{0}};
	unsigned long calls = 0, vanished = 0;
	for (int op = 0; op < N_OPS; op++) {
		unsigned long count = 0, errs = 0, gone = 0;
		for (unsigned long k = 0; k < n_clients; k++) {
			count += clients[k].count[op];
			errs += clients[k].errors[op];
			gone += clients[k].vanished[op];
			if (merge(&all_op[op], &clients[k].latency[op]) < 0)
				return 1;
			if (op != OP_SAFECTL && op != OP_GET_MANAGED_OBJECTS &&
			    merge(&reads, &clients[k].latency[op]) < 0)
				return 1;
		}
		calls += count;
		vanished += gone;
		json_object_set_new(
		    ops, op_names[op],
		    json_pack("{s:I, s:I, s:I, s:o}", "calls", (json_int_t)count, "errors",
			      (json_int_t)errs, "vanished", (json_int_t)gone, "latency",
			      summarize(&all_op[op], op == OP_SAFECTL ? 1e6 : 1e3)));
	}
	json_t *result = json_pack(
	    "{s:b, s:I, s:I, s:I, s:f, s:o, s:o, s:o, s:o}", "stopped_early", (int)stop_now,
	    "calls", (json_int_t)calls, "errors", (json_int_t)errors_total, "vanished",
	    (json_int_t)vanished, "seconds", seconds, "property_reads_us", summarize(&reads, 1e3),
	    "ops", ops, "error_names", error_names, "errors_kept", errors_kept);
	char *text = json_dumps(result, JSON_COMPACT);
	if (!text)
		return 1;
	pthread_mutex_lock(&out_lock);
	printf("result %s\n", text);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	free(text);
	for (unsigned long k = 0; k < n_clients; k++)
		sd_bus_flush_close_unref(clients[k].bus);
	return 0;
}
