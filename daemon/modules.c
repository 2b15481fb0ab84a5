/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "modules.h"

#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log.h"
#include "macro.h"
#include "p11-error.h"

/* Bounds on what one token may make us hold: a token with more objects
 * than this is hostile or broken. */
#define TOKEN_MAX_CERTIFICATES 256
#define MODULE_MAX_TOKENS 256

static int module_open(Module *m)
{
	PKCS11_CTX *ctx = PKCS11_CTX_new();

	if (!ctx)
		return -ENOMEM;
	if (PKCS11_CTX_load(ctx, m->path) < 0) {
		int r = p11_error_take(-ELIBBAD);
		PKCS11_CTX_free(ctx);
		return r;
	}
	m->ctx = ctx;
	return 0;
}

static void module_close(Module *m)
{
	if (!m->ctx)
		return;
	PKCS11_CTX_unload(m->ctx);
	PKCS11_CTX_free(m->ctx);
	m->ctx = NULL;
}

int modules_load(char *const *paths, Modules *ret)
{
	Modules modules = {};
	size_t n = 0;

	while (paths[n])
		n++;
	modules.items = calloc(n ? n : 1, sizeof(Module));
	if (!modules.items)
		return -ENOMEM;
	pthread_rwlock_init(&modules.lock, NULL);
	for (size_t i = 0; i < n; i++) {
		Module *m = &modules.items[modules.n_items];
		int r;

		m->path = strdup(paths[i]);
		if (!m->path) {
			modules_clear(&modules);
			return -ENOMEM;
		}
		modules.n_items++;
		r = module_open(m);
		if (r < 0)
			log_warning_errno(r, "Cannot load PKCS#11 module %s, skipping it.", m->path);
		else
			log_debug("Loaded PKCS#11 module %s.", m->path);
	}
	*ret = modules;
	return 0;
}

void modules_clear(Modules *modules)
{
	if (!modules)
		return;
	for (size_t i = 0; i < modules->n_items; i++) {
		module_close(&modules->items[i]);
		free(modules->items[i].path);
	}
	if (modules->items)
		pthread_rwlock_destroy(&modules->lock);
	free(modules->items);
	*modules = (Modules){};
}

void modules_reload(Modules *modules)
{
	for (size_t i = 0; i < modules->n_items; i++) {
		Module *m = &modules->items[i];
		bool was_loaded = m->ctx;
		int r;

		module_close(m);
		r = module_open(m);
		/* Say so only when it changes, not at every rescan. */
		if (r < 0 && was_loaded)
			log_warning_errno(r, "Cannot load PKCS#11 module %s again, skipping it.",
					  m->path);
		else if (r >= 0 && !was_loaded)
			log_info("PKCS#11 module %s loads now.", m->path);
	}
}

static bool id_equal(const unsigned char *a, size_t la, const unsigned char *b, size_t lb)
{
	return la > 0 && la == lb && memcmp(a, b, la) == 0;
}

static bool key_present(const PKCS11_KEY *keys, unsigned n_keys, const PKCS11_CERT *cert)
{
	for (unsigned i = 0; i < n_keys; i++)
		if (id_equal(keys[i].id, keys[i].id_len, cert->id, cert->id_len))
			return true;
	return false;
}

static char *dup_or_empty(const char *s)
{
	return strdup_trim(s ? s : "", 4096);
}

