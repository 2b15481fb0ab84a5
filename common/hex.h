/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Lowercase hex of a byte string; NULL when out of memory. */
char *hex_encode(const void *data, size_t size);

/* The value of one hex digit (either case), -1 for anything else. */
int hex_digit(char c);

/* Bytes of an even-length hex string (either case), at most max;
 * -EINVAL for anything else. */
int hex_decode(const char *hex, unsigned char *out, size_t max, size_t *ret_size);

/* Copies s without leading and trailing blanks (spaces, tabs, NULs are not
 * blanks here: PKCS#11 pads with spaces). NULL when out of memory. */
char *strdup_trim(const char *s, size_t max);
