/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A decimal number in [min, max], surrounding blanks allowed. */
int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret);

/* A copy without leading and trailing white space; NULL when out of memory. */
char *strdup_strip(const char *s);

/* The whole file as a NUL-terminated string; -EFBIG when it is larger than
 * max bytes, -EBADMSG when it holds a NUL byte. */
int read_small_file(const char *path, size_t max, char **ret);

/* "a/b", or b alone when it is absolute. NULL when out of memory. */
char *path_join(const char *a, const char *b);
