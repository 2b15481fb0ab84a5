/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client side of activation protocol v1 (docs/protocol.md): libcurl
 * for HTTPS, jansson for the JSON, jws.c for the signed requests. */
#include "ca/ca-cmp.h"
#include "ca/ca-http.h"
#include "ca/ca-v1.h"

#include <curl/curl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>
#include <time.h>

#include "base64.h"
#include "build-config.h"
#include "ca/ca-v1-pending.h"
#include "ca/curl-error.h"
#include "i18n.h"
#include "ca/jws.h"
#include "log/log.h"
#include "macro.h"
#include "util.h"
#include "x509-util.h"

/* The contract caps every answer's body at 1 MiB. Headers have no cap in
 * the contract; 64 KiB is far above what any answer here needs. */
#define MAX_BODY_SIZE (1024 * 1024)
#define MAX_HEADERS_SIZE (64 * 1024)
#define MAX_CHAIN 8
#define MAX_PROBLEM_TYPE_CHARS 256
#define MAX_PROBLEM_TEXT_CHARS 1024

/* 202 and 429 waits: each between 1 and 60 s, at most 10 minutes in all. */
#define WAIT_MIN_SEC 1u
#define WAIT_MAX_SEC 60u
#define WAIT_DEFAULT_SEC 5u
#define POLL_LIMIT_SEC 600u

#define DEFAULT_CONNECT_TIMEOUT_SEC 10u
#define DEFAULT_TIMEOUT_SEC 60u

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)

static inline void curl_freep(char **p)
{
	curl_free(*p);
}

static inline void x509_stack_freep(STACK_OF(X509) * *p)
{
	sk_X509_pop_free(*p, X509_free);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_result;
static unsigned poll_limit_sec = POLL_LIMIT_SEC;

static void global_init_once(void)
{
	const char *e;
	unsigned v;

	global_result = curl_error_to_errno(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
	/* jansson seeds its hash function on first use; doing it here keeps
	 * that off the worker threads. */
	json_object_seed(0);
	/* Lets the integration tests see the 10-minute limit end in seconds;
	 * it can only shorten the limit. */
	e = secure_getenv("SAFECAD_CA_POLL_LIMIT_SEC");
	if (e && parse_unsigned(e, 1, POLL_LIMIT_SEC, &v) >= 0)
		poll_limit_sec = v;
}

int ca_client_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return global_result;
}

void ca_client_global_cleanup(void)
{
	curl_global_cleanup();
}

#define fail ca_error_set

unsigned ca_poll_limit_sec(void)
{
	(void)ca_client_global_init();
	return poll_limit_sec;
}

void ca_error_clear(CaError *error)
{
	if (!error)
		return;
	free(error->type);
	free(error->title);
	free(error->detail);
	free(error->message);
	*error = (CaError){};
}

int ca_error_set(CaError *error, CaErrorKind kind, long http_status, int r, const char *format, ...)
{
	va_list ap;
	int n;

	if (!error)
		return r;
	ca_error_clear(error);
	error->kind = kind;
	error->http_status = http_status;
	va_start(ap, format);
	n = vasprintf(&error->message, format, ap);
	va_end(ap);
	if (n < 0) {
		error->message = NULL;
		return -ENOMEM;
	}
	return r;
}

static int fail_oom(CaError *error)
{
	return fail(error, CA_ERROR_NONE, 0, -ENOMEM, _("Out of memory"));
}

/* A break of the contract: format says what is wrong with the answer. */
_printf_(3, 4) static int fail_malformed(CaError *error, long http_status, const char *format, ...)
{
	_cleanup_free_ char *what = NULL;
	va_list ap;
	int n;

	if (!error)
		return -EBADMSG;
	va_start(ap, format);
	n = vasprintf(&what, format, ap);
	va_end(ap);
	if (n < 0) {
		what = NULL;
		return fail_oom(error);
	}
	/* TRANSLATORS: %s says what is wrong with the answer, e.g. "it was
	 * cut short (https://…)". */
	return fail(error, CA_ERROR_MALFORMED, http_status, -EBADMSG,
		    _("The CA's answer is not valid: %s"), what);
}

static int64_t now_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* A worker thread waits here; nothing else runs on it meanwhile. */
static void sleep_seconds(unsigned seconds)
{
	struct timespec ts = {.tv_sec = seconds};

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

void ca_v1_answer_clear(CaV1Answer *answer)
{
	free(answer->body);
	*answer = (CaV1Answer){};
}

size_t ca_v1_answer_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	CaV1Answer *answer = userdata;
	size_t n = size * nmemb;

	if (n > MAX_BODY_SIZE - answer->size) {
		answer->body_too_large = true;
		return 0;
	}
	if (answer->size + n > answer->allocated) {
		size_t allocated = answer->allocated ? answer->allocated : 4096;
		char *p;

		while (allocated < answer->size + n)
			allocated *= 2;
		if (allocated > MAX_BODY_SIZE)
			allocated = MAX_BODY_SIZE;
		p = realloc(answer->body, allocated);
		if (!p)
			return 0;
		answer->body = p;
		answer->allocated = allocated;
	}
	memcpy(answer->body + answer->size, data, n);
	answer->size += n;
	return n;
}

/* Copies a header's value without surrounding blanks, if it fits. */
static bool header_value(const char *line, size_t size, const char *name, char *buf,
			 size_t buf_size, bool *ret_too_long)
{
	size_t name_len = strlen(name), start, end;

	if (size <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
		return false;
	start = name_len + 1;
	end = size;
	while (start < end && (line[start] == ' ' || line[start] == '\t'))
		start++;
	while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' ||
			       line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	if (end - start >= buf_size) {
		*ret_too_long = true;
		buf[0] = 0;
		return true;
	}
	memcpy(buf, line + start, end - start);
	buf[end - start] = 0;
	*ret_too_long = false;
	return true;
}

static bool nonce_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7E)
			return false;
	return true;
}

