/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmp-test-ca: a CMP (RFC 4210, RFC 9483) certification authority for
 * safecad's tests, on OpenSSL's own server framework (OSSL_CMP_SRV_CTX).
 *
 * Unlike `openssl cmp`'s mock server it issues for the key actually
 * requested (ir, cr, p10cr, kur), and it can misbehave in the ways a client
 * has to survive: rejections, polling, header and protection faults, HTTP
 * errors, hangs, certificates for another key or subject. Every request and
 * answer is kept as DER in the --record folder, with one JSON line per
 * exchange in its log.jsonl, so that a test can check what the client sent.
 *
 * HTTP/1.0 on a loopback socket, one exchange per connection. The listening
 * port (0 by default: the kernel picks one) is printed on stdout and written
 * to --port-file. SIGTERM and SIGINT stop it; it then exits 0.
 */

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "macro.h"

/* Limits on what a client may send. */
#define MAX_HEADER_BYTES 8192
#define MAX_BODY_BYTES (256 * 1024)
#define READ_TIMEOUT_SEC 5
#define MAX_TRANSACTIONS 64
#define MAX_HUNG_CONNECTIONS 32

/* PKIBody choice numbers (RFC 4210 section 5.1.2); OpenSSL 3.0 keeps its
 * names for them private. */
enum {
	BODY_IR = 0,
	BODY_IP = 1,
	BODY_CR = 2,
	BODY_CP = 3,
	BODY_P10CR = 4,
	BODY_KUR = 7,
	BODY_KUP = 8,
	BODY_CERTCONF = 24,
	BODY_POLLREP = 26,
};

static const char *const body_names[] = {
    "ir",     "ip",	 "cr",	   "cp",   "p10cr", "popdecc", "popdecr",  "kur",     "kup",
    "krr",    "krp",	 "rr",	   "rp",   "ccr",   "ccp",     "ckuann",   "cann",    "rann",
    "crlann", "pkiconf", "nested", "genm", "genp",  "error",   "certConf", "pollReq", "pollRep",
};

static const char *body_name(int type)
{
	if (type < 0 || (size_t)type >= ELEMENTSOF(body_names))
		return "unknown";
	return body_names[type];
}

static int body_type_from_name(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(body_names); i++)
		if (streq(body_names[i], name))
			return (int)i;
	return -1;
}

/* Faults on the answer to a request; --fault-on and --fault-count choose
 * which requests get them. */
enum {
	FAULT_HANG = 1 << 0,
	FAULT_CLOSE = 1 << 1,
	FAULT_HTTP_STATUS = 1 << 2,
	FAULT_UNPROTECTED = 1 << 3,
	FAULT_WRONG_KEY = 1 << 4,
	FAULT_WRONG_RECIP_NONCE = 1 << 5,
	FAULT_NO_RECIP_NONCE = 1 << 6,
	FAULT_WRONG_TRANSACTION_ID = 1 << 7,
	FAULT_NO_TRANSACTION_ID = 1 << 8,
	FAULT_WRONG_CERT_REQ_ID = 1 << 9,
};

static const struct {
	unsigned bit;
	const char *name;
} fault_names[] = {
    {FAULT_HANG, "hang"},
    {FAULT_CLOSE, "close"},
    {FAULT_HTTP_STATUS, "http-status"},
    {FAULT_UNPROTECTED, "unprotected"},
    {FAULT_WRONG_KEY, "wrong-key"},
    {FAULT_WRONG_RECIP_NONCE, "wrong-recip-nonce"},
    {FAULT_NO_RECIP_NONCE, "no-recip-nonce"},
    {FAULT_WRONG_TRANSACTION_ID, "wrong-transaction-id"},
    {FAULT_NO_TRANSACTION_ID, "no-transaction-id"},
    {FAULT_WRONG_CERT_REQ_ID, "wrong-cert-req-id"},
};

/* Options. */
static const char *arg_ca_cert, *arg_ca_key, *arg_server_cert, *arg_server_key;
static const char *arg_chain, *arg_trusted, *arg_capubs, *arg_secret;
static const char *arg_port_file, *arg_record;
static int arg_port;
static long arg_days = 365;
static bool arg_accept_unprotected, arg_grant_implicit, arg_accept_bad_cert_hash;
static bool arg_reject;
static long arg_reject_bits;
static const char *arg_status_string;
static long arg_poll_count, arg_check_after = 1;
static bool arg_other_public_key, arg_other_subject, arg_not_after_before_old;
static unsigned arg_faults;
static int arg_http_status = 500;
static int arg_fault_on = -1;
static long arg_fault_count = -1;
static bool arg_verbose;

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_INTEGER *, ASN1_INTEGER_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_CMP_MSG *, OSSL_CMP_MSG_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

static void sk_X509_pop_freep(STACK_OF(X509) * *p)
{
	sk_X509_pop_free(*p, X509_free);
}

static void openssl_freep(void *p)
{
	OPENSSL_free(*(void **)p);
}

/* What one HTTP exchange did, written as a JSON line once it is over. */
typedef struct Exchange {
	unsigned number;
	char path[128];
	int request_type;
	char request_file[64];
	char transaction_id[2 * 64 + 1];
	int response_type;
	char response_file[64];
	int http_status;
	unsigned faults;
	bool waiting;
	bool rejected;
	char issued_file[64];
	char issued_serial[2 * 20 + 1];
	bool cert_conf;
	bool cert_hash_matched;
	bool cert_accepted;
	char cert_status[OSSL_CMP_PKISI_BUFLEN];
	bool implicit_confirm_granted;
	bool transaction_closed;
} Exchange;

typedef struct Context Context;

/* One CMP transaction; OpenSSL 3.0's OSSL_CMP_SRV_CTX holds the state of
 * one transaction only, so each gets its own. */
typedef struct Transaction {
	Context *context;
	ASN1_OCTET_STRING *id;
	OSSL_CMP_SRV_CTX *server;
	X509 *issued;
	OSSL_CMP_MSG *waiting_request;
	long polls_left;
	Exchange *exchange;
	unsigned long last_used;
} Transaction;

struct Context {
	X509 *ca_cert;
	EVP_PKEY *ca_key;
	X509 *server_cert;
	EVP_PKEY *server_key;
	EVP_PKEY *other_key;
	STACK_OF(X509) * chain;
	STACK_OF(X509) * trusted;
	STACK_OF(X509) * capubs;
	int listen_fd;
	FILE *log;
	unsigned exchanges;
	unsigned long clock;
	Transaction transactions[MAX_TRANSACTIONS];
	int hung[MAX_HUNG_CONNECTIONS];
	size_t n_hung;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	stop_requested = 1;
}

static int log_errno(int r, const char *fmt, ...) _printf_(2, 3);
static int log_errno(int r, const char *fmt, ...)
{
	va_list ap;

	fputs("cmp-test-ca: ", stderr);
	va_start(ap, fmt);
	errno = r < 0 ? -r : r;
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return r < 0 ? r : -r;
}

