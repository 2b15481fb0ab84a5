/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CMP client: key update on OpenSSL's OSSL_CMP_CTX, its messages
 * carried by the CA clients' HTTP (libcurl, the same TLS rules as v1), the
 * token's keys as EVP_PKEYs. The certConf travels inside the same
 * exchange (OpenSSL 3.0 cannot send one later), so the certificate is
 * checked and written from the certConf callback, before it goes out. */
#include "ca/ca-cmp.h"

#include <errno.h>
#include <openssl/cmp.h>
#include <openssl/cmperr.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca-http.h"
#include "ca/ca-v1-pending.h"
#include "i18n.h"
#include "log/log.h"
#include "macro.h"
#include "token/token-pkey.h"
#include "x509-util.h"

#define CMP_CONTENT_TYPE "application/pkixcmp"
#define CMP_MAX_STATUS_TEXT 512
/* RFC 4210, PKIBody: certConf [24] (OpenSSL keeps its name inside). */
#define CMP_BODY_CERTCONF 24

int ca_cmp_action_id(X509 *certificate, char ret[37])
{
	_cleanup_free_ char *sha256 = NULL;
	int r = x509_sha256_hex(certificate, &sha256);

	if (r < 0)
		return r;
	snprintf(ret, 37, "cmp-%.32s", sha256);
	return 0;
}

json_t *ca_name_to_json(const X509_NAME *x509_name)
{
	json_t *pairs;
	Name name = {};

	if (name_from_x509(x509_name, &name) < 0)
		return NULL;
	pairs = json_array();
	for (size_t i = 0; pairs && i < name.n_pairs; i++)
		if (json_array_append_new(pairs, json_pack("[ss]", name.pairs[i].attribute,
							   name.pairs[i].value)) < 0) {
			json_decref(pairs);
			pairs = NULL;
		}
	name_clear(&name);
	return pairs;
}

/* The key the renewal makes: the current key's kind and size ("key = new"),
 * or the current key certified again ("key = same"). */
static json_t *key_json(const Profile *profile, EVP_PKEY *current)
{
	if (profile->same_key)
		return json_pack("{s:b}", "generate", 0);
	switch (EVP_PKEY_get_base_id(current)) {
	case EVP_PKEY_RSA:
		return json_pack("{s:b,s:s,s:i}", "generate", 1, "type", "rsa", "bits",
				 EVP_PKEY_get_bits(current));
	case EVP_PKEY_EC:
		return json_pack("{s:b,s:s,s:s}", "generate", 1, "type", "ec", "curve", "P-256");
	default:
		/* ca_action_supported() says why it cannot be activated. */
		return json_pack("{s:b,s:s}", "generate", 1, "type", "unknown");
	}
}

/* Whether another certificate of the list has the same subject and ends
 * later: the renewal of this one is done already. */
static bool superseded(const CaCertificate *certificates, size_t n, size_t i, int64_t not_after)
{
	for (size_t k = 0; k < n; k++) {
		int64_t other = 0;

		if (k == i ||
		    X509_NAME_cmp(X509_get_subject_name(certificates[k].x509),
				  X509_get_subject_name(certificates[i].x509)) != 0 ||
		    asn1_time_to_unix(X509_get0_notAfter(certificates[k].x509), &other) < 0)
			continue;
		if (other > not_after)
			return true;
	}
	return false;
}

int ca_cmp_pending(const Profile *profile, const CaCertificate *certificates, size_t n_certificates,
		   int64_t now, json_t **ret, CaError *error)
{
	_cleanup_(json_decrefp) json_t *pending = json_array();

	if (!pending)
		return ca_error_set(error, CA_ERROR_NONE, 0, -ENOMEM, _("Out of memory"));
	for (size_t i = 0; i < n_certificates; i++) {
		X509 *x509 = certificates[i].x509;
		_cleanup_free_ char *serial = NULL;
		char id[37];
		int64_t not_after = 0;
		json_t *entry;

		if (asn1_time_to_unix(X509_get0_notAfter(x509), &not_after) < 0 ||
		    not_after <= now || not_after - now > (int64_t)profile->renew_days * 86400 ||
		    superseded(certificates, n_certificates, i, not_after))
			continue;
		if (serial_to_hex(X509_get0_serialNumber(x509), &serial) < 0 ||
		    ca_cmp_action_id(x509, id) < 0)
			return ca_error_set(error, CA_ERROR_NONE, 0, -ENOMEM, _("Out of memory"));
		entry =
		    json_pack("{s:s,s:s,s:s,s:o?,s:o?,s:s}", "id", id, "type", "renew", "replaces",
			      serial, "subject", ca_name_to_json(X509_get_subject_name(x509)),
			      "key", key_json(profile, X509_get0_pubkey(x509)), "protocol", "cmp");
		if (!entry || json_array_append_new(pending, entry) < 0)
			return ca_error_set(error, CA_ERROR_NONE, 0, -ENOMEM, _("Out of memory"));
	}
	*ret = TAKE_PTR(pending);
	return 0;
}

