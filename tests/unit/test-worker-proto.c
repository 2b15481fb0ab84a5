/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The frames between the daemon and a token worker, and what the daemon
 * takes from a worker: a worker runs vendor modules, so every frame and
 * every member is checked as hostile input. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus-names.h"
#include "jobs/job.h"
#include "jobs/worker-proto.h"
#include "macro.h"
#include "pki.h"
#include "token/token-info-json.h"
#include "token/token-x509.h"

#define T0 INT64_C(1796083200) /* 2026-12-01T00:00:00Z */

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Writes raw bytes, as a broken or hostile peer would. */
static void raw(int fd, const void *data, size_t size)
{
	assert_int_equal(write(fd, data, size), (ssize_t)size);
}

static void test_frame_round_trip_with_descriptors(void **state)
{
	int sv[2], p[2], fds[WORKER_MAX_FDS] = {-1, -1};
	size_t n_fds = 0;
	json_auto_t *sent = json_pack("{s:s,s:i}", "type", "job", "n", 7);
	json_auto_t *got = NULL;
	char buffer[8] = {};

	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(worker_send(sv[0], sent, p, 2), 0);
	assert_int_equal(worker_recv(sv[1], &got, fds, &n_fds), 1);
	assert_int_equal(n_fds, 2);
	assert_true(json_equal(sent, got));
	assert_string_equal(worker_message_type(got), "job");
	/* The descriptors that came are the pipe's ends. */
	raw(fds[1], "1234", 4);
	assert_int_equal(read(p[0], buffer, sizeof(buffer)), 4);
	assert_memory_equal(buffer, "1234", 4);
	for (size_t i = 0; i < 2; i++) {
		close(fds[i]);
		close(p[i]);
	}
	/* The end of the stream between frames is a clean end. */
	close(sv[0]);
	assert_int_equal(worker_recv(sv[1], &got, NULL, NULL), 0);
	close(sv[1]);
}

static void test_frames_that_are_refused(void **state)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t size;
		int expected;
	} cases[] = {
	    {"length over the cap", "\xff\xff\xff\x7f{}", 6, -EMSGSIZE},
	    {"cut off in the body", "\x0a\x00\x00\x00{\"ty", 8, -EPIPE},
	    {"cut off in the length", "\x0a\x00", 2, -EPIPE},
	    {"not an object", "\x03\x00\x00\x00[1]", 7, -EBADMSG},
	    {"no type", "\x07\x00\x00\x00{\"a\":1}", 11, -EBADMSG},
	    {"type not a string", "\x0a\x00\x00\x00{\"type\":1}", 14, -EBADMSG},
	    {"duplicate keys", "\x1b\x00\x00\x00{\"type\":\"a\",\"type\":\"done\"}", 31, -EBADMSG},
	    {"not JSON", "\x04\x00\x00\x00\xff\xfe{}", 8, -EBADMSG},
	    {"empty body", "\x00\x00\x00\x00", 4, -EBADMSG},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		json_t *got = NULL;
		int sv[2];

		pair(sv);
		raw(sv[0], cases[i].bytes, cases[i].size);
		close(sv[0]);
		if (worker_recv(sv[1], &got, NULL, NULL) != cases[i].expected)
			fail_msg("%s: not %d", cases[i].what, cases[i].expected);
		assert_null(got);
		close(sv[1]);
	}
}

