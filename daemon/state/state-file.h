/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* State files are JSON, written atomically: a temporary file in the same
 * folder, fsync, rename over the old one, fsync the folder. After a crash
 * the file is either the old one or the new one, whole. */
int state_file_write(const char *path, json_t *value);

/* Reads a state file of at most max bytes; -ENOENT when there is none,
 * -EBADMSG when it is not a JSON object, -EFBIG when it is too large,
 * -EISDIR or -ENOTREGULAR when it is a folder, a symbolic link, a FIFO or
 * anything else that is not a regular file (never waited on). */
int state_file_read(const char *path, size_t max, json_t **ret);

/* Renames a state file that cannot be used (whatever it is) to
 * "<path>.damaged-<time>" beside it: out of the daemon's way, kept for
 * the user, since it may be the only trace of an interrupted activation.
 * Returns the new name. */
int state_file_set_aside(const char *path, char **ret_new_path);

/* A token's serial, label, manufacturer or model as a state file may hold
 * it: CK_TOKEN_INFO's fields are at most 32 bytes; twice that is room
 * enough. */
#define STATE_TOKEN_TEXT_MAX 64

/* Checks a state file read back (path: where it was read). -EBADMSG with
 * *ret_bad naming the first member that is wrong. */
typedef int (*state_check_t)(json_t *value, const char *path, const char **ret_bad);

/* Reads a state file and checks it. One that cannot be used (not a
 * regular file, too large, not JSON, failing check) is set aside with a
 * warning that names it, what it is ("Activation journal") and why:
 * -EBADMSG then. -ENOENT when there is none. */
int state_file_load(const char *path, size_t max, state_check_t check, const char *what,
		    json_t **ret);

/* What a member of a state file must be. */
typedef enum StateKind {
	STATE_TEXT,    /* a string of 0..max bytes, no control characters */
	STATE_PEM,     /* a string of 0..max bytes of printable ASCII and newlines */
	STATE_ID,      /* an action or agency id: 1..64 of [A-Za-z0-9_-] */
	STATE_HEX,     /* 0..max hex digits, an even number (bytes) */
	STATE_SERIAL,  /* a certificate serial: 1..max hex digits */
	STATE_BOOL,    /* true or false */
	STATE_INTEGER, /* a JSON integer */
	STATE_OBJECT,  /* an object (checked further by the caller) */
	STATE_ARRAY,   /* an array of at most max members */
} StateKind;

typedef struct StateField {
	const char *name;
	StateKind kind;
	size_t max;
	bool required;
	bool nullable;
} StateField;

/* Checks the members of object that fields name (others are left alone).
 * Returns 0, or -EBADMSG with *ret_bad the name of the first member that is
 * missing or not what it must be. */
int state_check(json_t *object, const StateField *fields, size_t n_fields, const char **ret_bad);

/* Removes a state file and makes that durable. */
int state_file_remove(const char *path);

/* Creates the folder (mode 0700) if it is not there. */
int state_directory_ensure(const char *path);

/* Takes an flock on <state>/<name> (made when missing), waiting for it:
 * what serializes the daemon and its workers on one file. Returns the
 * descriptor to close to let go, or -errno. */
int state_lock(const char *name);
