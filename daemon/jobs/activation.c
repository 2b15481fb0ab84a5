/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The jobs that talk to the CA: check (what is pending) and activate (the
 * journaled state machine). They run on a job's thread. */
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bus-names.h"
#include "ca/ca-cmp.h"
#include "ca/cert-check.h"
#include "ca/csr.h"
#include "hex.h"
#include "state/history.h"
#include "i18n.h"
#include "jobs/job-worker.h"
#include "state/journal.h"
#include "log/log.h"
#include "macro.h"
#include "pin.h"
#include "time-util.h"
#include "token/p11-error.h"
#include "token/token-caps.h"
#include "token/token-pkey.h"
#include "token/token-session.h"
#include "x509-util.h"

#define NEW_KEY_ID_SIZE 20

DEFINE_TRIVIAL_CLEANUP_FUNC(Pin *, pin_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)

static void ca_error_clearp(CaError *e)
{
	ca_error_clear(e);
}

/* The CA's support line, for messages that send the user to it. */
static const char *support_of(const Profile *profile)
{
	/* TRANSLATORS: stands in for the CA's support line when its profile
	 * has none: "Support: your CA". */
	return profile && profile->support ? profile->support : _("your CA");
}

static int fail_ca(Job *job, const Profile *profile, const CaError *error, int r)
{
	/* Requests are signed on the token: one that could not sign is no
	 * fault of the CA's, and one pulled out is plugged in again. */
	if (error->kind == CA_ERROR_SIGNER && r == -ENODEV)
		return job_fail(job, SAFECAD_ERROR_TOKEN_GONE,
				_("Token %s was pulled out while the request to the CA "
				  "was being signed."),
				job->token_serial);
	if (error->kind == CA_ERROR_SIGNER)
		return job_fail(job, SAFECAD_ERROR_FAILED, "%s", strempty(error->message));
	/* TRANSLATORS: what went wrong (one or more sentences), then the CA's
	 * support line (phone and hours) and the CA's name. */
	return job_fail(job, SAFECAD_ERROR_CA, _("%s Support: %s (%s)."),
			error->message ? error->message : _("The CA request failed."),
			support_of(profile), profile ? profile->name : "?");
}

static const JobCertificate *find_certificate(Job *job, const char *serial)
{
	for (size_t i = 0; serial && i < job->n_certificates; i++)
		if (strcasecmp(job->certificates[i].serial, serial) == 0)
			return &job->certificates[i];
	return NULL;
}

/* Asks every CA profile the token's certificates belong to. */
static int ask_pending(Job *job, json_t **ret)
{
	json_t *all = json_array();
	size_t asked = 0;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < job->n_certificates; i++) {
		const Profile *profile = job->certificates[i].profile;
		CaCertificate certificates[64];
		size_t n = 0;
		bool seen = false;
		json_t *pending = NULL;
		_cleanup_(ca_error_clearp) CaError error = {};
		int r;

		if (!profile)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = job->certificates[k].profile == profile;
		if (seen)
			continue;
		for (size_t k = i; k < job->n_certificates && n < ELEMENTSOF(certificates); k++)
			if (job->certificates[k].profile == profile)
				certificates[n++] = (CaCertificate){job->certificates[k].x509};
		r = ca_pending(profile, &job->network, job->token_serial, certificates, n, &pending,
			       &error);
		if (r < 0) {
			json_decref(all);
			return fail_ca(job, profile, &error, r);
		}
		json_array_extend(all, pending);
		json_decref(pending);
		asked++;
	}
	if (asked == 0) {
		json_decref(all);
		return job_fail(job, SAFECAD_ERROR_NOTHING_TO_DO,
				_("No certificate on token %s belongs to a CA that safecad knows."),
				job->token_serial);
	}
	*ret = all;
	return 0;
}

static bool pending_lists(json_t *pending, const char *action_id)
{
	size_t i;
	json_t *entry;

	json_array_foreach(pending, i, entry)
	{
		if (streq_ptr(json_string_value(json_object_get(entry, "id")), action_id))
			return true;
	}
	return false;
}

/* Activations of this token that the CA no longer lists: one whose
 * certificate is written has nothing left to do; an earlier one is marked
 * withdrawn, and its new key goes at the next login (removing a private
 * key needs one). */
static void mark_withdrawn(Job *job, json_t *pending)
{
	json_auto_t *journals = NULL;
	size_t i;
	json_t *journal;

	if (journal_load_all(&journals) < 0)
		return;
	json_array_foreach(journals, i, journal)
	{
		const char *action = json_string_value(json_object_get(journal, "action_id"));

		/* A CMP certificate received before a crash: the CA lists
		 * nothing once it is on the token, but its certConf never
		 * went out, and the journal is what says so. */
		bool cmp_received = streq_ptr(json_string_value(json_object_get(
						  json_object_get(journal, "action"), "protocol")),
					      "cmp") &&
				    journal_step(journal) >= STEP_ISSUED;

		if (!streq_ptr(json_string_value(json_object_get(journal, "token")),
			       job->token_serial) ||
		    pending_lists(pending, action) ||
		    json_is_true(json_object_get(journal, "withdrawn")) ||
		    json_is_true(json_object_get(journal, "unconfirmed")) || cmp_received)
			continue;
		if (journal_step(journal) >= STEP_WRITTEN) {
			log_info("The CA no longer lists action %s; its certificate is on the "
				 "token, nothing is left to do.",
				 action);
			(void)journal_remove(journal);
			continue;
		}
		log_info("The CA no longer lists action %s; its key goes at the next login on "
			 "token %s.",
			 action, job->token_serial);
		json_object_set_new(journal, "withdrawn", json_true());
		(void)journal_save(journal);
	}
}

static void run_check(Job *job)
{
	json_t *pending = NULL;

	if (ask_pending(job, &pending) < 0)
		return;
	job->pending = pending;
	mark_withdrawn(job, pending);
}

/* What one activation works with. */
typedef struct Activation {
	Job *job;
	json_t *journal;
	json_t *action; /* borrowed from the journal */
	const char *action_id;
	const JobCertificate *old;
	const Profile *profile;
	TokenSession session;
	CK_OBJECT_HANDLE old_key;
	unsigned char old_key_id[256];
	size_t old_key_id_size;
	CK_OBJECT_HANDLE new_key;
	unsigned char new_key_id[256];
	size_t new_key_id_size;
	EVP_PKEY *new_public_key;
	const char *new_alg;
	const char *old_alg;
	/* CMP: what became of the certConf, and why when it failed. */
	CaCmpOutcome cmp_outcome;
	char *cmp_confirm_error;
	X509 *cmp_certificate; /* written from the certConf callback */
	/* CMP: an activation already reported unconfirmed, run again: the CA
	 * cannot be told any more, and it is closed. */
	bool closed;
	/* The token refused the write of a certificate that passed the
	 * checks (a negative errno): it is kept in the journal. */
	int write_error;
	/* The old certificate as the journal keeps it, when the new one took
	 * its place on the token (one certificate per key) and a crash came
	 * before the activation ended. */
	JobCertificate replaced;
} Activation;

