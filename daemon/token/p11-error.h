/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one place where PKCS#11 return values (as libp11 leaves them on the
 * OpenSSL error queue) become our negative errno codes. Clears the queue.
 * Returns fallback when the queue holds no PKCS#11 code. */
int p11_error_take(int fallback);

/* A CK_RV as a negative errno: -EACCES wrong PIN, -EKEYREVOKED PIN locked,
 * -ERANGE PIN length, -ENODEV token gone, -ENOMEM, -EPERM not logged in,
 * -EIO anything else. */
int p11_rv_to_errno(unsigned long rv);
