/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/p11-guard.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "macro.h"
#include "time-util.h"

static P11GuardPage *page;

static const char *const names[_P11_CALL_MAX] = {
    [P11_C_Initialize] = "C_Initialize",
    [P11_C_Finalize] = "C_Finalize",
    [P11_C_GetSlotList] = "C_GetSlotList",
    [P11_C_GetTokenInfo] = "C_GetTokenInfo",
    [P11_C_OpenSession] = "C_OpenSession",
    [P11_C_CloseSession] = "C_CloseSession",
    [P11_C_Login] = "C_Login",
    [P11_C_Logout] = "C_Logout",
    [P11_C_FindObjectsInit] = "C_FindObjectsInit",
    [P11_C_FindObjects] = "C_FindObjects",
    [P11_C_FindObjectsFinal] = "C_FindObjectsFinal",
    [P11_C_GetAttributeValue] = "C_GetAttributeValue",
    [P11_C_GenerateKeyPair] = "C_GenerateKeyPair",
    [P11_C_SignInit] = "C_SignInit",
    [P11_C_Sign] = "C_Sign",
    [P11_C_CreateObject] = "C_CreateObject",
    [P11_C_DestroyObject] = "C_DestroyObject",
    [P11_C_SetPIN] = "C_SetPIN",
    [P11_C_GetMechanismList] = "C_GetMechanismList",
    [P11_C_GetMechanismInfo] = "C_GetMechanismInfo",
    [P11_C_GetSlotInfo] = "C_GetSlotInfo",
    [P11_C_GetSessionInfo] = "C_GetSessionInfo",
};

const char *p11_call_name(uint32_t call)
{
	return call < _P11_CALL_MAX ? names[call] : NULL;
}

int p11_guard_attach(int fd)
{
	void *p = mmap(NULL, sizeof(P11GuardPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	page = p;
	return 0;
}

void p11_guard_enter(P11Call call)
{
	if (!page)
		return;
	atomic_store(&page->since_usec, monotonic_usec());
	atomic_store(&page->call, (uint32_t)call);
	atomic_fetch_add(&page->n_calls, 1);
}

void p11_guard_leave(void)
{
	if (page)
		atomic_store(&page->call, (uint32_t)P11_NONE);
}

int p11_guard_new(int *ret_fd, P11GuardPage **ret)
{
	int fd = memfd_create("safecad-p11-guard", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	void *p;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, sizeof(P11GuardPage)) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	p = mmap(NULL, sizeof(P11GuardPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret = p;
	return 0;
}

void p11_guard_free(P11GuardPage *p)
{
	if (p)
		(void)munmap(p, sizeof(P11GuardPage));
}

P11Call p11_guard_overdue(const P11GuardPage *p, unsigned call_limit_sec, unsigned keygen_limit_sec,
			  int64_t now, unsigned *ret_limit_sec)
{
	/* The worker changes the page while it is read: the call is read
	 * before and after its start, so a call that ended meanwhile does
	 * not lend its start to the next one. */
	uint32_t call = atomic_load(&p->call);
	int64_t since = atomic_load(&p->since_usec);
	unsigned limit = call == P11_C_GenerateKeyPair ? keygen_limit_sec : call_limit_sec;

	if (call == P11_NONE || call >= _P11_CALL_MAX || atomic_load(&p->call) != call)
		return P11_NONE;
	if (now - since < (int64_t)limit * 1000000)
		return P11_NONE;
	if (ret_limit_sec)
		*ret_limit_sec = limit;
	return (P11Call)call;
}