static void activation_clear(Activation *a)
{
	token_session_close(&a->session);
	EVP_PKEY_free(a->new_public_key);
	free(a->cmp_confirm_error);
	X509_free(a->cmp_certificate);
	X509_free(a->replaced.x509);
	free(a->replaced.serial);
	json_decref(a->journal);
}

/* Journals step before the next one begins. */
static int advance(Activation *a, ActivationStep step)
{
	const char *name = activation_step_name(step);
	char now[32];
	int r;

	if (journal_step(a->journal) >= step)
		return 0;
	json_object_set_new(a->journal, "step", json_string(name));
	json_object_set_new(a->journal, "updated",
			    json_string(format_rfc3339(now, sizeof(now), time(NULL))));
	r = journal_save(a->journal);
	if (r < 0)
		return job_fail(a->job, SAFECAD_ERROR_FAILED,
				/* TRANSLATORS: the step (accepted, logged-in, key-ready,
				 * …), then why the state file cannot be written. */
				_("Cannot record the activation's progress in %s: %s"), name,
				strerror(-r));
	/* For the crash tests: die here as a power cut would. */
	job_test_crash_point(name);
	job_progress(a->job, a->action_id, name);
	return 0;
}

static int sign_with(void *userdata, const unsigned char *data, size_t size,
		     unsigned char **ret_signature, size_t *ret_size);

typedef struct SignKey {
	Activation *activation;
	CK_OBJECT_HANDLE *key; /* the Activation's handle, refreshed when stale */
	const char *alg;
	const unsigned char *id; /* its CKA_ID */
	size_t id_size;
} SignKey;

static int sign_with(void *userdata, const unsigned char *data, size_t size,
		     unsigned char **ret_signature, size_t *ret_size)
{
	SignKey *k = userdata;
	TokenSession *session = &k->activation->session;
	int r;

	r = token_session_sign(session, *k->key, k->alg, data, size, ret_signature, ret_size);
	/* The module numbered its objects afresh (a scan read the token
	 * meanwhile): the same key, found again by its CKA_ID, signs. */
	if (r == -ESTALE && token_session_find_private_key(session, k->id, k->id_size, k->key) >= 0)
		r = token_session_sign(session, *k->key, k->alg, data, size, ret_signature,
				       ret_size);
	return r;
}

/* The same, for a digest OpenSSL made (a CMP message, its proof of
 * possession). */
static int sign_digest_with(void *userdata, int md_nid, const unsigned char *digest, size_t size,
			    unsigned char **ret_signature, size_t *ret_size)
{
	SignKey *k = userdata;
	TokenSession *session = &k->activation->session;
	int r;

	r = token_session_sign_digest(session, *k->key, k->alg, md_nid, digest, size, ret_signature,
				      ret_size);
	if (r == -ESTALE && token_session_find_private_key(session, k->id, k->id_size, k->key) >= 0)
		r = token_session_sign_digest(session, *k->key, k->alg, md_nid, digest, size,
					      ret_signature, ret_size);
	return r;
}

static int name_from_json(json_t *pairs, Name *ret)
{
	Name name = {};
	size_t i;
	json_t *pair;

	name.pairs = calloc(json_array_size(pairs) + 1, sizeof(NamePair));
	if (!name.pairs)
		return -ENOMEM;
	json_array_foreach(pairs, i, pair)
	{
		const char *attribute = json_string_value(json_array_get(pair, 0));
		const char *value = json_string_value(json_array_get(pair, 1));
		if (!attribute || !value) {
			name_clear(&name);
			return -EINVAL;
		}
		name.pairs[i].attribute = strdup(attribute);
		name.pairs[i].value = strdup(value);
		name.n_pairs++;
		if (!name.pairs[i].attribute || !name.pairs[i].value) {
			name_clear(&name);
			return -ENOMEM;
		}
	}
	*ret = name;
	return 0;
}

