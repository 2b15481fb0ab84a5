/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * p11-timing.so: a PKCS#11 module that forwards every call to another
 * module and writes how long a few of them took. bench/activation-bench.py
 * puts it in front of SoftHSM for the daemon and for the tools it compares
 * with, to tell the token's own work (key generation, signing, writing)
 * from the rest.
 *
 *   P11_TIMING_MODULE  the real module (default /usr/lib/softhsm/libsofthsm2.so)
 *   P11_TIMING_LOG     file to append to; one line per timed call:
 *                      "<function> <pid> <start ns> <end ns> <rv>",
 *                      CLOCK_MONOTONIC, one write(2) per line (O_APPEND).
 *                      Unset: nothing is written.
 *
 * Only C_GetFunctionList is exported (PKCS#11 2.40): callers that look for
 * C_GetInterface fall back to it. Not built by meson; the benchmark
 * compiles it:  gcc -shared -fPIC -O2 $(pkg-config --cflags p11-kit-1)
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

static CK_FUNCTION_LIST real;    /* the real module's list, copied */
static CK_FUNCTION_LIST wrapped; /* what callers get */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static CK_RV load_rv = CKR_GENERAL_ERROR;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void record(const char *function, long long start, CK_RV rv)
{
	long long end = now_ns();
	const char *path = getenv("P11_TIMING_LOG");
	char line[160];
	int fd, n;

	if (!path || !*path)
		return;
	n = snprintf(line, sizeof(line), "%s %ld %lld %lld %lu\n", function, (long)getpid(),
		     start, end, (unsigned long)rv);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (n > 0 && write(fd, line, (size_t)n) < 0) {
		/* Nothing to do: the benchmark then lacks one figure. */
	}
	close(fd);
}

#define TIMED(name, params, args)                   \
	static CK_RV timed_##name params            \
	{                                           \
		long long start = now_ns();         \
		CK_RV rv = real.name args;          \
		record(#name, start, rv);           \
		return rv;                          \
	}

TIMED(C_Initialize, (CK_VOID_PTR init_args), (init_args))
TIMED(C_Login, (CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len),
      (s, user, pin, pin_len))
TIMED(C_GenerateKeyPair,
      (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR public_template,
       CK_ULONG n_public, CK_ATTRIBUTE_PTR private_template, CK_ULONG n_private,
       CK_OBJECT_HANDLE_PTR public_key, CK_OBJECT_HANDLE_PTR private_key),
      (s, mechanism, public_template, n_public, private_template, n_private, public_key,
       private_key))
TIMED(C_Sign,
      (CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG size, CK_BYTE_PTR signature,
       CK_ULONG_PTR signature_size),
      (s, data, size, signature, signature_size))
TIMED(C_SignFinal, (CK_SESSION_HANDLE s, CK_BYTE_PTR signature, CK_ULONG_PTR signature_size),
      (s, signature, signature_size))
TIMED(C_CreateObject,
      (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR template, CK_ULONG n, CK_OBJECT_HANDLE_PTR object),
      (s, template, n, object))

static void load(void)
{
	const char *path = getenv("P11_TIMING_MODULE");
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR list = NULL;
	void *handle;

	handle = dlopen(path && *path ? path : DEFAULT_MODULE, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		return;
	get = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
	if (!get || get(&list) != CKR_OK || !list)
		return;
	real = *list;
	wrapped = *list;
	wrapped.C_GetFunctionList = C_GetFunctionList;
	wrapped.C_Initialize = timed_C_Initialize;
	wrapped.C_Login = timed_C_Login;
	wrapped.C_GenerateKeyPair = timed_C_GenerateKeyPair;
	wrapped.C_Sign = timed_C_Sign;
	wrapped.C_SignFinal = timed_C_SignFinal;
	wrapped.C_CreateObject = timed_C_CreateObject;
	load_rv = CKR_OK;
}

/* The real module is linked when this one is, as a module's own
 * libraries are: a caller that maps the module ahead of its use (the
 * daemon's job workers) pays for the linking then, here as with the real
 * module alone. */
__attribute__((constructor)) static void load_with_this_module(void)
{
	pthread_once(&once, load);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ret)
{
	if (!ret)
		return CKR_ARGUMENTS_BAD;
	pthread_once(&once, load);
	if (load_rv != CKR_OK)
		return load_rv;
	*ret = &wrapped;
	return CKR_OK;
}
