/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A PKCS#11 URI → pkcs11_uri_parse(); what parses is written again with
 * token_info_uri() and must parse to the same attributes. */
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "pkcs11-uri.h"
#include "token/token-info.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Pkcs11Uri uri = {}, again = {};
	TokenInfo info = {};
	char *text, *written;

	if (size > 16 * 1024)
		return 0;
	text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;

	if (pkcs11_uri_parse(text, &uri) < 0) {
		fuzz_check(!uri.token && !uri.serial && !uri.manufacturer && !uri.model);
		free(text);
		return 0;
	}
	info.label = (char *)strempty(uri.token);
	info.serial = (char *)strempty(uri.serial);
	info.manufacturer = (char *)strempty(uri.manufacturer);
	info.model = (char *)strempty(uri.model);
	written = token_info_uri(&info);
	fuzz_check(written);
	fuzz_check(pkcs11_uri_parse(written, &again) == 0 || strlen(written) > 4096);
	if (strlen(written) <= 4096) {
		fuzz_check(streq(again.token, info.label));
		fuzz_check(streq(again.serial, info.serial));
		fuzz_check(streq(again.manufacturer, info.manufacturer));
		fuzz_check(streq(again.model, info.model));
	}
	pkcs11_uri_clear(&again);
	pkcs11_uri_clear(&uri);
	free(written);
	free(text);
	return 0;
}