/* --- the exchange ---------------------------------------------------------- */

typedef struct Exchange {
	const Profile *profile;
	const CaCmpRequest *request;
	Client client;
	CaError *error;
	bool transfer_failed; /* *error says why */
	bool certconf_sent;
	bool accepted; /* received() took the certificate */
	bool refused;
	bool failed_openssl_check; /* OpenSSL's own check of the certificate */
	int sign_error;
} Exchange;

static OSSL_CMP_MSG *transfer(OSSL_CMP_CTX *ctx, const OSSL_CMP_MSG *request)
{
	Exchange *x = OSSL_CMP_CTX_get_transfer_cb_arg(ctx);
	unsigned char *der = NULL;
	const unsigned char *p;
	CaV1Answer answer = {};
	OSSL_CMP_MSG *response = NULL;
	int n, r;

	n = i2d_OSSL_CMP_MSG(request, &der);
	if (n <= 0) {
		ca_error_set(x->error, CA_ERROR_NONE, 0, -ENOMEM, _("Out of memory"));
		x->transfer_failed = true;
		return NULL;
	}
	if (OSSL_CMP_MSG_get_bodytype(request) == CMP_BODY_CERTCONF)
		x->certconf_sent = true;
	r = ca_http_send(&x->client, x->profile->url, CMP_CONTENT_TYPE, (const char *)der,
			 (size_t)n, &answer, x->error);
	OPENSSL_free(der);
	if (r < 0) {
		x->transfer_failed = true;
		return NULL;
	}
	if (answer.status != 200) {
		ca_error_set(
		    x->error, CA_ERROR_MALFORMED, answer.status, -EBADMSG,
		    /* TRANSLATORS: the HTTP status, then the address asked. */
		    _("The CA answered with HTTP status %ld instead of a CMP message (%s)"),
		    answer.status, x->profile->url);
		x->transfer_failed = true;
	} else {
		p = (const unsigned char *)answer.body;
		response = answer.body ? d2i_OSSL_CMP_MSG(NULL, &p, (long)answer.size) : NULL;
		if (!response || p != (const unsigned char *)answer.body + answer.size) {
			OSSL_CMP_MSG_free(response);
			response = NULL;
			ca_error_set(x->error, CA_ERROR_MALFORMED, answer.status, -EBADMSG,
				     _("The CA's answer is not a CMP message (%s)"),
				     x->profile->url);
			x->transfer_failed = true;
		}
	}
	ca_v1_answer_clear(&answer);
	return response;
}

static int on_certificate(OSSL_CMP_CTX *ctx, X509 *certificate, int fail_info, const char **text)
{
	Exchange *x = OSSL_CMP_CTX_get_certConf_cb_arg(ctx);
	STACK_OF(X509) * extra;
	int r;

	/* OpenSSL found something wrong already: the certConf says so. */
	if (fail_info != 0 || !certificate) {
		x->failed_openssl_check = true;
		return fail_info;
	}
	extra = OSSL_CMP_CTX_get1_extraCertsIn(ctx);
	r = x->request->received(x->request->userdata, certificate, extra);
	sk_X509_pop_free(extra, X509_free);
	if (r < 0) {
		x->refused = true;
		*text = "the certificate failed the holder's checks";
		return 1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate;
	}
	x->accepted = true;
	return 0;
}

static void log_openssl(const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_debug("%s: %s", what, buf);
	}
}

/* OpenSSL says some failures only in its CMP log (a sender it cannot
 * validate): the last warning, error or sender mismatch of this thread's
 * exchange. */
static _Thread_local char last_complaint[256];

static int log_cb(const char *func, const char *file, int line, OSSL_CMP_severity level,
		  const char *msg)
{
	log_debug("CMP %s: %s", func ? func : "?", msg);
	/* A wrong sender is only an INFO line. */
	if (msg && (level <= OSSL_CMP_LOG_WARNING || strstr(msg, "does not match expected sender")))
		snprintf(last_complaint, sizeof(last_complaint), "%s", msg);
	return 1;
}

/* The CA's status words, cleaned for display. */
static char *status_text(OSSL_CMP_CTX *ctx)
{
	char buf[CMP_MAX_STATUS_TEXT];

	if (!OSSL_CMP_CTX_snprint_PKIStatus(ctx, buf, sizeof(buf)))
		return NULL;
	return ca_v1_text_clean(buf, strlen(buf), CMP_MAX_STATUS_TEXT, false);
}

