/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Standard base64 (RFC 4648 §4) with padding, as x5c wants it. NULL when out
 * of memory. */
char *base64_encode(const void *data, size_t size);

/* base64url (RFC 4648 §5) without padding, as JWS wants it. NULL when out of
 * memory. */
char *base64url_encode(const void *data, size_t size);

/* Decodes len characters of base64url without padding. Refuses padding,
 * characters outside the alphabet, a length no encoder makes and non-zero
 * trailing bits, so each byte string has exactly one text form. Returns
 * -EBADMSG for bad input; *ret is NUL-terminated (not counted in size). */
int base64url_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_size);

/* The DER inside one PEM block labelled "CERTIFICATE" (RFC 7468): the
 * first such block; -EBADMSG when there is none or its base64 is bad. */
int pem_certificate_to_der(const char *pem, unsigned char **ret, size_t *ret_size);
