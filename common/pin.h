/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A PIN lives only here: locked in memory (never swapped out), wiped the
 * moment it is freed. Never copy it into anything else. */
#define PIN_MAX 256

typedef struct Pin {
	char *data; /* NUL-terminated, mlock'ed */
	size_t size;
} Pin;

int pin_new(Pin **ret);
Pin *pin_free(Pin *pin);

/* Reads up to the first newline or EOF from fd (a pipe or a file), at most
 * PIN_MAX - 1 bytes (-EMSGSIZE past that), all of it before deadline_usec
 * (CLOCK_MONOTONIC, as monotonic_usec(); 0: no limit), else -ETIMEDOUT.
 * An empty PIN is -ENODATA. */
int pin_read_fd(Pin *pin, int fd, int64_t deadline_usec);

/* A pipe holding the PIN and a newline, its write end closed: the read
 * end (returned, O_CLOEXEC) goes to safecad, so the PIN never travels in a
 * message, an argument or the environment. It fits the pipe's buffer, so
 * the write never blocks. */
int pin_pipe(const Pin *pin);

/* Reads a line from the terminal without echo, after prompt (-ENOTTY when
 * there is no terminal). */
int pin_read_tty(Pin *pin, const char *prompt);
