/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Removing the pair the latest activation replaced, journaled so that a
 * crash leaves the replaced certificate and its key both there or both
 * gone, and the current pair always intact.
 *
 * Order, and why: the private key first (it needs the login, which only
 * the user's command has), then "key-gone" on disk, then the public key
 * and the certificate (public objects: after a crash the daemon removes
 * them at the next scan, without a PIN). A journal still at "started"
 * means the key was kept: nothing else was touched yet. */
#include <dirent.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "bus-names.h"
#include "config.h"
#include "hex.h"
#include "i18n.h"
#include "history.h"
#include "jobs.h"
#include "log.h"
#include "macro.h"
#include "pin.h"
#include "state-file.h"
#include "token-session.h"
#include "util.h"

#define PIN_READ_TIMEOUT_MS 30000
#define REMOVAL_MAX_SIZE (64 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(Pin *, pin_free)

static char *removals_directory(void)
{
	return path_join(state_directory(), "removals");
}

static char *removal_path(const char *token_serial)
{
	_cleanup_free_ char *dir = removals_directory();
	_cleanup_free_ char *hex = hex_encode(token_serial, strlen(token_serial));
	char *path;

	if (!dir || !hex || asprintf(&path, "%s/%s.json", dir, hex) < 0)
		return NULL;
	return path;
}

static int save_step(json_t *journal, const char *step)
{
	const char *crash_at = getenv("SAFECAD_TEST_CRASH_AT");
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
	if (r >= 0 && crash_at && streq(crash_at, name))
		raise(SIGKILL);
	return r;
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

static X509 *journal_certificate(json_t *journal)
{
	const char *pem = json_string_value(json_object_get(journal, "certificate"));
	BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x509 = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x509;
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

void removals_recover(Modules *modules)
{
	_cleanup_free_ char *dir = removals_directory();
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		json_auto_t *journal = NULL;
		TokenSession session = {};
		const char *serial, *module;
		int r;

		if (de->d_name[0] == '.' || !strstr(de->d_name, ".json") ||
		    !(path = path_join(dir, de->d_name)) ||
		    state_file_read(path, REMOVAL_MAX_SIZE, &journal) < 0)
			continue;
		serial = json_string_value(json_object_get(journal, "token"));
		module = json_string_value(json_object_get(journal, "module"));
		if (!serial || !module)
			continue;
		if (!streq_ptr(json_string_value(json_object_get(journal, "step")), "key-gone")) {
			/* The key was kept, so nothing was touched: both stay. */
			log_info("Removing the previous pair of token %s was interrupted before "
				 "anything was removed; both stay.",
				 serial);
			(void)state_file_remove(path);
			continue;
		}
		if (token_session_open(modules_functions(modules, module), serial, &session) < 0)
			continue; /* not plugged in: at a later scan */
		r = remove_public_objects(&session, journal);
		token_session_close(&session);
		if (r < 0) {
			log_warning_errno(
			    r, "Cannot finish removing the previous pair of token %s: %m", serial);
			continue;
		}
		log_info("Finished removing the previous pair of token %s after an interruption.",
			 serial);
		journal_done(journal);
	}
	closedir(d);
}

static int login(Job *job, TokenSession *session)
{
	_cleanup_(pin_freep) Pin *pin = NULL;
	TokenPinFlags flags;
	int r;

	r = token_session_pin_flags(session, &flags);
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
		r = pin_read_fd(pin, job->pin_fd, PIN_READ_TIMEOUT_MS);
	close(job->pin_fd);
	job->pin_fd = -1;
	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("No PIN was received: %s"),
				r == -ENODATA ? _("it is empty") : strerror(-r));
	r = token_session_login(session, pin->data, pin->size);
	if (r == -EKEYREVOKED)
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

static void remove_previous(Job *job, TokenSession *session)
{
	json_auto_t *journal = NULL;
	_cleanup_free_ char *serial = NULL, *pem = NULL;
	unsigned char id[256];
	size_t id_size = 0;
	BIO *bio;
	char *data;
	long size;
	int r;

	if (login(job, session) < 0)
		return;
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
		r = id_size > 0
			? token_session_destroy_objects(session, CKO_PRIVATE_KEY, id, id_size)
			: -EINVAL;
		if (r < 0) {
			_cleanup_free_ char *path = removal_path(job->token_serial);
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

void job_run_remove_previous(Job *job)
{
	job_run_on_session(job, remove_previous);
}
