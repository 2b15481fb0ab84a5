/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The CMP client (protocol = cmp, docs/cmp.md): certificate key update
 * (RFC 4210 / RFC 9483 "kur") through OpenSSL's OSSL_CMP_*, over the CA
 * clients' HTTP (ca-http.h). */

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca-client.h"

/* What a CMP profile offers without asking the CA: a "renew" action for
 * each certificate (of this profile) inside its renewal window, not yet
 * expired and not superseded by a later certificate of the same subject.
 * Same contract as ca_pending(). */
int ca_cmp_pending(const Profile *profile, const CaCertificate *certificates, size_t n_certificates,
		   int64_t now, json_t **ret, CaError *error);

/* The action id ca_cmp_pending() gives a certificate: "cmp-" and 32 hex
 * digits of its SHA-256. */
int ca_cmp_action_id(X509 *certificate, char ret[37]);

typedef enum CaCmpOutcome {
	CA_CMP_CONFIRMED,   /* certConf sent and answered */
	CA_CMP_IMPLICIT,    /* the CA granted implicit confirmation */
	CA_CMP_UNCONFIRMED, /* accepted and kept, but the certConf did not get through */
} CaCmpOutcome;

typedef struct CaCmpRequest {
	X509 *old_certificate;
	EVP_PKEY *old_key; /* on the token (token_pkey_new()): protects the request */
	EVP_PKEY *new_key; /* on the token: the proof of possession */
	/* Called with the certificate the CA issued, and the certificates
	 * its answer carried, before the certConf goes out: 0 accepts it
	 * (checked and written), a negative errno refuses it (the certConf
	 * says so and ca_cmp_key_update() returns -ECANCELED). */
	int (*received)(void *userdata, X509 *certificate, STACK_OF(X509) * extra);
	void *userdata;
} CaCmpRequest;

/* One key update exchange. 0 once received() accepted the certificate,
 * with *ret_outcome; for CA_CMP_UNCONFIRMED *error says why. Otherwise a
 * negative errno with *error filled as ca-client.h lists (-EPROTO: the CA
 * rejected the request; -EBADMSG: its answer is not acceptable), and
 * nothing was accepted. */
int ca_cmp_key_update(const Profile *profile, const CaNetwork *network, const CaCmpRequest *request,
		      CaCmpOutcome *ret_outcome, CaError *error);
