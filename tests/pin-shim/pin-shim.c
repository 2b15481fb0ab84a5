/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PIN shim: a PKCS#11 module for the tests only. It forwards every call
 * to SoftHSM2 (or the module named by PIN_SHIM_MODULE) and adds what SoftHSM
 * lacks (FACTS.md: "SoftHSM has no PIN retry counter and never locks"):
 *
 *  - a user-PIN retry counter per token: C_Login and C_SetPIN with a wrong
 *    PIN take one try, the right one gives all tries back, no try left
 *    answers CKR_PIN_LOCKED without asking SoftHSM;
 *  - the CKF_USER_PIN_COUNT_LOW / _FINAL_TRY / _LOCKED flags in
 *    C_GetTokenInfo (none of them with no_counters=1, as many real modules);
 *  - CKF_USER_PIN_TO_BE_CHANGED while must_change=1, cleared by the first
 *    C_SetPIN that succeeds (a token handed out with a PIN to change);
 *  - a pulled-token switch: the token's slot leaves C_GetSlotList(TRUE),
 *    C_GetTokenInfo says CKR_TOKEN_NOT_PRESENT, other calls on the slot
 *    CKR_TOKEN_NOT_PRESENT and calls on its sessions CKR_DEVICE_REMOVED;
 *  - faults on demand: one call crashes the process (SIGSEGV, SIGABRT) or
 *    never returns, as a broken vendor module does.
 *
 * The state lives in $PIN_SHIM_STATE/<token serial>, read again on every
 * call so that a test may change it at any moment (under flock on
 * <serial>.lock, replaced by rename):
 *
 *   tries_left=3  max=3  pulled=0  logins=0  setpins=0  no_counters=0
 *   wrong_pin_rv=0xA0  must_change=0  faults_left=1  faulted=0  fault=
 *
 * one per line. `logins` counts every C_Login call, `setpins` every
 * C_SetPIN call; `wrong_pin_rv` is what a wrong PIN answers (0x5,
 * CKR_GENERAL_ERROR, mimics many real tokens). A missing file means the
 * defaults. Without PIN_SHIM_STATE the shim changes nothing.
 *
 * `fault=<call>:<kind>` makes the next call <call> on the token fail, on
 * entry, before the shim or SoftHSM does anything else for it (for
 * C_GetTokenInfo: once SoftHSM named the token). <call> is one of
 * C_Login, C_GenerateKeyPair, C_Sign, C_CreateObject, C_GetTokenInfo,
 * C_FindObjectsInit, C_OpenSession (a call on a session or slot is on the
 * token in it) or C_GetSlotList, which is on no token: its fault is in the
 * file $PIN_SHIM_STATE/_module, with the same keys. <kind> is
 *
 *   segv   the process dies of SIGSEGV (its handler reset to the default
 *          first, so that a sanitizer's cannot make it something else);
 *   abort  abort(): the process dies of SIGABRT;
 *   hang   the call never returns (the calling thread sleeps for good);
 *   full   the call answers CKR_DEVICE_MEMORY (a token with no room left);
 *   unsupported  the call answers CKR_FUNCTION_NOT_SUPPORTED (a read-only
 *          card's writes);
 *   error  the call answers CKR_GENERAL_ERROR.
 * The last three only for calls on a token's slot or session (not C_Login,
 * C_GetTokenInfo or C_GetSlotList).
 *
 * A fault fires only while faults_left > 0. Before it fires the shim takes
 * one from faults_left, clears `fault` when none is left, adds one to
 * `faulted` and writes the file back, so a test sees it fired even when
 * the process is gone.
 *
 * A write probe, for the sandbox's tests: when $PIN_SHIM_STATE/_probe names
 * a path, the next C_GetSlotList (in whatever process loaded the shim)
 * tries to create that file for writing, removes _probe and writes
 * "errno=N" (0: the file could be written) to $PIN_SHIM_STATE/_probe.result.
 */
#include <ctype.h>
#include <errno.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define DEFAULT_TRIES 3
#define MAX_SLOTS 64
#define FAULT_LEN 64
#define MODULE_STATE "_module"
#define PIN_FLAGS (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)

typedef struct {
	unsigned long tries_left, max, pulled, logins, setpins, no_counters, wrong_pin_rv,
	    must_change, faults_left, faulted;
	char fault[FAULT_LEN]; /* "<call>:<kind>", or empty */
} State;

static const struct {
	const char *name;
	size_t offset;
} fields[] = {
    {"tries_left", offsetof(State, tries_left)},
    {"max", offsetof(State, max)},
    {"pulled", offsetof(State, pulled)},
    {"logins", offsetof(State, logins)},
    {"setpins", offsetof(State, setpins)},
    {"no_counters", offsetof(State, no_counters)},
    {"wrong_pin_rv", offsetof(State, wrong_pin_rv)},
    {"must_change", offsetof(State, must_change)},
    {"faults_left", offsetof(State, faults_left)},
    {"faulted", offsetof(State, faulted)},
};

static CK_FUNCTION_LIST *real;
static CK_FUNCTION_LIST shim;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static unsigned long *field(State *s, size_t i)
{
	return (unsigned long *)((char *)s + fields[i].offset);
}

/* --- state files ------------------------------------------------------ */

static bool state_path(const char *serial, const char *suffix, char *path, size_t size)
{
	const char *dir = getenv("PIN_SHIM_STATE");
	int n;

	if (!dir || !*dir)
		return false;
	n = snprintf(path, size, "%s/%s%s", dir, serial, suffix);
	return n > 0 && (size_t)n < size;
}

/* False when the shim keeps no state (no PIN_SHIM_STATE). */
static bool state_read(const char *serial, State *s)
{
	char path[PATH_MAX], line[128];
	bool tries_seen = false;
	FILE *f;

	*s = (State){.tries_left = DEFAULT_TRIES,
		     .max = DEFAULT_TRIES,
		     .wrong_pin_rv = CKR_PIN_INCORRECT,
		     .faults_left = 1};
	if (!state_path(serial, "", path, sizeof(path)))
		return false;
	f = fopen(path, "re");
	if (!f)
		return true;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');

		if (!eq)
			continue;
		*eq = '\0';
		if (strcmp(line, "fault") == 0) {
			snprintf(s->fault, sizeof(s->fault), "%s", eq + 1);
			s->fault[strcspn(s->fault, " \t\r\n")] = '\0';
		}
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			if (strcmp(line, fields[i].name) == 0)
				*field(s, i) = strtoul(eq + 1, NULL, 0);
		tries_seen = tries_seen || strcmp(line, "tries_left") == 0;
	}
	fclose(f);
	if (!tries_seen)
		s->tries_left = s->max;
	return true;
}