/* The one adapter for OpenSSL's error queue: prints it, gives -EIO. */
static int log_openssl(const char *what)
{
	fprintf(stderr, "cmp-test-ca: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	return -EIO;
}

static int cmp_log(const char *func, const char *file, int line, OSSL_CMP_severity level,
		   const char *msg)
{
	if (level > OSSL_CMP_LOG_INFO && !arg_verbose)
		return 1;
	fprintf(stderr, "cmp-test-ca: openssl %s: %s\n", strempty(func), msg);
	return 1;
}

static void hex(const unsigned char *data, size_t size, char *out, size_t out_size)
{
	size_t i;

	for (i = 0; i < size && 2 * i + 2 < out_size; i++)
		sprintf(out + 2 * i, "%02x", data[i]);
	out[2 * i] = '\0';
}

/* --- files ------------------------------------------------------------ */

static int load_certs(const char *path, STACK_OF(X509) * *ret)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new_file(path, "r");
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *cert;

	if (!bio || !certs)
		return log_openssl(path);
	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		if (!sk_X509_push(certs, cert)) {
			X509_free(cert);
			return log_openssl("sk_X509_push");
		}
	ERR_clear_error();
	if (sk_X509_num(certs) == 0)
		return log_errno(-EINVAL, "No certificate in %s", path);
	*ret = TAKE_PTR(certs);
	return 0;
}

static int load_cert(const char *path, X509 **ret)
{
	_cleanup_(sk_X509_pop_freep) STACK_OF(X509) *certs = NULL;
	int r = load_certs(path, &certs);

	if (r < 0)
		return r;
	*ret = sk_X509_shift(certs);
	return 0;
}

static int load_key(const char *path, EVP_PKEY **ret)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	if (!key)
		return log_openssl(path);
	*ret = key;
	return 0;
}

static int write_file(const char *name, const unsigned char *data, size_t size)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_fclose_ FILE *f = NULL;

	if (!arg_record)
		return 0;
	if (asprintf(&path, "%s/%s", arg_record, name) < 0)
		return -ENOMEM;
	f = fopen(path, "we");
	if (!f)
		return log_errno(-errno, "Failed to create %s: %m", path);
	if (fwrite(data, 1, size, f) != size || fflush(f) != 0)
		return log_errno(-EIO, "Failed to write %s", path);
	return 0;
}

static int write_port_file(int port)
{
	_cleanup_free_ char *tmp = NULL;
	FILE *f;

	if (!arg_port_file)
		return 0;
	if (asprintf(&tmp, "%s.tmp", arg_port_file) < 0)
		return -ENOMEM;
	f = fopen(tmp, "we");
	if (!f)
		return log_errno(-errno, "Failed to create %s: %m", tmp);
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, arg_port_file) < 0)
		return log_errno(-errno, "Failed to write %s: %m", arg_port_file);
	return 0;
}

/* --- the JSON log ---------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_field(FILE *f, const char *name, const char *value)
{
	fprintf(f, ",\"%s\":", name);
	if (value && *value)
		json_string(f, value);
	else
		fputs("null", f);
}

static void json_bool(FILE *f, const char *name, bool value)
{
	fprintf(f, ",\"%s\":%s", name, value ? "true" : "false");
}

static void exchange_write(Context *context, const Exchange *e)
{
	FILE *f = context->log;

	if (!f)
		return;
	fprintf(f, "{\"n\":%u", e->number);
	json_field(f, "path", e->path);
	json_field(f, "request", e->request_type >= 0 ? body_name(e->request_type) : NULL);
	json_field(f, "request_file", e->request_file);
	json_field(f, "transaction_id", e->transaction_id);
	json_field(f, "response", e->response_type >= 0 ? body_name(e->response_type) : NULL);
	json_field(f, "response_file", e->response_file);
	fprintf(f, ",\"http_status\":%d,\"faults\":[", e->http_status);
	bool first = true;
	for (size_t i = 0; i < ELEMENTSOF(fault_names); i++)
		if (e->faults & fault_names[i].bit) {
			fprintf(f, "%s\"%s\"", first ? "" : ",", fault_names[i].name);
			first = false;
		}
	fputc(']', f);
	json_bool(f, "waiting", e->waiting);
	json_bool(f, "rejected", e->rejected);
	json_field(f, "issued_file", e->issued_file);
	json_field(f, "issued_serial", e->issued_serial);
	json_bool(f, "implicit_confirm_granted", e->implicit_confirm_granted);
	if (e->cert_conf) {
		fputs(",\"cert_conf\":{", f);
		fprintf(f, "\"hash_matched\":%s", e->cert_hash_matched ? "true" : "false");
		json_bool(f, "accepted", e->cert_accepted);
		json_field(f, "status", e->cert_status);
		fputc('}', f);
	}
	json_bool(f, "transaction_closed", e->transaction_closed);
	fputs("}\n", f);
	fflush(f);
}

/* --- DER surgery on an answer ------------------------------------------------ */

/* One TLV inside a DER buffer. */
typedef struct {
	unsigned char *start;
	long size;
} Tlv;

/* The first `max` elements inside the constructed TLV at `der`; returns
 * how many it found. */
static int der_children(unsigned char *der, long size, Tlv *out, int max)
{
	const unsigned char *p = der;
	long content;
	int tag, class, n = 0;

	if (ASN1_get_object(&p, &content, &tag, &class, size) & 0x80)
		return -EBADMSG;
	const unsigned char *end = p + content;
	while (p < end) {
		const unsigned char *q = p;
		long length;
		if (n == max)
			break;
		if (ASN1_get_object(&q, &length, &tag, &class, end - p) & 0x80)
			return -EBADMSG;
		out[n].start = (unsigned char *)p;
		out[n].size = (q - p) + length;
		p = q + length;
		n++;
	}
	return n;
}

/* A constructed TLV (tag byte `tag`) holding `parts`, freshly allocated. */
static int der_wrap(int tag, int class, const Tlv *parts, int n, Tlv *ret)
{
	long content = 0;

	for (int i = 0; i < n; i++)
		content += parts[i].size;
	int total = ASN1_object_size(1, (int)content, tag);
	if (total < 0)
		return -EINVAL;
	unsigned char *buf = malloc(total), *p = buf;
	if (!buf)
		return -ENOMEM;
	ASN1_put_object(&p, 1, (int)content, tag, class);
	for (int i = 0; i < n; i++) {
		memcpy(p, parts[i].start, parts[i].size);
		p += parts[i].size;
	}
	ret->start = buf;
	ret->size = total;
	return 0;
}

/* Points at the certReqId INTEGER of the first CertResponse (ip, cp, kup)
 * or PollRep (pollRep) in a message body; NULL if the body has none. */
