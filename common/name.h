/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Distinguished names as plain data: what the daemon keeps and compares
 * without a certificate parser (x509-util.h reads them from certificates). */

#include <stdbool.h>
#include <stddef.h>

/* One RDN of a distinguished name, as protocol-v1 spells it: an OpenSSL
 * short name (or a dotted OID) and the UTF-8 text of the value. */
typedef struct NamePair {
	char *attribute;
	char *value;
} NamePair;

typedef struct Name {
	NamePair *pairs;
	size_t n_pairs;
} Name;

/* Names from outside are bounded: a certificate's name has a handful of
 * RDNs; anything past this is hostile. */
#define NAME_MAX_PAIRS 64

void name_clear(Name *name);
int name_copy(const Name *source, Name *ret);
bool name_equal(const Name *a, const Name *b);
