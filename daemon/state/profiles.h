/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct Agency {
	char *id; /* the <id> of [agency.<id>] */
	char *name;
	char *url;
} Agency;

/* One CA profile, from a ca.d/<file>.conf. Immutable once loaded, so the
 * scanner thread may read it while the main loop does. */
typedef enum ProfileKind {
	PROFILE_V1,  /* protocol = v1 (docs/protocol.md) */
	PROFILE_CMP, /* protocol = cmp: RFC 4210 key update (docs/cmp.md) */
} ProfileKind;

#define PROFILE_DEFAULT_RENEW_DAYS 30

typedef struct Profile {
	char *file_name; /* basename, the key for overriding */
	char *path;
	char *name;
	char *protocol;
	char *url;
	char *trust; /* absolute path or NULL */
	char *support;
	char *issuers_path; /* absolute */
	ProfileKind kind;
	/* CMP only: the one certificate allowed to protect the server's
	 * answers (absolute; NULL: any that chains to the issuers), the days
	 * before the end from which a renewal is offered, "key = same", and
	 * whether the CA may skip the certConf (implicit confirmation). */
	char *server_cert_path;
	unsigned renew_days;
	bool same_key;
	bool implicit_confirm;
	STACK_OF(X509) * server_cert; /* its one certificate, loaded with the issuers */
	/* Loaded by the workers only (profile_load_issuers()). */
	STACK_OF(X509) * issuers;
	void (*issuers_free)(STACK_OF(X509) * issuers);
	Agency *agencies;
	size_t n_agencies;
} Profile;

typedef struct Profiles {
	Profile **items;
	size_t n_items;
} Profiles;

/* Loads <data_dir>/ca.d and <config_dir>/ca.d; a file in the latter
 * replaces the same-named one in the former. Files that cannot be parsed
 * are skipped with a warning. The issuer certificates are not read:
 * profiles_load_issuers() does that, where certificates are matched. */
int profiles_load(const char *data_dir, const char *config_dir, Profiles *ret);
void profiles_clear(Profiles *profiles);

/* Parses one profile file, without its issuers. On failure *ret_message
 * says why, with the line when there is one. */
int profile_parse_file(const char *path, Profile **ret, char **ret_message);
void profile_free(Profile *profile);

/* The profile loaded from a file of that name, or NULL. */
const Profile *profiles_find(const Profiles *profiles, const char *file_name);

/* profiles-issuers.c, for the token workers: */

/* Reads a parsed profile's issuer certificates. */
int profile_load_issuers(Profile *profile, char **ret_message);
/* profile_parse_file() and profile_load_issuers(). */
int profile_load_file(const char *path, Profile **ret, char **ret_message);
/* Reads every profile's issuers; a profile whose issuers cannot be read is
 * dropped. say: warn about it (else only at debug level: the daemon's
 * first worker has said it already). */
int profiles_load_issuers(Profiles *profiles, bool say);

/* The profile one of whose issuer certificates signed cert, or NULL. */
const Profile *profiles_match(const Profiles *profiles, X509 *cert);
