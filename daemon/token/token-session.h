/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Direct PKCS#11 access for the jobs that change a token: our own session,
 * C_Login with our own PIN buffer (exactly one call per PIN), key pair
 * generation with the attributes we choose, objects written and removed.
 * Uses the module instance the scanner loaded (never C_Initialize or
 * C_Finalize here); the caller holds a use of the modules. */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>
#include <stdbool.h>
#include <stddef.h>

#include "token/token-caps.h"

typedef struct TokenSession {
	CK_FUNCTION_LIST_PTR functions;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE session;
	bool session_open;
	bool logged_in;
} TokenSession;

typedef struct TokenPinFlags {
	bool count_low;
	bool final_try;
	bool locked;
	bool must_change;
	unsigned long min_pin_len;
	unsigned long max_pin_len;
} TokenPinFlags;

/* Opens a read-write session on the token with this serial, through the
 * module's function list. -ENODEV when the module does not show it
 * (pulled out). */
int token_session_open(CK_FUNCTION_LIST_PTR functions, const char *serial, TokenSession *ret);
void token_session_close(TokenSession *session);

/* A session on a slot of a module already at hand (the scanner's). Closing
 * it closes only this session: a job's session and login on the same
 * token stay. */
int token_session_open_slot(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, bool rw,
			    TokenSession *ret);

/* Whether CK_TOKEN_INFO names this serial (blanks trimmed). */
bool token_info_serial_is(const CK_TOKEN_INFO *info, const char *serial);

/* Objects matching template (at most max); the value of one attribute
 * (malloc'ed; -EBADMSG when unavailable or too large). */
int token_session_find(TokenSession *session, CK_ATTRIBUTE *template, CK_ULONG n_template,
		       CK_OBJECT_HANDLE *objects, CK_ULONG max, CK_ULONG *ret_n);
int token_session_attribute(TokenSession *session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type,
			    unsigned char **ret, size_t *ret_size);

int token_session_pin_flags(TokenSession *session, TokenPinFlags *ret);

/* Whether the token is still in its slot, with this session open, after a
 * call failed with CKR_GENERAL_ERROR: many modules (OpenSC) say that, not
 * CKR_DEVICE_REMOVED, for a call cut short by a pulled token. Takes up to
 * 1.5 s when the token is there (the reader's state lags). */
bool token_session_present(TokenSession *session);

/* What the token can make and store (token-caps.h), read now. */
int token_session_capabilities(TokenSession *session, TokenCapabilities *ret);

/* One C_Login. -EACCES wrong PIN, -EKEYREVOKED locked, -ERANGE length,
 * -EIO when the module gives no reason (many answer a wrong PIN with
 * CKR_GENERAL_ERROR). */
int token_session_login(TokenSession *session, const char *pin, size_t pin_size);

/* The private key with this CKA_ID; -ENOENT when there is none. */
int token_session_find_private_key(TokenSession *session, const unsigned char *id, size_t id_size,
				   CK_OBJECT_HANDLE *ret);

/* The public key of the pair with this CKA_ID, from the public key object
 * or, failing that, a certificate with the same CKA_ID. */
int token_session_public_key(TokenSession *session, CK_OBJECT_HANDLE private_key,
			     const unsigned char *id, size_t id_size, EVP_PKEY **ret);

/* A new key pair on the token: private, sensitive, never extractable.
 * key_type is "rsa" (bits) or "ec" (P-256). */
int token_session_generate(TokenSession *session, const char *key_type, unsigned bits,
			   const unsigned char *id, size_t id_size, const char *label,
			   CK_OBJECT_HANDLE *ret_private);

/* Signs: "RS256" → RSA PKCS#1 v1.5 with SHA-256 over data; "ES256" →
 * ECDSA over SHA-256(data), R||S (64 bytes). */
int token_session_sign(TokenSession *session, CK_OBJECT_HANDLE key, const char *alg,
		       const unsigned char *data, size_t size, unsigned char **ret_signature,
		       size_t *ret_size);

/* Signs a digest made elsewhere (of md_nid: NID_sha256, …): alg "RS256"
 * (an RSA key) → PKCS#1 v1.5 over its DigestInfo; "ES256" (an EC key) →
 * ECDSA, DER-encoded (md_nid unused). */
int token_session_sign_digest(TokenSession *session, CK_OBJECT_HANDLE key, const char *alg,
			      int md_nid, const unsigned char *digest, size_t digest_size,
			      unsigned char **ret_signature, size_t *ret_size);

/* Stores a certificate object with this CKA_ID and label. */
int token_session_store_certificate(TokenSession *session, X509 *x509, const unsigned char *id,
				    size_t id_size, const char *label);

/* Whether a certificate with exactly this DER is on the token. */
int token_session_has_certificate(TokenSession *session, X509 *x509);

/* Removes the certificate objects with exactly this DER. */
int token_session_destroy_certificate(TokenSession *session, X509 *x509);

/* Removes every object of this class with this CKA_ID. */
int token_session_destroy_objects(TokenSession *session, CK_OBJECT_CLASS object_class,
				  const unsigned char *id, size_t id_size);

/* "RS256" or "ES256" for a public key, NULL for any other. */
const char *jws_alg_for_key(EVP_PKEY *key);
