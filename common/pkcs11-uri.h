/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The token attributes of a PKCS#11 URI (RFC 7512); NULL when absent. */
typedef struct Pkcs11Uri {
	char *token;
	char *serial;
	char *manufacturer;
	char *model;
} Pkcs11Uri;

/* Parses "pkcs11:attr=value;…" (the query part is ignored); values are
 * percent-decoded. -EINVAL for a malformed URI. */
int pkcs11_uri_parse(const char *uri, Pkcs11Uri *ret);
void pkcs11_uri_clear(Pkcs11Uri *uri);