static int parse_time(json_t *v, int64_t *ret)
{
	const char *s = json_string_value(v);
	struct tm tm = {};
	const char *end;

	if (!s)
		return -EINVAL;
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

/* Starts a new journal for the action, after asking the CA what it is. */
static int activation_begin(Activation *a)
{
	Job *job = a->job;
	json_auto_t *pending = NULL;
	json_t *entry, *action = NULL;
	const char *reason = NULL;
	char now[32];
	size_t i;
	int r;

	r = ask_pending(job, &pending);
	if (r < 0)
		return r;
	json_array_foreach(pending, i,
			   entry) if (streq_ptr(json_string_value(json_object_get(entry, "id")),
						job->action_id)) action = entry;
	if (!action)
		return job_fail(job, SAFECAD_ERROR_NOTHING_TO_DO,
				_("The CA has no pending action \"%s\" for token %s."),
				job->action_id, job->token_serial);
	if (!ca_action_supported(action, &reason))
		return job_fail(job, SAFECAD_ERROR_NOTHING_TO_DO,
				_("Action \"%s\" cannot be activated by safecad: %s."),
				job->action_id,
				reason ? reason : _("this kind of action is not supported"));
	a->old = find_certificate(job, json_string_value(json_object_get(action, "replaces")));
	if (!a->old)
		return job_fail(
		    job, SAFECAD_ERROR_FAILED,
		    _("The certificate that action \"%s\" replaces is not on the token."),
		    job->action_id);
	a->journal =
	    json_pack("{s:i,s:s,s:s,s:O,s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:{s:s?,s:s?,s:s?}}", "version",
		      1, "token", job->token_serial, "action_id", job->action_id, "action", action,
		      "profile", a->old->profile->file_name, "old_serial", a->old->serial,
		      "old_key_id", a->old->key_id, "step", "none", "keep_previous",
		      job->keep_previous, "started", format_rfc3339(now, sizeof(now), time(NULL)),
		      "module", job->module_path, "token_info", "label", job->token_label,
		      "manufacturer", job->token_manufacturer, "model", job->token_model);
	if (!a->journal)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	return advance(a, STEP_ACCEPTED);
}

static const Profile *profile_by_file_name(Job *job, const char *file_name);
static X509 *x509_of_pem(const char *pem);

/* The old certificate from the journal, when the new one replaced it on
 * the token (store_certificate()) and the activation did not end. */
static const JobCertificate *replaced_certificate(Activation *a)
{
	X509 *x509 =
	    x509_of_pem(json_string_value(json_object_get(a->journal, "replaced_certificate")));
	const char *key_id = json_string_value(json_object_get(a->journal, "old_key_id"));
	char *serial = NULL;

	if (!x509 || !key_id || serial_to_hex(X509_get0_serialNumber(x509), &serial) < 0 ||
	    !streq_ptr(serial, json_string_value(json_object_get(a->journal, "old_serial")))) {
		X509_free(x509);
		free(serial);
		return NULL;
	}
	a->replaced = (JobCertificate){
	    .x509 = x509,
	    .serial = serial,
	    .key_id = (char *)key_id,
	    .has_key = true,
	    .profile = profile_by_file_name(
		a->job, json_string_value(json_object_get(a->journal, "profile"))),
	};
	return a->replaced.profile ? &a->replaced : NULL;
}

/* Picks up an interrupted activation from its journal. */
static int activation_resume(Activation *a)
{
	const char *old_serial = json_string_value(json_object_get(a->journal, "old_serial"));

	a->old = find_certificate(a->job, old_serial);
	if (!a->old)
		a->old = replaced_certificate(a);
	if (!a->old)
		return job_fail(a->job, SAFECAD_ERROR_FAILED,
				_("The certificate this activation replaces (%s) is no longer on "
				  "the token."),
				strempty(old_serial));
	/* The answer to "keep the previous registration" is the one given
	 * now, when given again. */
	json_object_set_new(a->journal, "keep_previous", json_boolean(a->job->keep_previous));
	log_info("Resuming activation %s of token %s after step %s.", a->job->action_id,
		 a->job->token_serial, activation_step_name(journal_step(a->journal)));
	return 0;
}

/* What the token cannot do is known before the PIN and the CA: a key it
 * cannot make, no room for objects at all. Nothing is sent, nothing
 * changes. A key already made (a resumed activation) is not asked again. */
static int refuse_before_login(Activation *a)
{
	Job *job = a->job;
	TokenCapabilities caps;
	_cleanup_free_ char *reason = NULL;
	json_t *key = json_object_get(a->action, "key");
	json_auto_t *made = NULL;

	if (token_session_capabilities(&a->session, &caps) < 0)
		return 0;
	if (journal_step(a->journal) >= STEP_KEY_READY) {
		made = json_deep_copy(key);
		if (made)
			json_object_set_new(made, "generate", json_false());
		key = made;
	}
	if (journal_step(a->journal) >= STEP_WRITTEN)
		caps.write_protected = false;
	reason = token_capabilities_refusal(&caps, key);
	if (!reason)
		return 0;
	log_info("Activation %s cannot run on token %s: %s.", a->action_id, job->token_serial,
		 reason);
	return job_fail(job, SAFECAD_ERROR_NOTHING_TO_DO,
			/* TRANSLATORS: the action id, the token's serial, why (e.g.
			 * "the token cannot make P-256 keys"), then the CA's support
			 * line and name. */
			_("Action \"%s\" cannot be activated on token %s: %s. Nothing was sent to "
			  "the CA and nothing changed. Support: %s (%s)."),
			a->action_id, job->token_serial, reason, support_of(a->profile),
			a->profile->name);
}

static int login(Activation *a)
{
	Job *job = a->job;
	_cleanup_(pin_freep) Pin *pin = NULL;
	TokenPinFlags flags;
	int r;

	r = job_pin_flags(job, &a->session, &flags);
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Cannot read token %s: %s"),
				job->token_serial, strerror(-r));
	if (flags.locked)
		return job_fail(job, SAFECAD_ERROR_PIN_LOCKED,
				_("The PIN of token %s is locked. Support: %s."), job->token_serial,
				support_of(a->profile));
	if (flags.final_try && !job->allow_final_try)
		return job_fail(job, SAFECAD_ERROR_FINAL_TRY,
				_("Token %s locks at the next wrong PIN; nothing was tried. Allow "
				  "the final try explicitly to go on."),
				job->token_serial);

	r = pin_new(&pin);
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	r = job_read_pin(job, &job->pin_fd, pin);
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("No PIN was received: %s"),
				job_pin_error(r));
	if ((flags.min_pin_len && pin->size < flags.min_pin_len) ||
	    (flags.max_pin_len && pin->size > flags.max_pin_len))
		return job_fail(
		    job, SAFECAD_ERROR_WRONG_PIN,
		    _("The PIN of token %s has %lu to %lu characters; nothing was tried."),
		    job->token_serial, flags.min_pin_len, flags.max_pin_len);

	r = token_session_login(&a->session, pin->data, pin->size);
	/* Only a wrong PIN says anything of the counter. */
	job_pin_outcome(job, &a->session,
			r >= 0 || (r != -EACCES && r != -EIO && r != -EKEYREVOKED), &flags);
	if (r >= 0) {
		(void)removals_finish_logged_in(&a->session, job->token_serial);
		return 0;
	}
	if (flags.locked)
		return job_fail(job, SAFECAD_ERROR_PIN_LOCKED,
				_("Wrong PIN: token %s is now locked. Support: %s."),
				job->token_serial, support_of(a->profile));
	if (r == -EKEYREVOKED)
		return job_fail(job, SAFECAD_ERROR_PIN_LOCKED, _("The PIN of token %s is locked."),
				job->token_serial);
	if (r == -EACCES || r == -EIO || r == -ERANGE)
		return job_fail(
		    job, SAFECAD_ERROR_WRONG_PIN,
		    flags.final_try
			? _("Wrong PIN for token %s: one try left before the token locks.")
		    : flags.count_low ? _("Wrong PIN for token %s: few tries left.")
				      : _("Wrong PIN for token %s."),
		    job->token_serial);
	return job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Cannot log in to token %s: %s"),
			job->token_serial, strerror(-r));
}

/* The key the new certificate certifies: made now, found again after a
 * crash (its CKA_ID is journaled before it is made), or the old one. */
