/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ca/ca-v1-pending.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "ca/ca-client.h"
#include "i18n.h"
#include "log/log.h"
#include "macro.h"

bool ca_v1_action_id_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= CA_V1_MAX_ID_LENGTH)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

static bool hex_equal(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a, y = *b;
		if (x >= 'A' && x <= 'F')
			x = (char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'F')
			y = (char)(y - 'A' + 'a');
		if (x != y)
			return false;
	}
	return *a == *b;
}

static int digits(const char **p, size_t n, unsigned *ret)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(c - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static unsigned days_in_month(unsigned year, unsigned month)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

int ca_v1_parse_time(const char *s, int64_t *ret)
{
	unsigned year, month, day, hour, minute, second;
	const char *p = s;
	struct tm tm = {};
	time_t t;

	if (!s)
		return -EINVAL;
	if (digits(&p, 4, &year) < 0 || !expect(&p, '-') || digits(&p, 2, &month) < 0 ||
	    !expect(&p, '-') || digits(&p, 2, &day) < 0 || !expect(&p, 'T') ||
	    digits(&p, 2, &hour) < 0 || !expect(&p, ':') || digits(&p, 2, &minute) < 0 ||
	    !expect(&p, ':') || digits(&p, 2, &second) < 0)
		return -EINVAL;
	if (*p == '.') {
		size_t n = 0;
		p++;
		/* Nanoseconds are the finest anyone writes; more digits are
		 * not a time but padding. */
		while (p[n] >= '0' && p[n] <= '9' && n <= 9)
			n++;
		if (n == 0 || n > 9)
			return -EINVAL;
		p += n;
	}
	if (!expect(&p, 'Z') || *p)
		return -EINVAL;
	/* Second 60 is a leap second (RFC 3339 §5.6); timegm carries it. */
	if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
	    minute > 59 || second > 60)
		return -EINVAL;

	tm.tm_year = (int)year - 1900;
	tm.tm_mon = (int)month - 1;
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hour;
	tm.tm_min = (int)minute;
	tm.tm_sec = (int)second;
	t = timegm(&tm);
	*ret = (int64_t)t;
	return 0;
}

/* Decodes one UTF-8 sequence; returns its length, or 0 for a byte that
 * starts no valid sequence (overlong forms and surrogates included). */
static size_t utf8_decode(const unsigned char *s, size_t left, uint32_t *ret)
{
	size_t n;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*ret = s[0];
		return 1;
	}
	if ((s[0] & 0xE0) == 0xC0) {
		n = 2, c = s[0] & 0x1F, min = 0x80;
	} else if ((s[0] & 0xF0) == 0xE0) {
		n = 3, c = s[0] & 0x0F, min = 0x800;
	} else if ((s[0] & 0xF8) == 0xF0) {
		n = 4, c = s[0] & 0x07, min = 0x10000;
	} else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*ret = c;
	return n;
}

/* Characters that would let a CA's text change what the user sees around
 * it: C0 and C1 controls, DEL, and the bidirectional embeddings, overrides
 * and isolates that reorder the rest of a line. */
static bool hidden_control(uint32_t c)
{
	return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
	       (c >= 0x2066 && c <= 0x2069);
}

char *ca_v1_text_clean(const char *s, size_t size, size_t max_chars, bool multiline)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, chars = 0;
	char *out = malloc(size + 1);

	if (!out)
		return NULL;
	while (i < size && chars < max_chars) {
		uint32_t c;
		size_t n = utf8_decode(p + i, size - i, &c);

		if (n == 0) {
			i++;
			continue;
		}
		chars++;
		if (!hidden_control(c) || (multiline && c == '\n')) {
			memcpy(out + o, p + i, n);
			o += n;
		} else if (!multiline && (c == '\n' || c == '\t'))
			out[o++] = ' ';
		i += n;
	}
	out[o] = 0;
	return out;
}

/* An id or value from the CA, made safe and short for a log line. */
static void log_text(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 1 < size; s++)
		buf[o++] = *s >= 0x20 && *s < 0x7F ? *s : '?';
	buf[o] = 0;
}