static int read_token(PKCS11_SLOT *slot, const char *module, const Profiles *profiles,
		      TokenInfo *ret)
{
	PKCS11_TOKEN *token = slot->token;
	PKCS11_CERT *certs = NULL;
	PKCS11_KEY *private_keys = NULL, *public_keys = NULL;
	unsigned n_certs = 0, n_private = 0, n_public = 0;
	TokenInfo info = {
		.serial = dup_or_empty(token->serialnr),
		.label = dup_or_empty(token->label),
		.manufacturer = dup_or_empty(token->manufacturer),
		.model = dup_or_empty(token->model),
		.module = strdup(module),
		.pin_count_low = token->userPinCountLow,
		.pin_final_try = token->userPinFinalTry,
		.pin_locked = token->userPinLocked,
		.pin_must_change = token->userPinToBeChanged,
	};

	if (!info.serial || !info.label || !info.manufacturer || !info.model || !info.module) {
		token_info_clear(&info);
		return -ENOMEM;
	}
	/* Before login a token shows its certificates and public keys; a
	 * private key may be hidden until then, and its public key object
	 * stands for it. */
	if (PKCS11_enumerate_certs(token, &certs, &n_certs) < 0) {
		int r = p11_error_take(-EIO);
		log_warning_errno(r, "Cannot list the certificates of token %s: %m", info.serial);
		n_certs = 0;
	}
	if (PKCS11_enumerate_keys(token, &private_keys, &n_private) < 0) {
		p11_error_take(-EIO);
		n_private = 0;
	}
	if (PKCS11_enumerate_public_keys(token, &public_keys, &n_public) < 0) {
		p11_error_take(-EIO);
		n_public = 0;
	}
	if (n_certs > TOKEN_MAX_CERTIFICATES) {
		log_warning("Token %s holds %u certificates; reading the first %d.", info.serial,
			    n_certs, TOKEN_MAX_CERTIFICATES);
		n_certs = TOKEN_MAX_CERTIFICATES;
	}
	if (n_certs > 0) {
		info.certificates = calloc(n_certs, sizeof(CertificateEntry));
		if (!info.certificates) {
			token_info_clear(&info);
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < n_certs; i++) {
		CertificateEntry *entry = &info.certificates[info.n_certificates];
		int r;

		if (!certs[i].x509) {
			log_warning("Token %s: certificate \"%s\" cannot be decoded, ignoring.",
				    info.serial, strempty(certs[i].label));
			continue;
		}
		r = certificate_entry_from_x509(certs[i].x509, entry);
		if (r >= 0) {
			entry->label = strdup(strempty(certs[i].label));
			entry->key_id = hex_encode(certs[i].id, certs[i].id_len);
			entry->x509 = X509_dup(certs[i].x509);
			if (!entry->label || !entry->key_id || !entry->x509)
				r = -ENOMEM;
		}
		if (r < 0) {
			certificate_entry_clear(entry);
			if (r == -ENOMEM) {
				token_info_clear(&info);
				return r;
			}
			log_warning_errno(r, "Token %s: certificate \"%s\" is malformed (%m), ignoring.",
					  info.serial, strempty(certs[i].label));
			continue;
		}
		entry->has_key = key_present(private_keys, n_private, &certs[i]) ||
				 key_present(public_keys, n_public, &certs[i]);
		entry->profile = profiles_match(profiles, entry->x509);
		info.n_certificates++;
	}
	ERR_clear_error();
	token_info_sort_certificates(&info);
	*ret = info;
	return 0;
}

static bool list_has_serial(const TokenList *list, const char *serial)
{
	for (size_t i = 0; i < list->n_items; i++)
		if (streq(list->items[i].serial, serial))
			return true;
	return false;
}

static int scan_module(Module *m, const Profiles *profiles, TokenList *list)
{
	PKCS11_SLOT *slots = NULL;
	unsigned n_slots = 0;
	int r = 0;

	if (PKCS11_enumerate_slots(m->ctx, &slots, &n_slots) < 0)
		return p11_error_take(-EIO);
	for (unsigned i = 0; i < n_slots && r >= 0; i++) {
		PKCS11_SLOT *slot = &slots[i];
		TokenInfo info = {};
		TokenInfo *items;

		if (!slot->token || !slot->token->initialized)
			continue;
		if (list->n_items >= MODULE_MAX_TOKENS)
			break;
		r = read_token(slot, m->path, profiles, &info);
		if (r < 0)
			break;
		if (list_has_serial(list, info.serial)) {
			log_debug("Token %s also shows through %s, ignoring the duplicate.",
				  info.serial, m->path);
			token_info_clear(&info);
			continue;
		}
		items = realloc(list->items, (list->n_items + 1) * sizeof(TokenInfo));
		if (!items) {
			token_info_clear(&info);
			r = -ENOMEM;
			break;
		}
		list->items = items;
		list->items[list->n_items++] = info;
	}
	PKCS11_release_all_slots(m->ctx, slots, n_slots);
	return r;
}

int modules_scan(Modules *modules, const Profiles *profiles, TokenList *ret)
{
	TokenList list = {};

	for (size_t i = 0; i < modules->n_items; i++) {
		Module *m = &modules->items[i];
		int r;

		if (!m->ctx)
			continue;
		r = scan_module(m, profiles, &list);
		if (r == -ENOMEM) {
			token_list_clear(&list);
			return r;
		}
		if (r < 0)
			log_warning_errno(r, "Cannot list the tokens of %s (%m), ignoring it this time.",
					  m->path);
	}
	*ret = list;
	return 0;
}