size_t ca_v1_answer_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	CaV1Answer *answer = userdata;
	size_t n = size * nmemb;
	bool too_long;

	answer->headers_size += n;
	if (answer->headers_size > MAX_HEADERS_SIZE) {
		answer->headers_too_large = true;
		return 0;
	}
	/* Each response (a 100 Continue first, say) starts with its status
	 * line; only the last response's headers count. */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		answer->started = true;
		answer->nonce[0] = 0;
		answer->nonce_bad = false;
		answer->retry_after[0] = 0;
	} else if (header_value(line, n, "Replay-Nonce", answer->nonce, sizeof(answer->nonce),
				&too_long))
		answer->nonce_bad = too_long || !nonce_valid(answer->nonce);
	else
		(void)header_value(line, n, "Retry-After", answer->retry_after,
				   sizeof(answer->retry_after), &too_long);
	return n;
}

/* Retry-After in seconds, or as an HTTP date (RFC 9110 §10.2.3). */
static bool parse_retry_after(const char *s, unsigned *ret)
{
	unsigned v;
	time_t t, now;

	if (!*s)
		return false;
	if (parse_unsigned(s, 0, 86400 * 365, &v) >= 0) {
		*ret = v;
		return true;
	}
	t = curl_getdate(s, NULL);
	if (t < 0)
		return false;
	now = time(NULL);
	*ret = t <= now ? 0 : t - now > 86400 * 365 ? 86400 * 365 : (unsigned)(t - now);
	return true;
}

static unsigned clamp_wait(int64_t seconds)
{
	if (seconds < WAIT_MIN_SEC)
		return WAIT_MIN_SEC;
	if (seconds > WAIT_MAX_SEC)
		return WAIT_MAX_SEC;
	return (unsigned)seconds;
}

void ca_http_clear(Client *client)
{
	if (client->curl)
		curl_easy_cleanup(client->curl);
	free(client->base);
	*client = (Client){};
}

static bool loopback_host(const char *host)
{
	return streq(host, "127.0.0.1") || streq(host, "[::1]") || streq(host, "::1") ||
	       strcasecmp(host, "localhost") == 0;
}

/* libcurl reads "127.1" or "0x7f000001" as 127.0.0.1; the contract names
 * the host as written, so plain http also needs it spelled so. */
static bool loopback_as_written(const char *url)
{
	static const char *const hosts[] = {"127.0.0.1", "[::1]", "localhost"};
	const char *host = url + strlen("http://");

	if (strncasecmp(url, "http://", strlen("http://")) != 0)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
		size_t len = strlen(hosts[i]);

		if (strncasecmp(host, hosts[i], len) == 0 &&
		    (host[len] == 0 || host[len] == ':' || host[len] == '/'))
			return true;
	}
	return false;
}

/* Checks the profile's URL before anything connects: https, or http to
 * this machine only; no query or fragment, since paths are appended. */
