/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checks on a /pending answer (protocol v1 §1) without a network: what
 * is kept verbatim, what is dropped, what is kept but unsupported, and how
 * a CA's message is made safe to show. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>

#include "ca/ca-client.h"
#include "ca/ca-v1-pending.h"
#include "log/log.h"
#include "macro.h"

static char *sent[] = {"5401a3", "ce0f"};

#define GOOD_ENTRY                                                                                 \
	"{\"id\": \"r-7f3a9c\", \"type\": \"renew\", \"replaces\": \"5401a3\","                    \
	" \"subject\": [[\"C\", \"VN\"], [\"ST\", \"Hà Nội\"], [\"CN\", \"CÔNG TY TNHH AN "    \
	"PHÁT\"],"                                                                                \
	" [\"UID\", \"MST:0101234567\"]],"                                                         \
	" \"not_before\": \"2026-12-01T00:00:00Z\", \"not_after\": \"2028-02-29T23:59:59Z\","      \
	" \"key\": {\"generate\": true, \"type\": \"rsa\", \"bits\": 2048},"                       \
	" \"message\": \"Gia hạn chứng thư số\", \"x-future\": {\"a\": [1, 2]}}"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *json = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);

	if (!json)
		fail_msg("bad test JSON at %d: %s: %s", e.position, e.text, text);
	return json;
}

static json_t *answer_of(json_t *entries)
{
	json_t *answer = json_pack("{s:o}", "pending", entries);

	assert_non_null(answer);
	return answer;
}

static json_t *validate(json_t *answer)
{
	json_t *kept = NULL;
	const char *what = NULL;

	assert_int_equal(
	    ca_v1_pending_validate("Test CA", answer, sent, ELEMENTSOF(sent), &kept, &what), 0);
	assert_true(json_is_array(kept));
	return kept;
}

static void test_good_entry_kept_verbatim(void **state)
{
	json_t *entry = parse(GOOD_ENTRY), *copy = json_deep_copy(entry);
	json_t *answer = answer_of(json_pack("[O]", entry)), *kept;
	const char *reason = NULL;
	int64_t not_before = 0, not_after = 0;
	_cleanup_free_ char *message = NULL;

	kept = validate(answer);
	assert_int_equal(json_array_size(kept), 1);
	/* The very object the CA sent, unknown members included. */
	assert_ptr_equal(json_array_get(kept, 0), entry);
	assert_true(json_equal(json_array_get(kept, 0), copy));
	assert_non_null(json_object_get(json_array_get(kept, 0), "x-future"));
	assert_true(ca_action_supported(entry, &reason));
	assert_null(reason);

	assert_int_equal(ca_action_validity(entry, &not_before, &not_after), 0);
	assert_int_equal(not_before, 1796083200);
	assert_int_equal(not_after, 1835481599);
	message = ca_action_message_for_display(entry);
	assert_string_equal(message, "Gia hạn chứng thư số");

	json_decref(kept);
	json_decref(answer);
	json_decref(copy);
	json_decref(entry);
}

