/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/token-info.h"

#include <stdlib.h>
#include <string.h>

#include "macro.h"

void certificate_entry_clear(CertificateEntry *entry)
{
	free(entry->label);
	free(entry->key_id);
	free(entry->serial);
	name_clear(&entry->subject);
	name_clear(&entry->issuer);
	free(entry->sha256);
	free(entry->der);
	*entry = (CertificateEntry){};
}

void token_info_clear(TokenInfo *info)
{
	if (!info)
		return;
	free(info->serial);
	free(info->label);
	free(info->manufacturer);
	free(info->model);
	free(info->module);
	for (size_t i = 0; i < info->n_certificates; i++)
		certificate_entry_clear(&info->certificates[i]);
	free(info->certificates);
	*info = (TokenInfo){};
}

void token_list_clear(TokenList *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n_items; i++)
		token_info_clear(&list->items[i]);
	free(list->items);
	*list = (TokenList){};
}

void token_list_free(TokenList *list)
{
	token_list_clear(list);
	free(list);
}

/* Hex serials without leading zeros: the longer is the greater. */
static int compare_serials(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcasecmp(a, b);
}

/* Negative when a comes first: latest not_after, then later not_before,
 * then greater serial. */
static int compare_newest_first(const void *pa, const void *pb)
{
	const CertificateEntry *a = pa, *b = pb;

	if (a->not_after != b->not_after)
		return a->not_after > b->not_after ? -1 : 1;
	if (a->not_before != b->not_before)
		return a->not_before > b->not_before ? -1 : 1;
	return -compare_serials(a->serial, b->serial);
}

void token_info_sort_certificates(TokenInfo *info)
{
	if (info->n_certificates > 1)
		qsort(info->certificates, info->n_certificates, sizeof(CertificateEntry),
		      compare_newest_first);
}

const CertificateEntry *token_info_current(const TokenInfo *info, int64_t now)
{
	const CertificateEntry *fallback = NULL;

	for (size_t i = 0; i < info->n_certificates; i++) {
		const CertificateEntry *c = &info->certificates[i];
		if (!c->has_key)
			continue;
		if (c->not_before <= now && now <= c->not_after)
			return c;
		if (!fallback)
			fallback = c;
	}
	return fallback;
}

const char *token_info_pin_status(const TokenInfo *info)
{
	if (info->pin_locked)
		return "locked";
	if (info->pin_final_try)
		return "final-try";
	if (info->pin_count_low)
		return "count-low";
	return "ok";
}

static bool certificate_entry_equal(const CertificateEntry *a, const CertificateEntry *b)
{
	return streq(a->sha256, b->sha256) && streq(a->key_id, b->key_id) &&
	       streq(a->label, b->label) && a->has_key == b->has_key && a->profile == b->profile;
}

bool token_info_certificates_equal(const TokenInfo *a, const TokenInfo *b)
{
	if (a->n_certificates != b->n_certificates)
		return false;
	for (size_t i = 0; i < a->n_certificates; i++)
		if (!certificate_entry_equal(&a->certificates[i], &b->certificates[i]))
			return false;
	return true;
}

/* RFC 7512 percent-encoding: everything but unreserved characters and the
 * few the path allows. */
static int append_encoded(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~:[]@!$'()*+,=&", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
	return 0;
}

char *token_info_uri(const TokenInfo *info)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return NULL;
	fputs("pkcs11:model=", f);
	append_encoded(f, info->model);
	fputs(";manufacturer=", f);
	append_encoded(f, info->manufacturer);
	fputs(";serial=", f);
	append_encoded(f, info->serial);
	fputs(";token=", f);
	append_encoded(f, info->label);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