static bool string_pair(json_t *pair)
{
	json_t *attribute, *value;

	if (!json_is_array(pair) || json_array_size(pair) != 2)
		return false;
	attribute = json_array_get(pair, 0);
	value = json_array_get(pair, 1);
	return json_is_string(attribute) && json_string_length(attribute) > 0 &&
	       json_is_string(value);
}

static const char *subject_problem(json_t *subject)
{
	if (!json_is_array(subject) || json_array_size(subject) == 0)
		return "\"subject\" is missing or not a non-empty array";
	if (json_array_size(subject) > CA_V1_MAX_SUBJECT_PAIRS)
		return "\"subject\" has too many attributes";
	for (size_t i = 0; i < json_array_size(subject); i++)
		if (!string_pair(json_array_get(subject, i)))
			return "\"subject\" holds something other than [attribute, value] pairs";
	return NULL;
}

static const char *key_problem(json_t *key)
{
	json_t *generate, *type;

	if (!json_is_object(key))
		return "\"key\" is missing or not an object";
	generate = json_object_get(key, "generate");
	if (!json_is_boolean(generate))
		return "\"key\".\"generate\" is missing or not a boolean";
	/* With generate false the other members describe the replaced key and
	 * are informational only. */
	if (json_is_false(generate))
		return NULL;
	type = json_object_get(key, "type");
	if (!json_is_string(type))
		return "\"key\".\"type\" is missing or not a string";
	if (streq(json_string_value(type), "rsa") && !json_is_integer(json_object_get(key, "bits")))
		return "\"key\".\"bits\" is missing or not an integer";
	if (streq(json_string_value(type), "ec") && !json_is_string(json_object_get(key, "curve")))
		return "\"key\".\"curve\" is missing or not a string";
	return NULL;
}

static const char *time_problem(json_t *entry)
{
	json_t *nb = json_object_get(entry, "not_before"),
	       *na = json_object_get(entry, "not_after");
	int64_t not_before, not_after;

	if (!json_is_string(nb) || ca_v1_parse_time(json_string_value(nb), &not_before) < 0)
		return "\"not_before\" is missing or not an RFC 3339 UTC time";
	if (!json_is_string(na) || ca_v1_parse_time(json_string_value(na), &not_after) < 0)
		return "\"not_after\" is missing or not an RFC 3339 UTC time";
	if (not_before >= not_after)
		return "\"not_before\" is not before \"not_after\"";
	return NULL;
}

static const char *entry_problem(json_t *entry, char *const *sent_serials, size_t n_sent)
{
	json_t *replaces, *message;
	const char *problem;
	bool sent = false;

	if (!json_is_string(json_object_get(entry, "type")))
		return "\"type\" is missing or not a string";
	replaces = json_object_get(entry, "replaces");
	if (!json_is_string(replaces))
		return "\"replaces\" is missing or not a string";
	for (size_t i = 0; i < n_sent && !sent; i++)
		sent = hex_equal(json_string_value(replaces), sent_serials[i]);
	if (!sent)
		return "\"replaces\" names a certificate the client did not send";
	problem = subject_problem(json_object_get(entry, "subject"));
	if (problem)
		return problem;
	problem = time_problem(entry);
	if (problem)
		return problem;
	problem = key_problem(json_object_get(entry, "key"));
	if (problem)
		return problem;
	message = json_object_get(entry, "message");
	if (message && !json_is_string(message))
		return "\"message\" is not a string";
	return NULL;
}