/* Called under the lock: one writer at a time. */
static void state_write(const char *serial, const State *s)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f;

	if (!state_path(serial, "", path, sizeof(path)) ||
	    !state_path(serial, ".tmp", tmp, sizeof(tmp)) || !(f = fopen(tmp, "we")))
		return;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		fprintf(f,
			fields[i].offset == offsetof(State, wrong_pin_rv) ? "%s=0x%lX\n"
									  : "%s=%lu\n",
			fields[i].name, *field((State *)s, i));
	fprintf(f, "fault=%s\n", s->fault);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static int state_lock(const char *serial)
{
	char path[PATH_MAX];
	int fd;

	if (!state_path(serial, ".lock", path, sizeof(path)))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* --- faults on demand ------------------------------------------------------ */

/* The kind of the fault set for this call, NULL when none is (or it is
 * spent, or not a kind the shim knows). */
static const char *fault_kind(const State *s, const char *call)
{
	static const char *const kinds[] = {"segv", "abort",	   "hang",
					    "full", "unsupported", "error"};
	size_t n = strlen(call);

	if (s->faults_left == 0 || strncmp(s->fault, call, n) != 0 || s->fault[n] != ':')
		return NULL;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(s->fault + n + 1, kinds[i]) == 0)
			return kinds[i];
	return NULL;
}

