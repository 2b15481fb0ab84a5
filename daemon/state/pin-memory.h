/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What a failed login showed of a token's PIN, kept until a login on that
 * token succeeds. Many modules (OpenSC's) raise CKF_USER_PIN_FINAL_TRY only
 * in the process whose login has just failed, and every job runs in a
 * worker of its own: without this, the next job would see no flag and
 * spend the last try. Only the final try is kept, never a lock: a token
 * unlocked at the CA's office must not stay refused; at worst the holder
 * is asked once more to allow the final try. One file per token under
 * <state>/pin/, named by the serial's hex. */

#include <stdbool.h>

bool pin_memory_final_try(const char *token_serial);
int pin_memory_note_final_try(const char *token_serial);
int pin_memory_forget(const char *token_serial);
