/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one place where PKCS#11 return values (as libp11 leaves them on the
 * OpenSSL error queue) become our negative errno codes. Clears the queue.
 * Returns fallback when the queue holds no PKCS#11 code. */
int p11_error_take(int fallback);

#include <stdbool.h>

/* A CK_RV as a negative errno: -EACCES wrong PIN, -EKEYREVOKED PIN locked,
 * -ERANGE PIN length, -ENODEV token gone, -ENOMEM host memory, -ENOSPC the
 * token is full, -EOPNOTSUPP a function, mechanism or key size it does not
 * have, -EROFS write-protected, -EPERM not logged in, -EIO anything else
 * (many modules say CKR_GENERAL_ERROR for all of these). */
int p11_rv_to_errno(unsigned long rv);

/* What such an errno means for the user, in the reader's language ("the
 * token is full", "it was pulled out", …). */
const char *token_refusal(int r);

/* Whether the token refused for good (full, read-only, not supported):
 * asking it again unchanged will not help. */
bool token_refused(int r);
