/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Changing the user PIN: one C_SetPIN with the current PIN, checked first
 * against what the token says of its PIN (locked, final try, lengths), so
 * a refusal never costs the user a try. */
#include <string.h>

#include "bus-names.h"
#include "i18n.h"
#include "jobs/job-worker.h"
#include "log/log.h"
#include "macro.h"
#include "token/p11-error.h"
#include "token/p11-guard.h"
#include "pin.h"
#include "token/token-session.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(Pin *, pin_free)

static int read_pin(Job *job, int *fd, bool is_new, Pin **ret)
{
	Pin *pin = NULL;
	int r = pin_new(&pin);

	if (r < 0)
		return job_fail(job, SAFECAD_ERROR_FAILED, _("Out of memory."));
	r = job_read_pin(job, fd, pin);
	if (r < 0) {
		pin_free(pin);
		return job_fail(job, SAFECAD_ERROR_FAILED,
				is_new ? _("No new PIN was received: %s")
				       : _("No current PIN was received: %s"),
				job_pin_error(r));
	}
	*ret = pin;
	return 0;
}

static bool length_fits(const TokenPinFlags *flags, size_t size)
{
	return (!flags->min_pin_len || size >= flags->min_pin_len) &&
	       (!flags->max_pin_len || size <= flags->max_pin_len);
}

static void change_pin(Job *job, TokenSession *session)
{
	_cleanup_(pin_freep) Pin *old_pin = NULL, *new_pin = NULL;
	TokenPinFlags flags;
	CK_RV rv;
	int r;

	r = job_pin_flags(job, session, &flags);
	if (r < 0) {
		job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Cannot read token %s: %s"),
			 job->token_serial, strerror(-r));
		return;
	}
	if (flags.locked) {
		job_fail(job, SAFECAD_ERROR_PIN_LOCKED,
			 _("The PIN of token %s is locked; only the CA can unlock it."),
			 job->token_serial);
		return;
	}
	if (flags.final_try && !job->allow_final_try) {
		job_fail(job, SAFECAD_ERROR_FINAL_TRY,
			 _("Token %s locks at the next wrong PIN; nothing was tried. Allow the "
			   "final try explicitly to go on."),
			 job->token_serial);
		return;
	}
	if (read_pin(job, &job->pin_fd, false, &old_pin) < 0 ||
	    read_pin(job, &job->new_pin_fd, true, &new_pin) < 0)
		return;
	if (!length_fits(&flags, new_pin->size)) {
		job_fail(job, SAFECAD_ERROR_PIN_LENGTH,
			 _("The new PIN must have %lu to %lu characters; nothing was changed."),
			 flags.min_pin_len, flags.max_pin_len);
		return;
	}
	if (!length_fits(&flags, old_pin->size)) {
		job_fail(job, SAFECAD_ERROR_WRONG_PIN,
			 _("The PIN of token %s has %lu to %lu characters; nothing was tried."),
			 job->token_serial, flags.min_pin_len, flags.max_pin_len);
		return;
	}

	/* In a read-write session that is not logged in, C_SetPIN changes the
	 * user's PIN: one call, one try. */
	rv = P11(session->functions, C_SetPIN, session->session, (CK_UTF8CHAR_PTR)old_pin->data,
		 old_pin->size, (CK_UTF8CHAR_PTR)new_pin->data, new_pin->size);
	r = p11_rv_to_errno(rv);
	job_pin_outcome(job, session,
			rv == CKR_OK || (r != -EACCES && r != -EIO && r != -EKEYREVOKED), &flags);
	if (rv == CKR_OK) {
		log_info("The PIN of token %s was changed.", job->token_serial);
		return;
	}
	if (flags.locked)
		job_fail(job, SAFECAD_ERROR_PIN_LOCKED,
			 _("Wrong PIN: token %s is now locked; only the CA can unlock it."),
			 job->token_serial);
	else if (r == -EKEYREVOKED)
		job_fail(job, SAFECAD_ERROR_PIN_LOCKED, _("The PIN of token %s is locked."),
			 job->token_serial);
	else if (r == -ERANGE || rv == CKR_PIN_INVALID)
		job_fail(job, SAFECAD_ERROR_PIN_LENGTH,
			 rv == CKR_PIN_INVALID
			     ? _("Token %s does not accept that new PIN (characters it refuses); "
				 "nothing was changed.")
			     : _("Token %s does not accept that new PIN (its length); nothing was "
				 "changed."),
			 job->token_serial);
	else if (r == -EACCES || r == -EIO)
		job_fail(job, SAFECAD_ERROR_WRONG_PIN,
			 flags.final_try
			     ? _("Wrong PIN for token %s: one try left before the token locks.")
			 : flags.count_low ? _("Wrong PIN for token %s: few tries left.")
					   : _("Wrong PIN for token %s."),
			 job->token_serial);
	else
		job_fail(job, SAFECAD_ERROR_TOKEN_GONE, _("Cannot change the PIN of token %s: %s"),
			 job->token_serial, strerror(-r));
}

static void run_change_pin(Job *job)
{
	job_run_on_session(job, change_pin);
}

const JobKindInfo job_kind_change_pin = {JOB_CHANGE_PIN, false, run_change_pin};