static int prepare_key(Activation *a)
{
	Job *job = a->job;
	json_t *key = json_object_get(a->action, "key");
	const char *new_id_hex;
	int r;

	if (hex_decode(a->old->key_id, a->old_key_id, sizeof(a->old_key_id), &a->old_key_id_size) <
		0 ||
	    token_session_find_private_key(&a->session, a->old_key_id, a->old_key_id_size,
					   &a->old_key) < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED,
				_("The key of certificate %s is not on the token."),
				a->old->serial);
	a->old_alg = jws_alg_for_key(X509_get0_pubkey(a->old->x509));
	if (!a->old_alg)
		return job_fail(
		    job, SAFECAD_ERROR_FAILED,
		    _("The key of certificate %s is of a kind safecad cannot sign with."),
		    a->old->serial);

	if (!json_is_true(json_object_get(key, "generate"))) {
		memcpy(a->new_key_id, a->old_key_id, a->old_key_id_size);
		a->new_key_id_size = a->old_key_id_size;
		a->new_key = a->old_key;
		a->new_public_key = EVP_PKEY_dup(X509_get0_pubkey(a->old->x509));
		a->new_alg = a->old_alg;
		json_object_set_new(a->journal, "new_key_id", json_string(a->old->key_id));
		return a->new_public_key ? advance(a, STEP_KEY_READY)
					 : job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	}

	new_id_hex = json_string_value(json_object_get(a->journal, "new_key_id"));
	if (new_id_hex) {
		if (hex_decode(new_id_hex, a->new_key_id, sizeof(a->new_key_id),
			       &a->new_key_id_size) < 0)
			return job_fail(job, SAFECAD_ERROR_FAILED, _("The journal is damaged."));
		r = token_session_find_private_key(&a->session, a->new_key_id, a->new_key_id_size,
						   &a->new_key);
		if (r < 0 && journal_step(a->journal) >= STEP_KEY_READY)
			return job_fail(job, SAFECAD_ERROR_FAILED,
					_("The new key (%s) of this activation is no longer on "
					  "the token."),
					new_id_hex);
	} else {
		_cleanup_free_ char *hex = NULL;
		a->new_key_id_size = NEW_KEY_ID_SIZE;
		if (RAND_bytes(a->new_key_id, NEW_KEY_ID_SIZE) != 1 ||
		    !(hex = hex_encode(a->new_key_id, NEW_KEY_ID_SIZE)))
			return job_fail(job, SAFECAD_ERROR_FAILED, _("Cannot make a key id."));
		/* Journaled before the key exists: after a crash the same
		 * id finds it, and no second key is ever sent to the CA. */
		json_object_set_new(a->journal, "new_key_id", json_string(hex));
		r = journal_save(a->journal);
		if (r < 0)
			return job_fail(job, SAFECAD_ERROR_FAILED,
					_("Cannot write the journal: %s"), strerror(-r));
		r = -ENOENT;
	}
	if (r == -ENOENT) {
		_cleanup_free_ char *label = NULL;
		const char *type = json_string_value(json_object_get(key, "type"));
		json_int_t bits = json_integer_value(json_object_get(key, "bits"));

		if (asprintf(&label, "safecad %s", a->action_id) < 0)
			return job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
		log_info("Generating a %s key on token %s for action %s.", strempty(type),
			 job->token_serial, a->action_id);
		r = token_session_generate(&a->session, strempty(type), (unsigned)bits,
					   a->new_key_id, a->new_key_id_size, label, &a->new_key);
		if (r == -EIO && !token_session_present(&a->session))
			r = -ENODEV;
		if (r < 0)
			return job_fail(job,
					r == -ENODEV	   ? SAFECAD_ERROR_TOKEN_GONE
					: token_refused(r) ? SAFECAD_ERROR_TOKEN_REFUSED
							   : SAFECAD_ERROR_FAILED,
					/* TRANSLATORS: why, e.g. "the token is full". */
					_("The token could not make the new key (%s). Nothing "
					  "was sent to the CA."),
					token_refusal(r));
	}
	r = token_session_public_key(&a->session, a->new_key, a->new_key_id, a->new_key_id_size,
				     &a->new_public_key);
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED,
				_("Cannot read the new public key from the token: %s"),
				strerror(-r));
	a->new_alg = jws_alg_for_key(a->new_public_key);
	if (!a->new_alg)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("The new key is of an unknown kind."));
	return advance(a, STEP_KEY_READY);
}

static int pem_of(X509 *x509, char **ret)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long size;

	if (!bio || PEM_write_bio_X509(bio, x509) != 1) {
		BIO_free(bio);
		return -ENOMEM;
	}
	size = BIO_get_mem_data(bio, &data);
	*ret = strndup(data, (size_t)size);
	BIO_free(bio);
	return *ret ? 0 : -ENOMEM;
}

static X509 *x509_of_pem(const char *pem)
{
	BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x509 = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x509;
}

/* The certificate and chain journaled at issued. */
static int journaled_certificate(Activation *a, X509 **ret_certificate, STACK_OF(X509) * *ret_chain)
{
	X509 *certificate;
	STACK_OF(X509) * chain;
	json_t *pem;
	size_t i;

	certificate = x509_of_pem(json_string_value(json_object_get(a->journal, "certificate")));
	chain = sk_X509_new_null();
	if (!certificate || !chain) {
		X509_free(certificate);
		sk_X509_free(chain);
		return job_fail(a->job, SAFECAD_ERROR_FAILED, _("The journal is damaged."));
	}
	json_array_foreach(json_object_get(a->journal, "chain"), i, pem)
	{
		X509 *x = x509_of_pem(json_string_value(pem));
		if (x && !sk_X509_push(chain, x))
			X509_free(x);
	}
	*ret_certificate = certificate;
	*ret_chain = chain;
	return 0;
}

/* Journals what the CA issued (step issued): after a crash it is checked
 * and written without asking the CA again. */
