/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "worker-sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* Landlock's write rights, by the ABI version that brought them. Reading
 * and running stay allowed everywhere: modules load their own files and
 * configuration. Device ioctls (ABI 5) stay allowed too: a vendor module
 * may speak to its USB device directly. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#define LANDLOCK_WRITES_V1                                                                         \
	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                           \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |                           \
	 LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |                               \
	 LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |                             \
	 LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM)

static int landlock_abi(void)
{
	long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? -errno : (int)abi;
}

/* Lets the ruleset write beneath path; a path that does not exist is
 * skipped (returns 0), any other failure is returned. */
static int allow_beneath(int ruleset, const char *path, uint64_t handled)
{
	struct landlock_path_beneath_attr rule = {.allowed_access = handled};
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == EACCES ? 0 : -errno;
	/* A rule on a file may only name what applies to files. */
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		rule.allowed_access &= LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE;
	rule.parent_fd = fd;
	if (syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
		r = -errno;
	close(fd);
	return r;
}

int sandbox_writable_only(const char *state_dir, char *const *paths)
{
	struct landlock_ruleset_attr attr = {};
	int abi, ruleset, r;

	abi = landlock_abi();
	if (abi < 0)
		/* The kernel has no Landlock (or it is off): the unit's
		 * ProtectSystem= is what holds then. */
		return abi == -ENOSYS || abi == -EOPNOTSUPP ? 0 : abi;
	attr.handled_access_fs = LANDLOCK_WRITES_V1;
	if (abi >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return -errno;
	r = allow_beneath(ruleset, state_dir, attr.handled_access_fs);
	if (r >= 0)
		r = allow_beneath(ruleset, "/dev/null", attr.handled_access_fs);
	for (size_t i = 0; r >= 0 && paths && paths[i]; i++)
		r = allow_beneath(ruleset, paths[i], attr.handled_access_fs);
	if (r >= 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = -errno;
	if (r >= 0 && syscall(__NR_landlock_restrict_self, ruleset, 0) < 0)
		r = -errno;
	close(ruleset);
	return r;
}
