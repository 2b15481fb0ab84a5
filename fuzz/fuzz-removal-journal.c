/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A removal journal (the bytes of one file in $STATE_DIRECTORY/removals)
 * → removals_recover(), as a scan runs it without a PIN, then
 * removals_finish_logged_in(), as a job that logged in runs it, and
 * removal_pending().
 *
 * The token is a PKCS#11 module in memory, one slot, serial
 * ce92349bcdfc0c1e, that shows one object of each class asked for
 * (private keys only after a login) and notes what is destroyed. Whatever
 * the file says, nothing may go but the journaled certificate and, when the
 * journal says so, the key pair of the journaled id, on the journaled
 * token; and the private key never goes without the certificate (the
 * promise at the top of remove-previous.c: both there or both gone).
 *
 * The file is named as remove-previous.c names it, after the token it
 * holds; the same bytes go under the name of another token too. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "hex.h"
#include "jobs/job-worker.h"
#include "state/removal-journal.h"
#include "log/log.h"
#include "macro.h"
#include "token/modules.h"
#include "state-folder.h"
#include "token/token-session.h"
#include "util.h"

#define FAKE_SERIAL "ce92349bcdfc0c1e"
#define FAKE_MODULE "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"
#define MAX_DESTROYED 8

typedef struct Destroyed {
	CK_OBJECT_CLASS object_class;
	unsigned char value[64 * 1024]; /* CKA_ID, or a certificate's CKA_VALUE */
	size_t size;
	bool logged_in;
} Destroyed;

static struct {
	bool logged_in;
	bool finding;
	Destroyed found; /* what the current search names */
	Destroyed destroyed[MAX_DESTROYED];
	size_t n_destroyed;
} token;

static CK_RV fake_get_slot_list(CK_BBOOL present, CK_SLOT_ID_PTR slots, CK_ULONG_PTR n)
{
	if (slots) {
		if (*n < 1)
			return CKR_BUFFER_TOO_SMALL;
		slots[0] = 1;
	}
	*n = 1;
	return CKR_OK;
}

static CK_RV fake_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	memset(info, 0, sizeof(*info));
	memset(info->label, ' ', sizeof(info->label));
	memset(info->manufacturerID, ' ', sizeof(info->manufacturerID));
	memset(info->model, ' ', sizeof(info->model));
	memcpy(info->serialNumber, FAKE_SERIAL, sizeof(info->serialNumber));
	info->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED;
	return CKR_OK;
}

static CK_RV fake_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application,
			       CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session)
{
	*session = 7;
	return CKR_OK;
}

static CK_RV fake_close_session(CK_SESSION_HANDLE session)
{
	token.logged_in = false;
	return CKR_OK;
}

static CK_RV fake_login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
			CK_ULONG pin_size)
{
	token.logged_in = true;
	return CKR_OK;
}

static CK_RV fake_logout(CK_SESSION_HANDLE session)
{
	token.logged_in = false;
	return CKR_OK;
}

static CK_RV fake_find_objects_init(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR template,
				    CK_ULONG n_template)
{
	fuzz_check(!token.finding);
	token.finding = true;
	token.found = (Destroyed){.object_class = (CK_OBJECT_CLASS)-1};
	for (CK_ULONG i = 0; i < n_template; i++) {
		if (template[i].type == CKA_CLASS) {
			fuzz_check(template[i].ulValueLen == sizeof(CK_OBJECT_CLASS));
			memcpy(&token.found.object_class, template[i].pValue,
			       sizeof(CK_OBJECT_CLASS));
		} else if (template[i].type == CKA_ID || template[i].type == CKA_VALUE) {
			fuzz_check(template[i].ulValueLen <= sizeof(token.found.value));
			memcpy(token.found.value, template[i].pValue, template[i].ulValueLen);
			token.found.size = template[i].ulValueLen;
		}
	}
	return CKR_OK;
}

static CK_RV fake_find_objects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects,
			       CK_ULONG max, CK_ULONG_PTR n)
{
	CK_OBJECT_CLASS c = token.found.object_class;

	fuzz_check(token.finding);
	*n = 0;
	/* a private object is seen only after a login */
	if (max > 0 && (c == CKO_CERTIFICATE || c == CKO_PUBLIC_KEY ||
			(c == CKO_PRIVATE_KEY && token.logged_in))) {
		objects[0] = 100 + c;
		*n = 1;
	}
	return CKR_OK;
}

static CK_RV fake_find_objects_final(CK_SESSION_HANDLE session)
{
	fuzz_check(token.finding);
	token.finding = false;
	return CKR_OK;
}

static CK_RV fake_destroy_object(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	fuzz_check(object == 100 + token.found.object_class);
	fuzz_check(token.n_destroyed < MAX_DESTROYED);
	token.destroyed[token.n_destroyed] = token.found;
	token.destroyed[token.n_destroyed].logged_in = token.logged_in;
	token.n_destroyed++;
	return CKR_OK;
}

