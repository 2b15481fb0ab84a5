/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which PKCS#11 call a worker is in, and since when, on a page of memory
 * the worker shares with the daemon: the daemon reads it to stop a worker
 * whose module has not returned from one call within its limit
 * ([pkcs11] call_timeout, keygen_timeout). Every call into a module goes
 * through P11(), which marks the page around it. Without a page (a
 * process that is no worker: the unit tests) P11() is a plain call. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum P11Call {
	P11_NONE,
	P11_C_Initialize,
	P11_C_Finalize,
	P11_C_GetSlotList,
	P11_C_GetTokenInfo,
	P11_C_OpenSession,
	P11_C_CloseSession,
	P11_C_Login,
	P11_C_Logout,
	P11_C_FindObjectsInit,
	P11_C_FindObjects,
	P11_C_FindObjectsFinal,
	P11_C_GetAttributeValue,
	P11_C_GenerateKeyPair,
	P11_C_SignInit,
	P11_C_Sign,
	P11_C_CreateObject,
	P11_C_DestroyObject,
	P11_C_SetPIN,
	P11_C_GetMechanismList,
	P11_C_GetMechanismInfo,
	P11_C_GetSlotInfo,
	P11_C_GetSessionInfo,
	_P11_CALL_MAX,
} P11Call;

typedef struct P11GuardPage {
	_Atomic uint32_t call;	    /* a P11Call; P11_NONE between calls */
	_Atomic int64_t since_usec; /* CLOCK_MONOTONIC, when it began */
	_Atomic uint64_t n_calls;   /* every call so far */
} P11GuardPage;

/* The worker: maps the page the daemon handed over as fd. */
int p11_guard_attach(int fd);
void p11_guard_enter(P11Call call);
void p11_guard_leave(void);

#define P11(functions, call, ...)                                                                  \
	({                                                                                         \
		p11_guard_enter(P11_##call);                                                       \
		CK_RV p11_rv_ = (functions)->call(__VA_ARGS__);                                    \
		p11_guard_leave();                                                                 \
		p11_rv_;                                                                           \
	})

/* "C_Login", …; NULL for P11_NONE or a value out of range. */
const char *p11_call_name(uint32_t call);

/* The daemon: a new page (a sealed-size memfd, *ret_fd) for one worker. */
int p11_guard_new(int *ret_fd, P11GuardPage **ret);
void p11_guard_free(P11GuardPage *page);

/* The call the worker is in when it has run past its limit at now (µs,
 * CLOCK_MONOTONIC): C_GenerateKeyPair against keygen_limit_sec, every
 * other call against call_limit_sec. P11_NONE when none has. */
P11Call p11_guard_overdue(const P11GuardPage *page, unsigned call_limit_sec,
			  unsigned keygen_limit_sec, int64_t now, unsigned *ret_limit_sec);
