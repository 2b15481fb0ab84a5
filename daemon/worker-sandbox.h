/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A worker's sandbox, on top of what safecad.service gives the daemon
 * (and so every worker): seccomp filters, each for the rest of the
 * worker's life. */

/* No new privileges, and a filter that refuses what token and CA work
 * never needs: running programs, tracing other processes, mounts,
 * namespaces, kernel modules, BPF, the kernel keyring, raw clock and
 * reboot calls; calls of another architecture kill the worker. */
int sandbox_base(void);

/* No Internet sockets from now on (EACCES): for scans, PIN changes and
 * removals, which only talk to the token. */
int sandbox_no_network(void);

/* Writes only beneath state_dir, /dev/null and paths (a NULL-terminated
 * list; missing folders are skipped) from now on, with Landlock; reading
 * stays open. A kernel without Landlock gives 0 and no restriction. */
int sandbox_writable_only(const char *state_dir, char *const *paths);
