/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/modules.h"

#include <dlfcn.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "log/log.h"
#include "macro.h"
#include "token/p11-error.h"
#include "token/p11-guard.h"
#include "token/token-session.h"
#include "token/token-x509.h"

/* Bounds on what one token may make us hold: a token with more objects
 * than this is hostile or broken. */
#define TOKEN_MAX_CERTIFICATES 256
#define MODULE_MAX_TOKENS 256

/* Under AddressSanitizer a module stays mapped after it is closed, so that
 * LeakSanitizer can name the module behind its own leaks at exit (and the
 * tests' suppressions match it) rather than "<unknown module>". */
#if defined(__SANITIZE_ADDRESS__)
#define MODULE_DLOPEN_FLAGS (RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)
#define MODULE_MAP_FLAGS (RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)
#else
#define MODULE_DLOPEN_FLAGS (RTLD_NOW | RTLD_NOLOAD)
#define MODULE_MAP_FLAGS (RTLD_NOW | RTLD_LOCAL)
#endif

static void module_close(Module *m)
{
	if (m->functions && m->initialized_by_us)
		(void)P11(m->functions, C_Finalize, NULL);
	m->initialized_by_us = false;
	if (m->handle)
		dlclose(m->handle);
	m->handle = NULL;
	m->functions = NULL;
	if (!m->ctx)
		return;
	p11_guard_enter(P11_C_Finalize);
	PKCS11_CTX_unload(m->ctx);
	p11_guard_leave();
	PKCS11_CTX_free(m->ctx);
	m->ctx = NULL;
}

static int module_open(Module *m)
{
	PKCS11_CTX *ctx = PKCS11_CTX_new();
	CK_C_GetFunctionList get_function_list;
	int r;

	if (!ctx)
		return -ENOMEM;
	/* libp11 calls C_GetFunctionList and C_Initialize. */
	p11_guard_enter(P11_C_Initialize);
	r = PKCS11_CTX_load(ctx, m->path);
	p11_guard_leave();
	if (r < 0) {
		r = p11_error_take(-ELIBBAD);
		PKCS11_CTX_free(ctx);
		return r;
	}
	m->ctx = ctx;
	/* The instance libp11 just initialized: same path, same handle. */
	m->handle = dlopen(m->path, MODULE_DLOPEN_FLAGS);
	get_function_list =
	    m->handle ? (CK_C_GetFunctionList)dlsym(m->handle, "C_GetFunctionList") : NULL;
	if (!get_function_list || get_function_list(&m->functions) != CKR_OK) {
		module_close(m);
		return -ELIBBAD;
	}
	/* Most modules share one instance, which libp11 initialized; a proxy
	 * may give this list an instance of its own to initialize. */
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv = P11(m->functions, C_Initialize, &args);
	if (rv == CKR_OK)
		m->initialized_by_us = true;
	else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		module_close(m);
		return p11_rv_to_errno(rv);
	}
	return 0;
}

CK_FUNCTION_LIST_PTR modules_functions(Modules *modules, const char *path)
{
	for (size_t i = 0; i < modules->n_items; i++)
		if (streq(modules->items[i].path, path))
			return modules->items[i].functions;
	return NULL;
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
	pthread_mutex_init(&modules.lock, NULL);
	for (size_t i = 0; i < n; i++) {
		modules.items[i].path = strdup(paths[i]);
		if (!modules.items[i].path) {
			modules_clear(&modules);
			return -ENOMEM;
		}
		modules.n_items++;
	}
	*ret = modules;
	return 0;
}

void modules_map(Modules *modules)
{
	for (size_t i = 0; i < modules->n_items; i++) {
		Module *m = &modules->items[i];

		/* A module that crashes or hangs while it links is said as
		 * one that does in C_Initialize, where it did before. */
		if (!m->mapped) {
			p11_guard_enter(P11_C_Initialize);
			m->mapped = dlopen(m->path, MODULE_MAP_FLAGS);
			p11_guard_leave();
		}
	}
}

void modules_clear(Modules *modules)
{
	if (!modules)
		return;
	for (size_t i = 0; i < modules->n_items; i++) {
		module_close(&modules->items[i]);
		if (modules->items[i].mapped)
			dlclose(modules->items[i].mapped);
		free(modules->items[i].path);
	}
	if (modules->items)
		pthread_mutex_destroy(&modules->lock);
	free(modules->items);
	*modules = (Modules){};
}