/* Each variant breaks the contract in one way; each is dropped alone. */
static void test_broken_entries_dropped(void **state)
{
	static const struct {
		const char *member;
		const char *value; /* JSON, or NULL to remove the member */
	} breaks[] = {
	    {"id", NULL},
	    {"id", "\"\""},
	    {"id", "\"r 1\""},
	    {"id", "\"r/../x\""},
	    {"id", "\"r-é\""},
	    {"id", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""},
	    {"id", "7"},
	    {"type", NULL},
	    {"type", "1"},
	    {"replaces", NULL},
	    {"replaces", "\"5401a4\""},
	    {"replaces", "\"05401a3\""},
	    {"replaces", "5401"},
	    {"subject", NULL},
	    {"subject", "[]"},
	    {"subject", "{\"CN\": \"x\"}"},
	    {"subject", "[[\"CN\"]]"},
	    {"subject", "[[\"CN\", \"x\", \"y\"]]"},
	    {"subject", "[[\"CN\", 1]]"},
	    {"subject", "[[\"\", \"x\"]]"},
	    {"subject", "[\"CN=x\"]"},
	    {"not_before", NULL},
	    {"not_before", "\"2026-12-01\""},
	    {"not_before", "\"2026-12-01T00:00:00\""},
	    {"not_before", "\"2026-12-01T00:00:00+07:00\""},
	    {"not_before", "\"2026-12-01 00:00:00Z\""},
	    {"not_before", "\"2026-02-30T00:00:00Z\""},
	    {"not_before", "\"2026-12-01T24:00:00Z\""},
	    {"not_before", "\"2026-12-01T00:00:00.Z\""},
	    {"not_before", "1796083200"},
	    {"not_after", "\"2026-12-01T00:00:00Z\""}, /* equal to not_before */
	    {"not_after", "\"2025-12-01T00:00:00Z\""}, /* before it */
	    {"not_after", "\"2027-02-29T00:00:00Z\""}, /* no such day */
	    {"key", NULL},
	    {"key", "\"rsa\""},
	    {"key", "{}"},
	    {"key", "{\"generate\": \"yes\"}"},
	    {"key", "{\"generate\": 1, \"type\": \"rsa\", \"bits\": 2048}"},
	    {"key", "{\"generate\": true}"},
	    {"key", "{\"generate\": true, \"type\": 1}"},
	    {"key", "{\"generate\": true, \"type\": \"rsa\"}"},
	    {"key", "{\"generate\": true, \"type\": \"rsa\", \"bits\": \"2048\"}"},
	    {"key", "{\"generate\": true, \"type\": \"rsa\", \"bits\": 2048.0}"},
	    {"key", "{\"generate\": true, \"type\": \"ec\"}"},
	    {"key", "{\"generate\": true, \"type\": \"ec\", \"curve\": 256}"},
	    {"message", "null"},
	    {"message", "[\"a\"]"},
	};

	for (size_t i = 0; i < ELEMENTSOF(breaks); i++) {
		json_t *good = parse(GOOD_ENTRY), *broken = parse(GOOD_ENTRY), *kept, *answer;

		if (breaks[i].value)
			assert_int_equal(
			    json_object_set_new(broken, breaks[i].member, parse(breaks[i].value)),
			    0);
		else
			assert_int_equal(json_object_del(broken, breaks[i].member), 0);
		/* The good one gets another id so that only the break counts. */
		assert_int_equal(json_object_set_new(good, "id", json_string("c-1")), 0);
		answer = answer_of(json_pack("[o, o]", broken, good));
		kept = validate(answer);
		if (json_array_size(kept) != 1)
			fail_msg("break %zu (%s = %s) was not dropped", i, breaks[i].member,
				 breaks[i].value ? breaks[i].value : "absent");
		assert_ptr_equal(json_array_get(kept, 0), good);
		json_decref(kept);
		json_decref(answer);
	}
}

static void test_entry_not_an_object_dropped(void **state)
{
	json_t *answer = parse("{\"pending\": [\"r-1\", 3, null, [], " GOOD_ENTRY "]}");
	json_t *kept = validate(answer);

	assert_int_equal(json_array_size(kept), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(kept, 0), "id")),
			    "r-7f3a9c");
	json_decref(kept);
	json_decref(answer);
}

static void test_accepted_forms(void **state)
{
	static const struct {
		const char *member, *value;
	} forms[] = {
	    /* Hex is compared case-insensitively. */
	    {"replaces", "\"5401A3\""},
	    {"replaces", "\"CE0F\""},
	    /* Fractional seconds are read and dropped. */
	    {"not_before", "\"2026-12-01T00:00:00.5Z\""},
	    {"not_after", "\"2028-02-29T23:59:59.123456789Z\""},
	    {"id", "\"A_z-09\""},
	    {"id", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""},
	    {"subject", "[[\"2.5.4.97\", \"VATVN-0101234567\"], [\"CN\", \"\"]]"},
	    /* With generate false the rest describes the old key. */
	    {"key", "{\"generate\": false}"},
	    {"key", "{\"generate\": false, \"type\": \"rsa\", \"bits\": \"old\"}"},
	    {"message", "\"\""},
	};

	for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
		json_t *entry = parse(GOOD_ENTRY), *answer, *kept;

		assert_int_equal(json_object_set_new(entry, forms[i].member, parse(forms[i].value)),
				 0);
		answer = answer_of(json_pack("[o]", entry));
		kept = validate(answer);
		if (json_array_size(kept) != 1)
			fail_msg("form %zu (%s = %s) was dropped", i, forms[i].member,
				 forms[i].value);
		json_decref(kept);
		json_decref(answer);
	}
}