static CK_RV fault_fire(const char *call, const char *kind)
{
	fprintf(stderr, "pin-shim: fault %s:%s\n", call, kind);
	if (strcmp(kind, "full") == 0)
		return CKR_DEVICE_MEMORY;
	if (strcmp(kind, "unsupported") == 0)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (strcmp(kind, "error") == 0)
		return CKR_GENERAL_ERROR;
	if (strcmp(kind, "segv") == 0) {
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGSEGV);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		_exit(128 + SIGSEGV); /* not reached */
	} else if (strcmp(kind, "abort") == 0) {
		abort();
	} else {
		for (;;)
			pause();
	}
}

/* Fires the fault set for this call in the state file `name` (a token
 * serial or MODULE_STATE), if any: `seen` is the state as read without the
 * lock, so that a call with no fault set does not take it. */
static CK_RV fault_check(const char *name, const State *seen, const char *call)
{
	const char *kind;
	State s;
	int lock;

	if (!fault_kind(seen, call) || (lock = state_lock(name)) < 0)
		return CKR_OK;
	state_read(name, &s);
	kind = fault_kind(&s, call);
	if (kind) {
		s.faulted++;
		if (--s.faults_left == 0)
			s.fault[0] = '\0';
		state_write(name, &s);
	}
	close(lock);
	return kind ? fault_fire(call, kind) : CKR_OK;
}

static void module_fault(const char *call)
{
	State s;

	if (state_read(MODULE_STATE, &s))
		(void)fault_check(MODULE_STATE, &s, call);
}

/* --- which token a call is about ---------------------------------------- */

static bool copy_serial(const CK_TOKEN_INFO *info, char serial[17])
{
	size_t n = sizeof(info->serialNumber);

	while (n > 0 && (info->serialNumber[n - 1] == ' ' || info->serialNumber[n - 1] == '\0'))
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = info->serialNumber[i];

		serial[i] = isalnum(c) || c == '-' || c == '_' ? (char)c : '_';
	}
	serial[n] = '\0';
	return n > 0;
}

static bool slot_serial(CK_SLOT_ID slot, char serial[17])
{
	CK_TOKEN_INFO info;

	return real->C_GetTokenInfo(slot, &info) == CKR_OK && copy_serial(&info, serial);
}

static bool session_serial(CK_SESSION_HANDLE session, char serial[17])
{
	CK_SESSION_INFO info;

	return real->C_GetSessionInfo(session, &info) == CKR_OK && slot_serial(info.slotID, serial);
}

static bool slot_pulled(CK_SLOT_ID slot)
{
	char serial[17];
	State s;

	return slot_serial(slot, serial) && state_read(serial, &s) && s.pulled;
}

static CK_RV slot_gone(CK_SLOT_ID slot)
{
	return slot_pulled(slot) ? CKR_TOKEN_NOT_PRESENT : CKR_OK;
}

static CK_RV session_gone(CK_SESSION_HANDLE session)
{
	char serial[17];
	State s;

	return session_serial(session, serial) && state_read(serial, &s) && s.pulled
		   ? CKR_DEVICE_REMOVED
		   : CKR_OK;
}

/* A call with a fault of its own: the fault, then refused while pulled. */
static CK_RV slot_check(CK_SLOT_ID slot, const char *call)
{
	char serial[17];
	State s;

	CK_RV rv;

	if (!slot_serial(slot, serial) || !state_read(serial, &s))
		return CKR_OK;
	rv = fault_check(serial, &s, call);
	if (rv != CKR_OK)
		return rv;
	return s.pulled ? CKR_TOKEN_NOT_PRESENT : CKR_OK;
}

static CK_RV session_check(CK_SESSION_HANDLE session, const char *call)
{
	char serial[17];
	State s;

	CK_RV rv;

	if (!session_serial(session, serial) || !state_read(serial, &s))
		return CKR_OK;
	rv = fault_check(serial, &s, call);
	if (rv != CKR_OK)
		return rv;
	return s.pulled ? CKR_DEVICE_REMOVED : CKR_OK;
}