/* The first CMP reason on OpenSSL's error queue (the one that says what
 * went wrong; later ones say what failed because of it), and its error. */
static int cmp_reason(unsigned long *ret_error)
{
	unsigned long e;
	const char *file, *func, *data;
	int line, flags;

	*ret_error = ERR_peek_last_error();
	while ((e = ERR_get_error_all(&file, &line, &func, &data, &flags)) != 0)
		if (ERR_GET_LIB(e) == ERR_LIB_CMP) {
			*ret_error = e;
			return ERR_GET_REASON(e);
		}
	return 0;
}

/* Why the exchange failed, from OpenSSL's error queue: one sentence. */
static int fail_exchange(Exchange *x, OSSL_CMP_CTX *ctx)
{
	unsigned long e = 0;
	int reason = cmp_reason(&e);
	const char *url = x->profile->url;
	_cleanup_free_ char *status = NULL;

	if (x->sign_error)
		return ca_error_set(x->error, CA_ERROR_SIGNER, 0, x->sign_error,
				    x->sign_error == -ENODEV
					? _("The token was pulled out while the request was signed")
					: _("The token could not sign the request to the CA: %s"),
				    strerror(-x->sign_error));
	if (x->transfer_failed)
		return x->error ? -(x->error->kind == CA_ERROR_TIMEOUT ? ETIMEDOUT : EBADMSG)
				: -EIO;
	if (x->failed_openssl_check)
		return ca_error_set(
		    x->error, CA_ERROR_MALFORMED, 200, -EBADMSG,
		    _("The CA's certificate failed check 1: it does not hold the new "
		      "key that was sent. Nothing was written to the token."));
	/* An error message (RFC 4210 §5.3.21) carries a rejection status too:
	 * it is said as an error, not as a refusal of the request. */
	switch (reason == CMP_R_RECEIVED_ERROR || reason == CMP_R_PKIBODY_ERROR
		    ? -1
		    : OSSL_CMP_CTX_get_status(ctx)) {
	case OSSL_CMP_PKISTATUS_rejection:
		status = status_text(ctx);
		return ca_error_set(x->error, CA_ERROR_PROBLEM, 200, -EPROTO,
				    /* TRANSLATORS: the CA's status, failure bits and words. */
				    _("The CA rejected the request (%s)."),
				    status ? status : "rejection");
	default:
		break;
	}
	if (reason == 0 && last_complaint[0])
		reason = strstr(last_complaint, "srvCert") || strstr(last_complaint, "sender")
			     ? CMP_R_SRVCERT_DOES_NOT_VALIDATE_MSG
			     : 0;
	switch (reason) {
	case CMP_R_RECEIVED_ERROR:
	case CMP_R_PKIBODY_ERROR:
		status = status_text(ctx);
		return ca_error_set(x->error, CA_ERROR_PROBLEM, 200, -EPROTO,
				    _("The CA answered with an error (%s)."),
				    status ? status : "?");
	case CMP_R_TOTAL_TIMEOUT:
	case CMP_R_POLLING_FAILED:
		return ca_error_set(x->error, CA_ERROR_GAVE_UP, 200, -ETIME,
				    _("The CA kept the request waiting past %u s (%s)."),
				    ca_poll_limit_sec(), url);
	case CMP_R_MISSING_PROTECTION:
		return ca_error_set(x->error, CA_ERROR_MALFORMED, 200, -EBADMSG,
				    _("The CA's answer is not protected (%s)."), url);
	case CMP_R_ERROR_VALIDATING_PROTECTION:
	case CMP_R_ERROR_VALIDATING_SIGNATURE:
	case CMP_R_NO_SUITABLE_SENDER_CERT:
	case CMP_R_SRVCERT_DOES_NOT_VALIDATE_MSG:
	case CMP_R_MISSING_TRUST_STORE:
		return ca_error_set(x->error, CA_ERROR_MALFORMED, 200, -EBADMSG,
				    _("The CA's answer is not protected by a certificate this "
				      "profile trusts (%s)."),
				    url);
	case CMP_R_TRANSACTIONID_UNMATCHED:
	case CMP_R_RECIPNONCE_UNMATCHED:
		return ca_error_set(x->error, CA_ERROR_MALFORMED, 200, -EBADMSG,
				    _("The CA's answer belongs to another exchange (its "
				      "transaction or nonce does not match) (%s)."),
				    url);
	case CMP_R_BAD_REQUEST_ID:
	case CMP_R_CERTRESPONSE_NOT_FOUND:
		return ca_error_set(x->error, CA_ERROR_MALFORMED, 200, -EBADMSG,
				    _("The CA's answer is for another request (certReqId) (%s)."),
				    url);
	case CMP_R_UNEXPECTED_PKIBODY:
		return ca_error_set(x->error, CA_ERROR_MALFORMED, 200, -EBADMSG,
				    _("The CA answered with a CMP message of the wrong kind (%s)."),
				    url);
	default:
		return ca_error_set(x->error, CA_ERROR_MALFORMED, 200, -EBADMSG,
				    _("The CMP exchange with the CA failed: %s (%s)."),
				    e && ERR_reason_error_string(e) ? ERR_reason_error_string(e)
				    : last_complaint[0]		    ? last_complaint
								    : _("unknown error"),
				    url);
	}
}