static void test_duplicate_id_later_dropped(void **state)
{
	json_t *first = parse(GOOD_ENTRY), *second = parse(GOOD_ENTRY), *answer, *kept;

	assert_int_equal(json_object_set_new(second, "type", json_string("change")), 0);
	answer = answer_of(json_pack("[O, O]", first, second));
	kept = validate(answer);
	assert_int_equal(json_array_size(kept), 1);
	assert_ptr_equal(json_array_get(kept, 0), first);
	json_decref(kept);
	json_decref(answer);
	json_decref(first);
	json_decref(second);
}

static void test_unsupported_kept(void **state)
{
	static const struct {
		const char *member, *value;
		bool supported;
	} cases[] = {
	    {"type", "\"change\"", true},
	    {"type", "\"revoke\"", false},
	    {"type", "\"RENEW\"", false},
	    {"key", "{\"generate\": false}", true},
	    {"key", "{\"generate\": true, \"type\": \"rsa\", \"bits\": 3072}", true},
	    {"key", "{\"generate\": true, \"type\": \"rsa\", \"bits\": 4096}", true},
	    {"key", "{\"generate\": true, \"type\": \"rsa\", \"bits\": 1024}", false},
	    {"key", "{\"generate\": true, \"type\": \"rsa\", \"bits\": 8192}", false},
	    {"key", "{\"generate\": true, \"type\": \"ec\", \"curve\": \"P-256\"}", true},
	    {"key", "{\"generate\": true, \"type\": \"ec\", \"curve\": \"P-384\"}", false},
	    {"key", "{\"generate\": true, \"type\": \"ec\", \"curve\": \"p-256\"}", false},
	    {"key", "{\"generate\": true, \"type\": \"ed25519\"}", false},
	    {"key", "{\"generate\": true, \"type\": \"RSA\", \"bits\": 2048}", false},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		json_t *entry = parse(GOOD_ENTRY), *answer, *kept;
		const char *reason = NULL;

		assert_int_equal(json_object_set_new(entry, cases[i].member, parse(cases[i].value)),
				 0);
		answer = answer_of(json_pack("[O]", entry));
		kept = validate(answer);
		if (json_array_size(kept) != 1)
			fail_msg("case %zu (%s = %s) was dropped", i, cases[i].member,
				 cases[i].value);
		if (ca_action_supported(entry, &reason) != cases[i].supported)
			fail_msg("case %zu (%s = %s): supported should be %d", i, cases[i].member,
				 cases[i].value, cases[i].supported);
		if (cases[i].supported)
			assert_null(reason);
		else
			assert_true(reason && *reason);
		json_decref(kept);
		json_decref(answer);
		json_decref(entry);
	}
}

static void test_supported_refuses_garbage(void **state)
{
	json_t *not_object = json_string("renew");
	const char *reason = NULL;

	assert_false(ca_action_supported(NULL, &reason));
	assert_non_null(reason);
	assert_false(ca_action_supported(not_object, NULL));
	json_decref(not_object);
}

static void test_bounded_to_64(void **state)
{
	json_t *entries = json_array(), *answer, *kept;

	for (int i = 0; i < 70; i++) {
		json_t *entry = parse(GOOD_ENTRY);
		char id[16];

		snprintf(id, sizeof(id), "r-%d", i);
		assert_int_equal(json_object_set_new(entry, "id", json_string(id)), 0);
		assert_int_equal(json_array_append_new(entries, entry), 0);
	}
	answer = answer_of(entries);
	kept = validate(answer);
	assert_int_equal(json_array_size(kept), CA_V1_MAX_PENDING);
	assert_string_equal(json_string_value(json_object_get(json_array_get(kept, 63), "id")),
			    "r-63");
	json_decref(kept);
	json_decref(answer);
}

static void test_answer_shape(void **state)
{
	static const char *const bad[] = {
	    "[]", "{}", "{\"pending\": {}}", "{\"pending\": null}", "{\"Pending\": []}",
	};
	json_t *empty = parse("{\"pending\": [], \"more\": 1}"), *kept = NULL;
	const char *what = NULL;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		json_t *answer = parse(bad[i]);

		what = NULL;
		assert_int_equal(
		    ca_v1_pending_validate("Test CA", answer, sent, ELEMENTSOF(sent), &kept, &what),
		    -EBADMSG);
		assert_null(kept);
		assert_non_null(what);
		json_decref(answer);
	}
	kept = validate(empty);
	assert_int_equal(json_array_size(kept), 0);
	json_decref(kept);
	json_decref(empty);
}

