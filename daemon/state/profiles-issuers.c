/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A profile's issuer certificates, and matching certificates to profiles:
 * the part of the profiles that needs a certificate parser, so only the
 * token workers (which read certificates) use it. The daemon knows a
 * certificate's profile by the name the worker gives it. */
#include "state/profiles.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "macro.h"
#include "util.h"

#define PROFILE_MAX_ISSUERS 64
#define PROFILE_MAX_PEM_SIZE (1024 * 1024)

static void issuers_free(STACK_OF(X509) * issuers)
{
	sk_X509_pop_free(issuers, X509_free);
}

static int load_issuers(const char *path, STACK_OF(X509) * *ret)
{
	_cleanup_free_ char *text = NULL;
	STACK_OF(X509) * stack;
	BIO *bio;
	int r;

	r = read_small_file(path, PROFILE_MAX_PEM_SIZE, &text);
	if (r < 0)
		return r;
	bio = BIO_new_mem_buf(text, -1);
	if (!bio)
		return -ENOMEM;
	stack = sk_X509_new_null();
	if (!stack) {
		BIO_free(bio);
		return -ENOMEM;
	}
	for (;;) {
		X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!x)
			break;
		if (sk_X509_num(stack) >= PROFILE_MAX_ISSUERS || !sk_X509_push(stack, x)) {
			X509_free(x);
			r = -E2BIG;
			break;
		}
	}
	/* The end of the PEM data also leaves an error on the queue. */
	ERR_clear_error();
	BIO_free(bio);
	if (r < 0) {
		sk_X509_pop_free(stack, X509_free);
		return r;
	}
	*ret = stack;
	return 0;
}

int profile_load_issuers(Profile *profile, char **ret_message)
{
	int r = load_issuers(profile->issuers_path, &profile->issuers);

	if (r < 0) {
		if (ret_message &&
		    asprintf(ret_message, "%s: cannot load issuers %s: %s", profile->path,
			     profile->issuers_path, file_error(r)) < 0)
			*ret_message = NULL;
		return r;
	}
	profile->issuers_free = issuers_free;
	if (profile->server_cert_path) {
		r = load_issuers(profile->server_cert_path, &profile->server_cert);
		if (r >= 0 && sk_X509_num(profile->server_cert) != 1)
			r = -EBADMSG;
		if (r < 0) {
			if (ret_message &&
			    asprintf(ret_message, "%s: cannot load server_cert %s: %s",
				     profile->path, profile->server_cert_path,
				     r == -EBADMSG ? "it must hold exactly one certificate"
						   : file_error(r)) < 0)
				*ret_message = NULL;
			return r;
		}
	}
	return 0;
}

int profile_load_file(const char *path, Profile **ret, char **ret_message)
{
	Profile *profile = NULL;
	int r = profile_parse_file(path, &profile, ret_message);

	if (r >= 0)
		r = profile_load_issuers(profile, ret_message);
	if (r < 0) {
		profile_free(profile);
		return r;
	}
	*ret = profile;
	return 0;
}

int profiles_load_issuers(Profiles *profiles, bool say)
{
	int level = say ? LOG_WARNING : LOG_DEBUG;

	for (size_t i = profiles->n_items; i > 0; i--) {
		Profile *profile = profiles->items[i - 1];
		_cleanup_free_ char *message = NULL;
		int r = profile_load_issuers(profile, &message);

		if (r == -ENOMEM)
			return log_oom();
		if (r < 0) {
			log_internal(level, 0, "Skipping CA profile %s",
				     message ? message : profile->path);
			profile_free(profile);
			memmove(profiles->items + i - 1, profiles->items + i,
				(profiles->n_items - i) * sizeof(Profile *));
			profiles->n_items--;
		} else if (sk_X509_num(profile->issuers) == 0)
			log_internal(say ? LOG_NOTICE : LOG_DEBUG, 0,
				     "CA profile %s (%s) has no issuer certificates: it matches no "
				     "token.",
				     profile->name, profile->path);
	}
	return 0;
}

const Profile *profiles_match(const Profiles *profiles, X509 *cert)
{
	for (size_t i = 0; i < profiles->n_items; i++) {
		const Profile *profile = profiles->items[i];
		for (int j = 0; j < sk_X509_num(profile->issuers); j++) {
			X509 *issuer = sk_X509_value(profile->issuers, j);
			EVP_PKEY *key;
			int ok;

			if (X509_check_issued(issuer, cert) != X509_V_OK)
				continue;
			key = X509_get0_pubkey(issuer);
			ok = key && X509_verify(cert, key) == 1;
			ERR_clear_error();
			if (ok)
				return profile;
		}
	}
	return NULL;
}