static int journal_certificate(Activation *a, X509 *certificate, STACK_OF(X509) * chain)
{
	json_t *chain_json = json_array();
	char *pem = NULL;

	if (!chain_json || pem_of(certificate, &pem) < 0) {
		json_decref(chain_json);
		return job_fail(a->job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	}
	json_object_set_new(a->journal, "certificate", json_string(pem));
	free(pem);
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (pem_of(sk_X509_value(chain, i), &pem) >= 0) {
			json_array_append_new(chain_json, json_string(pem));
			free(pem);
		}
	json_object_set_new(a->journal, "chain", chain_json);
	return advance(a, STEP_ISSUED);
}

/* A certificate not kept: the journal goes back to key-ready, and the next
 * attempt sends the same key again and takes the CA's new answer. */
static void forget_certificate(Activation *a)
{
	int r;

	json_object_del(a->journal, "certificate");
	json_object_del(a->journal, "chain");
	json_object_set_new(a->journal, "step", json_string(activation_step_name(STEP_KEY_READY)));
	r = journal_save(a->journal);
	if (r < 0)
		log_warning_errno(r, "Cannot roll the journal back to key-ready: %m");
}

/* The checks before anything is written (protocol-v1's four; for CMP the
 * subject is the current certificate's, and the new one must end later
 * than it), then step verified. A certificate that fails is not kept: the
 * next attempt sends the same key again and takes the CA's new answer. */
static int check_certificate(Activation *a, X509 *certificate, STACK_OF(X509) * chain)
{
	Job *job = a->job;
	_cleanup_free_ char *reason = NULL;
	Name subject = {};
	int64_t not_before = 0, not_after = 0, old_not_after = 0;
	CertCheck check;
	int r;

	if (a->profile->kind == PROFILE_CMP) {
		/* No window was promised: the certificate's own. */
		r = name_from_x509(X509_get_subject_name(a->old->x509), &subject);
		if (r >= 0)
			r = asn1_time_to_unix(X509_get0_notBefore(certificate), &not_before);
		if (r >= 0)
			r = asn1_time_to_unix(X509_get0_notAfter(certificate), &not_after);
		if (r >= 0)
			r = asn1_time_to_unix(X509_get0_notAfter(a->old->x509), &old_not_after);
	} else {
		r = name_from_json(json_object_get(a->action, "subject"), &subject);
		if (r >= 0)
			r = parse_time(json_object_get(a->action, "not_before"), &not_before);
		if (r >= 0)
			r = parse_time(json_object_get(a->action, "not_after"), &not_after);
	}
	if (r < 0) {
		name_clear(&subject);
		return job_fail(job, SAFECAD_ERROR_FAILED,
				_("The action in the journal is invalid."));
	}
	check = cert_check(certificate, chain, a->new_public_key, &subject, not_before, not_after,
			   a->profile->issuers, time(NULL), &reason);
	name_clear(&subject);
	if (check == CERT_CHECK_OK && a->profile->kind == PROFILE_CMP &&
	    not_after <= old_not_after) {
		check = CERT_CHECK_VALIDITY;
		reason = strdup(_("it does not end later than the current certificate"));
	}
	if (check != CERT_CHECK_OK) {
		forget_certificate(a);
		return job_fail(job, SAFECAD_ERROR_CA,
				/* TRANSLATORS: the number of the check (1 to 4, as
				 * protocol-v1 counts them), why it failed, the CA's
				 * support line and the CA's name. */
				_("The CA's certificate failed check %d: %s. Nothing was written "
				  "to the token. Support: %s (%s)."),
				(int)check, reason ? reason : "?", support_of(a->profile),
				a->profile->name);
	}
	return advance(a, STEP_VERIFIED);
}

/* Sends the CSR (or, after a crash past issue, takes the journaled
 * answer) and checks the certificate. */
static int obtain_certificate(Activation *a, X509 **ret_certificate)
{
	Job *job = a->job;
	_cleanup_(X509_freep) X509 *certificate = NULL;
	STACK_OF(X509) *chain = NULL;
	_cleanup_(ca_error_clearp) CaError error = {};
	Name subject = {};
	int r;

	if (journal_step(a->journal) >= STEP_ISSUED) {
		r = journaled_certificate(a, &certificate, &chain);
		if (r < 0)
			return r;
	} else {
		unsigned char *csr = NULL;
		size_t csr_size = 0;
		SignKey new_key = {a, &a->new_key, a->new_alg, a->new_key_id, a->new_key_id_size};
		SignKey old_key = {a, &a->old_key, a->old_alg, a->old_key_id, a->old_key_id_size};
		CaSigner signer = {a->old_alg, a->old->x509, sign_with, &old_key};

		r = name_from_json(json_object_get(a->action, "subject"), &subject);
		if (r < 0)
			return job_fail(job, SAFECAD_ERROR_FAILED,
					_("The action's subject is invalid."));
		r = csr_build(&subject, a->new_public_key, a->new_alg, sign_with, &new_key, &csr,
			      &csr_size);
		name_clear(&subject);
		if (r < 0)
			return job_fail(job, SAFECAD_ERROR_FAILED,
					_("Cannot make the certificate request: %s"), strerror(-r));
		r = advance(a, STEP_CSR_SENT);
		if (r < 0) {
			OPENSSL_free(csr);
			return r;
		}
		r = ca_issue(a->profile, &job->network, a->action_id, &signer, csr, csr_size,
			     &certificate, &chain, &error);
		OPENSSL_free(csr);
		if (r < 0)
			return fail_ca(job, a->profile, &error, r);
		r = journal_certificate(a, certificate, chain);
		if (r < 0) {
			sk_X509_pop_free(chain, X509_free);
			return r;
		}
	}
	r = check_certificate(a, certificate, chain);
	sk_X509_pop_free(chain, X509_free);
	if (r < 0)
		return r;
	*ret_certificate = TAKE_PTR(certificate);
	return 0;
}

static char *certificate_label(X509 *certificate)
{
	char from[32] = "", to[32] = "", *label = NULL;
	int64_t nb = 0, na = 0;
	char cn[128] = "";

	(void)asn1_time_to_unix(X509_get0_notBefore(certificate), &nb);
	(void)asn1_time_to_unix(X509_get0_notAfter(certificate), &na);
	format_rfc3339(from, sizeof(from), nb);
	format_rfc3339(to, sizeof(to), na);
	X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, cn,
				  sizeof(cn));
	if (asprintf(&label, "%s %.10s..%.10s", cn[0] ? cn : "certificate", from, to) < 0)
		return NULL;
	return label;
}

static json_t *agencies_json(const Profile *profile)
{
	json_t *agencies = json_array();

	for (size_t i = 0; agencies && i < profile->n_agencies; i++)
		json_array_append_new(agencies,
				      json_pack("{s:s,s:s,s:s?,s:b}", "id", profile->agencies[i].id,
						"name", profile->agencies[i].name, "url",
						profile->agencies[i].url, "done", 0));
	return agencies;
}

/* Some tokens keep one certificate per key: OpenSC's PKCS#15 cards refuse
 * a second certificate under the same CKA_ID (CKR_GENERAL_ERROR).
 * Re-certifying the same key, the new certificate then takes the old
 * one's place. The old one is journaled first (a crash in between resumes
 * from it) and put back when the new one is refused as well. */
static int replace_old_certificate(Activation *a, X509 *certificate, const char *label, int refused)
{
	_cleanup_free_ char *pem = NULL, *old_label = NULL;
	int r;

	if (pem_of(a->old->x509, &pem) < 0)
		return refused;
	json_object_set_new(a->journal, "replaced_certificate", json_string(pem));
	if (journal_save(a->journal) < 0 ||
	    token_session_destroy_certificate(&a->session, a->old->x509) < 0)
		return refused;
	r = token_session_store_certificate(&a->session, certificate, a->new_key_id,
					    a->new_key_id_size, label);
	if (r >= 0) {
		log_info("Token %s keeps one certificate per key: the certificate of action %s "
			 "replaced certificate %s.",
			 a->job->token_serial, a->action_id, a->old->serial);
		return 0;
	}
	old_label = certificate_label(a->old->x509);
	if (token_session_store_certificate(&a->session, a->old->x509, a->old_key_id,
					    a->old_key_id_size,
					    old_label ? old_label : "certificate") < 0) {
		log_warning("Cannot put certificate %s back on token %s; the journal keeps it.",
			    a->old->serial, a->job->token_serial);
		return r;
	}
	json_object_del(a->journal, "replaced_certificate");
	(void)journal_save(a->journal);
	return r;
}

/* The certificate onto the token, unless it is there already (a crash
 * came between the write and its journal step). A negative errno. */
