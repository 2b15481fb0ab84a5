/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * worker-start: what a token worker costs when it lives for one job and
 * when it stays warm.
 *
 *   worker-start MODULE [REPETITIONS] [SUCCESSIVE]
 *
 * The same binary is the worker: a one-job worker is a fork + exec of it
 * that loads MODULE (dlopen, C_GetFunctionList, C_Initialize), scans every
 * token (slots, token info, each certificate's CKA_VALUE parsed with
 * d2i_X509, each key's CKA_ID), calls C_Finalize and writes its answer on
 * a socketpair; a warm worker loads MODULE once and answers one scan per
 * request on its socketpair. bench/worker-start.py makes the SoftHSM
 * tokens and prints the table; this program prints one line per figure:
 *
 *   figure=NAME n=N median_us=… p90_us=… max_us=…
 *   rss=NAME vmrss_kb=… pss_kb=…
 *   wall=NAME jobs=N total_ms=…
 *   answer certificates=… keys=… tokens=…
 *
 * All times are CLOCK_MONOTONIC, which the worker and the parent share:
 * the worker stamps when its main() starts, when the module is ready,
 * when the scan ends and when C_Finalize returned.
 */

#include <dlfcn.h>
#include <errno.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SLOTS 64
#define MAX_OBJECTS 256

struct answer {
	uint64_t main_ns;     /* main() entered */
	uint64_t loaded_ns;   /* module loaded and initialized */
	uint64_t scanned_ns;  /* scan done */
	uint64_t finished_ns; /* C_Finalize returned (one-job worker) */
	uint32_t tokens, certificates, keys;
	int32_t error;	       /* 0, or the step that failed */
	long vmrss_kb, pss_kb; /* when asked for */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long proc_kb(const char *path, const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long kb = -1;
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, n) == 0) {
			kb = strtol(line + n, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static void take_rss(struct answer *a)
{
	a->vmrss_kb = proc_kb("/proc/self/status", "VmRSS:");
	a->pss_kb = proc_kb("/proc/self/smaps_rollup", "Pss:");
}

/* All of N bytes, written (WRITING) or read: 0, or -1 on an error or end
 * of file. */
static int transfer_all(int fd, void *buf, size_t n, bool writing)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = writing ? write(fd, p, n) : read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	return transfer_all(fd, (void *)buf, n, true);
}

static int read_all(int fd, void *buf, size_t n)
{
	return transfer_all(fd, buf, n, false);
}

/* ---- the worker's side ---- */

static void *module_handle;
static CK_FUNCTION_LIST_PTR p11;

static int module_load(const char *path)
{
	module_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!module_handle)
		return 1;
	CK_C_GetFunctionList get_function_list =
	    (CK_C_GetFunctionList)dlsym(module_handle, "C_GetFunctionList");
	if (!get_function_list || get_function_list(&p11) != CKR_OK || !p11)
		return 2;
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	if (p11->C_Initialize(&args) != CKR_OK)
		return 3;
	return 0;
}

/* The CKA_ID (or, for a certificate, also the CKA_VALUE parsed) of every
 * object of CLASS in the session. Returns how many, or -1. */
static int scan_objects(CK_SESSION_HANDLE session, CK_OBJECT_CLASS class)
{
	CK_ATTRIBUTE template = {CKA_CLASS, &class, sizeof class};
	CK_OBJECT_HANDLE objects[MAX_OBJECTS];
	CK_ULONG count = 0;
	if (p11->C_FindObjectsInit(session, &template, 1) != CKR_OK)
		return -1;
	CK_RV rv = p11->C_FindObjects(session, objects, MAX_OBJECTS, &count);
	(void)p11->C_FindObjectsFinal(session);
	if (rv != CKR_OK)
		return -1;
	int found = 0;
	for (CK_ULONG i = 0; i < count; i++) {
		unsigned char id[256];
		CK_ATTRIBUTE attr = {CKA_ID, id, sizeof id};
		if (p11->C_GetAttributeValue(session, objects[i], &attr, 1) != CKR_OK)
			continue;
		if (class == CKO_CERTIFICATE) {
			CK_ATTRIBUTE value = {CKA_VALUE, NULL, 0};
			if (p11->C_GetAttributeValue(session, objects[i], &value, 1) != CKR_OK ||
			    value.ulValueLen == 0 || value.ulValueLen > 65536)
				continue;
			unsigned char *der = malloc(value.ulValueLen);
			if (!der)
				return -1;
			value.pValue = der;
			X509 *x = NULL;
			if (p11->C_GetAttributeValue(session, objects[i], &value, 1) == CKR_OK) {
				const unsigned char *p = der;
				x = d2i_X509(NULL, &p, (long)value.ulValueLen);
			}
			free(der);
			if (!x)
				continue;
			X509_free(x);
		}
		found++;
	}
	return found;
}

static int scan(struct answer *a)
{
	CK_SLOT_ID slots[MAX_SLOTS];
	CK_ULONG n = MAX_SLOTS;
	a->tokens = a->certificates = a->keys = 0;
	if (p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return 4;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO info;
		CK_SESSION_HANDLE session;
		if (p11->C_GetTokenInfo(slots[i], &info) != CKR_OK ||
		    !(info.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (p11->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &session) !=
		    CKR_OK)
			return 5;
		int certs = scan_objects(session, CKO_CERTIFICATE);
		int public_keys = scan_objects(session, CKO_PUBLIC_KEY);
		int private_keys = scan_objects(session, CKO_PRIVATE_KEY);
		(void)p11->C_CloseSession(session);
		if (certs < 0 || public_keys < 0 || private_keys < 0)
			return 6;
		a->tokens++;
		a->certificates += (uint32_t)certs;
		a->keys += (uint32_t)(public_keys + private_keys);
	}
	return 0;
}

/* One job: load, scan, finalize, answer, exit. */
static int worker_once(int fd, const char *module, bool rss)
{
	struct answer a = {.main_ns = now_ns()};
	a.error = module_load(module);
	a.loaded_ns = now_ns();
	if (a.error == 0)
		a.error = scan(&a);
	a.scanned_ns = now_ns();
	if (rss)
		take_rss(&a);
	if (p11)
		(void)p11->C_Finalize(NULL);
	a.finished_ns = now_ns();
	return write_all(fd, &a, sizeof a) < 0 ? 1 : 0;
}

/* Warm: load once, then one answer per request byte: 's' scan, 'm' scan
 * and memory; end of file (or 'q') finalizes and exits. */
static int worker_serve(int fd, const char *module)
{
	struct answer a = {.main_ns = now_ns()};
	a.error = module_load(module);
	a.loaded_ns = a.scanned_ns = now_ns();
	if (write_all(fd, &a, sizeof a) < 0 || a.error)
		return 1;
	for (;;) {
		char request;
		if (read_all(fd, &request, 1) < 0 || request == 'q')
			break;
		a.error = scan(&a);
		a.scanned_ns = now_ns();
		if (request == 'm')
			take_rss(&a);
		if (write_all(fd, &a, sizeof a) < 0)
			break;
	}
	(void)p11->C_Finalize(NULL);
	return 0;
}

/* ---- the parent's side ---- */

static const char *self_path = "/proc/self/exe";

struct figure {
	const char *name;
	uint64_t *ns;
	size_t n;
};

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_figure(const char *name, uint64_t *ns, size_t n)
{
	qsort(ns, n, sizeof *ns, compare_u64);
	size_t p90 = (n * 9 + 9) / 10;
	if (p90 > 0)
		p90--;
	printf("figure=%s n=%zu median_us=%.1f p90_us=%.1f max_us=%.1f\n", name, n,
	       (n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2) / 1000.0, ns[p90] / 1000.0,
	       ns[n - 1] / 1000.0);
}

/* fork + exec of this binary with ARGV's mode; the child's end of a
 * socketpair is its fd 3. Returns the pid, the parent's end in *fd. */
static pid_t spawn(char *const argv[], int *fd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		execv(self_path, argv);
		_exit(127);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -1;
	}
	*fd = sv[0];
	return pid;
}

static int reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A one-job worker, fork to answer read; the answer in *a. */
static int cold_job(const char *module, bool rss, uint64_t *fork_ns, uint64_t *answer_ns,
		    struct answer *a)
{
	char *argv[] = {"worker-start", rss ? "--once-rss" : "--once", (char *)module, NULL};
	int fd;
	*fork_ns = now_ns();
	pid_t pid = spawn(argv, &fd);
	if (pid < 0)
		return -1;
	int r = read_all(fd, a, sizeof *a);
	*answer_ns = now_ns();
	close(fd);
	if (reap(pid) < 0 || r < 0 || a->error) {
		fprintf(stderr, "worker-start: one-job worker failed (step %d)\n",
			r < 0 ? -1 : a->error);
		return -1;
	}
	return 0;
}

static int warm_request(int fd, char request, struct answer *a)
{
	if (write_all(fd, &request, 1) < 0 || read_all(fd, a, sizeof *a) < 0 || a->error) {
		fprintf(stderr, "worker-start: warm worker failed\n");
		return -1;
	}
	return 0;
}

static int run(const char *module, size_t reps, size_t successive)
{
	uint64_t *exec_only = calloc(reps, 8), *cold = calloc(reps, 8), *to_main = calloc(reps, 8),
		 *load = calloc(reps, 8), *scan_cold = calloc(reps, 8), *finish = calloc(reps, 8),
		 *warm = calloc(reps, 8), *scan_warm = calloc(reps, 8);
	struct answer a;
	if (!exec_only || !cold || !to_main || !load || !scan_cold || !finish || !warm ||
	    !scan_warm)
		return 1;

	/* exec + dynamic linking alone: same binary and libraries, exits at
	 * once; fork to reaped. */
	for (size_t i = 0; i < reps; i++) {
		char *argv[] = {"worker-start", "--exit", NULL};
		int fd;
		uint64_t t0 = now_ns();
		pid_t pid = spawn(argv, &fd);
		if (pid < 0 || reap(pid) < 0)
			return 1;
		exec_only[i] = now_ns() - t0;
		close(fd);
	}

	/* Cold: one job per worker. */
	uint32_t certificates = 0, keys = 0, tokens = 0;
	for (size_t i = 0; i < reps; i++) {
		uint64_t t0, t1;
		if (cold_job(module, false, &t0, &t1, &a) < 0)
			return 1;
		cold[i] = t1 - t0;
		to_main[i] = a.main_ns - t0;
		load[i] = a.loaded_ns - a.main_ns;
		scan_cold[i] = a.scanned_ns - a.loaded_ns;
		finish[i] = t1 - a.scanned_ns;
		certificates = a.certificates;
		keys = a.keys;
		tokens = a.tokens;
	}
	printf("answer certificates=%u keys=%u tokens=%u\n", certificates, keys, tokens);
	uint64_t t0, t1;
	if (cold_job(module, true, &t0, &t1, &a) < 0)
		return 1;
	printf("rss=cold vmrss_kb=%ld pss_kb=%ld\n", a.vmrss_kb, a.pss_kb);

	/* SUCCESSIVE one-job workers in a row, each reaped before the next. */
	t0 = now_ns();
	for (size_t i = 0; i < successive; i++)
		if (cold_job(module, false, &t1, &t1, &a) < 0)
			return 1;
	printf("wall=cold jobs=%zu total_ms=%.1f\n", successive, (now_ns() - t0) / 1e6);

	/* Warm: one worker, started (and its start timed) once. */
	char *argv[] = {"worker-start", "--serve", (char *)module, NULL};
	int fd;
	t0 = now_ns();
	pid_t pid = spawn(argv, &fd);
	if (pid < 0 || read_all(fd, &a, sizeof a) < 0 || a.error)
		return 1;
	printf("warm_start_us=%.1f\n", (now_ns() - t0) / 1000.0);
	t0 = now_ns();
	for (size_t i = 0; i < successive; i++)
		if (warm_request(fd, 's', &a) < 0)
			return 1;
	printf("wall=warm jobs=%zu total_ms=%.1f\n", successive, (now_ns() - t0) / 1e6);
	if (warm_request(fd, 'm', &a) < 0)
		return 1;
	printf("rss=warm vmrss_kb=%ld pss_kb=%ld\n", a.vmrss_kb, a.pss_kb);
	for (size_t i = 0; i < reps; i++) {
		t0 = now_ns();
		if (warm_request(fd, 's', &a) < 0)
			return 1;
		warm[i] = now_ns() - t0;
		scan_warm[i] = a.scanned_ns - t0;
	}
	close(fd);
	if (reap(pid) < 0)
		return 1;

	print_figure("exec_only", exec_only, reps);
	print_figure("cold_total", cold, reps);
	print_figure("cold_fork_to_main", to_main, reps);
	print_figure("cold_load_init", load, reps);
	print_figure("cold_scan", scan_cold, reps);
	print_figure("cold_finalize_answer", finish, reps);
	print_figure("warm_total", warm, reps);
	print_figure("warm_request_to_scanned", scan_warm, reps);
	free(exec_only);
	free(cold);
	free(to_main);
	free(load);
	free(scan_cold);
	free(finish);
	free(warm);
	free(scan_warm);
	return 0;
}

int main(int argc, char *argv[])
{
	if (argc >= 2 && strcmp(argv[1], "--exit") == 0)
		return 0;
	if (argc == 3 && strcmp(argv[1], "--once") == 0)
		return worker_once(3, argv[2], false);
	if (argc == 3 && strcmp(argv[1], "--once-rss") == 0)
		return worker_once(3, argv[2], true);
	if (argc == 3 && strcmp(argv[1], "--serve") == 0)
		return worker_serve(3, argv[2]);
	if (argc < 2 || argc > 4 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s MODULE [REPETITIONS] [SUCCESSIVE]\n", argv[0]);
		return 2;
	}
	size_t reps = argc > 2 ? strtoul(argv[2], NULL, 10) : 50;
	size_t successive = argc > 3 ? strtoul(argv[3], NULL, 10) : 100;
	if (reps == 0 || successive == 0)
		return 2;
	/* The children exec this very file, not whatever the name leads to
	 * later. */
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (n > 0) {
		path[n] = '\0';
		self_path = path;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run(argv[1], reps, successive);
}
