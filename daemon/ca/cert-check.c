/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ca/cert-check.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>

#include "i18n.h"
#include "macro.h"
#include "time-util.h"

#define WINDOW_SLACK (24 * 3600)

static CertCheck fail(CertCheck check, char **ret_reason, const char *format, ...) _printf_(3, 4);

static CertCheck fail(CertCheck check, char **ret_reason, const char *format, ...)
{
	va_list ap;

	if (ret_reason) {
		va_start(ap, format);
		if (vasprintf(ret_reason, format, ap) < 0)
			*ret_reason = NULL;
		va_end(ap);
	}
	ERR_clear_error();
	return check;
}

static CertCheck check_chain(X509 *certificate, STACK_OF(X509) * chain,
			     STACK_OF(X509) * trust_anchors, int64_t now, int64_t not_before,
			     char **ret_reason)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	CertCheck result = CERT_CHECK_OK;
	int error = X509_V_ERR_UNSPECIFIED;

	if (!store || !ctx)
		result = CERT_CHECK_CHAIN;
	for (int i = 0; result == CERT_CHECK_OK && i < sk_X509_num(trust_anchors); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(trust_anchors, i)) != 1)
			result = CERT_CHECK_CHAIN;
	if (result == CERT_CHECK_OK && X509_STORE_CTX_init(ctx, store, certificate, chain) == 1) {
		X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
		/* A profile may hold only the issuing CA: it is enough. The
		 * time is the later of now and not_before, so a renewal that
		 * starts next week checks out today. */
		X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
		X509_VERIFY_PARAM_set_time(param, (time_t)(now > not_before ? now : not_before));
		if (X509_verify_cert(ctx) == 1)
			error = X509_V_OK;
		else
			error = X509_STORE_CTX_get_error(ctx);
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	if (error != X509_V_OK)
		return fail(
		    CERT_CHECK_CHAIN, ret_reason,
		    /* TRANSLATORS: %s is OpenSSL's reason, in English. */
		    _("the certificate does not chain to an issuer the CA profile trusts (%s)"),
		    X509_verify_cert_error_string(error));
	return CERT_CHECK_OK;
}

CertCheck cert_check(X509 *certificate, STACK_OF(X509) * chain, EVP_PKEY *csr_key,
		     const Name *action_subject, int64_t action_not_before,
		     int64_t action_not_after, STACK_OF(X509) * trust_anchors, int64_t now,
		     char **ret_reason)
{
	EVP_PKEY *key = X509_get0_pubkey(certificate);
	Name subject = {};
	int64_t not_before, not_after;
	bool same;
	char a[32], b[32];

	if (!key || EVP_PKEY_eq(key, csr_key) != 1)
		return fail(CERT_CHECK_KEY, ret_reason,
			    _("the certificate's public key is not the key of the request"));
	if (name_from_x509(X509_get_subject_name(certificate), &subject) < 0)
		return fail(CERT_CHECK_SUBJECT, ret_reason,
			    _("the certificate's subject cannot be read"));
	same = name_equal(&subject, action_subject);
	name_clear(&subject);
	if (!same)
		return fail(CERT_CHECK_SUBJECT, ret_reason,
			    _("the certificate's subject differs from the one the CA announced"));
	if (asn1_time_to_unix(X509_get0_notBefore(certificate), &not_before) < 0 ||
	    asn1_time_to_unix(X509_get0_notAfter(certificate), &not_after) < 0)
		return fail(CERT_CHECK_VALIDITY, ret_reason,
			    _("the certificate's validity cannot be read"));
	if (check_chain(certificate, chain, trust_anchors, now, not_before, ret_reason) !=
	    CERT_CHECK_OK)
		return CERT_CHECK_CHAIN;
	if (not_before < action_not_before - WINDOW_SLACK ||
	    not_after > action_not_after + WINDOW_SLACK)
		return fail(CERT_CHECK_VALIDITY, ret_reason,
			    _("the certificate's validity (%s to %s) lies outside the one the CA "
			      "announced"),
			    strempty(format_rfc3339(a, sizeof(a), not_before)),
			    strempty(format_rfc3339(b, sizeof(b), not_after)));
	return CERT_CHECK_OK;
}