static void test_descriptors_nobody_asked_for_are_refused(void **state)
{
	int sv[2], p[2];
	json_auto_t *sent = json_pack("{s:s}", "type", "progress");
	json_t *got = NULL;
	char c;

	pair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(worker_send(sv[0], sent, p, 1), 0);
	close(p[0]);
	assert_int_equal(worker_recv(sv[1], &got, NULL, NULL), -EBADMSG);
	/* The read end that came was closed, not kept: the write end sees
	 * nobody on the other side. */
	assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(write(p[1], &c, 1), -1);
	assert_int_equal(errno, EPIPE);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static X509 *certificate(int64_t serial)
{
	EVP_PKEY *key = pki_key_new();
	X509_NAME *name = pki_name_cn("Công ty An Phát");
	X509 *x509 = pki_cert_new(&(PkiCert){.subject = name,
					     .key = key,
					     .serial = serial,
					     .not_before = T0,
					     .not_after = T0 + 86400 * 365});

	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return x509;
}

/* The DER of a certificate, to free. */
static unsigned char *der_of(X509 *x509, size_t *ret_size)
{
	unsigned char *der = NULL;
	int size = i2d_X509(x509, &der);

	assert_true(size > 0);
	*ret_size = (size_t)size;
	return der;
}

static void test_certificate_text(void **state)
{
	X509 *x509 = certificate(0x5401a3), *back = NULL;
	size_t size, back_size;
	unsigned char *der = der_of(x509, &size);
	_cleanup_free_ unsigned char *bytes = NULL;
	_cleanup_free_ char *text = der_to_text(der, size);
	_cleanup_free_ char *longer = NULL;

	assert_non_null(text);
	assert_int_equal(der_from_text(text, &bytes, &back_size), 0);
	assert_int_equal(back_size, size);
	assert_memory_equal(bytes, der, size);
	/* What a worker accepts as a certificate: exactly one. */
	assert_int_equal(x509_from_der(bytes, back_size, &back), 0);
	assert_int_equal(X509_cmp(x509, back), 0);
	X509_free(back);
	assert_true(asprintf(&longer, "%sAAAA", text) > 0);
	free(TAKE_PTR(bytes));
	assert_int_equal(der_from_text(longer, &bytes, &back_size), 0);
	assert_int_equal(x509_from_der(bytes, back_size, &back), -EBADMSG);
	assert_int_equal(x509_from_der(bytes, size / 2, &back), -EBADMSG);
	free(TAKE_PTR(bytes));
	/* Not base64url, nothing. */
	assert_int_equal(der_from_text("not/base64+", &bytes, &back_size), -EBADMSG);
	assert_int_equal(der_from_text("", &bytes, &back_size), -EBADMSG);
	assert_int_equal(der_from_text(NULL, &bytes, &back_size), -EBADMSG);
	OPENSSL_free(der);
	X509_free(x509);
}

static void test_token_round_trip(void **state)
{
	TokenInfo info =
		      {
			  .serial = strdup("0123456789abcdef"),
			  .label = strdup("An Phát 01"),
			  .manufacturer = strdup("SoftHSM project"),
			  .model = strdup("SoftHSM v2"),
			  .module = strdup("/usr/lib/softhsm/libsofthsm2.so"),
			  .pin_final_try = true,
			  .pin_min_length = 4,
			  .pin_max_length = 16,
			  .certificates = calloc(2, sizeof(CertificateEntry)),
			  .n_certificates = 1,
		      },
		  back = {};
	CertificateEntry *c = &info.certificates[0];
	json_auto_t *json = NULL;
	X509 *x509 = certificate(42);

	c->label = strdup("An Phát");
	c->key_id = strdup("01");
	c->has_key = true;
	assert_int_equal(certificate_entry_from_x509(x509, c), 0);
	X509_free(x509);
	json = token_info_to_json(&info);
	assert_non_null(json);
	assert_int_equal(token_info_from_json(json, NULL, &back), 0);
	assert_string_equal(back.serial, info.serial);
	assert_string_equal(back.label, info.label);
	assert_string_equal(back.module, info.module);
	assert_true(back.pin_final_try);
	assert_false(back.pin_locked);
	assert_int_equal(back.pin_max_length, 16);
	assert_int_equal(back.n_certificates, 1);
	assert_string_equal(back.certificates[0].serial, c->serial);
	assert_string_equal(back.certificates[0].sha256, c->sha256);
	assert_string_equal(back.certificates[0].key_id, "01");
	assert_true(back.certificates[0].has_key);
	assert_int_equal(back.certificates[0].not_after, c->not_after);
	assert_true(name_equal(&back.certificates[0].subject, &c->subject));
	assert_true(name_equal(&back.certificates[0].issuer, &c->issuer));
	assert_int_equal(back.certificates[0].der_size, c->der_size);
	assert_memory_equal(back.certificates[0].der, c->der, c->der_size);
	assert_null(back.certificates[0].profile);
	token_info_clear(&back);

	/* A member of the wrong type, a negative length, a certificate that
	 * does not parse: refused, nothing kept. */
	json_object_set_new(json, "pin_locked", json_string("no"));
	assert_int_equal(token_info_from_json(json, NULL, &back), -EBADMSG);
	json_object_set_new(json, "pin_locked", json_false());
	json_object_set_new(json, "pin_min_length", json_integer(-1));
	assert_int_equal(token_info_from_json(json, NULL, &back), -EBADMSG);
	json_object_set_new(json, "pin_min_length", json_integer(4));
	/* A certificate's fields as a hostile worker might send them. */
	static const char *const bad[][2] = {
	    {"serial", "5401A3"}, {"serial", ""},	  {"serial", "xyz"}, {"sha256", "00"},
	    {"key_id", "0g"},	  {"der", "not/base64+"}, {"der", ""},
	};
	json_t *cert = json_array_get(json_object_get(json, "certificates"), 0);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		json_t *kept = json_incref(json_object_get(cert, bad[i][0]));

		json_object_set_new(cert, bad[i][0], json_string(bad[i][1]));
		if (token_info_from_json(json, NULL, &back) != -EBADMSG)
			fail_msg("%s = \"%s\" was taken", bad[i][0], bad[i][1]);
		json_object_set_new(cert, bad[i][0], kept);
	}
	json_object_set_new(cert, "subject", json_pack("[[s,i]]", "CN", 1));
	assert_int_equal(token_info_from_json(json, NULL, &back), -EBADMSG);
	json_object_set_new(cert, "subject", json_pack("[[s,s]]", "", "x"));
	assert_int_equal(token_info_from_json(json, NULL, &back), -EBADMSG);
	token_info_clear(&info);
}

