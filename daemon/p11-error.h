/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one place where PKCS#11 return values (as libp11 leaves them on the
 * OpenSSL error queue) become our negative errno codes. Clears the queue.
 * Returns fallback when the queue holds no PKCS#11 code. */
int p11_error_take(int fallback);