static int check_base_url(const char *url, bool *ret_loopback, CaError *error)
{
	_cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
	_cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *query = NULL, *fragment = NULL;

	if (!u)
		return fail_oom(error);
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		return fail(error, CA_ERROR_UNREACHABLE, 0, -EINVAL,
			    _("The CA's address in the profile is not valid: %s"), url);
	(void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
	(void)curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
	if (query || fragment)
		return fail(
		    error, CA_ERROR_UNREACHABLE, 0, -EINVAL,
		    _("The CA's address in the profile must not have a query or fragment: %s"),
		    url);
	if (strcasecmp(scheme, "https") == 0) {
		*ret_loopback = loopback_host(host);
		return 0;
	}
	if (strcasecmp(scheme, "http") == 0 && loopback_host(host) && loopback_as_written(url)) {
		*ret_loopback = true;
		return 0;
	}
	/* Refused here, before any connection: the contract allows plain
	 * http only for tests and demos on this machine. */
	return fail(error, CA_ERROR_UNREACHABLE, 0, -ECONNREFUSED,
		    _("The CA's address must use https:// (plain http:// is allowed only for "
		      "127.0.0.1, ::1 and localhost): %s"),
		    url);
}

/* Fills *client in place: libcurl keeps a pointer to its error buffer. On
 * failure the caller's ca_http_clear() releases what was made. */
int ca_http_open(Client *client, const Profile *profile, const CaNetwork *network, CaError *error)
{
	bool loopback = false;
	size_t len;
	CURLcode c = CURLE_OK;
	int r;

	r = ca_client_global_init();
	if (r < 0)
		return fail(error, CA_ERROR_NONE, 0, r, _("libcurl could not be initialized"));
	if (!profile || isempty(profile->url))
		return fail(error, CA_ERROR_UNREACHABLE, 0, -EINVAL,
			    _("The CA profile has no address (url)"));
	r = check_base_url(profile->url, &loopback, error);
	if (r < 0)
		return r;

	client->connect_timeout_sec = network && network->connect_timeout_sec
					  ? network->connect_timeout_sec
					  : DEFAULT_CONNECT_TIMEOUT_SEC;
	client->timeout_sec =
	    network && network->timeout_sec ? network->timeout_sec : DEFAULT_TIMEOUT_SEC;
	len = strlen(profile->url);
	if (profile->url[len - 1] == '/')
		len--;
	client->base = strndup(profile->url, len);
	client->curl = curl_easy_init();
	if (!client->base || !client->curl)
		return fail_oom(error);

#define SET(option, value) (c = c != CURLE_OK ? c : curl_easy_setopt(client->curl, option, value))
	/* Worker threads: no SIGALRM for timeouts. */
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (profile->trust) {
		/* The profile's bundle is the only trust: Debian's libcurl
		 * also has a default CA path, which CAINFO alone leaves in
		 * place. */
		SET(CURLOPT_CAINFO, profile->trust);
		SET(CURLOPT_CAPATH, (char *)NULL);
	}
	/* A proxy from the environment must not see a test CA on this
	 * machine (nor can it reach it). */
	if (loopback)
		SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_CONNECTTIMEOUT, (long)client->connect_timeout_sec);
	SET(CURLOPT_TIMEOUT, (long)client->timeout_sec);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MAX_BODY_SIZE);
	SET(CURLOPT_USERAGENT, "safecad/" PACKAGE_VERSION);
	SET(CURLOPT_WRITEFUNCTION, ca_v1_answer_body);
	SET(CURLOPT_HEADERFUNCTION, ca_v1_answer_header);
	SET(CURLOPT_ERRORBUFFER, client->curl_error);
#undef SET
	if (c != CURLE_OK) {
		r = curl_error_to_errno(c, 0);
		if (r == -ENOMEM)
			return fail_oom(error);
		return fail(error, CA_ERROR_UNREACHABLE, 0, r, _("libcurl cannot be set up (%s)"),
			    curl_easy_strerror(c));
	}
	return 0;
}

static char *client_url(const Client *client, const char *path)
{
	char *url;

	if (asprintf(&url, "%s%s", client->base, path) < 0)
		return NULL;
	return url;
}

/* libcurl stops at a header line longer than CURL_MAX_HTTP_HEADER (100 KiB)
 * before the header callback sees it, and until 8.6 says only "out of
 * memory", with an empty error buffer. After the answer's status line that
 * is the likely cause by far: a real allocation failure there reads as an
 * answer too large. */
static bool header_line_refused(CURLcode c, const CaV1Answer *answer)
{
#if LIBCURL_VERSION_NUM >= 0x080600
	if (c == CURLE_TOO_LARGE)
		return true;
#endif
	return c == CURLE_OUT_OF_MEMORY && answer->started;
}

int ca_v1_answer_too_large(const CaV1Answer *answer, const char *url, CaError *error)
{
	if (answer->body_too_large)
		return fail(error, CA_ERROR_MALFORMED, 0, -EBADMSG,
			    /* TRANSLATORS: the address asked. */
			    _("The CA's answer is too large: its body is over 1 MiB (%s)"), url);
	if (answer->headers_too_large || answer->header_line_too_long)
		return fail(error, CA_ERROR_MALFORMED, 0, -EBADMSG,
			    /* TRANSLATORS: the address asked. */
			    _("The CA's answer is too large: its headers are over 64 KiB (%s)"),
			    url);
	return 0;
}

/* One request: GET when body is NULL, else POST of body as content_type.
 * On success *ret holds the answer, whatever its status. */