/* --- the calls that change ------------------------------------------------ */

static void probe_run(void)
{
	char path[PATH_MAX], result[PATH_MAX], target[PATH_MAX] = "";
	int lock, fd, err;
	FILE *f;

	if (!state_path("_probe", "", path, sizeof(path)) || access(path, F_OK) < 0 ||
	    (lock = state_lock("_probe")) < 0)
		return;
	f = fopen(path, "re");
	if (f) {
		if (!fgets(target, sizeof(target), f))
			target[0] = '\0';
		fclose(f);
		target[strcspn(target, "\r\n")] = '\0';
		unlink(path);
	}
	if (target[0] && state_path("_probe", ".result", result, sizeof(result))) {
		fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		err = fd < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		f = fopen(result, "we");
		if (f) {
			fprintf(f, "errno=%d\n", err);
			fclose(f);
		}
	}
	close(lock);
}

static CK_RV shim_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_SLOT_ID slots[MAX_SLOTS];
	CK_ULONG n = MAX_SLOTS, kept = 0;
	CK_RV rv;

	probe_run();
	module_fault("C_GetSlotList");
	if (!present || !count)
		return real->C_GetSlotList(present, list, count);
	rv = real->C_GetSlotList(CK_TRUE, slots, &n);
	if (rv != CKR_OK)
		return rv;
	for (CK_ULONG i = 0; i < n; i++)
		if (!slot_pulled(slots[i]))
			slots[kept++] = slots[i];
	if (list && *count < kept)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list)
		memcpy(list, slots, kept * sizeof(slots[0]));
	*count = kept;
	return rv;
}

static CK_RV shim_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	CK_RV rv = real->C_GetSlotInfo(slot, info);

	if (rv == CKR_OK && slot_pulled(slot))
		info->flags &= ~CKF_TOKEN_PRESENT;
	return rv;
}

static CK_RV shim_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	char serial[17];
	State s;
	CK_RV rv = real->C_GetTokenInfo(slot, info);

	if (rv != CKR_OK || !copy_serial(info, serial) || !state_read(serial, &s))
		return rv;
	(void)fault_check(serial, &s, "C_GetTokenInfo");
	if (s.pulled)
		return CKR_TOKEN_NOT_PRESENT;
	info->flags &= ~PIN_FLAGS;
	if (!s.no_counters && s.tries_left < s.max)
		info->flags |= CKF_USER_PIN_COUNT_LOW;
	if (!s.no_counters && s.tries_left == 1)
		info->flags |= CKF_USER_PIN_FINAL_TRY;
	if (!s.no_counters && s.tries_left == 0)
		info->flags |= CKF_USER_PIN_LOCKED;
	if (s.must_change)
		info->flags |= CKF_USER_PIN_TO_BE_CHANGED;
	return CKR_OK;
}

/* One attempt with the user PIN: counted, refused when locked. */
typedef CK_RV (*pin_call_t)(CK_SESSION_HANDLE session, const void *args);

typedef struct {
	CK_USER_TYPE user;
	CK_UTF8CHAR_PTR pin, new_pin;
	CK_ULONG len, new_len;
} PinArgs;

static CK_RV call_login(CK_SESSION_HANDLE session, const void *args)
{
	const PinArgs *a = args;

	return real->C_Login(session, a->user, a->pin, a->len);
}

static CK_RV call_set_pin(CK_SESSION_HANDLE session, const void *args)
{
	const PinArgs *a = args;

	return real->C_SetPIN(session, a->pin, a->len, a->new_pin, a->new_len);
}

