/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon and a safecad-worker talk over a stream socketpair in
 * frames: a 4-byte little-endian length, then that many bytes of one JSON
 * object whose "type" names the message (docs/workers.md lists them).
 * Descriptors (the PIN pipes) travel as SCM_RIGHTS with a frame's first
 * byte. */

#include <jansson.h>
#include <stddef.h>

/* fd 3 of a worker is its socket, fd 4 the guard page (p11-guard.h). */
#define WORKER_SOCKET_FD 3
#define WORKER_GUARD_FD 4

#define WORKER_FRAME_MAX (32U << 20)
#define WORKER_MAX_FDS 2

/* Sends message with n_fds descriptors (they stay open here). */
int worker_send(int fd, json_t *message, const int *fds, size_t n_fds);

/* Waits for one frame. Returns 1 with *ret (an object with a string
 * "type") and its descriptors in fds (up to WORKER_MAX_FDS; the count in
 * *ret_n_fds, which may be NULL when none may come), 0 at a clean end of
 * the stream, -EBADMSG for a frame that is no such object, -EMSGSIZE for
 * one too large, or another -errno. */
int worker_recv(int fd, json_t **ret, int *fds, size_t *ret_n_fds);

/* The message's type ("" when it has none). */
const char *worker_message_type(json_t *message);
