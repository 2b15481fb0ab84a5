/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "name.h"
#include "state/profiles.h"
#include "token/token-caps.h"

/* What a scan read from one certificate object. Plain data: it holds no
 * PKCS#11 handle, so it outlives a module reload, and no parsed
 * certificate, so the daemon keeps it without a certificate parser (a
 * worker fills it: token-x509.h). */
typedef struct CertificateEntry {
	char *label;
	char *key_id; /* hex of CKA_ID, "" when it has none */
	char *serial;
	Name subject;
	Name issuer;
	int64_t not_before;
	int64_t not_after;
	char *sha256;
	bool has_key;
	const Profile *profile;
	unsigned char *der; /* the certificate itself */
	size_t der_size;
} CertificateEntry;

typedef struct TokenInfo {
	char *serial;
	char *label;
	char *manufacturer;
	char *model;
	char *module;
	bool pin_count_low;
	bool pin_final_try;
	bool pin_locked;
	bool pin_must_change;
	unsigned long pin_min_length; /* 0 when the token does not say */
	unsigned long pin_max_length;
	TokenCapabilities caps;
	/* How many tokens plugged in carry this serial when more than one
	 * does (a CAC emulation gives every card the same): only the first
	 * is listed, and no job can tell them apart. 0 otherwise. */
	unsigned same_serial;
	CertificateEntry *certificates; /* latest not_after first */
	size_t n_certificates;
} TokenInfo;

typedef struct TokenList {
	TokenInfo *items;
	size_t n_items;
} TokenList;

void certificate_entry_clear(CertificateEntry *entry);
void token_info_clear(TokenInfo *info);
void token_list_clear(TokenList *list);
void token_list_free(TokenList *list);

/* Sorts certificates latest not_after first; ties: later not_before, then
 * greater serial. */
void token_info_sort_certificates(TokenInfo *info);

/* The current certificate at time now, or NULL: the one with its key on
 * the token that is valid now with the latest not_after; when none is
 * valid now, the one with the latest not_after. Expects sorted entries. */
const CertificateEntry *token_info_current(const TokenInfo *info, int64_t now);

/* "ok", "count-low", "final-try" or "locked". */
const char *token_info_pin_status(const TokenInfo *info);

/* True when both list the same certificates, keys and profiles. */
bool token_info_certificates_equal(const TokenInfo *a, const TokenInfo *b);

/* The PKCS#11 URI naming this token. */
char *token_info_uri(const TokenInfo *info);
