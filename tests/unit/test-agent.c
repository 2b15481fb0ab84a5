/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* safecad-notify's pieces that handle untrusted text: the Assuan escaping
 * of what goes to pinentry, the decoding of the PIN it answers (and a whole
 * dialogue with a scripted pinentry that misbehaves in each way), the
 * cleaning of the CA's text, and which actions may be activated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>

#include "action.h"
#include "macro.h"
#include "notify-pinentry.h"
#include "tmpdir.h"

static void test_assuan_escape(void **state)
{
	char *s;

	s = assuan_escape("100% sure\nline two\rand\ttab", 200);
	assert_string_equal(s, "100%25 sure%0Aline two%0Dand%09tab");
	free(s);
	/* UTF-8 passes as it is. */
	s = assuan_escape("Mã PIN của token", 200);
	assert_string_equal(s, "Mã PIN của token");
	free(s);
	/* Cut at max without splitting an escape... */
	s = assuan_escape("ab%cd", 4);
	assert_string_equal(s, "ab");
	free(s);
	/* ...or a character ("ã" is two bytes). */
	s = assuan_escape("Mã", 2);
	assert_string_equal(s, "M");
	free(s);
	s = assuan_escape("", 10);
	assert_string_equal(s, "");
	free(s);
}

static void test_assuan_decode_pin(void **state)
{
	static const struct {
		const char *data;
		int r;
		const char *pin;
	} cases[] = {
	    {"123456", 0, "123456"},
	    {"12%2534", 0, "12%34"},
	    {"%41%62", 0, "Ab"},
	    {"pin with space", 0, "pin with space"},
	    /* A PIN is one line: no newline, carriage return or NUL. */
	    {"12%0A34", -EBADMSG, NULL},
	    {"12%0D34", -EBADMSG, NULL},
	    {"12%0034", -EBADMSG, NULL},
	    /* Broken escapes. */
	    {"12%G134", -EBADMSG, NULL},
	    {"12%4", -EBADMSG, NULL},
	    {"12%", -EBADMSG, NULL},
	};
	Pin *pin;
	char big[PIN_MAX + 8];

	assert_int_equal(pin_new(&pin), 0);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		int r = assuan_decode_pin(cases[i].data, strlen(cases[i].data), pin);
		assert_int_equal(r, cases[i].r);
		if (r == 0) {
			assert_string_equal(pin->data, cases[i].pin);
			assert_int_equal(pin->size, strlen(cases[i].pin));
		} else {
			/* Nothing of a refused answer stays behind. */
			assert_int_equal(pin->size, 0);
			for (size_t j = 0; j < PIN_MAX; j++)
				assert_int_equal(pin->data[j], 0);
		}
	}
	memset(big, '7', sizeof(big));
	assert_int_equal(assuan_decode_pin(big, PIN_MAX - 1, pin), 0);
	assert_int_equal(assuan_decode_pin(big, PIN_MAX, pin), -EMSGSIZE);
	assert_int_equal(pin->size, 0);
	assert_int_equal(pin->data[0], 0);
	pin_free(pin);
}

static void test_ca_text_clean(void **state)
{
	char *s;

	/* Controls go (newline stays); so do C1 controls and bidi overrides
	 * that could make a name read backwards. */
	s = ca_text_clean("Gia h\x1b[31mạn\n\x07ok\x7f", 100);
	assert_string_equal(s, "Gia h[31mạn\nok");
	free(s);
	s = ca_text_clean("a\xc2\x85"
			  "b\xe2\x80\xae"
			  "cd\xe2\x81\xa6"
			  "e\xe2\x80\x8b",
			  100);
	/* U+200B (zero width space) is not an override and stays. */
	assert_string_equal(s, "abcde\xe2\x80\x8b");
	free(s);
	/* max counts characters, and never splits one. */
	s = ca_text_clean("Hồ Chí Minh", 3);
	assert_string_equal(s, "Hồ ");
	free(s);
	s = ca_text_clean("", 3);
	assert_string_equal(s, "");
	free(s);
}