static CK_RV pin_attempt(CK_SESSION_HANDLE session, pin_call_t call, const PinArgs *args,
			 bool is_login)
{
	CK_SESSION_INFO info;
	char serial[17];
	bool counted;
	State s;
	CK_RV rv;
	int lock;

	if (real->C_GetSessionInfo(session, &info) != CKR_OK || !slot_serial(info.slotID, serial))
		return call(session, args);
	/* Before the lock: the fault takes it itself. */
	if (is_login && state_read(serial, &s))
		(void)fault_check(serial, &s, "C_Login");
	if ((lock = state_lock(serial)) < 0)
		return call(session, args);
	state_read(serial, &s);
	if (is_login)
		s.logins++;
	else
		s.setpins++;
	/* The SO's own PIN is not counted. */
	counted = is_login ? args->user != CKU_SO : info.state != CKS_RW_SO_FUNCTIONS;
	if (s.pulled)
		rv = CKR_DEVICE_REMOVED;
	else if (!counted)
		rv = call(session, args);
	else if (s.tries_left == 0)
		rv = CKR_PIN_LOCKED;
	else {
		rv = call(session, args);
		if (rv == CKR_PIN_INCORRECT) {
			s.tries_left--;
			rv = s.wrong_pin_rv;
		} else if (rv == CKR_OK) {
			s.tries_left = s.max;
			if (!is_login)
				s.must_change = 0;
		}
	}
	state_write(serial, &s);
	close(lock);
	return rv;
}

static CK_RV shim_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
			  CK_ULONG len)
{
	PinArgs args = {.user = user, .pin = pin, .len = len};

	return pin_attempt(session, call_login, &args, true);
}

static CK_RV shim_C_SetPIN(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
			   CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len)
{
	PinArgs args = {.pin = old_pin, .len = old_len, .new_pin = new_pin, .new_len = new_len};

	return pin_attempt(session, call_set_pin, &args, false);
}

/* The SO sets a new user PIN: all tries back, as on a real token. */
static CK_RV shim_C_InitPIN(CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	char serial[17];
	State s;
	CK_RV rv = session_gone(session);
	int lock;

	if (rv != CKR_OK)
		return rv;
	rv = real->C_InitPIN(session, pin, len);
	if (rv == CKR_OK && session_serial(session, serial) && (lock = state_lock(serial)) >= 0) {
		state_read(serial, &s);
		s.tries_left = s.max;
		state_write(serial, &s);
		close(lock);
	}
	return rv;
}

/* --- the calls that only check for a pulled token (and a fault) ----------- */

/* Refused while pulled. */
#define FORWARD(name, gone, params, args)                                                          \
	static CK_RV shim_##name params                                                            \
	{                                                                                          \
		CK_RV rv = gone;                                                                   \
		return rv != CKR_OK ? rv : real->name args;                                        \
	}
/* Done anyway (the token's sessions and login end with it), then refused. */
#define CLEANUP(name, gone, params, args)                                                          \
	static CK_RV shim_##name params                                                            \
	{                                                                                          \
		CK_RV rv = gone;                                                                   \
		CK_RV done = real->name args;                                                      \
		return rv != CKR_OK ? rv : done;                                                   \
	}
#define S CK_SESSION_HANDLE session
#define SG session_gone(session)
#define SF(call) session_check(session, #call)
#define MECH CK_MECHANISM_PTR mech
#define KEY CK_OBJECT_HANDLE key
#define OBJ CK_OBJECT_HANDLE obj
#define IN CK_BYTE_PTR in, CK_ULONG in_len
#define OUT CK_BYTE_PTR out, CK_ULONG_PTR out_len
#define TMPL CK_ATTRIBUTE_PTR tmpl, CK_ULONG n

