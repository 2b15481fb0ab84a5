/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <openssl/x509.h>
#include <stdint.h>

#include "x509-util.h"

/* The four checks of protocol-v1 before anything is written. */
typedef enum CertCheck {
	CERT_CHECK_OK = 0,
	CERT_CHECK_KEY = 1,	 /* its public key is the CSR's */
	CERT_CHECK_SUBJECT = 2,	 /* its subject is the action's */
	CERT_CHECK_CHAIN = 3,	 /* it chains to the profile's issuers */
	CERT_CHECK_VALIDITY = 4, /* its validity lies in the action's window ±24 h */
} CertCheck;

/* Runs the checks in order; returns the first that fails (and a reason
 * for people in *ret_reason, malloc'ed), or CERT_CHECK_OK. */
CertCheck cert_check(X509 *certificate, STACK_OF(X509) * chain, EVP_PKEY *csr_key,
		     const Name *action_subject, int64_t action_not_before,
		     int64_t action_not_after, STACK_OF(X509) * trust_anchors, int64_t now,
		     char **ret_reason);
