/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Removing the pair the latest activation replaced, journaled so that a
 * crash leaves the replaced certificate and its key both there or both
 * gone, and the current pair always intact.
 *
 * Steps, each on disk before what it names is done:
 *   started       the certificate is in the history; nothing touched
 *   removing-key  the private key is about to go (or is gone)
 *   key-gone      the private key is gone; the public objects go next
 *   key-pending   after a crash at removing-key: the public objects are
 *                 gone, the private key (maybe already gone too) goes at
 *                 the next login on that token, since a private object
 *                 can be neither seen nor destroyed without the PIN
 * After a crash the daemon's next scan needs no PIN: at started both
 * stay; at removing-key and key-gone it removes the public objects. */
#include <dirent.h>
#include <sys/stat.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "bus-names.h"
#include "state/config.h"
#include "hex.h"
#include "i18n.h"
#include "state/history.h"
#include "jobs/job-worker.h"
#include "log/log.h"
#include "macro.h"
#include "pin.h"
#include "state/removal-journal.h"
#include "state/state-file.h"
#include "token/token-session.h"
#include "util.h"
#include "x509-util.h"

#define REMOVAL_MAX_SIZE (64 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(Pin *, pin_free)

static const StateField removal_fields[] = {
    {"token", STATE_TEXT, STATE_TOKEN_TEXT_MAX, true, false},
    {"action", STATE_ID, 0, true, false},
    {"module", STATE_TEXT, 4096, true, false},
    {"certificate", STATE_PEM, 64 * 1024, true, false},
    {"key_id", STATE_HEX, 512, true, false},
    {"remove_key", STATE_BOOL, 0, true, false},
    {"step", STATE_TEXT, 16, true, false},
};

static const char *const removal_steps[] = {"none", "started", "removing-key", "key-gone",
					    "key-pending"};

static X509 *journal_certificate(json_t *journal)
{
	const char *pem = json_string_value(json_object_get(journal, "certificate"));
	BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x509 = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x509;
}

int removal_check(json_t *journal, const char **ret_bad)
{
	const char *step;
	X509 *x509;
	int r;

	r = state_check(journal, removal_fields, ELEMENTSOF(removal_fields), ret_bad);
	if (r < 0)
		return r;
	/* What goes is that certificate: one that cannot be read would let
	 * its key go and the certificate stay. */
	x509 = journal_certificate(journal);
	if (!x509) {
		*ret_bad = "certificate";
		return -EBADMSG;
	}
	X509_free(x509);
	step = json_string_value(json_object_get(journal, "step"));
	for (size_t i = 0; i < ELEMENTSOF(removal_steps); i++)
		if (streq(step, removal_steps[i]))
			return 0;
	*ret_bad = "step";
	return -EBADMSG;
}

static int save_step(json_t *journal, const char *step)
{
	_cleanup_free_ char *dir = removals_directory();
	_cleanup_free_ char *path =
	    removal_path(json_string_value(json_object_get(journal, "token")));
	char name[64];
	int r;

	if (!dir || !path)
		return -ENOMEM;
	json_object_set_new(journal, "step", json_string(step));
	r = state_directory_ensure(state_directory());
	if (r >= 0)
		r = state_directory_ensure(dir);
	if (r >= 0)
		r = state_file_write(path, journal);
	/* For the crash tests, as for activations. */
	snprintf(name, sizeof(name), "removal-%s", step);
	if (r >= 0)
		job_test_crash_point(name);
	return r;
}

/* removal_check(), and the journal is named after its token, as
 * save_step() names it. */
static int removal_check_file(json_t *journal, const char *path, const char **ret_bad)
{
	_cleanup_free_ char *expected = NULL;
	int r;

	r = removal_check(journal, ret_bad);
	if (r < 0)
		return r;
	expected = removal_path(json_string_value(json_object_get(journal, "token")));
	if (!expected)
		return -ENOMEM;
	if (!streq(expected, path)) {
		*ret_bad = "token";
		return -EBADMSG;
	}
	return 0;
}