static unsigned char *find_cert_req_id(Tlv body, int type)
{
	Tlv content[1], items[2], first[2], fields[1];

	if (der_children(body.start, body.size, content, 1) != 1)
		return NULL;
	if (type == BODY_POLLREP) {
		if (der_children(content[0].start, content[0].size, first, 1) < 1)
			return NULL;
	} else {
		/* CertRepMessage: [1] caPubs OPTIONAL, response SEQUENCE OF */
		int n = der_children(content[0].start, content[0].size, items, 2);
		if (n < 1)
			return NULL;
		Tlv responses = items[n - 1];
		if (der_children(responses.start, responses.size, first, 1) < 1)
			return NULL;
	}
	if (der_children(first[0].start, first[0].size, fields, 1) < 1 ||
	    fields[0].start[0] != V_ASN1_INTEGER)
		return NULL;
	return fields[0].start;
}

/* Signs header and body again (after an edit, or with another key), as
 * ossl_cmp_calc_protection() does for signature protection: over the DER
 * of ProtectedPart ::= SEQUENCE { header, body }. */
static int der_protection(const Tlv *header_body, EVP_PKEY *key, Tlv *ret)
{
	_cleanup_free_ unsigned char *part = NULL, *bits = NULL;
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	Tlv protected, bit_string;
	size_t sig_size = 0;
	int r;

	r = der_wrap(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, header_body, 2, &protected);
	if (r < 0)
		return r;
	part = protected.start;
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
	    EVP_DigestSign(md, NULL, &sig_size, part, protected.size) <= 0)
		return log_openssl("EVP_DigestSign");
	bits = malloc(sig_size + 1);
	if (!bits)
		return -ENOMEM;
	bits[0] = 0; /* unused bits */
	if (EVP_DigestSign(md, bits + 1, &sig_size, part, protected.size) <= 0)
		return log_openssl("EVP_DigestSign");

	/* [0] EXPLICIT BIT STRING */
	int total = ASN1_object_size(0, (int)sig_size + 1, V_ASN1_BIT_STRING);
	unsigned char *buf = malloc(total), *p = buf;
	if (!buf)
		return -ENOMEM;
	ASN1_put_object(&p, 0, (int)sig_size + 1, V_ASN1_BIT_STRING, V_ASN1_UNIVERSAL);
	memcpy(p, bits, sig_size + 1);
	bit_string.start = buf;
	bit_string.size = total;
	r = der_wrap(0, V_ASN1_CONTEXT_SPECIFIC, &bit_string, 1, ret);
	free(buf);
	return r;
}

/* Applies the header, certReqId and protection faults to an answer's DER:
 * fields changed or dropped, then signed again (with the other key for
 * FAULT_WRONG_KEY). */
static int tamper(Context *context, unsigned faults, int type, unsigned char **der, long *size)
{
	Tlv message[4], header[16], parts[16], header_body[2], new_header = {}, protection = {};
	int n_message, n_header, n_parts = 0, r;

	n_message = der_children(*der, *size, message, 4);
	if (n_message < 2)
		return -EBADMSG;
	n_header = der_children(message[0].start, message[0].size, header, 16);
	if (n_header < 3)
		return -EBADMSG;

	if (faults & FAULT_WRONG_CERT_REQ_ID) {
		unsigned char *id = find_cert_req_id(message[1], type);
		if (id && id[1] >= 1)
			id[1 + id[1]] ^= 0x01; /* in place: same length */
	}

	/* pvno, sender and recipient come first; the optional fields after
	 * them carry context tags: [4] transactionID, [6] recipNonce. */
	for (int i = 0; i < n_header; i++) {
		unsigned char tag = header[i].start[0];
		bool id_field = i >= 3 && tag == 0xa4, nonce_field = i >= 3 && tag == 0xa6;
		if ((id_field && (faults & FAULT_NO_TRANSACTION_ID)) ||
		    (nonce_field && (faults & FAULT_NO_RECIP_NONCE)))
			continue;
		if ((id_field && (faults & FAULT_WRONG_TRANSACTION_ID)) ||
		    (nonce_field && (faults & FAULT_WRONG_RECIP_NONCE)))
			header[i].start[header[i].size - 1] ^= 0x5a;
		parts[n_parts++] = header[i];
	}
	r = der_wrap(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, parts, n_parts, &new_header);
	if (r < 0)
		return r;

	parts[0] = new_header;
	parts[1] = message[1];
	n_parts = 2;
	bool protected = n_message > 2 && message[2].start[0] == 0xa0;
	if (protected) {
		header_body[0] = new_header;
		header_body[1] = message[1];
		r = der_protection(header_body,
				   faults & FAULT_WRONG_KEY ? context->other_key
							    : context->server_key,
				   &protection);
		if (r < 0) {
			free(new_header.start);
			return r;
		}
		parts[n_parts++] = protection;
	}
	for (int i = protected ? 3 : 2; i < n_message; i++)
		parts[n_parts++] = message[i];

	Tlv out;
	r = der_wrap(V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, parts, n_parts, &out);
	free(new_header.start);
	free(protection.start);
	if (r < 0)
		return r;
	OPENSSL_free(*der);
	*der = OPENSSL_malloc(out.size);
	if (!*der) {
		free(out.start);
		return -ENOMEM;
	}
	memcpy(*der, out.start, out.size);
	*size = out.size;
	free(out.start);
	return 0;
}

/* --- issuing ------------------------------------------------------------------ */

/* The public key of a certificate template. OpenSSL 3.0 has no getter for
 * it: the template's DER is read instead, where it is [6] IMPLICIT
 * SubjectPublicKeyInfo. */
static EVP_PKEY *template_public_key(const OSSL_CRMF_MSG *crm)
{
	_cleanup_(openssl_freep) unsigned char *der = NULL;
	OSSL_CRMF_CERTTEMPLATE *tmpl = OSSL_CRMF_MSG_get0_tmpl(crm);
	Tlv fields[16];
	int size, n;

	if (!tmpl || (size = i2d_OSSL_CRMF_CERTTEMPLATE(tmpl, &der)) <= 0)
		return NULL;
	n = der_children(der, size, fields, 16);
	for (int i = 0; i < n; i++)
		if (fields[i].start[0] == 0xa6) {
			const unsigned char *p = fields[i].start;
			fields[i].start[0] = 0x30; /* as a SEQUENCE */
			return d2i_PUBKEY(NULL, &p, fields[i].size);
		}
	return NULL;
}

/* The certificate a kur names in its oldCertID, from the request's
 * extraCerts (kept by the framework as untrusted certificates). */
static X509 *find_old_cert(OSSL_CMP_CTX *cmp, const OSSL_CRMF_MSG *crm)
{
	OSSL_CRMF_CERTID *id = crm ? OSSL_CRMF_MSG_get0_regCtrl_oldCertID(crm) : NULL;
	STACK_OF(X509) *certs = OSSL_CMP_CTX_get0_untrusted(cmp);

	if (!id)
		return NULL;
	const X509_NAME *issuer = OSSL_CRMF_CERTID_get0_issuer(id);
	const ASN1_INTEGER *serial = OSSL_CRMF_CERTID_get0_serialNumber(id);
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *cert = sk_X509_value(certs, i);
		if (issuer && X509_NAME_cmp(X509_get_issuer_name(cert), issuer) == 0 &&
		    ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), serial) == 0)
			return cert;
	}
	return NULL;
}