int ca_http_send(Client *client, const char *url, const char *content_type, const char *body,
		 size_t body_size, CaV1Answer *ret, CaError *error)
{
	_cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
	_cleanup_free_ char *content_type_header = NULL;
	const char *method = body ? "POST" : "GET";
	CaV1Answer answer = {};
	long os_errno = 0;
	curl_off_t pretransfer_time = 0;
	CURLcode c;
	int r;

	headers =
	    curl_slist_append(NULL, streq_ptr(content_type, "application/pkixcmp")
					? "Accept: application/pkixcmp"
					: "Accept: application/json, application/problem+json");
	if (!headers)
		return fail_oom(error);
	if (body) {
		struct curl_slist *l;

		if (asprintf(&content_type_header, "Content-Type: %s", content_type) < 0) {
			content_type_header = NULL;
			return fail_oom(error);
		}
		l = curl_slist_append(headers, content_type_header);
		/* No "Expect: 100-continue" round trip: the bodies are small. */
		l = l ? curl_slist_append(l, "Expect:") : NULL;
		if (!l)
			return fail_oom(error);
	}

	client->curl_error[0] = 0;
	c = curl_easy_setopt(client->curl, CURLOPT_URL, url);
	if (c == CURLE_OK && body) {
		c = curl_easy_setopt(client->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				     (curl_off_t)body_size);
		if (c == CURLE_OK)
			c = curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, body);
	} else if (c == CURLE_OK)
		c = curl_easy_setopt(client->curl, CURLOPT_HTTPGET, 1L);
	if (c == CURLE_OK)
		c = curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, headers);
	if (c == CURLE_OK)
		c = curl_easy_setopt(client->curl, CURLOPT_WRITEDATA, &answer);
	if (c == CURLE_OK)
		c = curl_easy_setopt(client->curl, CURLOPT_HEADERDATA, &answer);
	if (c == CURLE_OK) {
		log_debug("%s %s", method, url);
		c = curl_easy_perform(client->curl);
	}
	(void)curl_easy_getinfo(client->curl, CURLINFO_OS_ERRNO, &os_errno);
	(void)curl_easy_getinfo(client->curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_time);
	/* The handle outlives this frame: leave it no pointer into it. */
	(void)curl_easy_setopt(client->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	(void)curl_easy_setopt(client->curl, CURLOPT_WRITEDATA, (void *)NULL);
	(void)curl_easy_setopt(client->curl, CURLOPT_HEADERDATA, (void *)NULL);
	(void)curl_easy_setopt(client->curl, CURLOPT_POSTFIELDS, (char *)NULL);

	if (c == CURLE_OK &&
	    curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &answer.status) != CURLE_OK)
		c = CURLE_WEIRD_SERVER_REPLY;
	if (c == CURLE_OK) {
		log_debug("%s %s: HTTP %ld", method, url, answer.status);
		*ret = answer;
		return 0;
	}

	log_debug("%s %s: %s (%s)", method, url, curl_easy_strerror(c), client->curl_error);
	if (c == CURLE_FILESIZE_EXCEEDED)
		answer.body_too_large = true;
	if (header_line_refused(c, &answer))
		answer.header_line_too_long = true;
	r = ca_v1_answer_too_large(&answer, url, error);
	ca_v1_answer_clear(&answer);
	if (r < 0)
		return r;
	if (c == CURLE_WRITE_ERROR)
		return fail_oom(error);

	r = curl_error_to_errno(c, os_errno);
	switch (r) {
	case -ENOMEM:
		return fail_oom(error);
	case -ETIMEDOUT:
		/* Until the request could be sent (TCP and TLS done), the
		 * connect timeout is the one that ran out. */
		return fail(
		    error, CA_ERROR_TIMEOUT, 0, -ETIMEDOUT,
		    /* TRANSLATORS: seconds, then the address asked. */
		    _("The CA did not answer within %u s: %s"),
		    pretransfer_time == 0 ? client->connect_timeout_sec : client->timeout_sec, url);
	case -EBADMSG:
		return fail_malformed(error, 0, "%s (%s)", curl_error_reason(c, os_errno), url);
	default:
		return fail(error, CA_ERROR_UNREACHABLE, 0,
			    r == -EHOSTUNREACH ? -EHOSTUNREACH : -ECONNREFUSED,
			    /* TRANSLATORS: why (e.g. "connection refused"), then the
			     * address asked. */
			    _("The CA could not be reached (%s): %s"),
			    curl_error_reason(c, os_errno), url);
	}
}

/* The one place where a jansson decoding error becomes an errno. */
static int answer_json(const CaV1Answer *answer, json_t **ret)
{
	json_error_t e;
	json_t *json;

	/* Duplicate members are refused: two readers could take different
	 * ones. No JSON_DECODE_ANY: only an object or an array is an
	 * answer, and jansson bounds the nesting depth. */
	json =
	    json_loadb(answer->body ? answer->body : "", answer->size, JSON_REJECT_DUPLICATES, &e);
	if (!json)
		return json_error_code(&e) == json_error_out_of_memory ? -ENOMEM : -EBADMSG;
	*ret = json;
	return 0;
}

static char *problem_text(json_t *problem, const char *member, size_t max_chars)
{
	json_t *v = json_object_get(problem, member);

	if (!json_is_string(v) || json_string_length(v) == 0)
		return NULL;
	return ca_v1_text_clean(json_string_value(v), json_string_length(v), max_chars, false);
}

bool ca_v1_answer_is_problem(const CaV1Answer *answer, const char *type)
{
	_cleanup_(json_decrefp) json_t *json = NULL;

	if (answer_json(answer, &json) < 0)
		return false;
	return streq_ptr(json_string_value(json_object_get(json, "type")), type);
}

/* A problem document for 4xx and 5xx, else a break of the contract. A 429
 * whose wait was not taken is reported as giving up. */
