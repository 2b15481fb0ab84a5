/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A CA's answer to one request of protocol v1, end to end through the
 * client's readers (ca-v1.h): the header lines and the body go through the
 * callbacks libcurl calls, then through what the request makes of them.
 *
 * The input is the request's name on a line of its own ("pending",
 * "nonce", "issue" or "confirm"), then the answer as it comes off the
 * wire: status line, header lines, an empty line, the body. A 1xx answer
 * is followed by the next one, as libcurl reads them. What libcurl itself
 * would refuse (no status line, a header line over CURL_MAX_HTTP_HEADER)
 * is played the way libcurl ends the transfer; the body is the rest of the
 * input, handed over in libcurl's pieces. */
#include <curl/curl.h>
#include <openssl/err.h>
#include <string.h>

#include "ca/ca-v1-pending.h"
#include "ca/ca-v1.h"
#include "fuzz.h"
#include "log/log.h"
#include "macro.h"

#define URL "https://ra.example.vn/activation/v1/actions/r-7f3a9c/issue"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Dropped /pending entries are logged: noise at this rate. */
	log_set_max_level(LOG_CRIT);
	return 0;
}

/* What the CA's words may hold once cleaned: no C0, DEL or C1 controls,
 * no bidirectional overrides. */
static void check_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; p && *p; p++) {
		fuzz_check(*p >= 0x20 && *p != 0x7f);
		/* U+0080..U+009F: C2 80..C2 9F */
		fuzz_check(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f));
		/* U+202A..U+202E: E2 80 AA..E2 80 AE; U+2066..U+2069: E2 81 A6..E2 81 A9 */
		fuzz_check(!(p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae));
		fuzz_check(!(p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9));
	}
}

static void check_error(int r, const CaError *error)
{
	fuzz_check(r < 0);
	fuzz_check(error->message || r == -ENOMEM);
	if (r == -ENOMEM)
		return;
	switch (error->kind) {
	case CA_ERROR_PROBLEM:
		fuzz_check(r == -EPROTO);
		fuzz_check(error->http_status >= 400);
		break;
	case CA_ERROR_GAVE_UP:
		fuzz_check(r == -ETIME && error->http_status == 429);
		break;
	case CA_ERROR_MALFORMED:
		fuzz_check(r == -EBADMSG);
		fuzz_check(!error->type && !error->title && !error->detail);
		break;
	default:
		fuzz_check(!"an answer's error of another kind");
	}
	check_clean(error->type);
	check_clean(error->title);
	check_clean(error->detail);
	/* cut after 256 and 1024 characters of UTF-8 */
	fuzz_check(!error->type || strlen(error->type) <= 4 * 256);
	fuzz_check(!error->title || strlen(error->title) <= 4 * 1024);
	fuzz_check(!error->detail || strlen(error->detail) <= 4 * 1024);
}

/* The status of a status line, as libcurl reads it: "HTTP/<version>
 * <3 digits>"; -1 when libcurl would refuse the line. */
static long status_of(const char *line, size_t size)
{
	const char *space = memchr(line, ' ', size);
	size_t left;

	if (!space)
		return -1;
	left = size - (size_t)(space + 1 - line);
	space++;
	if (left < 3 || space[0] < '1' || space[0] > '5' || space[1] < '0' || space[1] > '9' ||
	    space[2] < '0' || space[2] > '9')
		return -1;
	if (left > 3 && space[3] != ' ' && space[3] != '\r' && space[3] != '\n')
		return -1;
	return (space[0] - '0') * 100 + (space[1] - '0') * 10 + (space[2] - '0');
}

/* Feeds the answer to the callbacks. 1 when the transfer ends well, 0 when
 * a callback or libcurl stopped it, -1 when libcurl would not have read it
 * as an answer at all. */
static int feed(const char *data, size_t size, CaV1Answer *answer)
{
	const char *p = data, *end = data + size;
	bool in_headers = true, status_next = true;

	while (in_headers) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);

		if (n > CURL_MAX_HTTP_HEADER) {
			/* libcurl refuses it unseen (header_line_refused()) */
			if (!answer->started)
				return -1;
			answer->header_line_too_long = true;
			return 0;
		}
		if (!nl)
			return -1; /* ended before the headers did */
		if (status_next) {
			long status = n >= 5 && memcmp(p, "HTTP/", 5) == 0 ? status_of(p, n) : -1;
			if (status < 0)
				return -1;
			answer->status = status;
			status_next = false;
		}
		if (ca_v1_answer_header((char *)p, 1, n, answer) != n)
			return 0;
		if ((n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n')) {
			/* 1xx: another answer follows */
			if (answer->status >= 200)
				in_headers = false;
			else
				status_next = true;
		}
		p += n;
	}
	/* the body, in the pieces libcurl hands over */
	while (p < end) {
		size_t n = (size_t)(end - p);

		if (n > CURL_MAX_WRITE_SIZE)
			n = CURL_MAX_WRITE_SIZE;

		if (ca_v1_answer_body((char *)p, 1, n, answer) != n)
			return 0;
		p += n;
	}
	return 1;
}