static char *display(const char *message_json)
{
	json_t *entry = parse(GOOD_ENTRY);
	char *text;

	assert_int_equal(json_object_set_new(entry, "message", parse(message_json)), 0);
	text = ca_action_message_for_display(entry);
	json_decref(entry);
	return text;
}

static void test_message_for_display(void **state)
{
	_cleanup_free_ char *long_json = NULL, *cut = NULL, *controls = NULL, *exact = NULL;
	json_t *entry = parse(GOOD_ENTRY);
	size_t n = 0;

	/* 1100 two-byte characters: cut at 1024 characters, not bytes. */
	long_json = malloc(2 + 1100 * 2 + 1);
	assert_non_null(long_json);
	long_json[n++] = '"';
	for (int i = 0; i < 1100; i++) {
		memcpy(long_json + n, "\xc3\xa9", 2);
		n += 2;
	}
	long_json[n++] = '"';
	long_json[n] = 0;
	cut = display(long_json);
	assert_non_null(cut);
	assert_int_equal(strlen(cut), 1024 * 2);
	assert_memory_equal(cut, "\xc3\xa9\xc3\xa9", 4);

	/* Control characters go (tab, CR, NUL-free C0, DEL, C1, bidi
	 * override), newline stays. */
	controls = display("\"Dòng 1\\r\\nDòng\\t2\\u0001\\u001b[31m\\u007f\\u0085\\u202eđỏ\\n\"");
	assert_non_null(controls);
	assert_string_equal(controls, "Dòng 1\nDòng2[31mđỏ\n");

	exact = display("\"a\\nb\"");
	assert_string_equal(exact, "a\nb");

	/* No message: NULL, and errno says it is not a failure. */
	assert_int_equal(json_object_del(entry, "message"), 0);
	errno = EINVAL;
	assert_null(ca_action_message_for_display(entry));
	assert_int_equal(errno, 0);
	json_decref(entry);
}

static void test_message_cut_counts_removed(void **state)
{
	_cleanup_free_ char *text = NULL, *json = NULL;
	size_t n = 0;

	/* 1023 'a', a tab, then "bc": the tab is the 1024th character, so
	 * the cut falls before "bc" and the tab is removed. */
	json = malloc(1 + 1023 + 2 + 2 + 1 + 1);
	assert_non_null(json);
	json[n++] = '"';
	memset(json + n, 'a', 1023);
	n += 1023;
	memcpy(json + n, "\\tbc\"", 5);
	n += 5;
	json[n] = 0;
	text = display(json);
	assert_non_null(text);
	assert_int_equal(strlen(text), 1023);
}

static void test_parse_time(void **state)
{
	int64_t t = 0;

	assert_int_equal(ca_v1_parse_time("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(ca_v1_parse_time("2028-02-29T23:59:59Z", &t), 0);
	assert_int_equal(t, 1835481599);
	assert_int_equal(ca_v1_parse_time("2028-02-29T23:59:59.999Z", &t), 0);
	assert_int_equal(t, 1835481599);
	assert_int_equal(ca_v1_parse_time("2000-02-29T00:00:00Z", &t), 0);
	assert_int_equal(ca_v1_parse_time("1900-02-29T00:00:00Z", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time("2028-02-29T23:59:59.1234567890Z", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time("2028-13-01T00:00:00Z", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time("2028-00-01T00:00:00Z", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time("2028-01-01T00:60:00Z", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time("2028-01-01T00:00:00Zx", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time("+2028-01-01T00:00:00Z", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time("", &t), -EINVAL);
	assert_int_equal(ca_v1_parse_time(NULL, &t), -EINVAL);
}

static int setup(void **state)
{
	/* The drops are logged; the test checks the result, not the log. */
	log_set_max_level(LOG_EMERG);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_entry_kept_verbatim),
	    cmocka_unit_test(test_broken_entries_dropped),
	    cmocka_unit_test(test_entry_not_an_object_dropped),
	    cmocka_unit_test(test_accepted_forms),
	    cmocka_unit_test(test_duplicate_id_later_dropped),
	    cmocka_unit_test(test_unsupported_kept),
	    cmocka_unit_test(test_supported_refuses_garbage),
	    cmocka_unit_test(test_bounded_to_64),
	    cmocka_unit_test(test_answer_shape),
	    cmocka_unit_test(test_message_for_display),
	    cmocka_unit_test(test_message_cut_counts_removed),
	    cmocka_unit_test(test_parse_time),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