int ca_v1_answer_error(const CaV1Answer *answer, const char *url, CaError *error)
{
	_cleanup_(json_decrefp) json_t *json = NULL;
	_cleanup_free_ char *type = NULL, *title = NULL, *detail = NULL, *words = NULL,
			    *where = NULL;
	unsigned retry_after;
	int r;

	if (answer->status < 400)
		return fail_malformed(error, answer->status, _("unexpected HTTP %ld from %s"),
				      answer->status, url);
	r = answer_json(answer, &json);
	if (r == -ENOMEM)
		return fail_oom(error);
	if (r < 0 || !json_is_object(json))
		return fail_malformed(error, answer->status,
				      _("HTTP %ld from %s without a problem document"),
				      answer->status, url);

	type = problem_text(json, "type", MAX_PROBLEM_TYPE_CHARS);
	title = problem_text(json, "title", MAX_PROBLEM_TEXT_CHARS);
	detail = problem_text(json, "detail", MAX_PROBLEM_TEXT_CHARS);
	/* ": <title> — <detail>", or whichever of the two the CA sent. */
	if (asprintf(&words, "%s%s%s%s", title || detail ? ": " : "", strempty(title),
		     title && detail ? " — " : "", strempty(detail)) < 0) {
		words = NULL;
		return fail_oom(error);
	}
	if (asprintf(&where, "(%s%sHTTP %ld)", strempty(type), type ? ", " : "", answer->status) <
	    0) {
		where = NULL;
		return fail_oom(error);
	}

	/* TRANSLATORS (the four messages below): the %s right after the
	 * sentence is empty, or ": " and the CA's own words (its title — its
	 * detail); the last %s is "(<problem type>, HTTP <status>)". */
	if (answer->status == 429 && parse_retry_after(answer->retry_after, &retry_after) &&
	    retry_after > WAIT_MAX_SEC)
		r = fail(
		    error, CA_ERROR_GAVE_UP, answer->status, -ETIME,
		    _("The CA is too busy and asks to wait %u s, longer than safecad waits%s %s"),
		    retry_after, words, where);
	else if (answer->status == 429 && parse_retry_after(answer->retry_after, &retry_after))
		r = fail(error, CA_ERROR_GAVE_UP, answer->status, -ETIME,
			 _("The CA is too busy to answer in time%s %s"), words, where);
	else if (answer->status >= 500)
		r = fail(error, CA_ERROR_PROBLEM, answer->status, -EPROTO,
			 _("The CA could not handle the request%s %s"), words, where);
	else
		r = fail(error, CA_ERROR_PROBLEM, answer->status, -EPROTO,
			 _("The CA refused the request%s %s"), words, where);
	if (error && r != -ENOMEM) {
		error->type = TAKE_PTR(type);
		error->title = TAKE_PTR(title);
		error->detail = TAKE_PTR(detail);
	}
	return r;
}

/* Whether a wait of seconds still ends before the deadline. */
static bool wait_fits(int64_t deadline, unsigned seconds)
{
	return now_monotonic() + (int64_t)seconds <= deadline;
}

/* A 429 whose Retry-After is at most 60 s is waited out (protocol v1,
 * Errors). */
bool ca_v1_busy_wait(const CaV1Answer *answer, int64_t deadline, unsigned *ret_seconds)
{
	unsigned seconds;

	if (answer->status != 429 || !parse_retry_after(answer->retry_after, &seconds) ||
	    seconds > WAIT_MAX_SEC || !wait_fits(deadline, seconds))
		return false;
	*ret_seconds = seconds < WAIT_MIN_SEC ? WAIT_MIN_SEC : seconds;
	return true;
}

/* An unsigned request, sent once more after a first 429 waited out. */
static int client_send_patiently(Client *client, const char *url, const char *content_type,
				 const char *body, int64_t deadline, CaV1Answer *ret,
				 CaError *error)
{
	for (bool retried = false;; retried = true) {
		_cleanup_(ca_v1_answer_clear) CaV1Answer answer = {};
		unsigned wait;
		int r;

		r = ca_http_send(client, url, content_type, body, body ? strlen(body) : 0, &answer,
				 error);
		if (r < 0)
			return r;
		if (!retried && ca_v1_busy_wait(&answer, deadline, &wait)) {
			log_debug("%s: the CA is busy, waiting %u s.", url, wait);
			sleep_seconds(wait);
			continue;
		}
		*ret = answer;
		answer = (CaV1Answer){};
		return 0;
	}
}

/* GET /nonce: 204 with a Replay-Nonce header, and nothing else. */
int ca_v1_nonce_answer(const CaV1Answer *answer, const char *url, char **ret, CaError *error)
{
	char *nonce;

	if (answer->status != 204)
		return ca_v1_answer_error(answer, url, error);
	if (answer->nonce_bad || !answer->nonce[0])
		return fail_malformed(error, answer->status,
				      _("no valid Replay-Nonce header from %s"), url);
	nonce = strdup(answer->nonce);
	if (!nonce)
		return fail_oom(error);
	*ret = nonce;
	return 0;
}

static int client_nonce(Client *client, int64_t deadline, char **ret, CaError *error)
{
	_cleanup_free_ char *url = client_url(client, "/nonce");
	_cleanup_(ca_v1_answer_clear) CaV1Answer answer = {};
	int r;

	if (!url)
		return fail_oom(error);
	r = client_send_patiently(client, url, NULL, NULL, deadline, &answer, error);
	if (r < 0)
		return r;
	return ca_v1_nonce_answer(&answer, url, ret, error);
}