/* A fresh key of the same kind as `like`, for --other-public-key. */
static EVP_PKEY *new_key_like(const EVP_PKEY *like)
{
	char group[64];

	if (EVP_PKEY_get_base_id(like) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param(like, "group", group, sizeof(group), NULL))
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static int add_extension(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);

	if (!ext)
		return log_openssl("X509V3_EXT_conf_nid");
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : log_openssl("X509_add_ext");
}

static int issue(Context *context, EVP_PKEY *key, const X509_NAME *subject, const X509 *old_cert,
		 X509 **ret)
{
	_cleanup_(X509_freep) X509 *cert = X509_new();
	_cleanup_(BN_freep) BIGNUM *serial = BN_new();
	time_t now = time(NULL);
	int r;

	if (!cert || !serial || !X509_set_version(cert, X509_VERSION_3) ||
	    !BN_rand(serial, 63, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
	    !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(context->ca_cert)) ||
	    !X509_set_subject_name(cert, subject) || !X509_set_pubkey(cert, key) ||
	    !X509_time_adj_ex(X509_getm_notBefore(cert), 0, -60, &now))
		return log_openssl("building the certificate");

	if (arg_not_after_before_old && old_cert) {
		/* a day before the old certificate ends */
		int days, seconds;
		if (!ASN1_TIME_diff(&days, &seconds, NULL, X509_get0_notAfter(old_cert)) ||
		    !X509_time_adj_ex(X509_getm_notAfter(cert), days - 1, seconds, &now))
			return log_openssl("notAfter");
	} else if (!X509_time_adj_ex(X509_getm_notAfter(cert), arg_days, 0, &now))
		return log_openssl("notAfter");

	r = add_extension(cert, context->ca_cert, NID_basic_constraints, "critical,CA:FALSE");
	if (r >= 0)
		r = add_extension(cert, context->ca_cert, NID_key_usage,
				  "critical,digitalSignature,nonRepudiation");
	if (r >= 0)
		r = add_extension(cert, context->ca_cert, NID_subject_key_identifier, "hash");
	if (r >= 0)
		r = add_extension(cert, context->ca_cert, NID_authority_key_identifier,
				  "keyid:always");
	if (r < 0)
		return r;
	if (X509_sign(cert, context->ca_key, EVP_sha256()) <= 0)
		return log_openssl("X509_sign");
	*ret = TAKE_PTR(cert);
	return 0;
}

static void record_issued(Exchange *e, X509 *cert)
{
	_cleanup_(openssl_freep) unsigned char *der = NULL;
	const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
	int size = i2d_X509(cert, &der);

	hex(ASN1_STRING_get0_data(serial), ASN1_STRING_length(serial), e->issued_serial,
	    sizeof(e->issued_serial));
	snprintf(e->issued_file, sizeof(e->issued_file), "%03u-issued.der", e->number);
	if (size > 0)
		(void)write_file(e->issued_file, der, size);
}

static OSSL_CMP_PKISI *rejection(Exchange *e, int bits, const char *text)
{
	if (e)
		e->rejected = true;
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection, bits, text);
}

/* --- the server framework's callbacks -------------------------------------- */

static OSSL_CMP_PKISI *on_cert_request(OSSL_CMP_SRV_CTX *server, const OSSL_CMP_MSG *req,
				       int cert_req_id, const OSSL_CRMF_MSG *crm,
				       const X509_REQ *p10cr, X509 **cert_out,
				       STACK_OF(X509) * *chain_out, STACK_OF(X509) * *capubs)
{
	Transaction *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(server);
	Context *context = t->context;
	OSSL_CMP_CTX *cmp = OSSL_CMP_SRV_CTX_get0_cmp_ctx(server);
	int type = OSSL_CMP_MSG_get_bodytype(req);
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	_cleanup_(X509_NAME_freep) X509_NAME *subject = NULL;
	_cleanup_(X509_freep) X509 *cert = NULL;
	const X509 *old_cert = NULL;

	if (t->polls_left > 0) {
		if (!t->waiting_request && !(t->waiting_request = OSSL_CMP_MSG_dup(req)))
			return NULL;
		t->exchange->waiting = true;
		return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_waiting, 0, NULL);
	}
	if (arg_reject)
		return rejection(t->exchange, (int)arg_reject_bits, arg_status_string);

	if (p10cr) {
		key = X509_REQ_get_pubkey((X509_REQ *)p10cr);
		subject = X509_NAME_dup(X509_REQ_get_subject_name(p10cr));
	} else {
		const X509_NAME *requested =
		    OSSL_CRMF_CERTTEMPLATE_get0_subject(OSSL_CRMF_MSG_get0_tmpl(crm));
		key = template_public_key(crm);
		if (type == BODY_KUR)
			old_cert = find_old_cert(cmp, crm);
		if (requested && X509_NAME_entry_count(requested) > 0)
			subject = X509_NAME_dup(requested);
		else if (old_cert)
			subject = X509_NAME_dup(X509_get_subject_name(old_cert));
	}
	if (!key)
		return rejection(t->exchange, 1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate,
				 "no public key in the request");
	if (!subject)
		return rejection(t->exchange, 1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate,
				 "no subject in the request");

	if (arg_other_public_key) {
		EVP_PKEY *other = new_key_like(key);
		if (!other)
			return NULL;
		EVP_PKEY_free(key);
		key = other;
	}
	if (arg_other_subject &&
	    !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
					(const unsigned char *)"another subject", -1, -1, 0))
		return NULL;

	if (issue(context, key, subject, old_cert, &cert) < 0)
		return NULL;
	record_issued(t->exchange, cert);
	X509_free(t->issued);
	t->issued = cert;
	X509_up_ref(cert);

	if (!(*chain_out = X509_chain_up_ref(context->chain)))
		return NULL;
	if (context->capubs && type == BODY_IR && !(*capubs = X509_chain_up_ref(context->capubs)))
		return NULL;
	*cert_out = TAKE_PTR(cert);
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