void modules_use(Modules *modules)
{
	pthread_mutex_lock(&modules->lock);
	if (modules->users++ == 0)
		for (size_t i = 0; i < modules->n_items; i++) {
			Module *m = &modules->items[i];
			int r = module_open(m);
			/* Said when it changes, not at every scan. */
			if (r < 0 && !m->failed)
				log_warning_errno(r, "Cannot load PKCS#11 module %s, skipping it.",
						  m->path);
			else if (r >= 0 && m->failed)
				log_info("PKCS#11 module %s loads now.", m->path);
			m->failed = r < 0;
		}
	pthread_mutex_unlock(&modules->lock);
}

void modules_release(Modules *modules)
{
	pthread_mutex_lock(&modules->lock);
	if (--modules->users == 0)
		for (size_t i = 0; i < modules->n_items; i++)
			module_close(&modules->items[i]);
	pthread_mutex_unlock(&modules->lock);
}

/* CK_TOKEN_INFO's text fields are blank-padded, not NUL-terminated. */
static char *dup_field(const unsigned char *field, size_t size)
{
	while (size > 0 && (field[size - 1] == ' ' || field[size - 1] == 0))
		size--;
	return strndup((const char *)field, size);
}

/* Every CKA_ID of objects of this class, concatenated as "hex," items. */
static int collect_ids(TokenSession *t, CK_OBJECT_CLASS object_class, char **ret)
{
	CK_ATTRIBUTE template[] = {{CKA_CLASS, &object_class, sizeof(object_class)}};
	CK_OBJECT_HANDLE objects[TOKEN_MAX_CERTIFICATES];
	CK_ULONG n = 0;
	char *buf = NULL;
	size_t size = 0;
	FILE *f;
	int r;

	r = token_session_find(t, template, ELEMENTSOF(template), objects, ELEMENTSOF(objects), &n);
	if (r < 0)
		return r;
	f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;
	fputc(',', f);
	for (CK_ULONG i = 0; i < n; i++) {
		_cleanup_free_ unsigned char *id = NULL;
		_cleanup_free_ char *hex = NULL;
		size_t id_size = 0;

		if (token_session_attribute(t, objects[i], CKA_ID, &id, &id_size) < 0 ||
		    id_size == 0)
			continue;
		hex = hex_encode(id, id_size);
		if (hex)
			fprintf(f, "%s,", hex);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret = buf;
	return 0;
}

static bool ids_contain(const char *ids, const char *key_id)
{
	char needle[2 * 256 + 3];

	if (!ids || isempty(key_id) || strlen(key_id) > 2 * 256)
		return false;
	snprintf(needle, sizeof(needle), ",%s,", key_id);
	return strstr(ids, needle);
}

static int read_certificate(TokenSession *t, CK_OBJECT_HANDLE object, const Profiles *profiles,
			    CertificateEntry *entry)
{
	_cleanup_free_ unsigned char *der = NULL, *id = NULL, *label = NULL;
	size_t der_size = 0, id_size = 0, label_size = 0;
	X509 *x509 = NULL;
	int r;

	r = token_session_attribute(t, object, CKA_VALUE, &der, &der_size);
	if (r < 0)
		return r;
	r = x509_from_der(der, der_size, &x509);
	if (r < 0)
		return r;
	if (token_session_attribute(t, object, CKA_ID, &id, &id_size) < 0)
		id_size = 0;
	if (token_session_attribute(t, object, CKA_LABEL, &label, &label_size) < 0)
		label_size = 0;
	entry->key_id = hex_encode(id ? id : (const unsigned char *)"", id_size);
	entry->label = strndup(label ? (const char *)label : "", label_size);
	r = entry->key_id && entry->label ? certificate_entry_from_x509(x509, entry) : -ENOMEM;
	if (r >= 0)
		entry->profile = profiles_match(profiles, x509);
	X509_free(x509);
	return r < 0 ? r : 0;
}

/* One pass over the token's objects; *ret_stale says a handle went stale
 * meanwhile (another session made the module number its objects afresh),
 * so that a certificate may be missing from this pass. */
static int read_token_once(Module *m, CK_SLOT_ID slot, const CK_TOKEN_INFO *token_info,
			   const Profiles *profiles, TokenInfo *ret, bool *ret_stale)
{
	CK_OBJECT_CLASS certificate_class = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE x509_type = CKC_X_509;
	CK_ATTRIBUTE template[] = {
	    {CKA_CLASS, &certificate_class, sizeof(certificate_class)},
	    {CKA_CERTIFICATE_TYPE, &x509_type, sizeof(x509_type)},
	};
	CK_OBJECT_HANDLE objects[TOKEN_MAX_CERTIFICATES];
	CK_ULONG n_objects = 0;
	_cleanup_free_ char *private_ids = NULL, *public_ids = NULL;
	TokenSession t = {};
	TokenInfo info = {
	    .serial = strdup_trim((const char *)token_info->serialNumber,
				  sizeof(token_info->serialNumber)),
	    .label = dup_field(token_info->label, sizeof(token_info->label)),
	    .manufacturer =
		dup_field(token_info->manufacturerID, sizeof(token_info->manufacturerID)),
	    .model = dup_field(token_info->model, sizeof(token_info->model)),
	    .module = strdup(m->path),
	    .pin_count_low = token_info->flags & CKF_USER_PIN_COUNT_LOW,
	    .pin_final_try = token_info->flags & CKF_USER_PIN_FINAL_TRY,
	    .pin_locked = token_info->flags & CKF_USER_PIN_LOCKED,
	    .pin_must_change = token_info->flags & CKF_USER_PIN_TO_BE_CHANGED,
	    .pin_min_length = token_info->ulMinPinLen,
	    .pin_max_length = token_info->ulMaxPinLen,
	};
	int r;

	if (!info.serial || !info.label || !info.manufacturer || !info.model || !info.module) {
		token_info_clear(&info);
		return -ENOMEM;
	}
	token_capabilities_read(m->functions, slot, token_info->flags, &info.caps);
	r = token_session_open_slot(m->functions, slot, false, &t);
	if (r < 0) {
		log_warning_errno(r, "Cannot open a session on token %s: %m", info.serial);
		*ret = info;
		return 0;
	}
	/* Before login a token shows its certificates and public keys; a
	 * private key may be hidden until then, and its public key object
	 * stands for it. */
	r = token_session_find(&t, template, ELEMENTSOF(template), objects, ELEMENTSOF(objects),
			       &n_objects);
	if (r < 0)
		log_warning_errno(r, "Cannot list the certificates of token %s: %m", info.serial);
	if (collect_ids(&t, CKO_PRIVATE_KEY, &private_ids) < 0 ||
	    collect_ids(&t, CKO_PUBLIC_KEY, &public_ids) < 0)
		log_warning("Cannot list the keys of token %s.", info.serial);
	if (n_objects > 0) {
		info.certificates = calloc(n_objects, sizeof(CertificateEntry));
		if (!info.certificates) {
			token_session_close(&t);
			token_info_clear(&info);
			return -ENOMEM;
		}
	}
	for (CK_ULONG i = 0; i < n_objects; i++) {
		CertificateEntry *entry = &info.certificates[info.n_certificates];

		r = read_certificate(&t, objects[i], profiles, entry);
		if (r < 0) {
			certificate_entry_clear(entry);
			if (r == -ENOMEM) {
				token_session_close(&t);
				token_info_clear(&info);
				return r;
			}
			if (r == -ESTALE && !*ret_stale) {
				*ret_stale = true;
				continue;
			}
			log_warning_errno(
			    r, "Token %s: a certificate cannot be read (%m), ignoring it.",
			    info.serial);
			continue;
		}
		entry->has_key = ids_contain(private_ids, entry->key_id) ||
				 ids_contain(public_ids, entry->key_id);
		info.n_certificates++;
	}
	token_session_close(&t);
	token_info_sort_certificates(&info);
	*ret = info;
	return 0;
}

static int read_token(Module *m, CK_SLOT_ID slot, const CK_TOKEN_INFO *token_info,
		      const Profiles *profiles, TokenInfo *ret)
{
	TokenInfo info = {};
	bool stale = false;
	int r;

	r = read_token_once(m, slot, token_info, profiles, &info, &stale);
	if (r < 0 || !stale) {
		if (r >= 0)
			*ret = info;
		return r;
	}
	/* Once more, on handles found afresh; what still fails then is said
	 * and left out. */
	token_info_clear(&info);
	r = read_token_once(m, slot, token_info, profiles, &info, &stale);
	if (r >= 0)
		*ret = info;
	return r;
}

static TokenInfo *list_find_serial(const TokenList *list, const char *serial)
{
	for (size_t i = 0; i < list->n_items; i++)
		if (streq(list->items[i].serial, serial))
			return &list->items[i];
	return NULL;
}

static int scan_module(Module *m, const Profiles *profiles, TokenList *list)
{
	CK_SLOT_ID slots[MODULE_MAX_TOKENS];
	CK_ULONG n_slots = MODULE_MAX_TOKENS;
	CK_RV rv;

	rv = P11(m->functions, C_GetSlotList, CK_TRUE, slots, &n_slots);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	for (CK_ULONG i = 0; i < n_slots; i++) {
		CK_TOKEN_INFO token_info;
		TokenInfo info = {}, *first;
		TokenInfo *items;
		int r;

		/* A token that fails here (pulled out, or deleted under a
		 * module that has not reloaded) is skipped, not the module. */
		if (P11(m->functions, C_GetTokenInfo, slots[i], &token_info) != CKR_OK ||
		    !(token_info.flags & CKF_TOKEN_INITIALIZED))
			continue;
		r = read_token(m, slots[i], &token_info, profiles, &info);
		if (r < 0)
			return r;
		first = list_find_serial(list, info.serial);
		/* Through another module (a proxy beside the module itself):
		 * the same token. In two slots of one module: two tokens with
		 * one serial (a CAC emulation gives every card the same). Tokens
		 * are known by their serial, so the first stands for them all,
		 * marked: listing them by turns would make it flicker, and no
		 * job can tell them apart. */
		if (first && !streq_ptr(first->module, m->path)) {
			log_debug("Token %s also shows through %s, ignoring the duplicate.",
				  info.serial, m->path);
			token_info_clear(&info);
			continue;
		}
		if (first) {
			if (first->same_serial == 0) {
				first->same_serial = 1;
				log_warning("More than one token plugged in carries serial %s; "
					    "safecad lists the first and runs no job on them.",
					    info.serial);
			}
			first->same_serial++;
			token_info_clear(&info);
			continue;
		}
		items = realloc(list->items, (list->n_items + 1) * sizeof(TokenInfo));
		if (!items) {
			token_info_clear(&info);
			return -ENOMEM;
		}
		list->items = items;
		list->items[list->n_items++] = info;
	}
	return 0;
}

int modules_read_token(Modules *modules, const char *path, const char *serial,
		       const Profiles *profiles, TokenInfo *ret)
{
	CK_FUNCTION_LIST_PTR functions = modules_functions(modules, path);
	CK_SLOT_ID slots[MODULE_MAX_TOKENS];
	CK_ULONG n_slots = MODULE_MAX_TOKENS;
	CK_RV rv;

	if (!functions)
		return -ENODEV;
	rv = P11(functions, C_GetSlotList, CK_TRUE, slots, &n_slots);
	if (rv != CKR_OK)
		return p11_rv_to_errno(rv);
	for (CK_ULONG i = 0; i < n_slots; i++) {
		CK_TOKEN_INFO token_info;

		if (P11(functions, C_GetTokenInfo, slots[i], &token_info) != CKR_OK ||
		    !(token_info.flags & CKF_TOKEN_INITIALIZED) ||
		    !token_info_serial_is(&token_info, serial))
			continue;
		for (size_t k = 0; k < modules->n_items; k++)
			if (modules->items[k].functions == functions)
				return read_token(&modules->items[k], slots[i], &token_info,
						  profiles, ret);
	}
	return -ENODEV;
}

int modules_scan(Modules *modules, const Profiles *profiles, TokenList *ret)
{
	TokenList list = {};

	for (size_t i = 0; i < modules->n_items; i++) {
		Module *m = &modules->items[i];
		int r;

		if (!m->functions)
			continue;
		r = scan_module(m, profiles, &list);
		if (r == -ENOMEM) {
			token_list_clear(&list);
			return r;
		}
		if (r < 0)
			log_warning_errno(
			    r, "Cannot list the tokens of %s (%m), ignoring it this time.",
			    m->path);
	}
	*ret = list;
	return 0;
}