/* Sends payload as a JWS with a fresh nonce each time. Takes care of the
 * two answers that mean "send it again": a first badNonce, and a first 429
 * whose Retry-After is at most 60 s (waited out, if the deadline allows).
 * Any other answer goes back to the caller in *ret. */
static int client_post_signed(Client *client, const char *url, const CaSigner *signer,
			      const json_t *payload, int64_t deadline, CaV1Answer *ret,
			      CaError *error)
{
	bool retried_nonce = false, retried_busy = false;
	int r;

	for (;;) {
		_cleanup_free_ char *nonce = NULL, *body = NULL;
		_cleanup_(ca_v1_answer_clear) CaV1Answer answer = {};
		unsigned wait;

		r = client_nonce(client, deadline, &nonce, error);
		if (r < 0)
			return r;
		r = jws_build(signer, nonce, url, payload, &body);
		if (r == -ENOMEM)
			return fail_oom(error);
		if (r < 0)
			return fail(error, CA_ERROR_SIGNER, 0, r,
				    _("The request to the CA could not be signed: %s"),
				    strerror(-r));
		r = ca_http_send(client, url, "application/jose+json", body, strlen(body), &answer,
				 error);
		if (r < 0)
			return r;

		if (answer.status == 400 && !retried_nonce &&
		    ca_v1_answer_is_problem(&answer, "urn:safeca:badNonce")) {
			log_debug("%s: the CA refused the nonce, sending once more.", url);
			retried_nonce = true;
			continue;
		}
		if (!retried_busy && ca_v1_busy_wait(&answer, deadline, &wait)) {
			log_debug("%s: the CA is busy, waiting %u s.", url, wait);
			sleep_seconds(wait);
			retried_busy = true;
			continue;
		}
		*ret = answer;
		answer = (CaV1Answer){};
		return 0;
	}
}

/* The serials sent to /pending, for checking "replaces" in the answer. */
typedef struct Serials {
	char **items;
	size_t n_items;
} Serials;

static void serials_clear(Serials *serials)
{
	for (size_t i = 0; i < serials->n_items; i++)
		free(serials->items[i]);
	free(serials->items);
	*serials = (Serials){};
}

static int pending_body(const char *token_serial, const CaCertificate *certificates,
			size_t n_certificates, Serials *sent, char **ret)
{
	_cleanup_(json_decrefp) json_t *body = NULL, *list = NULL;
	char *text;
	int r;

	list = json_array();
	sent->items = calloc(n_certificates + 1, sizeof(char *));
	if (!list || !sent->items)
		return -ENOMEM;
	for (size_t i = 0; i < n_certificates; i++) {
		_cleanup_free_ char *sha256 = NULL;
		_cleanup_(json_decrefp) json_t *issuer = NULL;
		Name name = {};
		X509 *x509 = certificates[i].x509;

		if (!x509)
			return -EINVAL;
		r = serial_to_hex(X509_get0_serialNumber(x509), &sent->items[i]);
		if (r < 0)
			return r;
		sent->n_items++;
		r = x509_sha256_hex(x509, &sha256);
		if (r < 0)
			return r;
		r = name_from_x509(X509_get_issuer_name(x509), &name);
		if (r < 0)
			return r;
		issuer = json_array();
		for (size_t j = 0; issuer && j < name.n_pairs; j++)
			if (json_array_append_new(issuer,
						  json_pack("[s,s]", name.pairs[j].attribute,
							    name.pairs[j].value)) < 0)
				json_decref(TAKE_PTR(issuer));
		name_clear(&name);
		if (!issuer)
			return -ENOMEM;
		if (json_array_append_new(list,
					  json_pack("{s:s, s:O, s:s}", "serial", sent->items[i],
						    "issuer", issuer, "sha256", sha256)) < 0)
			return -ENOMEM;
	}
	body = json_pack("{s:s, s:O}", "token_serial", token_serial, "certificates", list);
	if (!body)
		return -ENOMEM;
	text = json_dumps(body, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	*ret = text;
	return 0;
}

int ca_v1_pending_answer(const CaV1Answer *answer, const char *url, const char *ca_name,
			 char *const *sent_serials, size_t n_sent, json_t **ret, CaError *error)
{
	_cleanup_(json_decrefp) json_t *json = NULL;
	const char *what = NULL;
	json_t *kept = NULL;
	int r;

	if (answer->status != 200)
		return ca_v1_answer_error(answer, url, error);
	r = answer_json(answer, &json);
	if (r == -ENOMEM)
		return fail_oom(error);
	if (r < 0)
		return fail_malformed(error, answer->status,
				      _("the list of pending actions from %s is not JSON"), url);
	r = ca_v1_pending_validate(ca_name, json, sent_serials, n_sent, &kept, &what);
	if (r == -ENOMEM)
		return fail_oom(error);
	if (r < 0)
		return fail_malformed(error, answer->status,
				      /* TRANSLATORS: the address asked, then what is
				       * wrong with the list. */
				      _("the list of pending actions from %s: %s"), url, what);
	*ret = kept;
	return 0;
}

int ca_pending(const Profile *profile, const CaNetwork *network, const char *token_serial,
	       const CaCertificate *certificates, size_t n_certificates, json_t **ret,
	       CaError *error)
{
	_cleanup_(ca_http_clear) Client client = {};
	_cleanup_free_ char *url = NULL, *body = NULL;
	_cleanup_(ca_v1_answer_clear) CaV1Answer answer = {};
	_cleanup_(serials_clear) Serials sent = {};
	int r;

	if (!token_serial || (n_certificates > 0 && !certificates) || !ret)
		return fail(error, CA_ERROR_NONE, 0, -EINVAL, _("Invalid arguments"));
	/* A CMP CA is not asked: the renewal window says what is due. */
	if (profile && profile->kind == PROFILE_CMP)
		return ca_cmp_pending(profile, certificates, n_certificates, (int64_t)time(NULL),
				      ret, error);
	r = ca_http_open(&client, profile, network, error);
	if (r < 0)
		return r;
	url = client_url(&client, "/pending");
	if (!url)
		return fail_oom(error);
	r = pending_body(token_serial, certificates, n_certificates, &sent, &body);
	if (r == -ENOMEM)
		return fail_oom(error);
	if (r < 0)
		return fail(error, CA_ERROR_NONE, 0, r,
			    _("A certificate on the token cannot be described to the CA: %s"),
			    strerror(-r));

	/* No deadline here but the 60 s cap on the one wait for a 429. */
	r = client_send_patiently(&client, url, "application/json", body, INT64_MAX, &answer,
				  error);
	if (r < 0)
		return r;
	return ca_v1_pending_answer(&answer, url, profile->name, sent.items, sent.n_items, ret,
				    error);
}

/* The PEM callback for a passphrase: certificates are never encrypted,
 * and OpenSSL's default would ask on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	return -1;
}

/* Exactly one certificate in PEM text. */
static int pem_one_certificate(const char *pem, size_t size, X509 **ret)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	_cleanup_(X509_freep) X509 *x509 = NULL, *extra = NULL;

	if (size > INT_MAX)
		return -EBADMSG;
	bio = BIO_new_mem_buf(pem, (int)size);
	if (!bio)
		return -ENOMEM;
	x509 = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	if (x509)
		extra = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	/* Reading past the last PEM block always leaves an error behind. */
	ERR_clear_error();
	if (!x509 || extra)
		return -EBADMSG;
	*ret = TAKE_PTR(x509);
	return 0;
}