/* Reads the removal journal at path; one that cannot be used is set
 * aside with a warning. */
static int removal_read(const char *path, json_t **ret)
{
	return state_file_load(path, REMOVAL_MAX_SIZE, removal_check_file, "Removal journal", ret);
}

static void journal_done(json_t *journal)
{
	_cleanup_free_ char *path =
	    removal_path(json_string_value(json_object_get(journal, "token")));
	json_t *yes = json_true();

	(void)history_set_member(json_string_value(json_object_get(journal, "token")),
				 json_string_value(json_object_get(journal, "action")),
				 "previous_removed", yes);
	json_decref(yes);
	if (path)
		(void)state_file_remove(path);
}

/* The public objects: the public key (when the key goes) and the
 * certificate. */
static int remove_public_objects(TokenSession *session, json_t *journal)
{
	X509 *x509 = journal_certificate(journal);
	const char *key_id = json_string_value(json_object_get(journal, "key_id"));
	unsigned char id[256];
	size_t id_size = 0;
	int r = 0;

	if (!x509)
		return -EBADMSG;
	if (json_is_true(json_object_get(journal, "remove_key"))) {
		if (!key_id || hex_decode(key_id, id, sizeof(id), &id_size) < 0 || id_size == 0) {
			X509_free(x509);
			return -EBADMSG;
		}
		r = token_session_destroy_objects(session, CKO_PUBLIC_KEY, id, id_size);
	}
	if (r >= 0)
		r = token_session_destroy_certificate(session, x509);
	X509_free(x509);
	return r < 0 ? r : 0;
}

/* After a crash, without a PIN: see the steps above. */
static void recover_one(Modules *modules, const char *path)
{
	json_auto_t *journal = NULL;
	TokenSession session = {};
	const char *serial, *module, *step;
	int r;

	if (removal_read(path, &journal) < 0)
		return;
	serial = json_string_value(json_object_get(journal, "token"));
	module = json_string_value(json_object_get(journal, "module"));
	step = json_string_value(json_object_get(journal, "step"));
	if (streq(step, "key-pending"))
		return; /* at the next login */
	if (streq(step, "none") || streq(step, "started")) {
		/* The key was kept, so nothing was touched: both stay. */
		log_info("Removing the previous pair of token %s was interrupted before "
			 "anything was removed; both stay.",
			 serial);
		(void)state_file_remove(path);
		return;
	}
	if (token_session_open(modules_functions(modules, module), serial, &session) < 0)
		return; /* not plugged in: at a later scan */
	r = remove_public_objects(&session, journal);
	token_session_close(&session);
	if (r < 0) {
		log_warning_errno(r, "Cannot finish removing the previous pair of token %s: %m",
				  serial);
		return;
	}
	if (streq(step, "removing-key")) {
		/* The private key may still be there: it goes at the next
		 * login on this token. */
		r = save_step(journal, "key-pending");
		if (r < 0)
			log_warning_errno(r, "Cannot record the removal of token %s: %m", serial);
		log_notice(
		    "Removing the previous pair of token %s was interrupted; its certificate "
		    "is gone, its key goes at the next login on the token.",
		    serial);
		return;
	}
	log_info("Finished removing the previous pair of token %s after an interruption.", serial);
	journal_done(journal);
}

void removals_recover(Modules *modules)
{
	_cleanup_free_ char *dir = removals_directory();
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	int lock;

	if (!d)
		return;
	lock = removal_lock();
	if (lock < 0) {
		log_warning_errno(lock, "Cannot take the removals lock: %m");
		closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 6 || !streq(de->d_name + len - 5, ".json") ||
		    !(path = path_join(dir, de->d_name)))
			continue;
		recover_one(modules, path);
	}
	removal_unlock(lock);
	closedir(d);
}

/* The private key an interrupted removal left behind, destroyed now that
 * the job holds a login. Under the removals lock. */