static void test_action_activatable(void **state)
{
	static const struct {
		const char *json;
		bool ok;
	} cases[] = {
	    {"{\"type\":\"renew\",\"key\":{\"generate\":true,\"type\":\"rsa\",\"bits\":2048}}",
	     true},
	    {"{\"type\":\"renew\",\"key\":{\"generate\":true,\"type\":\"rsa\",\"bits\":4096}}",
	     true},
	    {"{\"type\":\"change\",\"key\":{\"generate\":false}}", true},
	    {"{\"type\":\"renew\",\"key\":{\"generate\":true,\"type\":\"ec\",\"curve\":\"P-256\"}}",
	     true},
	    {"{\"type\":\"renew\",\"key\":{\"generate\":true,\"type\":\"rsa\",\"bits\":1024}}",
	     false},
	    {"{\"type\":\"renew\",\"key\":{\"generate\":true,\"type\":\"ec\",\"curve\":\"P-384\"}}",
	     false},
	    {"{\"type\":\"revoke\",\"key\":{\"generate\":false}}", false},
	    {"{\"key\":{\"generate\":false}}", false},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		json_t *action = json_loads(cases[i].json, 0, NULL);
		assert_non_null(action);
		assert_int_equal(action_activatable(action), cases[i].ok);
		json_decref(action);
	}
}

/* --- a whole dialogue with a scripted pinentry ---------------------------- */

/* Answers the greeting and then one line of PIN_TEST_REPLIES (separated by
 * |, \n inside a reply for several lines) per command it reads. */
static const char script[] = "#!/bin/sh\n"
			     "IFS='|'\n"
			     "set -- $PIN_TEST_REPLIES\n"
			     "printf '%b\\n' \"$1\"; shift\n"
			     "while read -r line; do\n"
			     "  [ $# -gt 0 ] || exit 0\n"
			     "  printf '%b\\n' \"$1\"; shift\n"
			     "done\n";

typedef struct Outcome {
	bool done;
	int r;
	char pin[PIN_MAX];
} Outcome;

static void on_done(void *userdata, Pin *pin, int r)
{
	Outcome *o = userdata;

	o->done = true;
	o->r = r;
	if (pin)
		strcpy(o->pin, pin->data);
	pin_free(pin);
}

/* Runs one dialogue (OPTION, SETDESC, GETPIN) against replies. */
static Outcome dialogue(const char *dir, const char *replies)
{
	_cleanup_free_ char *path = NULL;
	Outcome o = {};
	sd_event *event = NULL;
	Pinentry *p = NULL;
	FILE *f;

	assert_true(asprintf(&path, "%s/pinentry", dir) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(script, f);
	fclose(f);
	chmod(path, 0755);
	setenv("PINENTRY", path, 1);
	setenv("PIN_TEST_REPLIES", replies, 1);
	assert_int_equal(sd_event_new(&event), 0);
	assert_int_equal(
	    pinentry_start(event, &(PinentryRequest){.description = "Mã PIN"}, on_done, &o, &p), 0);
	for (int i = 0; i < 500 && !o.done; i++)
		assert_true(sd_event_run(event, 10000) >= 0);
	assert_true(o.done);
	pinentry_free(p);
	sd_event_unref(event);
	return o;
}

static void test_pinentry_dialogues(void **state)
{
	char *dir = tmpdir_new();
	static const struct {
		const char *replies;
		int r;
		const char *pin;
	} cases[] = {
	    {"OK hello|OK|OK|D 12%2534\\nOK", 0, "12%34"},
	    /* Status and comment lines are not answers. */
	    {"OK hello|OK|# note\\nOK|S PASSPHRASE_QUALITY 10\\nD 123456\\nOK", 0, "123456"},
	    /* An option pinentry does not know is no failure. */
	    {"OK hello|ERR 275 Unknown option|OK|D 1111\\nOK", 0, "1111"},
	    {"OK hello|OK|OK|ERR 83886179 Operation cancelled", -ECANCELED, NULL},
	    {"OK hello|OK|OK|OK", -ENODATA, NULL},
	    {"OK hello|OK|ERR 83886081 General error", -EIO, NULL},
	    /* Data before GETPIN, a question we cannot answer, an unknown
	     * line, a PIN with a newline in it. */
	    {"OK hello|OK|D 9999\\nOK", -EPROTO, NULL},
	    {"OK hello|OK|OK|INQUIRE QUALITY 1234", -EPROTO, NULL},
	    {"OK hello|OK|OK|HELLO", -EPROTO, NULL},
	    {"OK hello|OK|OK|D 12%0A34\\nOK", -EBADMSG, NULL},
	    /* pinentry dies mid-way. */
	    {"OK hello|OK", -EPIPE, NULL},
	    {"ERR 1 no", -EIO, NULL},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Outcome o = dialogue(dir, cases[i].replies);
		assert_int_equal(o.r, cases[i].r);
		if (cases[i].pin)
			assert_string_equal(o.pin, cases[i].pin);
	}
	tmpdir_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_assuan_escape),      cmocka_unit_test(test_assuan_decode_pin),
	    cmocka_unit_test(test_ca_text_clean),      cmocka_unit_test(test_action_activatable),
	    cmocka_unit_test(test_pinentry_dialogues),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