#define CALLS(X, Y)                                                                                \
	X(C_GetMechanismList, slot_gone(slot),                                                     \
	  (CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR n), (slot, list, n))          \
	X(C_GetMechanismInfo, slot_gone(slot),                                                     \
	  (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info),                   \
	  (slot, type, info))                                                                      \
	X(C_InitToken, slot_gone(slot),                                                            \
	  (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG len, CK_UTF8CHAR_PTR label),             \
	  (slot, pin, len, label))                                                                 \
	X(C_OpenSession, slot_check(slot, "C_OpenSession"),                                        \
	  (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,                     \
	   CK_SESSION_HANDLE_PTR session),                                                         \
	  (slot, flags, app, notify, session))                                                     \
	Y(C_CloseAllSessions, slot_gone(slot), (CK_SLOT_ID slot), (slot))                          \
	Y(C_CloseSession, SG, (S), (session))                                                      \
	Y(C_Logout, SG, (S), (session))                                                            \
	X(C_GetSessionInfo, SG, (S, CK_SESSION_INFO_PTR info), (session, info))                    \
	X(C_GetOperationState, SG, (S, OUT), (session, out, out_len))                              \
	X(C_SetOperationState, SG, (S, IN, CK_OBJECT_HANDLE ekey, CK_OBJECT_HANDLE akey),          \
	  (session, in, in_len, ekey, akey))                                                       \
	X(C_CreateObject, SF(C_CreateObject), (S, TMPL, CK_OBJECT_HANDLE_PTR obj),                 \
	  (session, tmpl, n, obj))                                                                 \
	X(C_CopyObject, SG, (S, OBJ, TMPL, CK_OBJECT_HANDLE_PTR copy),                             \
	  (session, obj, tmpl, n, copy))                                                           \
	X(C_DestroyObject, SG, (S, OBJ), (session, obj))                                           \
	X(C_GetObjectSize, SG, (S, OBJ, CK_ULONG_PTR size), (session, obj, size))                  \
	X(C_GetAttributeValue, SG, (S, OBJ, TMPL), (session, obj, tmpl, n))                        \
	X(C_SetAttributeValue, SG, (S, OBJ, TMPL), (session, obj, tmpl, n))                        \
	X(C_FindObjectsInit, SF(C_FindObjectsInit), (S, TMPL), (session, tmpl, n))                 \
	X(C_FindObjects, SG, (S, CK_OBJECT_HANDLE_PTR objs, CK_ULONG max, CK_ULONG_PTR found),     \
	  (session, objs, max, found))                                                             \
	X(C_FindObjectsFinal, SG, (S), (session))                                                  \
	X(C_EncryptInit, SG, (S, MECH, KEY), (session, mech, key))                                 \
	X(C_Encrypt, SG, (S, IN, OUT), (session, in, in_len, out, out_len))                        \
	X(C_EncryptUpdate, SG, (S, IN, OUT), (session, in, in_len, out, out_len))                  \
	X(C_EncryptFinal, SG, (S, OUT), (session, out, out_len))                                   \
	X(C_DecryptInit, SG, (S, MECH, KEY), (session, mech, key))                                 \
	X(C_Decrypt, SG, (S, IN, OUT), (session, in, in_len, out, out_len))                        \
	X(C_DecryptUpdate, SG, (S, IN, OUT), (session, in, in_len, out, out_len))                  \
	X(C_DecryptFinal, SG, (S, OUT), (session, out, out_len))                                   \
	X(C_DigestInit, SG, (S, MECH), (session, mech))                                            \
	X(C_Digest, SG, (S, IN, OUT), (session, in, in_len, out, out_len))                         \
	X(C_DigestUpdate, SG, (S, IN), (session, in, in_len))                                      \
	X(C_DigestKey, SG, (S, KEY), (session, key))                                               \
	X(C_DigestFinal, SG, (S, OUT), (session, out, out_len))                                    \
	X(C_SignInit, SG, (S, MECH, KEY), (session, mech, key))                                    \
	X(C_Sign, SF(C_Sign), (S, IN, OUT), (session, in, in_len, out, out_len))                   \
	X(C_SignUpdate, SG, (S, IN), (session, in, in_len))                                        \
	X(C_SignFinal, SG, (S, OUT), (session, out, out_len))                                      \
	X(C_SignRecoverInit, SG, (S, MECH, KEY), (session, mech, key))                             \
	X(C_SignRecover, SG, (S, IN, OUT), (session, in, in_len, out, out_len))                    \
	X(C_VerifyInit, SG, (S, MECH, KEY), (session, mech, key))                                  \
	X(C_Verify, SG, (S, IN, CK_BYTE_PTR sig, CK_ULONG sig_len),                                \
	  (session, in, in_len, sig, sig_len))                                                     \
	X(C_VerifyUpdate, SG, (S, IN), (session, in, in_len))                                      \
	X(C_VerifyFinal, SG, (S, IN), (session, in, in_len))                                       \
	X(C_VerifyRecoverInit, SG, (S, MECH, KEY), (session, mech, key))                           \
	X(C_VerifyRecover, SG, (S, IN, OUT), (session, in, in_len, out, out_len))                  \
	X(C_DigestEncryptUpdate, SG, (S, IN, OUT), (session, in, in_len, out, out_len))            \
	X(C_DecryptDigestUpdate, SG, (S, IN, OUT), (session, in, in_len, out, out_len))            \
	X(C_SignEncryptUpdate, SG, (S, IN, OUT), (session, in, in_len, out, out_len))              \
	X(C_DecryptVerifyUpdate, SG, (S, IN, OUT), (session, in, in_len, out, out_len))            \
	X(C_GenerateKey, SG, (S, MECH, TMPL, CK_OBJECT_HANDLE_PTR key),                            \
	  (session, mech, tmpl, n, key))                                                           \
	X(C_GenerateKeyPair, SF(C_GenerateKeyPair),                                                \
	  (S, MECH, CK_ATTRIBUTE_PTR pub, CK_ULONG n_pub, CK_ATTRIBUTE_PTR priv, CK_ULONG n_priv,  \
	   CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key),                           \
	  (session, mech, pub, n_pub, priv, n_priv, pub_key, priv_key))                            \
	X(C_WrapKey, SG, (S, MECH, CK_OBJECT_HANDLE wrapping, KEY, OUT),                           \
	  (session, mech, wrapping, key, out, out_len))                                            \
	X(C_UnwrapKey, SG,                                                                         \
	  (S, MECH, CK_OBJECT_HANDLE unwrapping, IN, TMPL, CK_OBJECT_HANDLE_PTR key),              \
	  (session, mech, unwrapping, in, in_len, tmpl, n, key))                                   \
	X(C_DeriveKey, SG, (S, MECH, CK_OBJECT_HANDLE base, TMPL, CK_OBJECT_HANDLE_PTR key),       \
	  (session, mech, base, tmpl, n, key))                                                     \
	X(C_SeedRandom, SG, (S, IN), (session, in, in_len))                                        \
	X(C_GenerateRandom, SG, (S, CK_BYTE_PTR out, CK_ULONG len), (session, out, len))           \
	X(C_GetFunctionStatus, SG, (S), (session))                                                 \
	X(C_CancelFunction, SG, (S), (session))