static OSSL_CMP_PKISI *on_rr(OSSL_CMP_SRV_CTX *server, const OSSL_CMP_MSG *req,
			     const X509_NAME *issuer, const ASN1_INTEGER *serial)
{
	Transaction *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(server);

	if (arg_reject)
		return rejection(t->exchange, (int)arg_reject_bits, arg_status_string);
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

static int on_genm(OSSL_CMP_SRV_CTX *server, const OSSL_CMP_MSG *req,
		   const STACK_OF(OSSL_CMP_ITAV) * in, STACK_OF(OSSL_CMP_ITAV) * *out)
{
	*out = sk_OSSL_CMP_ITAV_new_null();
	return *out != NULL;
}

static void on_error(OSSL_CMP_SRV_CTX *server, const OSSL_CMP_MSG *req,
		     const OSSL_CMP_PKISI *status, const ASN1_INTEGER *code,
		     const OSSL_CMP_PKIFREETEXT *details)
{
	char text[OSSL_CMP_PKISI_BUFLEN];

	if (status && OSSL_CMP_snprint_PKIStatusInfo(status, text, sizeof(text)))
		fprintf(stderr, "cmp-test-ca: the client sent an error: %s\n", text);
}

static int on_cert_conf(OSSL_CMP_SRV_CTX *server, const OSSL_CMP_MSG *req, int cert_req_id,
			const ASN1_OCTET_STRING *cert_hash, const OSSL_CMP_PKISI *status)
{
	Transaction *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(server);
	Exchange *e = t->exchange;
	_cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *expected = NULL;

	e->cert_conf = true;
	if (t->issued)
		expected = X509_digest_sig(t->issued, NULL, NULL);
	e->cert_hash_matched =
	    expected && cert_hash && ASN1_OCTET_STRING_cmp(expected, cert_hash) == 0;
	/* An absent statusInfo means accepted (RFC 4210 section 5.3.18). */
	if (status)
		OSSL_CMP_snprint_PKIStatusInfo(status, e->cert_status, sizeof(e->cert_status));
	else
		snprintf(e->cert_status, sizeof(e->cert_status), "PKIStatus: accepted");
	e->cert_accepted = strncmp(e->cert_status, "PKIStatus: accepted", 19) == 0;

	if (!e->cert_hash_matched && !arg_accept_bad_cert_hash) {
		ERR_raise(ERR_LIB_CMP, CMP_R_CERTHASH_UNMATCHED);
		return 0;
	}
	return 1;
}

static int on_poll_req(OSSL_CMP_SRV_CTX *server, const OSSL_CMP_MSG *req, int cert_req_id,
		       OSSL_CMP_MSG **cert_req, int64_t *check_after)
{
	Transaction *t = OSSL_CMP_SRV_CTX_get0_custom_ctx(server);

	*cert_req = NULL;
	if (!t->waiting_request) {
		ERR_raise(ERR_LIB_CMP, CMP_R_UNEXPECTED_PKIBODY);
		return 0;
	}
	if (--t->polls_left > 0) {
		*check_after = arg_check_after;
		t->exchange->waiting = true;
		return 1;
	}
	*cert_req = TAKE_PTR(t->waiting_request);
	return 1;
}

/* --- transactions ---------------------------------------------------------- */

static void transaction_clear(Transaction *t)
{
	ASN1_OCTET_STRING_free(t->id);
	OSSL_CMP_SRV_CTX_free(t->server);
	X509_free(t->issued);
	OSSL_CMP_MSG_free(t->waiting_request);
	*t = (Transaction){};
}

static int transaction_init(Context *context, Transaction *t, const ASN1_OCTET_STRING *id)
{
	OSSL_CMP_CTX *cmp;

	*t = (Transaction){.context = context, .polls_left = arg_poll_count};
	if (id && !(t->id = ASN1_OCTET_STRING_dup(id)))
		return -ENOMEM;
	t->server = OSSL_CMP_SRV_CTX_new(NULL, NULL);
	if (!t->server)
		return log_openssl("OSSL_CMP_SRV_CTX_new");
	cmp = OSSL_CMP_SRV_CTX_get0_cmp_ctx(t->server);
	if (!OSSL_CMP_SRV_CTX_init(t->server, t, on_cert_request, on_rr, on_genm, on_error,
				   on_cert_conf, on_poll_req) ||
	    !OSSL_CMP_SRV_CTX_set_grant_implicit_confirm(t->server, arg_grant_implicit) ||
	    !OSSL_CMP_SRV_CTX_set_accept_unprotected(t->server, arg_accept_unprotected) ||
	    !OSSL_CMP_CTX_set_log_cb(cmp, cmp_log) ||
	    !OSSL_CMP_CTX_set_log_verbosity(cmp,
					    arg_verbose ? OSSL_CMP_LOG_DEBUG : OSSL_CMP_LOG_INFO) ||
	    !OSSL_CMP_CTX_set1_cert(cmp, context->server_cert) ||
	    !OSSL_CMP_CTX_set1_pkey(cmp, context->server_key))
		return log_openssl("setting up a server context");
	if (arg_secret && !OSSL_CMP_CTX_set1_secretValue(cmp, (const unsigned char *)arg_secret,
							 (int)strlen(arg_secret)))
		return log_openssl("OSSL_CMP_CTX_set1_secretValue");
	if (context->trusted) {
		X509_STORE *store = X509_STORE_new();
		if (!store)
			return -ENOMEM;
		for (int i = 0; i < sk_X509_num(context->trusted); i++)
			if (!X509_STORE_add_cert(store, sk_X509_value(context->trusted, i))) {
				X509_STORE_free(store);
				return log_openssl("X509_STORE_add_cert");
			}
		if (!OSSL_CMP_CTX_set0_trustedStore(cmp, store)) {
			X509_STORE_free(store);
			return log_openssl("OSSL_CMP_CTX_set0_trustedStore");
		}
	}
	return 0;
}

static bool starts_transaction(int type)
{
	/* ir, cr, p10cr, kur, rr, genm: as OpenSSL's server sees it */
	return type == BODY_IR || type == BODY_CR || type == BODY_P10CR || type == BODY_KUR ||
	       type == 11 || type == 21;
}

/* The transaction a request belongs to: a new one for the first message
 * of a transaction, else the one with its transactionID (or a new one,
 * which then answers with an error). */
static Transaction *transaction_for(Context *context, const OSSL_CMP_MSG *req)
{
	const ASN1_OCTET_STRING *id =
	    OSSL_CMP_HDR_get0_transactionID(OSSL_CMP_MSG_get0_header(req));
	Transaction *slot = NULL;

	for (size_t i = 0; id && i < MAX_TRANSACTIONS; i++) {
		Transaction *t = &context->transactions[i];
		if (t->server && t->id && ASN1_OCTET_STRING_cmp(id, t->id) == 0) {
			if (!starts_transaction(OSSL_CMP_MSG_get_bodytype(req)))
				return t;
			slot = t;
			break;
		}
	}
	/* else a free slot, or the one unused for longest */
	for (size_t i = 0; !slot && i < MAX_TRANSACTIONS; i++)
		if (!context->transactions[i].server)
			slot = &context->transactions[i];
	if (!slot) {
		slot = &context->transactions[0];
		for (size_t i = 1; i < MAX_TRANSACTIONS; i++)
			if (context->transactions[i].last_used < slot->last_used)
				slot = &context->transactions[i];
	}
	transaction_clear(slot);
	if (transaction_init(context, slot, id) < 0) {
		transaction_clear(slot);
		return NULL;
	}
	return slot;
}

/* --- HTTP ------------------------------------------------------------------ */

static int send_all(int fd, const void *data, size_t size)
{
	const char *p = data;

	while (size > 0) {
		ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		size -= n;
	}
	return 0;
}

static int send_answer(int fd, int status, const char *type, const void *body, size_t size)
{
	char head[256];
	const char *reason = status == 200   ? "OK"
			     : status == 400 ? "Bad Request"
			     : status == 405 ? "Method Not Allowed"
					     : "Internal Server Error";
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, reason, type, size);
	int r = send_all(fd, head, n);
	return r < 0 ? r : send_all(fd, body, size);
}

