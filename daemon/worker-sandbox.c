/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "worker-sandbox.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "macro.h"

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer stops the world with ptrace, and a sanitizer report runs
 * the symbolizer. */
#define SANITIZER_BUILD 1
#endif

#define MAX_FILTER 128

#define STMT(code, k) ((struct sock_filter)BPF_STMT((code), (k)))
#define JUMP(code, k, t, f) ((struct sock_filter)BPF_JUMP((code), (k), (t), (f)))

static int install(struct sock_filter *program, size_t n)
{
	struct sock_fprog fprog = {.len = (unsigned short)n, .filter = program};

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) < 0)
		return -errno;
	return 0;
}

/* Refused with EPERM. */
static const int denied[] = {
#ifndef SANITIZER_BUILD
    __NR_execve,
    __NR_execveat,
    __NR_ptrace,
#endif
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_mount,
    __NR_umount2,
    __NR_pivot_root,
    __NR_chroot,
    __NR_unshare,
    __NR_setns,
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_kexec_load,
#ifdef __NR_kexec_file_load
    __NR_kexec_file_load,
#endif
    __NR_bpf,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    __NR_perf_event_open,
    __NR_userfaultfd,
    __NR_reboot,
    __NR_swapon,
    __NR_swapoff,
    __NR_acct,
    __NR_settimeofday,
    __NR_clock_settime,
    __NR_clock_adjtime,
    __NR_adjtimex,
    __NR_syslog,
    __NR_open_by_handle_at,
    __NR_name_to_handle_at,
#ifdef __NR_iopl
    __NR_iopl,
    __NR_ioperm,
#endif
#ifdef __NR_fsopen
    __NR_fsopen,
    __NR_fsmount,
    __NR_fsconfig,
    __NR_move_mount,
    __NR_open_tree,
#endif
};

int sandbox_base(void)
{
#ifdef SANDBOX_ARCH
	struct sock_filter program[MAX_FILTER];
	size_t n = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	program[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	program[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0);
	program[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	program[n++] = STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
	/* x32 calls share the architecture: refused. */
	program[n++] = JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000U, 0, 1);
	program[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
#endif
	for (size_t i = 0; i < ELEMENTSOF(denied); i++) {
		program[n++] = JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i], 0, 1);
		program[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	}
	program[n++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	return install(program, n);
#else
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
#endif
}

int sandbox_no_network(void)
{
#ifdef SANDBOX_ARCH
	struct sock_filter program[] = {
	    STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0),
	    STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	    STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 6),
	    /* The domain: the low 32 bits of the first argument. */
	    STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
	    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 3, 0),
	    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 2, 0),
	    JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_PACKET, 1, 0),
	    STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
	    STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};

	return install(program, ELEMENTSOF(program));
#else
	return 0;
#endif
}
