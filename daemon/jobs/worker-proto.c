/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "jobs/worker-proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"

/* Room for the descriptors of one frame, aligned for a cmsghdr. */
typedef union FdControl {
	struct cmsghdr align;
	char buffer[CMSG_SPACE(sizeof(int) * WORKER_MAX_FDS)];
} FdControl;

static int write_all(int fd, const char *data, size_t size)
{
	while (size > 0) {
		ssize_t n = send(fd, data, size, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		size -= (size_t)n;
	}
	return 0;
}

int worker_send(int fd, json_t *message, const int *fds, size_t n_fds)
{
	_cleanup_free_ char *text = json_dumps(message, JSON_COMPACT);
	size_t size = text ? strlen(text) : 0;
	unsigned char header[4];
	FdControl control = {};
	struct iovec iov = {.iov_base = header, .iov_len = sizeof(header)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (!text)
		return -ENOMEM;
	if (size > WORKER_FRAME_MAX)
		return -EMSGSIZE;
	if (n_fds > WORKER_MAX_FDS)
		return -EINVAL;
	for (size_t i = 0; i < 4; i++)
		header[i] = (unsigned char)(size >> (8 * i));
	if (n_fds > 0) {
		struct cmsghdr *c;

		msg.msg_control = control.buffer;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(header)) {
		int r = write_all(fd, (char *)header + n, sizeof(header) - (size_t)n);
		if (r < 0)
			return r;
	}
	return write_all(fd, text, size);
}

/* 1 when size bytes came, 0 at the end of the stream before any, -errno
 * (-EPIPE: it ended part way). */
static int read_all(int fd, char *data, size_t size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t n = recv(fd, data + got, size - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got == 0 ? 0 : -EPIPE;
		got += (size_t)n;
	}
	return 1;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int worker_recv(int fd, json_t **ret, int *fds, size_t *ret_n_fds)
{
	unsigned char header[4];
	FdControl control = {};
	struct iovec iov = {.iov_base = header, .iov_len = sizeof(header)};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = control.buffer,
	    .msg_controllen = sizeof(control.buffer),
	};
	int received[WORKER_MAX_FDS];
	size_t n_received = 0;
	_cleanup_free_ char *body = NULL;
	uint32_t size = 0;
	json_t *message;
	ssize_t n;
	int r;

	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *p = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < count; i++) {
			int one;
			memcpy(&one, p + i, sizeof(int));
			if (n_received < WORKER_MAX_FDS)
				received[n_received++] = one;
			else
				close(one);
		}
	}
	if (n == 0) {
		close_fds(received, n_received);
		return 0;
	}
	r = (msg.msg_flags & MSG_CTRUNC) ? -EBADMSG : 0;
	if (r == 0 && (size_t)n < sizeof(header)) {
		r = read_all(fd, (char *)header + n, sizeof(header) - (size_t)n);
		r = r == 0 ? -EPIPE : r < 0 ? r : 0;
	}
	for (size_t i = 0; r == 0 && i < 4; i++)
		size |= (uint32_t)header[i] << (8 * i);
	if (r == 0 && size > WORKER_FRAME_MAX)
		r = -EMSGSIZE;
	if (r == 0) {
		body = malloc(size ? size : 1);
		r = body ? read_all(fd, body, size) : -ENOMEM;
		r = r == 0 && size > 0 ? -EPIPE : r < 0 ? r : 0;
	}
	if (r < 0) {
		close_fds(received, n_received);
		return r;
	}
	message = json_loadb(body, size, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(message) || !json_is_string(json_object_get(message, "type")) ||
	    (n_received > 0 && !ret_n_fds)) {
		json_decref(message);
		close_fds(received, n_received);
		return -EBADMSG;
	}
	if (ret_n_fds) {
		memcpy(fds, received, n_received * sizeof(int));
		*ret_n_fds = n_received;
	}
	*ret = message;
	return 1;
}

const char *worker_message_type(json_t *message)
{
	const char *type = json_string_value(json_object_get(message, "type"));

	return type ? type : "";
}