CALLS(FORWARD, CLEANUP)

/* --- loading --------------------------------------------------------------- */

static void load(void)
{
	const char *path = getenv("PIN_SHIM_MODULE");
	CK_C_GetFunctionList get;
	void *module;

	if (!path || !*path)
		path = DEFAULT_MODULE;
	/* Never closed: SoftHSM stays loaded for the life of the process. */
	module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!module) {
		fprintf(stderr, "pin-shim: %s\n", dlerror());
		return;
	}
	get = (CK_C_GetFunctionList)dlsym(module, "C_GetFunctionList");
	if (!get || get(&real) != CKR_OK || !real) {
		fprintf(stderr, "pin-shim: %s has no function list\n", path);
		real = NULL;
		return;
	}
	shim = *real;
#define OVERRIDE(name, gone, params, args) shim.name = shim_##name;
	CALLS(OVERRIDE, OVERRIDE)
	shim.C_GetFunctionList = C_GetFunctionList;
	shim.C_GetSlotList = shim_C_GetSlotList;
	shim.C_GetSlotInfo = shim_C_GetSlotInfo;
	shim.C_GetTokenInfo = shim_C_GetTokenInfo;
	shim.C_Login = shim_C_Login;
	shim.C_SetPIN = shim_C_SetPIN;
	shim.C_InitPIN = shim_C_InitPIN;
}

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	pthread_once(&once, load);
	if (!real)
		return CKR_GENERAL_ERROR;
	if (!list)
		return CKR_ARGUMENTS_BAD;
	*list = &shim;
	return CKR_OK;
}