static int send_text(int fd, int status, const char *text)
{
	return send_answer(fd, status, "text/plain", text, strlen(text));
}

/* Reads one POST: its path and body (malloc'd). */
static int read_request(int fd, char *path, size_t path_size, unsigned char **ret_body,
			size_t *ret_size)
{
	char head[MAX_HEADER_BYTES + 1];
	size_t have = 0;
	char *end = NULL;

	while (!end) {
		if (have == MAX_HEADER_BYTES)
			return -E2BIG;
		ssize_t n = recv(fd, head + have, MAX_HEADER_BYTES - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		have += n;
		head[have] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	*end = '\0';
	char *body_start = end + 4;
	size_t body_have = have - (body_start - head);

	if (strncmp(head, "POST ", 5) != 0)
		return -EOPNOTSUPP;
	const char *p = head + 5;
	size_t len = strcspn(p, " \r\n");
	snprintf(path, path_size, "%.*s", (int)len, p);

	long length = -1;
	for (char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n"))
		if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
			length = strtol(line + 17, NULL, 10);
	if (length < 0 || length > MAX_BODY_BYTES || (size_t)length < body_have)
		return -EBADMSG;

	_cleanup_free_ unsigned char *body = malloc(length ? length : 1);
	if (!body)
		return -ENOMEM;
	memcpy(body, body_start, body_have);
	while (body_have < (size_t)length) {
		ssize_t n = recv(fd, body + body_have, length - body_have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		body_have += n;
	}
	*ret_body = TAKE_PTR(body);
	*ret_size = length;
	return 0;
}

static bool fault_applies(int request_type)
{
	if (!arg_faults || (arg_fault_on >= 0 && arg_fault_on != request_type) ||
	    arg_fault_count == 0)
		return false;
	if (arg_fault_count > 0)
		arg_fault_count--;
	return true;
}

/* One exchange; returns 1 when the connection is to be kept open (hang). */
static int handle_connection(Context *context, int fd)
{
	_cleanup_free_ unsigned char *body = NULL;
	_cleanup_(OSSL_CMP_MSG_freep) OSSL_CMP_MSG *req = NULL, *rsp = NULL;
	_cleanup_(openssl_freep) unsigned char *der = NULL;
	Exchange e = {.request_type = -1, .response_type = -1};
	const unsigned char *p;
	size_t size = 0;
	long der_size;
	int r;

	r = read_request(fd, e.path, sizeof(e.path), &body, &size);
	if (r == -EOPNOTSUPP)
		return send_text(fd, 405, "only POST\n");
	if (r < 0) {
		log_errno(r, "Failed to read a request: %m");
		return send_text(fd, 400, "bad request\n");
	}

	e.number = ++context->exchanges;
	p = body;
	req = d2i_OSSL_CMP_MSG(NULL, &p, (long)size);
	e.request_type = req ? OSSL_CMP_MSG_get_bodytype(req) : -1;
	snprintf(e.request_file, sizeof(e.request_file), "%03u-req-%s.der", e.number,
		 req ? body_name(e.request_type) : "invalid");
	(void)write_file(e.request_file, body, size);
	if (!req) {
		ERR_clear_error();
		e.http_status = 400;
		exchange_write(context, &e);
		return send_text(fd, 400, "not a CMP message\n");
	}
	const ASN1_OCTET_STRING *id =
	    OSSL_CMP_HDR_get0_transactionID(OSSL_CMP_MSG_get0_header(req));
	if (id)
		hex(ASN1_STRING_get0_data(id), ASN1_STRING_length(id), e.transaction_id,
		    sizeof(e.transaction_id));

	if (fault_applies(e.request_type))
		e.faults = arg_faults;
	if (e.faults & (FAULT_HANG | FAULT_CLOSE | FAULT_HTTP_STATUS)) {
		e.http_status = e.faults & FAULT_HTTP_STATUS ? arg_http_status : 0;
		exchange_write(context, &e);
		if (e.faults & FAULT_HANG)
			return 1;
		if (e.faults & FAULT_CLOSE)
			return 0;
		return send_text(fd, arg_http_status, "the CA failed\n");
	}

	Transaction *t = transaction_for(context, req);
	if (!t) {
		e.http_status = 500;
		exchange_write(context, &e);
		return send_text(fd, 500, "no transaction\n");
	}
	OSSL_CMP_CTX *cmp = OSSL_CMP_SRV_CTX_get0_cmp_ctx(t->server);
	t->exchange = &e;
	t->last_used = ++context->clock;
	(void)OSSL_CMP_CTX_set_option(cmp, OSSL_CMP_OPT_UNPROTECTED_SEND,
				      !!(e.faults & FAULT_UNPROTECTED));
	rsp = OSSL_CMP_SRV_process_request(t->server, req);
	t->exchange = NULL;
	ERR_clear_error();
	if (!rsp) {
		e.http_status = 500;
		transaction_clear(t);
		exchange_write(context, &e);
		return send_text(fd, 500, "no CMP answer\n");
	}
	e.response_type = OSSL_CMP_MSG_get_bodytype(rsp);
	if ((e.response_type == BODY_IP || e.response_type == BODY_CP ||
	     e.response_type == BODY_KUP) &&
	    t->issued && !e.waiting && !e.rejected)
		e.implicit_confirm_granted =
		    OSSL_CMP_CTX_get_option(cmp, OSSL_CMP_OPT_IMPLICIT_CONFIRM) == 1;
	e.transaction_closed = OSSL_CMP_CTX_get_status(cmp) != OSSL_CMP_PKISTATUS_trans;
	if (e.transaction_closed)
		transaction_clear(t);

	der_size = i2d_OSSL_CMP_MSG(rsp, &der);
	if (der_size <= 0) {
		e.http_status = 500;
		exchange_write(context, &e);
		return send_text(fd, 500, "cannot encode the answer\n");
	}
	if (e.faults &
	    (FAULT_WRONG_KEY | FAULT_WRONG_RECIP_NONCE | FAULT_NO_RECIP_NONCE |
	     FAULT_WRONG_TRANSACTION_ID | FAULT_NO_TRANSACTION_ID | FAULT_WRONG_CERT_REQ_ID)) {
		r = tamper(context, e.faults, e.response_type, &der, &der_size);
		if (r < 0)
			log_errno(r, "Failed to alter the answer, sending it unaltered: %m");
	}
	snprintf(e.response_file, sizeof(e.response_file), "%03u-rsp-%s.der", e.number,
		 body_name(e.response_type));
	(void)write_file(e.response_file, der, der_size);
	e.http_status = 200;
	exchange_write(context, &e);
	return send_answer(fd, 200, "application/pkixcmp", der, der_size);
}

/* --- setup and main loop ----------------------------------------------------- */

static int listen_loopback(Context *context)
{
	struct sockaddr_in address = {
	    .sin_family = AF_INET,
	    .sin_port = htons(arg_port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t length = sizeof(address);
	int one = 1;

	context->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (context->listen_fd < 0)
		return log_errno(-errno, "socket: %m");
	(void)setsockopt(context->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(context->listen_fd, (struct sockaddr *)&address, sizeof(address)) < 0)
		return log_errno(-errno, "Failed to bind 127.0.0.1:%d: %m", arg_port);
	if (listen(context->listen_fd, 16) < 0 ||
	    getsockname(context->listen_fd, (struct sockaddr *)&address, &length) < 0)
		return log_errno(-errno, "listen: %m");
	return ntohs(address.sin_port);
}

static void context_clear(Context *context)
{
	for (size_t i = 0; i < MAX_TRANSACTIONS; i++)
		transaction_clear(&context->transactions[i]);
	for (size_t i = 0; i < context->n_hung; i++)
		close(context->hung[i]);
	if (context->listen_fd >= 0)
		close(context->listen_fd);
	if (context->log)
		fclose(context->log);
	X509_free(context->ca_cert);
	X509_free(context->server_cert);
	EVP_PKEY_free(context->ca_key);
	EVP_PKEY_free(context->server_key);
	EVP_PKEY_free(context->other_key);
	sk_X509_pop_free(context->chain, X509_free);
	sk_X509_pop_free(context->trusted, X509_free);
	sk_X509_pop_free(context->capubs, X509_free);
}

static int context_load(Context *context)
{
	int r;

	if ((r = load_cert(arg_ca_cert, &context->ca_cert)) < 0 ||
	    (r = load_key(arg_ca_key, &context->ca_key)) < 0 ||
	    (r = load_cert(arg_server_cert, &context->server_cert)) < 0 ||
	    (r = load_key(arg_server_key, &context->server_key)) < 0)
		return r;
	if (arg_chain)
		r = load_certs(arg_chain, &context->chain);
	else if (!(context->chain = sk_X509_new_null()) ||
		 !X509_add_cert(context->chain, context->ca_cert, X509_ADD_FLAG_UP_REF))
		r = -ENOMEM;
	if (r >= 0 && arg_trusted)
		r = load_certs(arg_trusted, &context->trusted);
	if (r >= 0 && arg_capubs)
		r = load_certs(arg_capubs, &context->capubs);
	if (r < 0)
		return r;
	context->other_key = new_key_like(context->server_key);
	if (!context->other_key)
		return log_openssl("generating the other key");
	if (arg_record) {
		_cleanup_free_ char *path = NULL;
		if (mkdir(arg_record, 0755) < 0 && errno != EEXIST)
			return log_errno(-errno, "Failed to create %s: %m", arg_record);
		if (asprintf(&path, "%s/log.jsonl", arg_record) < 0)
			return -ENOMEM;
		context->log = fopen(path, "ae");
		if (!context->log)
			return log_errno(-errno, "Failed to create %s: %m", path);
	}
	return 0;
}

static int run(Context *context)
{
	struct sigaction stop = {.sa_handler = on_stop_signal};
	struct timeval timeout = {.tv_sec = READ_TIMEOUT_SEC};
	int port, r;

	sigemptyset(&stop.sa_mask);
	if (sigaction(SIGTERM, &stop, NULL) < 0 || sigaction(SIGINT, &stop, NULL) < 0)
		return log_errno(-errno, "sigaction: %m");
	signal(SIGPIPE, SIG_IGN);

	r = context_load(context);
	if (r < 0)
		return r;
	port = listen_loopback(context);
	if (port < 0)
		return port;
	r = write_port_file(port);
	if (r < 0)
		return r;
	printf("%d\n", port);
	fflush(stdout);

	while (!stop_requested) {
		struct pollfd pfd = {.fd = context->listen_fd, .events = POLLIN};
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return log_errno(-errno, "poll: %m");
		}
		int fd = accept4(context->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return log_errno(-errno, "accept: %m");
		}
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
		r = handle_connection(context, fd);
		if (r == 1 && context->n_hung < MAX_HUNG_CONNECTIONS) {
			context->hung[context->n_hung++] = fd;
			continue;
		}
		if (r < 0)
			log_errno(r, "Exchange %u failed, ignoring: %m", context->exchanges);
		close(fd);
	}
	return 0;
}

static void help(void)
{
	printf(
	    "cmp-test-ca --ca-cert PEM --ca-key PEM --server-cert PEM --server-key PEM [OPTIONS]\n"
	    "A CMP test CA on 127.0.0.1, for safecad's tests. Prints its port on stdout.\n\n"
	    "  --port N --port-file FILE --record DIR --verbose\n"
	    "  --chain PEM            certificates sent with an issued one (default: CA)\n"
	    "  --trusted PEM          trust for signature-protected requests\n"
	    "  --secret TEXT          accept PBM-protected requests with this secret\n"
	    "  --accept-unprotected   --capubs PEM (caPubs in ip)\n"
	    "  --days N               validity of issued certificates (365)\n"
	    "  --grant-implicit       grant implicit confirmation when asked\n"
	    "  --reject BITS          reject cert requests with PKIFailureInfo bits\n"
	    "  --status-string TEXT   with --reject\n"
	    "  --poll-count N --check-after S   answer 'waiting' N times\n"
	    "  --other-public-key     issue for a fresh key of the same kind\n"
	    "  --other-subject        add CN=another subject to the subject\n"
	    "  --not-after-before-old kur: end a day before the old certificate\n"
	    "  --accept-bad-cert-hash answer pkiconf to a certConf naming another cert\n"
	    "Faults on answers (to requests of --fault-on TYPE, --fault-count N times):\n"
	    "  --hang --close --http-status N --unprotected --wrong-key\n"
	    "  --wrong-recip-nonce --no-recip-nonce --wrong-transaction-id\n"
	    "  --no-transaction-id --wrong-cert-req-id\n");
}

static int parse_long(const char *text, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 0);
	if (errno || end == text || *end || v < min || v > max)
		return log_errno(-EINVAL, "Invalid number: %s", text);
	*ret = v;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	enum {
		OPT_CA_CERT = 0x100,
		OPT_CA_KEY,
		OPT_SERVER_CERT,
		OPT_SERVER_KEY,
		OPT_CHAIN,
		OPT_TRUSTED,
		OPT_CAPUBS,
		OPT_SECRET,
		OPT_ACCEPT_UNPROTECTED,
		OPT_PORT,
		OPT_PORT_FILE,
		OPT_RECORD,
		OPT_DAYS,
		OPT_GRANT_IMPLICIT,
		OPT_REJECT,
		OPT_STATUS_STRING,
		OPT_POLL_COUNT,
		OPT_CHECK_AFTER,
		OPT_OTHER_PUBLIC_KEY,
		OPT_OTHER_SUBJECT,
		OPT_NOT_AFTER_BEFORE_OLD,
		OPT_ACCEPT_BAD_CERT_HASH,
		OPT_HTTP_STATUS,
		OPT_FAULT_ON,
		OPT_FAULT_COUNT,
		OPT_VERBOSE,
		OPT_FAULT, /* + index in fault_names */
	};
	static struct option options[] = {
	    {"ca-cert", required_argument, NULL, OPT_CA_CERT},
	    {"ca-key", required_argument, NULL, OPT_CA_KEY},
	    {"server-cert", required_argument, NULL, OPT_SERVER_CERT},
	    {"server-key", required_argument, NULL, OPT_SERVER_KEY},
	    {"chain", required_argument, NULL, OPT_CHAIN},
	    {"trusted", required_argument, NULL, OPT_TRUSTED},
	    {"capubs", required_argument, NULL, OPT_CAPUBS},
	    {"secret", required_argument, NULL, OPT_SECRET},
	    {"accept-unprotected", no_argument, NULL, OPT_ACCEPT_UNPROTECTED},
	    {"port", required_argument, NULL, OPT_PORT},
	    {"port-file", required_argument, NULL, OPT_PORT_FILE},
	    {"record", required_argument, NULL, OPT_RECORD},
	    {"days", required_argument, NULL, OPT_DAYS},
	    {"grant-implicit", no_argument, NULL, OPT_GRANT_IMPLICIT},
	    {"reject", required_argument, NULL, OPT_REJECT},
	    {"status-string", required_argument, NULL, OPT_STATUS_STRING},
	    {"poll-count", required_argument, NULL, OPT_POLL_COUNT},
	    {"check-after", required_argument, NULL, OPT_CHECK_AFTER},
	    {"other-public-key", no_argument, NULL, OPT_OTHER_PUBLIC_KEY},
	    {"other-subject", no_argument, NULL, OPT_OTHER_SUBJECT},
	    {"not-after-before-old", no_argument, NULL, OPT_NOT_AFTER_BEFORE_OLD},
	    {"accept-bad-cert-hash", no_argument, NULL, OPT_ACCEPT_BAD_CERT_HASH},
	    {"http-status", required_argument, NULL, OPT_HTTP_STATUS},
	    {"fault-on", required_argument, NULL, OPT_FAULT_ON},
	    {"fault-count", required_argument, NULL, OPT_FAULT_COUNT},
	    {"verbose", no_argument, NULL, OPT_VERBOSE},
	    {"hang", no_argument, NULL, OPT_FAULT + 0},
	    {"close", no_argument, NULL, OPT_FAULT + 1},
	    {"unprotected", no_argument, NULL, OPT_FAULT + 3},
	    {"wrong-key", no_argument, NULL, OPT_FAULT + 4},
	    {"wrong-recip-nonce", no_argument, NULL, OPT_FAULT + 5},
	    {"no-recip-nonce", no_argument, NULL, OPT_FAULT + 6},
	    {"wrong-transaction-id", no_argument, NULL, OPT_FAULT + 7},
	    {"no-transaction-id", no_argument, NULL, OPT_FAULT + 8},
	    {"wrong-cert-req-id", no_argument, NULL, OPT_FAULT + 9},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	long v;
	int c, r = 0;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			exit(EXIT_SUCCESS);
		case OPT_CA_CERT:
			arg_ca_cert = optarg;
			break;
		case OPT_CA_KEY:
			arg_ca_key = optarg;
			break;
		case OPT_SERVER_CERT:
			arg_server_cert = optarg;
			break;
		case OPT_SERVER_KEY:
			arg_server_key = optarg;
			break;
		case OPT_CHAIN:
			arg_chain = optarg;
			break;
		case OPT_TRUSTED:
			arg_trusted = optarg;
			break;
		case OPT_CAPUBS:
			arg_capubs = optarg;
			break;
		case OPT_SECRET:
			arg_secret = optarg;
			break;
		case OPT_ACCEPT_UNPROTECTED:
			arg_accept_unprotected = true;
			break;
		case OPT_PORT:
			r = parse_long(optarg, 0, 65535, &v);
			arg_port = (int)v;
			break;
		case OPT_PORT_FILE:
			arg_port_file = optarg;
			break;
		case OPT_RECORD:
			arg_record = optarg;
			break;
		case OPT_DAYS:
			r = parse_long(optarg, 1, 36500, &arg_days);
			break;
		case OPT_GRANT_IMPLICIT:
			arg_grant_implicit = true;
			break;
		case OPT_REJECT:
			arg_reject = true;
			r = parse_long(optarg, 0, OSSL_CMP_PKIFAILUREINFO_MAX_BIT_PATTERN,
				       &arg_reject_bits);
			break;
		case OPT_STATUS_STRING:
			arg_status_string = optarg;
			break;
		case OPT_POLL_COUNT:
			r = parse_long(optarg, 0, 1000, &arg_poll_count);
			break;
		case OPT_CHECK_AFTER:
			r = parse_long(optarg, 0, 3600, &arg_check_after);
			break;
		case OPT_OTHER_PUBLIC_KEY:
			arg_other_public_key = true;
			break;
		case OPT_OTHER_SUBJECT:
			arg_other_subject = true;
			break;
		case OPT_NOT_AFTER_BEFORE_OLD:
			arg_not_after_before_old = true;
			break;
		case OPT_ACCEPT_BAD_CERT_HASH:
			arg_accept_bad_cert_hash = true;
			break;
		case OPT_HTTP_STATUS:
			r = parse_long(optarg, 100, 599, &v);
			arg_http_status = (int)v;
			arg_faults |= FAULT_HTTP_STATUS;
			break;
		case OPT_FAULT_ON:
			arg_fault_on = body_type_from_name(optarg);
			if (arg_fault_on < 0)
				r = log_errno(-EINVAL, "Unknown body type: %s", optarg);
			break;
		case OPT_FAULT_COUNT:
			r = parse_long(optarg, 0, 1000000, &arg_fault_count);
			break;
		case OPT_VERBOSE:
			arg_verbose = true;
			break;
		default:
			if (c >= OPT_FAULT && c < OPT_FAULT + (int)ELEMENTSOF(fault_names)) {
				arg_faults |= fault_names[c - OPT_FAULT].bit;
				break;
			}
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	if (optind < argc)
		return log_errno(-EINVAL, "Unexpected argument: %s", argv[optind]);
	if (!arg_ca_cert || !arg_ca_key || !arg_server_cert || !arg_server_key)
		return log_errno(-EINVAL,
				 "--ca-cert, --ca-key, --server-cert and --server-key are needed");
	return 0;
}

int main(int argc, char **argv)
{
	Context context = {.listen_fd = -1};
	int r;

	r = parse_args(argc, argv);
	if (r < 0)
		return 2;
	r = run(&context);
	context_clear(&context);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