int ca_v1_pending_validate(const char *ca_name, json_t *answer, char *const *sent_serials,
			   size_t n_sent, json_t **ret, const char **ret_what)
{
	_cleanup_(json_decrefp) json_t *kept = NULL;
	const char *seen[CA_V1_MAX_PENDING];
	size_t n_seen = 0, count;
	json_t *pending;

	ca_name = strempty(ca_name);
	pending = json_is_object(answer) ? json_object_get(answer, "pending") : NULL;
	if (!json_is_array(pending)) {
		if (ret_what)
			*ret_what = _("it has no \"pending\" list");
		return -EBADMSG;
	}
	kept = json_array();
	if (!kept)
		return -ENOMEM;

	count = json_array_size(pending);
	if (count > CA_V1_MAX_PENDING) {
		log_warning("%s: the CA lists %zu pending actions, considering the first %d only.",
			    ca_name, count, CA_V1_MAX_PENDING);
		count = CA_V1_MAX_PENDING;
	}
	for (size_t i = 0; i < count; i++) {
		json_t *entry = json_array_get(pending, i), *id;
		const char *problem = NULL;
		char shown[CA_V1_MAX_ID_LENGTH + 1] = "";

		id = json_is_object(entry) ? json_object_get(entry, "id") : NULL;
		if (json_is_string(id))
			log_text(shown, sizeof(shown), json_string_value(id));

		if (!json_is_object(entry))
			problem = "it is not an object";
		else if (!ca_v1_action_id_valid(json_string_value(id)))
			problem = "\"id\" is missing or not 1 to 64 characters of [A-Za-z0-9_-]";
		else {
			for (size_t j = 0; j < n_seen && !problem; j++)
				if (streq(seen[j], json_string_value(id)))
					problem = "an earlier entry has the same id";
			if (!problem)
				seen[n_seen++] = json_string_value(id);
		}
		if (!problem)
			problem = entry_problem(entry, sent_serials, n_sent);
		if (problem) {
			log_warning("%s: ignoring pending action #%zu (id \"%s\"): %s.", ca_name,
				    i + 1, shown, problem);
			continue;
		}
		if (json_array_append(kept, entry) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(kept);
	return 0;
}

bool ca_action_supported(json_t *action, const char **ret_reason)
{
	const char *reason = NULL, *type;
	json_t *key = json_object_get(action, "key");

	type = json_string_value(json_object_get(action, "type"));
	if (!json_is_object(action) || !type || !json_is_object(key))
		reason = _("the CA's entry is not a valid action");
	else if (!streq(type, "renew") && !streq(type, "change"))
		reason = _("this version of safecad does not know this kind of action");
	else if (json_is_true(json_object_get(key, "generate"))) {
		const char *key_type = json_string_value(json_object_get(key, "type"));
		json_t *bits = json_object_get(key, "bits");
		const char *curve = json_string_value(json_object_get(key, "curve"));

		if (streq_ptr(key_type, "rsa")) {
			json_int_t b = json_integer_value(bits);
			if (!json_is_integer(bits) || (b != 2048 && b != 3072 && b != 4096))
				reason = _("the CA asks for an RSA key size that safecad cannot "
					   "make (only 2048, 3072 and 4096 bits)");
		} else if (streq_ptr(key_type, "ec")) {
			if (!streq_ptr(curve, "P-256"))
				reason = _("the CA asks for an EC curve that safecad cannot make "
					   "(only P-256)");
		} else
			reason = _("the CA asks for a kind of key safecad cannot make");
	} else if (!json_is_false(json_object_get(key, "generate")))
		reason = _("the CA's entry is not a valid action");

	if (reason) {
		if (ret_reason)
			*ret_reason = reason;
		return false;
	}
	return true;
}

char *ca_action_message_for_display(json_t *action)
{
	json_t *message = json_object_get(action, "message");
	char *text;

	if (!json_is_string(message)) {
		errno = 0;
		return NULL;
	}
	text = ca_v1_text_clean(json_string_value(message), json_string_length(message),
				CA_V1_MAX_MESSAGE_CHARS, true);
	if (!text)
		errno = ENOMEM;
	return text;
}

int ca_action_validity(json_t *action, int64_t *ret_not_before, int64_t *ret_not_after)
{
	int64_t not_before, not_after;
	int r;

	r = ca_v1_parse_time(json_string_value(json_object_get(action, "not_before")), &not_before);
	if (r < 0)
		return -EBADMSG;
	r = ca_v1_parse_time(json_string_value(json_object_get(action, "not_after")), &not_after);
	if (r < 0)
		return -EBADMSG;
	*ret_not_before = not_before;
	*ret_not_after = not_after;
	return 0;
}