static CK_FUNCTION_LIST functions = {
    .version = {2, 40},
    .C_GetSlotList = fake_get_slot_list,
    .C_GetTokenInfo = fake_get_token_info,
    .C_OpenSession = fake_open_session,
    .C_CloseSession = fake_close_session,
    .C_Login = fake_login,
    .C_Logout = fake_logout,
    .C_FindObjectsInit = fake_find_objects_init,
    .C_FindObjects = fake_find_objects,
    .C_FindObjectsFinal = fake_find_objects_final,
    .C_DestroyObject = fake_destroy_object,
};

static Module module = {.path = (char *)FAKE_MODULE, .functions = &functions};
static Modules modules = {.items = &module, .n_items = 1};
static char *removals;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Unusable journals are set aside with a warning: noise at this rate. */
	log_set_max_level(LOG_CRIT);
	removals = path_join(state_folder_setup(), "removals");
	if (!removals)
		abort();
	return 0;
}

/* The DER of the journal's certificate, as remove-previous.c reads it. */
static int certificate_der(json_t *journal, unsigned char **ret, int *ret_size)
{
	const char *pem = json_string_value(json_object_get(journal, "certificate"));
	BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x509 = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	ERR_clear_error();
	*ret = NULL;
	*ret_size = x509 ? i2d_X509(x509, ret) : -1;
	X509_free(x509);
	return *ret_size > 0 ? 0 : -EBADMSG;
}

/* Nothing went that the journal, read as the daemon reads it, does not
 * name. */
static void check_destroyed(const uint8_t *data, size_t size)
{
	json_t *journal;
	const char *key_id;
	unsigned char id[256], *der = NULL;
	size_t id_size = 0;
	int der_size = 0;
	bool private_key = false, certificate = false;

	if (token.n_destroyed == 0)
		return;
	journal = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	fuzz_check(journal);
	fuzz_check(streq_ptr(json_string_value(json_object_get(journal, "token")), FAKE_SERIAL));
	key_id = json_string_value(json_object_get(journal, "key_id"));
	if (key_id)
		(void)hex_decode(key_id, id, sizeof(id), &id_size);
	(void)certificate_der(journal, &der, &der_size);
	for (size_t i = 0; i < token.n_destroyed; i++) {
		const Destroyed *d = &token.destroyed[i];

		/* Without a login only the journal's module is asked; a job
		 * that logged in holds the token's session already. */
		if (!d->logged_in)
			fuzz_check(streq_ptr(json_string_value(json_object_get(journal, "module")),
					     FAKE_MODULE));
		switch (d->object_class) {
		case CKO_PRIVATE_KEY:
			fuzz_check(d->logged_in);
			private_key = true;
			/* fall through */
		case CKO_PUBLIC_KEY:
			fuzz_check(json_is_true(json_object_get(journal, "remove_key")));
			fuzz_check(id_size > 0 && d->size == id_size &&
				   memcmp(d->value, id, id_size) == 0);
			break;
		case CKO_CERTIFICATE:
			fuzz_check(der_size > 0 && d->size == (size_t)der_size &&
				   memcmp(d->value, der, d->size) == 0);
			certificate = true;
			break;
		default:
			fuzz_check(!"an object of another class was destroyed");
		}
	}
	fuzz_check(!private_key || certificate);
	OPENSSL_free(der);
	json_decref(journal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *named = NULL, *other = NULL;
	TokenSession session = {};
	json_t *lenient;
	const char *serial;
	int r;

	/* past the 64 KiB limit, but not much */
	if (size > 80 * 1024)
		return 0;
	state_folder_empty();
	if (mkdir(removals, 0700) < 0)
		abort();
	token.logged_in = token.finding = false;
	token.n_destroyed = 0;

	/* The name, from the token as a lenient reader sees it. */
	lenient = json_loadb((const char *)data, size, 0, NULL);
	serial = json_string_value(json_object_get(lenient, "token"));
	if (serial) {
		_cleanup_free_ char *hex = hex_encode(serial, strlen(serial));
		_cleanup_free_ char *name = NULL;

		if (!hex || asprintf(&name, "%s.json", hex) < 0 ||
		    !(named = path_join(removals, name)))
			abort();
		if (state_folder_write(named, data, size) < 0) {
			free(named);
			named = NULL;
		}
	}
	json_decref(lenient);
	other = path_join(removals, "66757a7a.json");
	if (!other || state_folder_write(other, data, size) < 0)
		abort();

	/* A scan: no login. */
	removals_recover(&modules);
	fuzz_check(!token.logged_in && !token.finding);
	(void)removal_pending(FAKE_SERIAL);

	/* A job that logged in on the token. */
	r = token_session_open(&functions, FAKE_SERIAL, &session);
	fuzz_check(r == 0);
	fuzz_check(token_session_login(&session, "1234", 4) == 0);
	(void)removals_finish_logged_in(&session, FAKE_SERIAL);
	token_session_close(&session);
	fuzz_check(!token.finding);

	check_destroyed(data, size);
	return 0;
}