static X509_STORE *trust_store(const Profile *profile)
{
	X509_STORE *store = X509_STORE_new();

	for (int i = 0; store && i < sk_X509_num(profile->issuers); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(profile->issuers, i)) != 1) {
			X509_STORE_free(store);
			return NULL;
		}
	return store;
}

int ca_cmp_key_update(const Profile *profile, const CaNetwork *network, const CaCmpRequest *request,
		      CaCmpOutcome *ret_outcome, CaError *error)
{
	Exchange x = {.profile = profile, .request = request, .error = error};
	OSSL_CMP_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	X509 *issued;
	bool ok;
	int r;

	r = ca_http_open(&x.client, profile, network, error);
	if (r < 0) {
		ca_http_clear(&x.client);
		return r;
	}
	ERR_clear_error();
	ctx = OSSL_CMP_CTX_new(NULL, NULL);
	store = ctx ? trust_store(profile) : NULL;
	ok = ctx && store && OSSL_CMP_CTX_set_log_cb(ctx, log_cb) &&
	     OSSL_CMP_CTX_set_transfer_cb(ctx, transfer) &&
	     OSSL_CMP_CTX_set_transfer_cb_arg(ctx, &x) &&
	     OSSL_CMP_CTX_set_certConf_cb(ctx, on_certificate) &&
	     OSSL_CMP_CTX_set_certConf_cb_arg(ctx, &x) &&
	     OSSL_CMP_CTX_set1_cert(ctx, request->old_certificate) &&
	     OSSL_CMP_CTX_set1_pkey(ctx, request->old_key) &&
	     OSSL_CMP_CTX_set1_oldCert(ctx, request->old_certificate) &&
	     EVP_PKEY_up_ref(request->new_key) &&
	     OSSL_CMP_CTX_set0_newPkey(ctx, 1, request->new_key) &&
	     OSSL_CMP_CTX_set1_untrusted(ctx, profile->issuers) &&
	     OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_IMPLICIT_CONFIRM,
				     profile->implicit_confirm) &&
	     OSSL_CMP_CTX_set_option(ctx, OSSL_CMP_OPT_TOTAL_TIMEOUT, (int)ca_poll_limit_sec());
	if (ok && profile->server_cert)
		ok = OSSL_CMP_CTX_set1_srvCert(ctx, sk_X509_value(profile->server_cert, 0));
	if (ok) {
		ok = OSSL_CMP_CTX_set0_trustedStore(ctx, store);
		if (ok)
			store = NULL;
	}
	if (!ok) {
		log_openssl("CMP set-up");
		X509_STORE_free(store);
		OSSL_CMP_CTX_free(ctx);
		ca_http_clear(&x.client);
		return ca_error_set(error, CA_ERROR_NONE, 0, -ENOMEM,
				    _("The CMP request cannot be prepared"));
	}

	log_debug("CMP key update with %s", profile->url);
	last_complaint[0] = '\0';
	issued = OSSL_CMP_exec_KUR_ses(ctx);
	x.sign_error = token_pkey_last_error(request->old_key);
	if (!x.sign_error && request->new_key != request->old_key)
		x.sign_error = token_pkey_last_error(request->new_key);
	if (issued && x.accepted) {
		*ret_outcome = x.certconf_sent ? CA_CMP_CONFIRMED : CA_CMP_IMPLICIT;
		r = 0;
	} else if (x.refused)
		r = -ECANCELED;
	else {
		r = fail_exchange(&x, ctx);
		if (x.accepted) {
			/* Written, but the CA may not know it was taken. */
			*ret_outcome = CA_CMP_UNCONFIRMED;
			r = 0;
		}
	}
	log_openssl("CMP");
	OSSL_CMP_CTX_free(ctx);
	ca_http_clear(&x.client);
	return r;
}
