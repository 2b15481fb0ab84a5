/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "token/token-caps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "i18n.h"
#include "macro.h"
#include "token/p11-guard.h"

#define MAX_MECHANISMS 1024

static void sizes_of(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
		     unsigned long *ret_min, unsigned long *ret_max)
{
	CK_MECHANISM_INFO info = {};

	/* Some modules list a mechanism and fail its info: its sizes are
	 * then unknown, not zero-wide. */
	if (P11(functions, C_GetMechanismInfo, slot, type, &info) != CKR_OK ||
	    info.ulMinKeySize > info.ulMaxKeySize) {
		*ret_min = *ret_max = 0;
		return;
	}
	*ret_min = info.ulMinKeySize;
	*ret_max = info.ulMaxKeySize;
}

void token_capabilities_read(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, CK_FLAGS token_flags,
			     TokenCapabilities *ret)
{
	_cleanup_free_ CK_MECHANISM_TYPE *types = NULL;
	CK_ULONG n = 0;
	TokenCapabilities caps = {.write_protected = token_flags & CKF_WRITE_PROTECTED};

	*ret = caps;
	if (P11(functions, C_GetMechanismList, slot, NULL, &n) != CKR_OK || n == 0 ||
	    n > MAX_MECHANISMS)
		return;
	types = calloc(n, sizeof(*types));
	if (!types || P11(functions, C_GetMechanismList, slot, types, &n) != CKR_OK)
		return;
	for (CK_ULONG i = 0; i < n; i++) {
		if (types[i] == CKM_RSA_PKCS_KEY_PAIR_GEN) {
			caps.rsa_generate = true;
			sizes_of(functions, slot, types[i], &caps.rsa_min_bits, &caps.rsa_max_bits);
		} else if (types[i] == CKM_EC_KEY_PAIR_GEN) {
			caps.ec_generate = true;
			sizes_of(functions, slot, types[i], &caps.ec_min_bits, &caps.ec_max_bits);
		}
	}
	caps.known = true;
	*ret = caps;
}

/* The sizes a module says, when it says them: 0 means it did not. Some
 * modules give EC sizes in bytes (32 for P-256), as early PKCS#11 drafts
 * did; both readings are accepted. */
static bool size_fits(unsigned long bits, unsigned long min, unsigned long max, bool ec)
{
	if (max == 0)
		return true;
	if (bits >= min && bits <= max)
		return true;
	return ec && bits / 8 >= min && bits / 8 <= max;
}

char *token_capabilities_refusal(const TokenCapabilities *caps, json_t *key)
{
	const char *type = json_string_value(json_object_get(key, "type"));
	char *reason = NULL;
	int r = 0;

	if (caps->write_protected)
		return strdup(_("the token is write-protected: it cannot take a new certificate"));
	if (!caps->known || !json_is_true(json_object_get(key, "generate")))
		return NULL;
	if (type && strcmp(type, "rsa") == 0) {
		unsigned long bits =
		    (unsigned long)json_integer_value(json_object_get(key, "bits"));

		if (!caps->rsa_generate)
			r = asprintf(&reason, _("the token cannot make RSA keys"));
		else if (!size_fits(bits, caps->rsa_min_bits, caps->rsa_max_bits, false))
			/* TRANSLATORS: the key size asked, then the sizes the
			 * token can make. */
			r = asprintf(&reason,
				     _("the token cannot make %lu-bit RSA keys (only %lu to %lu)"),
				     bits, caps->rsa_min_bits, caps->rsa_max_bits);
	} else if (type && strcmp(type, "ec") == 0) {
		const char *curve = json_string_value(json_object_get(key, "curve"));

		/* P-256 is the only curve protocol-v1 names. */
		if (!caps->ec_generate)
			r = asprintf(&reason, _("the token cannot make elliptic-curve (%s) keys"),
				     curve ? curve : "EC");
		else if (!size_fits(256, caps->ec_min_bits, caps->ec_max_bits, true))
			r = asprintf(&reason, _("the token cannot make %s keys"),
				     curve ? curve : "P-256");
	}
	return r < 0 ? NULL : reason;
}

json_t *token_capabilities_to_json(const TokenCapabilities *caps)
{
	return json_pack("{s:b,s:b,s:b,s:I,s:I,s:b,s:I,s:I}", "known", caps->known,
			 "write_protected", caps->write_protected, "rsa_generate",
			 caps->rsa_generate, "rsa_min_bits", (json_int_t)caps->rsa_min_bits,
			 "rsa_max_bits", (json_int_t)caps->rsa_max_bits, "ec_generate",
			 caps->ec_generate, "ec_min_bits", (json_int_t)caps->ec_min_bits,
			 "ec_max_bits", (json_int_t)caps->ec_max_bits);
}

int token_capabilities_from_json(json_t *json, TokenCapabilities *ret)
{
	int known, write_protected, rsa, ec;
	json_int_t rsa_min, rsa_max, ec_min, ec_max;

	if (json_unpack(json, "{s:b,s:b,s:b,s:I,s:I,s:b,s:I,s:I}", "known", &known,
			"write_protected", &write_protected, "rsa_generate", &rsa, "rsa_min_bits",
			&rsa_min, "rsa_max_bits", &rsa_max, "ec_generate", &ec, "ec_min_bits",
			&ec_min, "ec_max_bits", &ec_max) < 0 ||
	    rsa_min < 0 || rsa_max < 0 || ec_min < 0 || ec_max < 0)
		return -EBADMSG;
	*ret = (TokenCapabilities){known,
				   write_protected,
				   rsa,
				   (unsigned long)rsa_min,
				   (unsigned long)rsa_max,
				   ec,
				   (unsigned long)ec_min,
				   (unsigned long)ec_max};
	return 0;
}
