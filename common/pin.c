/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <unistd.h>

#include "time-util.h"

int pin_new(Pin **ret)
{
	Pin *pin = calloc(1, sizeof(Pin));

	if (!pin)
		return -ENOMEM;
	pin->data = mmap(NULL, PIN_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pin->data == MAP_FAILED) {
		free(pin);
		return -ENOMEM;
	}
	/* Best effort: an unprivileged caller may be over RLIMIT_MEMLOCK;
	 * the page still never reaches a core dump. */
	(void)mlock(pin->data, PIN_MAX);
	(void)madvise(pin->data, PIN_MAX, MADV_DONTDUMP);
	*ret = pin;
	return 0;
}

Pin *pin_free(Pin *pin)
{
	if (!pin)
		return NULL;
	explicit_bzero(pin->data, PIN_MAX);
	munlock(pin->data, PIN_MAX);
	munmap(pin->data, PIN_MAX);
	free(pin);
	return NULL;
}

int pin_read_fd(Pin *pin, int fd, int64_t deadline_usec)
{
	size_t size = 0;

	explicit_bzero(pin->data, PIN_MAX);
	pin->size = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int timeout_ms = -1;
		char c;
		ssize_t n;
		int k;

		/* One deadline for the whole PIN: a writer that drips a byte
		 * now and then gets no more time than one that sends none. */
		if (deadline_usec > 0) {
			int64_t left = deadline_usec - monotonic_usec();
			if (left <= 0) {
				explicit_bzero(pin->data, PIN_MAX);
				return -ETIMEDOUT;
			}
			timeout_ms = (int)((left + 999) / 1000);
		}
		k = poll(&p, 1, timeout_ms);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0) {
			explicit_bzero(pin->data, PIN_MAX);
			return -ETIMEDOUT;
		}
		/* One byte at a time: nothing past the newline is consumed
		 * and nothing of the PIN lands in a stdio buffer. */
		n = read(fd, &c, 1);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			explicit_bzero(pin->data, PIN_MAX);
			return -errno;
		}
		if (n == 0 || c == '\n')
			break;
		if (size >= PIN_MAX - 1) {
			explicit_bzero(pin->data, PIN_MAX);
			return -EMSGSIZE;
		}
		pin->data[size++] = c;
		c = 0;
	}
	if (size > 0 && pin->data[size - 1] == '\r')
		pin->data[--size] = 0;
	if (size == 0)
		return -ENODATA;
	pin->data[size] = 0;
	pin->size = size;
	return 0;
}

int pin_read_tty(Pin *pin, const char *prompt)
{
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	int r;

	if (fd < 0)
		return -ENOTTY;
	if (tcgetattr(fd, &old) < 0) {
		close(fd);
		return -ENOTTY;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	(void)!write(fd, prompt, strlen(prompt));
	if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
		close(fd);
		return -ENOTTY;
	}
	r = pin_read_fd(pin, fd, 0);
	(void)tcsetattr(fd, TCSAFLUSH, &old);
	(void)!write(fd, "\n", 1);
	close(fd);
	return r;
}

int pin_pipe(const Pin *pin)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	if (write(fds[1], pin->data, pin->size) != (ssize_t)pin->size ||
	    write(fds[1], "\n", 1) != 1) {
		int r = errno > 0 ? -errno : -EIO;

		close(fds[0]);
		close(fds[1]);
		return r;
	}
	close(fds[1]);
	return fds[0];
}