static void test_too_many_tokens_are_refused(void **state)
{
	json_auto_t *list = json_array();
	json_auto_t *object = json_object();
	TokenList back = {};

	for (int i = 0; i <= TOKEN_JSON_MAX_TOKENS; i++)
		json_array_append_new(list, json_object());
	assert_int_equal(token_list_from_json(list, NULL, &back), -EBADMSG);
	assert_int_equal(token_list_from_json(object, NULL, &back), -EBADMSG);
}

static void test_outputs_of_a_job(void **state)
{
	Job *job = job_new(JOB_ACTIVATE), *other = job_new(JOB_ACTIVATE);
	json_auto_t *outputs = NULL;
	json_auto_t *bad = NULL;

	job_fail(job, SAFECAD_ERROR_DRIVER_FAILED, "The token's driver failed in %s.", "C_Sign");
	job->result = json_pack("{s:s}", "new_serial", "12");
	outputs = job_outputs_to_json(job);
	assert_non_null(outputs);
	assert_int_equal(job_take_outputs(other, outputs, NULL), 0);
	/* The daemon's own constant (job.c's list), not the worker's string. */
	assert_ptr_not_equal(other->error_name,
			     json_string_value(json_object_get(outputs, "error_name")));
	assert_string_equal(other->error_name, SAFECAD_ERROR_DRIVER_FAILED);
	assert_string_equal(other->error_message, "The token's driver failed in C_Sign.");
	assert_true(json_equal(other->result, job->result));
	assert_null(other->fresh);

	/* An error name that is not one of ours, or members of the wrong
	 * type: refused, and the job keeps what it had. */
	bad = json_pack("{s:s}", "error_name", "org.freedesktop.DBus.Error.AccessDenied");
	assert_int_equal(job_take_outputs(other, bad, NULL), -EBADMSG);
	assert_string_equal(other->error_name, SAFECAD_ERROR_DRIVER_FAILED);
	json_decref(bad);
	bad = json_pack("{s:s}", "pending", "[]");
	assert_int_equal(job_take_outputs(other, bad, NULL), -EBADMSG);
	json_decref(bad);
	bad = json_pack("{s:[]}", "result");
	assert_int_equal(job_take_outputs(other, bad, NULL), -EBADMSG);
	json_decref(bad);
	bad = json_pack("{s:{}}", "fresh");
	assert_int_equal(job_take_outputs(other, bad, NULL), -EBADMSG);
	json_decref(TAKE_PTR(bad));
	job_free(job);
	job_free(other);
}