static void check_nonce(const CaV1Answer *answer)
{
	_cleanup_free_ char *nonce = NULL;
	CaError error = {};
	int r = ca_v1_nonce_answer(answer, URL, &nonce, &error);

	if (r < 0) {
		fuzz_check(!nonce);
		check_error(r, &error);
	} else {
		fuzz_check(answer->status == 204);
		fuzz_check(nonce && nonce[0] && strlen(nonce) <= CA_V1_MAX_NONCE_LENGTH);
		for (const char *c = nonce; *c; c++)
			fuzz_check(*c >= 0x21 && *c <= 0x7e);
	}
	ca_error_clear(&error);
}

static void check_pending(const CaV1Answer *answer)
{
	static char *const sent[] = {(char *)"5401a3", (char *)"0"};
	json_t *kept = NULL;
	CaError error = {};
	int r = ca_v1_pending_answer(answer, URL, "fuzz", sent, ELEMENTSOF(sent), &kept, &error);

	if (r < 0) {
		fuzz_check(!kept);
		check_error(r, &error);
	} else {
		fuzz_check(answer->status == 200);
		fuzz_check(json_is_array(kept) && json_array_size(kept) <= CA_V1_MAX_PENDING);
		json_decref(kept);
	}
	ca_error_clear(&error);
}

/* What a signed request does before issue or confirm see the answer. */
static void check_signed(const CaV1Answer *answer)
{
	unsigned wait = 0;

	(void)ca_v1_answer_is_problem(answer, "urn:safeca:badNonce");
	if (ca_v1_busy_wait(answer, INT64_MAX, &wait))
		fuzz_check(answer->status == 429 && wait >= 1 && wait <= 60);
}

static void check_issue(const CaV1Answer *answer)
{
	X509 *certificate = NULL;
	STACK_OF(X509) *chain = NULL;
	unsigned wait = 0;
	CaError error = {};
	int r;

	check_signed(answer);
	r = ca_v1_issue_answer(answer, URL, &certificate, &chain, &wait, &error);
	if (r < 0) {
		fuzz_check(!certificate && !chain);
		check_error(r, &error);
	} else if (r == 1) {
		fuzz_check(answer->status == 202);
		fuzz_check(!certificate && !chain);
		fuzz_check(wait >= 1 && wait <= 60);
	} else {
		fuzz_check(r == 0 && answer->status == 200);
		fuzz_check(certificate && chain && sk_X509_num(chain) <= 8);
		X509_free(certificate);
		sk_X509_pop_free(chain, X509_free);
	}
	/* nothing left behind for the next OpenSSL call to trip over */
	fuzz_check(ERR_peek_error() == 0);
	ca_error_clear(&error);
}

static void check_confirm(const CaV1Answer *answer)
{
	CaError error = {};
	int r;

	check_signed(answer);
	r = ca_v1_confirm_answer(answer, URL, &error);
	if (r < 0)
		check_error(r, &error);
	else
		fuzz_check(answer->status == 200);
	ca_error_clear(&error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		const char *name;
		void (*check)(const CaV1Answer *answer);
	} requests[] = {
	    {"pending\n", check_pending},
	    {"nonce\n", check_nonce},
	    {"issue\n", check_issue},
	    {"confirm\n", check_confirm},
	};
	CaV1Answer answer = {};
	size_t skip = 0;
	int i, r;

	/* past every limit, but not much */
	if (size > 2 * 1024 * 1024)
		return 0;
	for (i = 0; i < (int)ELEMENTSOF(requests); i++) {
		skip = strlen(requests[i].name);
		if (size >= skip && memcmp(data, requests[i].name, skip) == 0)
			break;
	}
	if (i == (int)ELEMENTSOF(requests))
		return 0;

	r = feed((const char *)data + skip, size - skip, &answer);
	if (r == 0) {
		CaError error = {};

		/* a callback stops only past a limit, which is then the error */
		r = ca_v1_answer_too_large(&answer, URL, &error);
		check_error(r, &error);
		fuzz_check(error.kind == CA_ERROR_MALFORMED && strstr(error.message, "too large"));
		ca_error_clear(&error);
	} else if (r > 0) {
		fuzz_check(!answer.body_too_large && !answer.headers_too_large);
		fuzz_check(answer.size <= 1024 * 1024);
		requests[i].check(&answer);
	}
	ca_v1_answer_clear(&answer);
	ERR_clear_error();
	return 0;
}
