/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/p11-error.h"

#include <errno.h>
#include <libp11.h>
#include <openssl/err.h>
#include <string.h>

#include "i18n.h"

/* CK_RV values we tell apart (PKCS#11 v2.40 §11). */
#define P11_CKR_HOST_MEMORY 0x02UL
#define P11_CKR_GENERAL_ERROR 0x05UL
#define P11_CKR_DEVICE_MEMORY 0x31UL
#define P11_CKR_DEVICE_REMOVED 0x32UL
#define P11_CKR_FUNCTION_NOT_SUPPORTED 0x54UL
#define P11_CKR_KEY_SIZE_RANGE 0x62UL
#define P11_CKR_MECHANISM_INVALID 0x70UL
#define P11_CKR_MECHANISM_PARAM_INVALID 0x71UL
#define P11_CKR_KEY_HANDLE_INVALID 0x60UL
#define P11_CKR_OBJECT_HANDLE_INVALID 0x82UL
#define P11_CKR_PIN_INCORRECT 0xA0UL
#define P11_CKR_PIN_LEN_RANGE 0xA2UL
#define P11_CKR_PIN_LOCKED 0xA4UL
#define P11_CKR_SESSION_HANDLE_INVALID 0xB3UL
#define P11_CKR_TOKEN_NOT_PRESENT 0xE0UL
#define P11_CKR_TOKEN_NOT_RECOGNIZED 0xE1UL
#define P11_CKR_TOKEN_WRITE_PROTECTED 0xE2UL
#define P11_CKR_USER_NOT_LOGGED_IN 0x101UL

int p11_rv_to_errno(unsigned long rv)
{
	switch (rv) {
	case P11_CKR_HOST_MEMORY:
		return -ENOMEM;
	/* The token's own memory: it is full. */
	case P11_CKR_DEVICE_MEMORY:
		return -ENOSPC;
	/* What the token cannot do (a read-only card's writes, a key it
	 * cannot make): asking again will not help. */
	case P11_CKR_FUNCTION_NOT_SUPPORTED:
	case P11_CKR_KEY_SIZE_RANGE:
	case P11_CKR_MECHANISM_INVALID:
	case P11_CKR_MECHANISM_PARAM_INVALID:
		return -EOPNOTSUPP;
	case P11_CKR_TOKEN_WRITE_PROTECTED:
		return -EROFS;
	case P11_CKR_DEVICE_REMOVED:
	case P11_CKR_TOKEN_NOT_PRESENT:
	case P11_CKR_SESSION_HANDLE_INVALID:
		return -ENODEV;
	case P11_CKR_TOKEN_NOT_RECOGNIZED:
		return -EMEDIUMTYPE;
	case P11_CKR_PIN_INCORRECT:
		return -EACCES;
	case P11_CKR_PIN_LEN_RANGE:
		return -ERANGE;
	case P11_CKR_PIN_LOCKED:
		return -EKEYREVOKED;
	case P11_CKR_USER_NOT_LOGGED_IN:
		return -EPERM;
	case P11_CKR_GENERAL_ERROR:
		return -EIO;
	/* A handle found earlier went stale: some modules (SoftHSM) number
	 * their objects afresh when another session reads the token. Finding
	 * the object again helps. */
	case P11_CKR_KEY_HANDLE_INVALID:
	case P11_CKR_OBJECT_HANDLE_INVALID:
		return -ESTALE;
	default:
		return -EIO;
	}
}

int p11_error_take(int fallback)
{
	int lib = ERR_get_CKR_code();
	int r = fallback;
	unsigned long e;

	while ((e = ERR_get_error()) != 0)
		if (lib != 0 && ERR_GET_LIB(e) == lib)
			r = p11_rv_to_errno((unsigned long)ERR_GET_REASON(e));
	return r;
}

const char *token_refusal(int r)
{
	switch (r) {
	case -ENOSPC:
		return _("the token is full");
	case -EOPNOTSUPP:
		return _("the token does not support this");
	case -EROFS:
		return _("the token is write-protected");
	case -ENODEV:
		return _("it was pulled out");
	case -EIO:
		return _("the token reported an error");
	default:
		return strerror(r < 0 ? -r : r);
	}
}

bool token_refused(int r)
{
	return r == -ENOSPC || r == -EOPNOTSUPP || r == -EROFS;
}