static void test_job_round_trip(void **state)
{
	Job *job = job_new(JOB_REMOVE_PREVIOUS), *back = NULL;
	X509 *x509 = certificate(7);
	size_t size;
	unsigned char *der = der_of(x509, &size);
	json_auto_t *json = NULL;

	job->token_serial = strdup("0123456789abcdef");
	job->token_label = strdup("An Phát 01");
	job->token_manufacturer = strdup("SoftHSM project");
	job->token_model = strdup("SoftHSM v2");
	job->module_path = strdup("/usr/lib/softhsm/libsofthsm2.so");
	job->network = (CaNetwork){10, 60};
	job->action_id = strdup("r-1");
	job->remove_der = malloc(size);
	assert_non_null(job->remove_der);
	memcpy(job->remove_der, der, size);
	job->remove_der_size = size;
	job->remove_key_id = strdup("01");
	job->remove_key = true;
	job->allow_final_try = true;
	assert_int_equal(job_add_certificate(job, der, size, NULL, "07", "01", true), 0);
	json = job_to_json(job);
	assert_non_null(json);
	assert_int_equal(job_from_json(json, NULL, &back), 0);
	assert_int_equal(back->kind, JOB_REMOVE_PREVIOUS);
	assert_string_equal(back->token_label, "An Phát 01");
	assert_string_equal(back->action_id, "r-1");
	assert_int_equal(back->remove_der_size, size);
	assert_memory_equal(back->remove_der, der, size);
	assert_memory_equal(back->certificates[0].der, der, size);
	assert_true(back->remove_key && back->allow_final_try && back->keep_previous);
	assert_false(back->confirm_write);
	assert_int_equal(back->network.timeout_sec, 60);
	assert_int_equal(back->n_certificates, 1);
	assert_string_equal(back->certificates[0].key_id, "01");
	assert_int_equal(back->pin_fd, -1);
	job_free(back);

	/* An unknown kind, a network limit out of range. */
	json_object_set_new(json, "kind", json_string("format"));
	assert_int_equal(job_from_json(json, NULL, &back), -EBADMSG);
	json_object_set_new(json, "kind", json_string("check"));
	json_object_set_new(json_object_get(json, "network"), "timeout_sec", json_integer(0));
	assert_int_equal(job_from_json(json, NULL, &back), -EBADMSG);
	OPENSSL_free(der);
	X509_free(x509);
	job_free(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_round_trip_with_descriptors),
	    cmocka_unit_test(test_frames_that_are_refused),
	    cmocka_unit_test(test_descriptors_nobody_asked_for_are_refused),
	    cmocka_unit_test(test_certificate_text),
	    cmocka_unit_test(test_token_round_trip),
	    cmocka_unit_test(test_too_many_tokens_are_refused),
	    cmocka_unit_test(test_outputs_of_a_job),
	    cmocka_unit_test(test_job_round_trip),
	};

	/* A write to a pipe nobody reads fails with EPIPE, as checked above. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