static int store_certificate(Activation *a, X509 *certificate, const char *label)
{
	int r = token_session_has_certificate(&a->session, certificate);

	if (r != 0)
		return r < 0 ? r : 0;
	r = token_session_store_certificate(&a->session, certificate, a->new_key_id,
					    a->new_key_id_size, label);
	if (r < 0 && r != -ENODEV && a->new_key_id_size == a->old_key_id_size &&
	    memcmp(a->new_key_id, a->old_key_id, a->old_key_id_size) == 0 &&
	    token_session_has_certificate(&a->session, a->old->x509) > 0)
		r = replace_old_certificate(a, certificate, label, r);
	return r < 0 ? r : 0;
}

/* The token did not take a certificate that passed every check. It stays
 * in the journal at verified: exportable (ExportIssued), and written by
 * the next activation of the action once the token can take it. */
static int write_failed(Activation *a, int r)
{
	Job *job = a->job;

	if (r == -EIO && !token_session_present(&a->session))
		r = -ENODEV;
	if (r == -ENODEV)
		return job_fail(job, SAFECAD_ERROR_TOKEN_GONE,
				_("Cannot write the new certificate to token %s: %s"),
				job->token_serial, token_refusal(r));
	json_object_set_new(a->journal, "write_error", json_string(token_refusal(r)));
	if (journal_save(a->journal) < 0)
		log_warning("Cannot record the write failure of action %s.", a->action_id);
	log_warning("Token %s did not take the certificate of action %s: %s", job->token_serial,
		    a->action_id, token_refusal(r));
	return job_fail(job, SAFECAD_ERROR_TOKEN_REFUSED,
			/* TRANSLATORS: the token's serial, why (e.g. "the token is
			 * full"), the token's serial again, then the CA's support
			 * line and name. */
			_("Token %s did not take the new certificate (%s). The CA's certificate "
			  "passed every check and is kept: export it with \"safectl export %s "
			  "--issued\", or activate again once the token can take it. Support: "
			  "%s (%s)."),
			job->token_serial, token_refusal(r), job->token_serial,
			support_of(a->profile), a->profile->name);
}