static int finish_pending(TokenSession *session, const char *token_serial)
{
	_cleanup_free_ char *path = removal_path(token_serial);
	json_auto_t *journal = NULL;
	const char *key_id;
	unsigned char id[256];
	size_t id_size = 0;
	int r;

	if (!path)
		return -ENOMEM;
	r = removal_read(path, &journal);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	if (!streq_ptr(json_string_value(json_object_get(journal, "step")), "key-pending"))
		return 0;
	key_id = json_string_value(json_object_get(journal, "key_id"));
	if (json_is_true(json_object_get(journal, "remove_key"))) {
		if (hex_decode(key_id, id, sizeof(id), &id_size) < 0 || id_size == 0)
			return -EBADMSG;
		r = token_session_destroy_objects(session, CKO_PRIVATE_KEY, id, id_size);
		if (r < 0)
			return r;
	}
	r = save_step(journal, "key-gone");
	if (r >= 0)
		r = remove_public_objects(session, journal);
	if (r < 0)
		return r;
	log_info("Finished removing the previous key of token %s after an interruption.",
		 token_serial);
	journal_done(journal);
	return 1;
}

int removals_finish_logged_in(TokenSession *session, const char *token_serial)
{
	int lock, r;

	if (!removal_pending(token_serial))
		return 0;
	lock = removal_lock();
	if (lock < 0)
		r = lock;
	else {
		r = finish_pending(session, token_serial);
		removal_unlock(lock);
	}
	if (r < 0)
		log_warning_errno(r, "Cannot finish removing the previous key of token %s: %m",
				  token_serial);
	return r;
}

static int login(Job *job, TokenSession *session)
{
	_cleanup_(pin_freep) Pin *pin = NULL;
	TokenPinFlags flags;
	int r;

	r = job_pin_flags(job, session, &flags);
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Cannot read token %s: %s"),
				job->token_serial, strerror(-r));
	if (flags.locked)
		return job_fail(job, SAFECAD_ERROR_PIN_LOCKED, _("The PIN of token %s is locked."),
				job->token_serial);
	if (flags.final_try && !job->allow_final_try)
		return job_fail(job, SAFECAD_ERROR_FINAL_TRY,
				_("Token %s locks at the next wrong PIN; nothing was tried."),
				job->token_serial);
	r = pin_new(&pin);
	if (r >= 0)
		r = job_read_pin(job, &job->pin_fd, pin);
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("No PIN was received: %s"),
				job_pin_error(r));
	r = token_session_login(session, pin->data, pin->size);
	job_pin_outcome(job, session, r >= 0 || (r != -EACCES && r != -EIO && r != -EKEYREVOKED),
			&flags);
	if (r == -EKEYREVOKED || (r < 0 && flags.locked))
		return job_fail(job, SAFECAD_ERROR_PIN_LOCKED, _("The PIN of token %s is locked."),
				job->token_serial);
	if (r == -EACCES || r == -EIO || r == -ERANGE)
		return job_fail(job, SAFECAD_ERROR_WRONG_PIN, _("Wrong PIN for token %s."),
				job->token_serial);
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Cannot log in to token %s: %s"),
				job->token_serial, strerror(-r));
	return 0;
}