static int parse_issued(const CaV1Answer *answer, X509 **ret_certificate,
			STACK_OF(X509) * *ret_chain, const char **ret_what)
{
	_cleanup_(json_decrefp) json_t *json = NULL;
	_cleanup_(X509_freep) X509 *certificate = NULL;
	_cleanup_(x509_stack_freep) STACK_OF(X509) *chain = NULL;
	json_t *pem, *list;
	int r;

	r = answer_json(answer, &json);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || !json_is_object(json)) {
		*ret_what = _("it is not a JSON object");
		return -EBADMSG;
	}
	pem = json_object_get(json, "certificate");
	if (!json_is_string(pem) ||
	    pem_one_certificate(json_string_value(pem), json_string_length(pem), &certificate) <
		0) {
		*ret_what = _("\"certificate\" is not exactly one PEM certificate");
		return -EBADMSG;
	}
	/* The contract always sends "chain", perhaps empty; its absence
	 * means the same. */
	list = json_object_get(json, "chain");
	if (list && !json_is_array(list)) {
		*ret_what = _("\"chain\" is not an array");
		return -EBADMSG;
	}
	if (json_array_size(list) > MAX_CHAIN) {
		*ret_what = _("\"chain\" holds more than 8 certificates");
		return -EBADMSG;
	}
	chain = sk_X509_new_null();
	if (!chain)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *item = json_array_get(list, i);
		X509 *x509 = NULL;

		if (!json_is_string(item) ||
		    pem_one_certificate(json_string_value(item), json_string_length(item), &x509) <
			0) {
			*ret_what = _("an entry of \"chain\" is not exactly one PEM certificate");
			return -EBADMSG;
		}
		if (!sk_X509_push(chain, x509)) {
			X509_free(x509);
			return -ENOMEM;
		}
	}
	*ret_certificate = TAKE_PTR(certificate);
	*ret_chain = TAKE_PTR(chain);
	return 0;
}

/* How long a 202 asks to wait: the Retry-After header, else the body's
 * retry_after, else a default; always within [1, 60] s. */
static unsigned accepted_wait(const CaV1Answer *answer)
{
	_cleanup_(json_decrefp) json_t *json = NULL;
	unsigned seconds;
	json_t *v;

	if (parse_retry_after(answer->retry_after, &seconds))
		return clamp_wait(seconds);
	if (answer_json(answer, &json) >= 0) {
		v = json_object_get(json, "retry_after");
		if (json_is_integer(v))
			return clamp_wait(json_integer_value(v));
	}
	return WAIT_DEFAULT_SEC;
}