static int write_certificate(Activation *a, X509 *certificate)
{
	Job *job = a->job;
	_cleanup_free_ char *label = certificate_label(certificate);
	_cleanup_free_ char *new_serial = NULL;
	json_t *entry;
	int r;

	if (!label || serial_to_hex(X509_get0_serialNumber(certificate), &new_serial) < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	if (journal_step(a->journal) < STEP_WRITTEN) {
		r = store_certificate(a, certificate, label);
		if (r < 0)
			return write_failed(a, r);
	}
	json_object_del(a->journal, "write_error");
	json_object_set_new(a->journal, "new_serial", json_string(new_serial));
	entry = json_pack("{s:O,s:O?,s:s,s:s,s:s,s:n,s:o}", "action",
			  json_object_get(a->journal, "action_id"), "type",
			  json_object_get(a->action, "type"), "token", job->token_serial,
			  "old_serial", a->old->serial, "new_serial", new_serial, "completed",
			  "agencies", agencies_json(a->profile));
	if (!entry)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	r = history_add(entry);
	json_decref(entry);
	if (r < 0)
		log_warning_errno(r, "Cannot record the activation in the history: %m");
	return advance(a, STEP_WRITTEN);
}

/* The CA knows: the activation is complete and its journal goes. */
static int confirmed(Activation *a, bool *ret_confirmed)
{
	int r;

	*ret_confirmed = true;
	(void)history_set_completed(a->job->token_serial, a->action_id, time(NULL));
	job_progress(a->job, a->action_id, activation_step_name(STEP_CONFIRMED));
	r = journal_remove(a->journal);
	if (r < 0)
		log_warning_errno(r, "Cannot remove the journal of action %s: %m", a->action_id);
	return 0;
}

static int confirm(Activation *a, X509 *certificate, bool *ret_confirmed, char **ret_error)
{
	Job *job = a->job;
	SignKey new_key = {a, &a->new_key, a->new_alg, a->new_key_id, a->new_key_id_size};
	CaSigner signer = {a->new_alg, certificate, sign_with, &new_key};
	_cleanup_(ca_error_clearp) CaError error = {};
	const char *new_serial = json_string_value(json_object_get(a->journal, "new_serial"));
	int r;

	r = ca_confirm(a->profile, &job->network, a->action_id, &signer, new_serial,
		       json_is_true(json_object_get(a->journal, "keep_previous")), &error);
	if (r < 0) {
		/* The certificate is the user's already; the confirm is sent
		 * again at the next activation of this action. */
		log_warning("Confirming action %s failed: %s", a->action_id,
			    strempty(error.message));
		*ret_confirmed = false;
		/* The token, not the CA, failed: no call to the CA's support. */
		if (error.kind == CA_ERROR_SIGNER)
			*ret_error = strdup(strempty(error.message));
		/* TRANSLATORS: why the CA's confirmation failed, then the CA's
		 * support line. */
		else if (asprintf(ret_error, _("%s Support: %s."), strempty(error.message),
				  support_of(a->profile)) < 0)
			*ret_error = NULL;
		return 0;
	}
	return confirmed(a, ret_confirmed);
}

/* Logged in: the keys of withdrawn activations on this token can go. */
static void remove_withdrawn(Activation *a)
{
	json_auto_t *journals = NULL;
	size_t i;
	json_t *journal;

	if (journal_load_all(&journals) < 0)
		return;
	json_array_foreach(journals, i, journal)
	{
		const char *action = json_string_value(json_object_get(journal, "action_id"));
		const char *key_id = json_string_value(json_object_get(journal, "new_key_id"));
		json_t *key = json_object_get(json_object_get(journal, "action"), "key");
		unsigned char id[256];
		size_t id_size;
		int r = 0;

		if (!json_is_true(json_object_get(journal, "withdrawn")) ||
		    !streq_ptr(json_string_value(json_object_get(journal, "token")),
			       a->job->token_serial) ||
		    streq_ptr(action, a->action_id))
			continue;
		/* Only a key made for it, never the certificate's old one. */
		if (key_id && json_is_true(json_object_get(key, "generate")) &&
		    hex_decode(key_id, id, sizeof(id), &id_size) >= 0 &&
		    !streq_ptr(key_id, json_string_value(json_object_get(journal, "old_key_id")))) {
			r = token_session_destroy_objects(&a->session, CKO_PRIVATE_KEY, id,
							  id_size);
			if (r >= 0)
				r = token_session_destroy_objects(&a->session, CKO_PUBLIC_KEY, id,
								  id_size);
		}
		if (r < 0) {
			log_warning_errno(r, "Cannot remove the key of withdrawn action %s: %m",
					  action);
			continue;
		}
		log_info("Removed the key of withdrawn action %s from token %s.", action,
			 a->job->token_serial);
		(void)journal_remove(journal);
	}
}

/* The issued certificate as the caller is shown it before it is
 * written: what the CA returned and the checks passed. */
static json_t *certificate_details(Activation *a, X509 *certificate)
{
	_cleanup_free_ char *serial = NULL, *sha256 = NULL, *pem = NULL;
	char not_before[32] = "", not_after[32] = "";
	int64_t nb = 0, na = 0;

	if (serial_to_hex(X509_get0_serialNumber(certificate), &serial) < 0 ||
	    x509_sha256_hex(certificate, &sha256) < 0 || pem_of(certificate, &pem) < 0 ||
	    asn1_time_to_unix(X509_get0_notBefore(certificate), &nb) < 0 ||
	    asn1_time_to_unix(X509_get0_notAfter(certificate), &na) < 0)
		return NULL;
	return json_pack("{s:s,s:s,s:s,s:o?,s:o?,s:s,s:s,s:s,s:s}", "action", a->action_id,
			 "old_serial", a->old->serial, "serial", serial, "subject",
			 ca_name_to_json(X509_get_subject_name(certificate)), "issuer",
			 ca_name_to_json(X509_get_issuer_name(certificate)), "not_before",
			 strempty(format_rfc3339(not_before, sizeof(not_before), nb)), "not_after",
			 strempty(format_rfc3339(not_after, sizeof(not_after), na)), "sha256",
			 sha256, "pem", pem);
}

/* When the caller asked for it, the checked certificate is shown to it
 * and nothing is written without its yes (the guide's "Confirm"). Any
 * other answer leaves the activation at verified, resumable. */
static int ask_before_writing(Activation *a, X509 *certificate)
{
	Job *job = a->job;
	const char *reason;
	json_t *details;

	if (!job->confirm_write || journal_step(a->journal) >= STEP_WRITTEN)
		return 0;
	details = certificate_details(a, certificate);
	if (!details)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	switch (job_wait_answer(job, details)) {
	case JOB_ANSWER_WRITE:
		return 0;
	case JOB_ANSWER_CANCEL:
		reason = N_("the writing was declined");
		break;
	case JOB_ANSWER_CALLER_GONE:
		reason = N_("the program that asked went away");
		break;
	case JOB_ANSWER_TIMEOUT:
		reason = N_("no answer came in time");
		break;
	default:
		reason = N_("safecad is stopping");
		break;
	}
	log_info("Activation %s on token %s stops before writing: %s.", a->action_id,
		 job->token_serial, reason);
	if (a->profile->kind == PROFILE_CMP) {
		/* The CA hears now that it was not taken (its certConf), so it
		 * is not kept: the next attempt asks for a new one, with the
		 * same key. */
		forget_certificate(a);
		return job_fail(
		    job, SAFECAD_ERROR_NOT_WRITTEN,
		    /* TRANSLATORS: the token's serial, then why. */
		    _("Nothing was written to token %s (%s). The CA is told the "
		      "certificate was not taken: activate again with the PIN to ask it "
		      "for a new one, with the same key."),
		    job->token_serial, _(reason));
	}
	return job_fail(job, SAFECAD_ERROR_NOT_WRITTEN,
			/* TRANSLATORS: the token's serial, then why. */
			_("Nothing was written to token %s (%s). The checked certificate is "
			  "kept: activate again with the PIN to write it."),
			job->token_serial, _(reason));
}

/* --- CMP: the certificate arrives, is checked and written inside the
 * exchange, before the certConf tells the CA it was taken. ------------ */

/* The checks, the caller's yes when it asked to see the certificate
 * first, and the write. */
static int check_and_write(Activation *a, X509 *certificate, STACK_OF(X509) * chain)
{
	int r = check_certificate(a, certificate, chain);

	if (r >= 0)
		r = ask_before_writing(a, certificate);
	if (r >= 0)
		r = write_certificate(a, certificate);
	return r;
}

static int cmp_received(void *userdata, X509 *certificate, STACK_OF(X509) * extra)
{
	Activation *a = userdata;
	int r;

	r = journal_certificate(a, certificate, extra);
	if (r >= 0)
		r = check_certificate(a, certificate, extra);
	if (r >= 0)
		r = ask_before_writing(a, certificate);
	if (r >= 0) {
		_cleanup_free_ char *label = certificate_label(certificate);

		r = label ? store_certificate(a, certificate, label) : -ENOMEM;
		if (r == -EIO && !token_session_present(&a->session))
			r = -ENODEV;
		/* A token that will not take it (full, read-only) does not
		 * make the certificate wrong: the CA hears it was accepted,
		 * and it is kept in the journal for the user. A pulled token
		 * cannot sign the certConf anyway. */
		if (r < 0 && r != -ENODEV && r != -ENOMEM) {
			a->write_error = r;
			a->cmp_certificate = X509_dup(certificate);
			return a->cmp_certificate ? 0 : -ENOMEM;
		}
		if (r < 0)
			return write_failed(a, r);
		r = write_certificate(a, certificate);
	}
	if (r < 0)
		return r;
	a->cmp_certificate = X509_dup(certificate);
	return a->cmp_certificate ? 0 : -ENOMEM;
}

static int obtain_and_write_cmp(Activation *a)
{
	Job *job = a->job;
	SignKey old_key = {a, &a->old_key, a->old_alg, a->old_key_id, a->old_key_id_size};
	SignKey new_key = {a, &a->new_key, a->new_alg, a->new_key_id, a->new_key_id_size};
	_cleanup_(ca_error_clearp) CaError error = {};
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *old_pkey = NULL, *new_pkey = NULL;
	CaCmpRequest request;
	int r;

	if (journal_step(a->journal) >= STEP_ISSUED) {
		/* Received before a crash: its certConf never went out, and
		 * OpenSSL cannot send one later. It is checked and written
		 * all the same (it is the user's), and stays unconfirmed. */
		_cleanup_(X509_freep) X509 *certificate = NULL;
		STACK_OF(X509) *chain = NULL;

		r = journaled_certificate(a, &certificate, &chain);
		if (r < 0)
			return r;
		r = check_and_write(a, certificate, chain);
		sk_X509_pop_free(chain, X509_free);
		if (r < 0)
			return r;
		if (json_is_true(json_object_get(a->journal, "cmp_confirmed"))) {
			a->cmp_outcome = CA_CMP_CONFIRMED;
			a->cmp_certificate = TAKE_PTR(certificate);
			return 0;
		}
		a->cmp_outcome = CA_CMP_UNCONFIRMED;
		/* Reported unconfirmed once already: OpenSSL cannot send a
		 * certConf later, so running it again closes it, as it is. */
		a->closed = json_is_true(json_object_get(a->journal, "unconfirmed"));
		a->cmp_confirm_error =
		    strdup(_("The activation was interrupted after the CA issued the "
			     "certificate, so the CA was not told it was received."));
		a->cmp_certificate = TAKE_PTR(certificate);
		return 0;
	}

	old_pkey = token_pkey_new(X509_get0_pubkey(a->old->x509), sign_digest_with, &old_key);
	new_pkey = a->new_key == a->old_key
		       ? (old_pkey && EVP_PKEY_up_ref(old_pkey) ? old_pkey : NULL)
		       : token_pkey_new(a->new_public_key, sign_digest_with, &new_key);
	if (!old_pkey || !new_pkey)
		return job_fail(job, SAFECAD_ERROR_FAILED,
				_("The token's keys cannot be used for the CMP request."));
	r = advance(a, STEP_CSR_SENT);
	if (r < 0)
		return r;
	request = (CaCmpRequest){a->old->x509, old_pkey, new_pkey, cmp_received, a};
	r = ca_cmp_key_update(a->profile, &job->network, &request, &a->cmp_outcome, &error);
	if (r == -ECANCELED)
		/* cmp_received() said why. */
		return job->error_name ? r
				       : job_fail(job, SAFECAD_ERROR_FAILED,
						  _("The CA's certificate was refused."));
	if (r < 0)
		return fail_ca(job, a->profile, &error, r);
	if (a->write_error < 0) {
		/* The next attempt writes it from the journal; whether the CA
		 * heard is remembered for then. */
		json_object_set_new(a->journal, "cmp_confirmed",
				    json_boolean(a->cmp_outcome != CA_CMP_UNCONFIRMED));
		return write_failed(a, a->write_error);
	}
	if (a->cmp_outcome == CA_CMP_UNCONFIRMED) {
		log_warning("The CA issued action %s's certificate, but its confirmation did not "
			    "get through: %s",
			    a->action_id, strempty(error.message));
		if (asprintf(&a->cmp_confirm_error, _("%s Support: %s."), strempty(error.message),
			     support_of(a->profile)) < 0)
			a->cmp_confirm_error = NULL;
	}
	return 0;
}

/* The CA heard (or, granting implicit confirmation, did not need to hear)
 * that the certificate was taken: done. Otherwise the journal stays, marked
 * unconfirmed: the certificate is on the token, and status shows it. */
static int confirm_cmp(Activation *a, bool *ret_confirmed, char **ret_error)
{
	if (a->cmp_outcome == CA_CMP_UNCONFIRMED && a->closed) {
		const char *why = json_string_value(json_object_get(a->journal, "confirm_error"));

		log_info("Activation %s on token %s is closed; the CA was never told its "
			 "certificate was received.",
			 a->action_id, a->job->token_serial);
		*ret_confirmed = false;
		*ret_error = strdup(why ? why : strempty(a->cmp_confirm_error));
		if (journal_remove(a->journal) < 0)
			log_warning("Cannot remove the journal of action %s.", a->action_id);
		return 0;
	}
	if (a->cmp_outcome == CA_CMP_UNCONFIRMED) {
		json_object_set_new(a->journal, "unconfirmed", json_true());
		json_object_set_new(a->journal, "confirm_error",
				    json_string(strempty(a->cmp_confirm_error)));
		(void)journal_save(a->journal);
		*ret_confirmed = false;
		*ret_error = strdup(strempty(a->cmp_confirm_error));
		return 0;
	}
	return confirmed(a, ret_confirmed);
}

static const Profile *profile_by_file_name(Job *job, const char *file_name)
{
	for (size_t i = 0; file_name && i < job->n_certificates; i++)
		if (job->certificates[i].profile &&
		    streq(job->certificates[i].profile->file_name, file_name))
			return job->certificates[i].profile;
	return NULL;
}

static void activation_run(Activation *a)
{
	Job *job = a->job;
	_cleanup_(X509_freep) X509 *certificate = NULL;
	_cleanup_free_ char *confirm_error = NULL;
	bool confirmed = false;
	int r;

	a->action_id = job->action_id;
	r = journal_load(job->token_serial, job->action_id, &a->journal);
	if (r == -ENOENT) {
		a->journal = NULL;
		r = activation_begin(a);
	} else if (r < 0)
		r = job_fail(job, SAFECAD_ERROR_FAILED,
			     _("The activation journal cannot be read: %s"), strerror(-r));
	else
		r = activation_resume(a);
	if (r < 0)
		return;
	a->action = json_object_get(a->journal, "action");
	a->action_id = json_string_value(json_object_get(a->journal, "action_id"));
	a->profile =
	    profile_by_file_name(job, json_string_value(json_object_get(a->journal, "profile")));
	if (!a->profile) {
		job_fail(job, SAFECAD_ERROR_FAILED,
			 _("The CA profile of this activation is gone."));
		return;
	}

	r = token_session_open(modules_functions(job->modules, job->module_path), job->token_serial,
			       &a->session);
	if (r < 0) {
		job_session_failed(job, r);
		return;
	}
	if (refuse_before_login(a) < 0 || login(a) < 0)
		return;
	remove_withdrawn(a);
	if (advance(a, STEP_LOGGED_IN) < 0 || prepare_key(a) < 0)
		return;
	if (a->profile->kind == PROFILE_CMP) {
		if (obtain_and_write_cmp(a) < 0 || confirm_cmp(a, &confirmed, &confirm_error) < 0)
			return;
	} else {
		if (obtain_certificate(a, &certificate) < 0 ||
		    ask_before_writing(a, certificate) < 0 || write_certificate(a, certificate) < 0)
			return;
		if (confirm(a, certificate, &confirmed, &confirm_error) < 0)
			return;
	}
	job->result = json_pack(
	    "{s:s,s:O?,s:s,s:O,s:b,s:s?,s:o,s:s?,s:b}", "action", a->action_id, "type",
	    json_object_get(a->action, "type"), "old_serial", a->old->serial, "new_serial",
	    json_object_get(a->journal, "new_serial"), "confirmed", confirmed, "confirm_error",
	    confirm_error, "agencies", agencies_json(a->profile), "support", a->profile->support,
	    "closed", a->closed);
}

static void run_activate(Job *job)
{
	Activation a = {.job = job};

	modules_use(job->modules);
	activation_run(&a);
	/* Nothing changed before the key was ready: no need to remember,
	 * unless a key id is journaled (the key may exist: the next attempt
	 * finds it). */
	if (job->error_name && a.journal && journal_step(a.journal) < STEP_KEY_READY &&
	    !json_object_get(a.journal, "new_key_id"))
		(void)journal_remove(a.journal);
	activation_clear(&a);
	job_read_token_again(job);
	modules_release(job->modules);
}

const JobKindInfo job_kind_check = {JOB_CHECK, true, run_check};
const JobKindInfo job_kind_activate = {JOB_ACTIVATE, true, run_activate};