static void remove_previous_locked(Job *job, TokenSession *session)
{
	json_auto_t *journal = NULL;
	_cleanup_free_ char *serial = NULL, *pem = NULL;
	unsigned char id[256];
	size_t id_size = 0;
	BIO *bio;
	char *data;
	long size;
	int r;

	/* What an earlier removal left for a login goes first. */
	r = finish_pending(session, job->token_serial);
	if (r < 0)
		log_warning_errno(r, "Cannot finish removing the previous key of token %s: %m",
				  job->token_serial);
	if (!job->remove) {
		if (r < 0)
			job_fail(job, SAFECAD_ERROR_FAILED,
				 _("Cannot finish removing the previous key from token %s: %s"),
				 job->token_serial, strerror(-r));
		else
			job->result =
			    json_pack("{s:s,s:b}", "action", job->action_id, "finished", r > 0);
		return;
	}
	bio = BIO_new(BIO_s_mem());
	if (!bio || PEM_write_bio_X509(bio, job->remove) != 1) {
		BIO_free(bio);
		job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
		return;
	}
	size = BIO_get_mem_data(bio, &data);
	pem = strndup(data, (size_t)size);
	BIO_free(bio);
	if (!pem || serial_to_hex(X509_get0_serialNumber(job->remove), &serial) < 0) {
		job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
		return;
	}
	/* The certificate is kept in the history before it leaves the
	 * token. */
	json_t *pem_json = json_string(pem);
	r = history_set_member(job->token_serial, job->action_id, "removed_certificate", pem_json);
	json_decref(pem_json);
	if (r < 0) {
		job_fail(job, SAFECAD_ERROR_FAILED,
			 _("Cannot record the certificate in the history: %s"), strerror(-r));
		return;
	}
	journal =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s}", "token", job->token_serial, "action",
		      job->action_id, "module", job->module_path, "certificate", pem, "key_id",
		      job->remove_key_id, "remove_key", job->remove_key, "step", "none");
	if (!journal || save_step(journal, "started") < 0) {
		job_fail(job, SAFECAD_ERROR_FAILED, _("Cannot write the removal journal."));
		return;
	}
	if (job->remove_key) {
		if (hex_decode(job->remove_key_id, id, sizeof(id), &id_size) < 0)
			id_size = 0;
		/* The intent is on disk before the key goes: a crash from
		 * here on finishes the removal, never leaves the certificate
		 * without its key. */
		r = id_size > 0 ? save_step(journal, "removing-key") : -EINVAL;
		if (r >= 0)
			r = token_session_destroy_objects(session, CKO_PRIVATE_KEY, id, id_size);
		if (r < 0) {
			_cleanup_free_ char *path = removal_path(job->token_serial);
			/* Nothing went (destroying is all or nothing per
			 * object, and this is the only one so far): both
			 * stay, and a retry starts afresh. */
			if (path)
				(void)state_file_remove(path);
			job_fail(job, SAFECAD_ERROR_TOKEN_GONE,
				 _("Cannot remove the previous key from token %s: %s; nothing was "
				   "removed."),
				 job->token_serial,
				 r == -ENODEV ? _("it was pulled out") : strerror(-r));
			return;
		}
	}
	r = save_step(journal, "key-gone");
	if (r >= 0)
		r = remove_public_objects(session, journal);
	if (r < 0) {
		/* The rest goes at the next scan, with no PIN needed. */
		job_fail(job, SAFECAD_ERROR_TOKEN_GONE,
			 /* TRANSLATORS: the token's serial, then why the certificate
			  * could not be removed now. */
			 _("The previous key is gone; its certificate goes when token %s is "
			   "read again (%s)."),
			 job->token_serial, strerror(-r));
		return;
	}
	journal_done(journal);
	log_info("Removed the previous certificate %s%s from token %s.", serial,
		 job->remove_key ? " and its key" : "", job->token_serial);
	job->result = json_pack("{s:s,s:s,s:s,s:b}", "action", job->action_id, "serial", serial,
				"key_id", job->remove_key_id, "key_removed", job->remove_key);
}

static void remove_previous(Job *job, TokenSession *session)
{
	int lock;

	if (login(job, session) < 0)
		return;
	lock = removal_lock();
	if (lock < 0) {
		job_fail(job, SAFECAD_ERROR_FAILED, _("Cannot take the removals lock: %s"),
			 strerror(-lock));
		return;
	}
	remove_previous_locked(job, session);
	removal_unlock(lock);
}

static void run_remove_previous(Job *job)
{
	job_run_on_session(job, remove_previous);
}

const JobKindInfo job_kind_remove_previous = {JOB_REMOVE_PREVIOUS, false, run_remove_previous};