int ca_v1_issue_answer(const CaV1Answer *answer, const char *url, X509 **ret_certificate,
		       STACK_OF(X509) * *ret_chain, unsigned *ret_wait, CaError *error)
{
	X509 *certificate = NULL;
	STACK_OF(X509) *chain = NULL;
	const char *what = NULL;
	int r;

	if (answer->status == 202) {
		*ret_wait = accepted_wait(answer);
		return 1;
	}
	if (answer->status != 200)
		return ca_v1_answer_error(answer, url, error);
	r = parse_issued(answer, &certificate, &chain, &what);
	if (r == -ENOMEM)
		return fail_oom(error);
	if (r < 0)
		return fail_malformed(error, answer->status,
				      /* TRANSLATORS: the address asked, then what is
				       * wrong with the answer. */
				      _("the issued certificate from %s: %s"), url, what);
	*ret_certificate = certificate;
	*ret_chain = chain;
	return 0;
}

static char *action_url(const Client *client, const char *action_id, const char *verb)
{
	char *url;

	if (asprintf(&url, "%s/actions/%s/%s", client->base, action_id, verb) < 0)
		return NULL;
	return url;
}

int ca_issue(const Profile *profile, const CaNetwork *network, const char *action_id,
	     const CaSigner *signer, const unsigned char *csr, size_t csr_size,
	     X509 **ret_certificate, STACK_OF(X509) * *ret_chain, CaError *error)
{
	_cleanup_(ca_http_clear) Client client = {};
	_cleanup_free_ char *url = NULL, *csr64 = NULL;
	_cleanup_(json_decrefp) json_t *payload = NULL;
	int64_t deadline;
	int r;

	/* The id goes into the path: only the contract's characters. */
	if (!ca_v1_action_id_valid(action_id) || !signer || !csr || csr_size == 0 ||
	    !ret_certificate || !ret_chain)
		return fail(error, CA_ERROR_NONE, 0, -EINVAL, _("Invalid arguments"));
	r = ca_http_open(&client, profile, network, error);
	if (r < 0)
		return r;
	url = action_url(&client, action_id, "issue");
	csr64 = base64url_encode(csr, csr_size);
	payload = csr64 ? json_pack("{s:s}", "csr", csr64) : NULL;
	if (!url || !payload)
		return fail_oom(error);

	deadline = now_monotonic() + poll_limit_sec;
	for (;;) {
		_cleanup_(ca_v1_answer_clear) CaV1Answer answer = {};
		unsigned wait = 0;

		r = client_post_signed(&client, url, signer, payload, deadline, &answer, error);
		if (r < 0)
			return r;
		r = ca_v1_issue_answer(&answer, url, ret_certificate, ret_chain, &wait, error);
		if (r <= 0)
			return r;
		if (!wait_fits(deadline, wait) && poll_limit_sec % 60 == 0)
			return fail(error, CA_ERROR_GAVE_UP, answer.status, -ETIME,
				    _("The CA had not issued the certificate after %u min; a later "
				      "activation continues where this one stopped"),
				    poll_limit_sec / 60);
		if (!wait_fits(deadline, wait))
			return fail(error, CA_ERROR_GAVE_UP, answer.status, -ETIME,
				    _("The CA had not issued the certificate after %u s; a later "
				      "activation continues where this one stopped"),
				    poll_limit_sec);
		log_debug("%s: not issued yet, asking again in %u s.", url, wait);
		sleep_seconds(wait);
	}
}

int ca_v1_confirm_answer(const CaV1Answer *answer, const char *url, CaError *error)
{
	_cleanup_(json_decrefp) json_t *json = NULL;
	int r;

	if (answer->status != 200)
		return ca_v1_answer_error(answer, url, error);
	r = answer_json(answer, &json);
	if (r == -ENOMEM)
		return fail_oom(error);
	if (r < 0 || !streq_ptr(json_string_value(json_object_get(json, "status")), "completed"))
		return fail_malformed(error, answer->status,
				      _("the confirmation from %s does not say \"completed\""),
				      url);
	return 0;
}

int ca_confirm(const Profile *profile, const CaNetwork *network, const char *action_id,
	       const CaSigner *signer, const char *installed_serial, bool keep_previous,
	       CaError *error)
{
	_cleanup_(ca_http_clear) Client client = {};
	_cleanup_free_ char *url = NULL;
	_cleanup_(json_decrefp) json_t *payload = NULL;
	_cleanup_(ca_v1_answer_clear) CaV1Answer answer = {};
	int r;

	if (!ca_v1_action_id_valid(action_id) || !signer || isempty(installed_serial))
		return fail(error, CA_ERROR_NONE, 0, -EINVAL, _("Invalid arguments"));
	r = ca_http_open(&client, profile, network, error);
	if (r < 0)
		return r;
	url = action_url(&client, action_id, "confirm");
	payload = json_pack("{s:s, s:b}", "installed_serial", installed_serial, "keep_previous",
			    keep_previous);
	if (!url || !payload)
		return fail_oom(error);

	r = client_post_signed(&client, url, signer, payload, now_monotonic() + poll_limit_sec,
			       &answer, error);
	if (r < 0)
		return r;
	return ca_v1_confirm_answer(&answer, url, error);
}
