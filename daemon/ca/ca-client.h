/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The CA client: the only thing the rest of the daemon knows about a CA.
 * Three calls (pending, issue, confirm), chosen by the profile's protocol;
 * nothing outside ca-*.c knows the wire format. Every call blocks (it runs
 * on a token's worker thread, never on the main loop). */

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/profiles.h"

typedef struct CaNetwork {
	unsigned connect_timeout_sec;
	unsigned timeout_sec;
} CaNetwork;

/* What went wrong, for the user: kind, the CA's own words when it sent a
 * problem document, and the HTTP status. */
typedef enum CaErrorKind {
	CA_ERROR_NONE,
	CA_ERROR_UNREACHABLE, /* could not connect, TLS failed */
	CA_ERROR_TIMEOUT,     /* connect or whole request past the limit */
	CA_ERROR_PROBLEM,     /* the CA answered with a problem document */
	CA_ERROR_MALFORMED,   /* the answer breaks the contract */
	CA_ERROR_GAVE_UP,     /* 202/429 waits ran past their limits */
	CA_ERROR_SIGNER,      /* the token could not sign the request: it was not sent */
} CaErrorKind;

typedef struct CaError {
	CaErrorKind kind;
	long http_status;
	char *type;    /* "urn:safeca:badCSR", … (problem documents only) */
	char *title;   /* the CA's words, control characters removed */
	char *detail;  /* idem */
	char *message; /* one line for people, in the daemon's language (LC_MESSAGES) */
} CaError;

void ca_error_clear(CaError *error);

/* ca_pending(), ca_issue() and ca_confirm() return 0, or a negative errno
 * with *error filled (error may be NULL):
 *   -ECONNREFUSED, -EHOSTUNREACH  CA_ERROR_UNREACHABLE (-ECONNREFUSED also
 *                                 for a plain http:// URL to another host,
 *                                 refused before connecting)
 *   -EINVAL                       bad arguments, or a profile URL that is not
 *                                 one (CA_ERROR_UNREACHABLE)
 *   -ETIMEDOUT                    CA_ERROR_TIMEOUT
 *   -EPROTO                       CA_ERROR_PROBLEM (type, title, detail set)
 *   -EBADMSG                      CA_ERROR_MALFORMED
 *   -ETIME                        CA_ERROR_GAVE_UP (10 minutes of 202s, or a
 *                                 429 whose Retry-After is not waited out:
 *                                 type, title, detail set)
 *   the signer's own error        CA_ERROR_SIGNER (-ENODEV: the token was
 *                                 pulled out); nothing reached the CA
 *   -ENOMEM and anything else (libcurl failing to start) with kind
 *   CA_ERROR_NONE. */

/* libcurl's global state: call once in main() before any thread starts,
 * and the cleanup once after the last one ended. The calls below also
 * initialize on first use, but libcurl wants it done single-threaded. */
int ca_client_global_init(void);
void ca_client_global_cleanup(void);

/* Signs with a key on the token. alg is "RS256" (RSA PKCS#1 v1.5 with
 * SHA-256 over data) or "ES256" (ECDSA P-256 over SHA-256 of data; the
 * signature is R||S, 64 bytes). Returns 0 and a malloc'ed signature. */
typedef struct CaSigner {
	const char *alg;
	X509 *certificate; /* goes into x5c[0] */
	int (*sign)(void *userdata, const unsigned char *data, size_t size,
		    unsigned char **ret_signature, size_t *ret_size);
	void *userdata;
} CaSigner;

/* One certificate the client tells the CA about. */
typedef struct CaCertificate {
	X509 *x509;
} CaCertificate;

/* POST /pending. Sends the certificates given (the caller passes only those
 * of this profile). On success *ret is a JSON array of the entries that
 * pass the contract's checks, verbatim, in the CA's order; entries that
 * break it are dropped with a warning in the log. An entry whose type or
 * key the client cannot handle stays in the list (it is shown as
 * unsupported): see ca_action_supported(). */
int ca_pending(const Profile *profile, const CaNetwork *network, const char *token_serial,
	       const CaCertificate *certificates, size_t n_certificates, json_t **ret,
	       CaError *error);

/* POST /actions/{id}/issue with the CSR (DER), signed by signer (the
 * replaced certificate's key). Handles nonces, one badNonce retry, 202
 * polling and 429 waits. On 200 returns the certificate and the chain
 * (possibly empty) as given; the caller checks them. */
int ca_issue(const Profile *profile, const CaNetwork *network, const char *action_id,
	     const CaSigner *signer, const unsigned char *csr, size_t csr_size,
	     X509 **ret_certificate, STACK_OF(X509) * *ret_chain, CaError *error);

/* POST /actions/{id}/confirm, signed by the new certificate's key. */
int ca_confirm(const Profile *profile, const CaNetwork *network, const char *action_id,
	       const CaSigner *signer, const char *installed_serial, bool keep_previous,
	       CaError *error);

/* Whether this client can carry out the entry (type renew or change, and
 * a key it can make). When not, *ret_reason says why (a static string for
 * people, translated). */
bool ca_action_supported(json_t *action, const char **ret_reason);

/* The entry's message as it may be shown: cut after 1024 characters, with
 * control characters other than newline (and bidirectional overrides)
 * removed. NULL with errno 0 when there is no message, with errno ENOMEM
 * when out of memory. */
char *ca_action_message_for_display(json_t *action);

/* The entry's not_before and not_after, seconds since the epoch (a
 * fraction of a second is dropped). -EBADMSG when either is missing or
 * not an RFC 3339 UTC time. */
int ca_action_validity(json_t *action, int64_t *ret_not_before, int64_t *ret_not_after);

/* A name as the contract writes subjects: [[attribute, value], ...], in
 * the certificate's order; NULL when out of memory. */
json_t *ca_name_to_json(const X509_NAME *name);
