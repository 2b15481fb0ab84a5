/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "macro.h"
#include "pki.h"
#include "state/profiles.h"
#include "tmpdir.h"

#define T_2025 INT64_C(1735689600)
#define T_2035 INT64_C(2051222400)

typedef struct Fixture {
	char *dir;
	EVP_PKEY *ca_key, *same_name_key, *other_key, *root_key, *leaf_key;
	X509_NAME *ca_name, *other_name, *root_name, *leaf_name;
	X509 *ca;	    /* CN=SAFE-CA Issuing CA */
	X509 *same_name_ca; /* the same subject, another key */
	X509 *other_ca;	    /* CN=Other CA */
	X509 *root;	    /* CN=SAFE-CA Root, which signed intermediate */
	X509 *intermediate; /* CN=SAFE-CA Issuing CA, signed by root, ca_key */
} Fixture;

static X509 *make_ca(const X509_NAME *name, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
		     int64_t serial)
{
	return pki_cert_new(&(PkiCert){.subject = name,
				       .key = key,
				       .issuer = issuer,
				       .issuer_key = issuer_key,
				       .serial = serial,
				       .not_before = T_2025,
				       .not_after = T_2035,
				       .ca = true,
				       .key_ids = true});
}

static X509 *make_leaf(Fixture *f, X509 *issuer, EVP_PKEY *issuer_key, bool key_ids)
{
	return pki_cert_new(&(PkiCert){.subject = f->leaf_name,
				       .key = f->leaf_key,
				       .issuer = issuer,
				       .issuer_key = issuer_key,
				       .serial = 0x5401a3,
				       .not_before = T_2025,
				       .not_after = T_2035,
				       .key_ids = key_ids});
}

static int setup(void **state)
{
	Fixture *f = calloc(1, sizeof(Fixture));

	assert_non_null(f);
	f->dir = tmpdir_new();
	f->ca_key = pki_key_new();
	f->same_name_key = pki_key_new();
	f->other_key = pki_key_new();
	f->root_key = pki_key_new();
	f->leaf_key = pki_key_new();
	f->ca_name = pki_name_cn("SAFE-CA Issuing CA");
	f->other_name = pki_name_cn("Other CA");
	f->root_name = pki_name_cn("SAFE-CA Root");
	f->leaf_name = pki_name_cn("CÔNG TY TNHH AN PHÁT");
	f->ca = make_ca(f->ca_name, f->ca_key, NULL, NULL, 1);
	f->same_name_ca = make_ca(f->ca_name, f->same_name_key, NULL, NULL, 2);
	f->other_ca = make_ca(f->other_name, f->other_key, NULL, NULL, 3);
	f->root = make_ca(f->root_name, f->root_key, NULL, NULL, 4);
	f->intermediate = make_ca(f->ca_name, f->ca_key, f->root, f->root_key, 5);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;

	tmpdir_remove(f->dir);
	X509_free(f->ca);
	X509_free(f->same_name_ca);
	X509_free(f->other_ca);
	X509_free(f->root);
	X509_free(f->intermediate);
	X509_NAME_free(f->ca_name);
	X509_NAME_free(f->other_name);
	X509_NAME_free(f->root_name);
	X509_NAME_free(f->leaf_name);
	EVP_PKEY_free(f->ca_key);
	EVP_PKEY_free(f->same_name_key);
	EVP_PKEY_free(f->other_key);
	EVP_PKEY_free(f->root_key);
	EVP_PKEY_free(f->leaf_key);
	free(f);
	return 0;
}

/* dir/name holding these certificates as PEM */
static void write_issuers(const char *dir, const char *name, X509 *const *certs, size_t n)
{
	char *path = tmpdir_write_string(dir, name, "");

	pki_write_pem(path, certs, n);
	free(path);
}

static char *join(const char *a, const char *b)
{
	char *r = NULL;

	assert_true(asprintf(&r, "%s/%s", a, b) > 0);
	return r;
}

static void assert_starts_with(const char *s, const char *prefix)
{
	assert_non_null(s);
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

static void assert_contains(const char *s, const char *part)
{
	assert_non_null(s);
	if (!strstr(s, part))
		fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* Writes text to dir/name and loads it; returns profile_load_file's result. */
static int load(const char *dir, const char *name, const char *text, Profile **ret,
		char **ret_message)
{
	char *path = tmpdir_write_string(dir, name, text);
	int r = profile_load_file(path, ret, ret_message);

	free(path);
	return r;
}

/* Expects text to be refused; returns the message (to free). */
static char *load_refused(const char *dir, const char *text)
{
	Profile *profile = (Profile *)0x1;
	char *message = NULL;
	int r = load(dir, "refused.conf", text, &profile, &message);

	if (r >= 0)
		fail_msg("accepted:\n%s", text);
	/* ret stays untouched on failure */
	assert_ptr_equal(profile, (Profile *)0x1);
	assert_non_null(message);
	return message;
}

static void test_minimal(void **state)
{
	Fixture *f = *state;
	Profile *p = NULL;
	char *message = NULL, *path = join(f->dir, "minimal.conf");

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	assert_int_equal(load(f->dir, "minimal.conf",
			      "[ca]\nname = SAFE-CA\nissuers = issuers.pem\n", &p, &message),
			 0);
	assert_null(message);
	assert_string_equal(p->name, "SAFE-CA");
	assert_string_equal(p->protocol, "v1");
	assert_string_equal(p->file_name, "minimal.conf");
	assert_string_equal(p->path, path);
	assert_null(p->url);
	assert_null(p->trust);
	assert_null(p->support);
	assert_int_equal(p->n_agencies, 0);
	assert_int_equal(sk_X509_num(p->issuers), 1);
	assert_int_equal(X509_cmp(sk_X509_value(p->issuers, 0), f->ca), 0);
	profile_free(p);
	profile_free(NULL);
	free(path);
}

static void test_full_example(void **state)
{
	static const char text[] = "# ca.d/<file>.conf — one CA profile\n"
				   "[ca]\n"
				   "# the profile's name, as status shows it\n"
				   "name = SAFE-CA\n"
				   "protocol = v1\n"
				   "url = https://ra.example.vn/activation/v1\n"
				   "issuers = safe-ca-issuers.pem\n"
				   "trust = safe-ca-api.pem\n"
				   "support = 1900 6154 (T2–T6 8:00–17:00, T7 8:00–12:00)\n"
				   "[agency.tax]\n"
				   "name = Thuế điện tử (Tổng cục Thuế)\n"
				   "url = https://thuedientu.gdt.gov.vn\n"
				   "[agency.procurement]\n"
				   "name = Hệ thống mạng đấu thầu quốc gia\n"
				   "url = https://muasamcong.mpi.gov.vn\n";
	Fixture *f = *state;
	X509 *both[] = {f->ca, f->other_ca};
	char *trust = join(f->dir, "safe-ca-api.pem");
	Profile *p = NULL;

	write_issuers(f->dir, "safe-ca-issuers.pem", both, 2);
	assert_int_equal(load(f->dir, "safe-ca.conf", text, &p, NULL), 0);
	assert_string_equal(p->name, "SAFE-CA");
	assert_string_equal(p->protocol, "v1");
	assert_string_equal(p->url, "https://ra.example.vn/activation/v1");
	assert_string_equal(p->trust, trust);
	assert_string_equal(p->support, "1900 6154 (T2–T6 8:00–17:00, T7 8:00–12:00)");
	assert_int_equal(sk_X509_num(p->issuers), 2);
	assert_int_equal(X509_cmp(sk_X509_value(p->issuers, 0), f->ca), 0);
	assert_int_equal(X509_cmp(sk_X509_value(p->issuers, 1), f->other_ca), 0);
	assert_int_equal(p->n_agencies, 2);
	assert_string_equal(p->agencies[0].id, "tax");
	assert_string_equal(p->agencies[0].name, "Thuế điện tử (Tổng cục Thuế)");
	assert_string_equal(p->agencies[0].url, "https://thuedientu.gdt.gov.vn");
	assert_string_equal(p->agencies[1].id, "procurement");
	assert_string_equal(p->agencies[1].name, "Hệ thống mạng đấu thầu quốc gia");
	assert_string_equal(p->agencies[1].url, "https://muasamcong.mpi.gov.vn");
	profile_free(p);
	free(trust);
}

static void test_paths_relative_to_profile(void **state)
{
	Fixture *f = *state;
	char cwd[PATH_MAX];
	char *folder = join(f->dir, "etc/ca.d");
	char *certs = join(folder, "certs");
	char *abs_issuers = join(f->dir, "elsewhere/abs.pem");
	char *expected_trust = join(folder, "../api/trust.pem");
	char *text = NULL;
	Profile *p = NULL;

	write_issuers(folder, "certs/issuers.pem", &f->ca, 1);
	write_issuers(f->dir, "elsewhere/abs.pem", &f->other_ca, 1);

	/* relative to the profile's folder, not to the working directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(
	    load(folder, "p.conf",
		 "[ca]\nname = P\nissuers = certs/issuers.pem\ntrust = ../api/trust.pem\n", &p,
		 NULL),
	    0);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(sk_X509_num(p->issuers), 1);
	assert_int_equal(X509_cmp(sk_X509_value(p->issuers, 0), f->ca), 0);
	assert_string_equal(p->trust, expected_trust);
	profile_free(p);

	/* absolute paths stay as they are */
	assert_true(asprintf(&text, "[ca]\nname = P\nissuers = %s\ntrust = /etc/ssl/api.pem\n",
			     abs_issuers) > 0);
	assert_int_equal(load(folder, "p.conf", text, &p, NULL), 0);
	assert_int_equal(X509_cmp(sk_X509_value(p->issuers, 0), f->other_ca), 0);
	assert_string_equal(p->trust, "/etc/ssl/api.pem");
	profile_free(p);

	free(text);
	free(folder);
	free(certs);
	free(abs_issuers);
	free(expected_trust);
}

/* profiles.h: trust is "absolute path or NULL", whatever path the profile
 * was loaded by. */
static void test_trust_absolute_from_relative_path(void **state)
{
	Fixture *f = *state;
	char cwd[PATH_MAX];
	Profile *p = NULL;
	char *path;
	int r;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	path = tmpdir_write_string(f->dir, "rel.conf",
				   "[ca]\nname = P\nissuers = issuers.pem\ntrust = api.pem\n");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	r = profile_load_file("rel.conf", &p, NULL);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(r, 0);
	assert_int_equal(sk_X509_num(p->issuers), 1);
	assert_non_null(p->trust);
	if (p->trust[0] != '/') {
		char trust[PATH_MAX];
		snprintf(trust, sizeof(trust), "%s", p->trust);
		profile_free(p);
		free(path);
		fail_msg("trust is \"%s\", not an absolute path", trust);
	}
	profile_free(p);
	free(path);
}

static void test_required(void **state)
{
	Fixture *f = *state;
	char *m;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);

	m = load_refused(f->dir, "[ca]\nissuers = issuers.pem\n");
	assert_contains(m, "refused.conf");
	assert_contains(m, "name");
	free(m);

	m = load_refused(f->dir, "[ca]\nname = SAFE-CA\nurl = https://x\n");
	assert_contains(m, "refused.conf");
	assert_contains(m, "issuers");
	free(m);

	m = load_refused(f->dir, "");
	assert_contains(m, "refused.conf");
	free(m);

	/* [ca] keys in another section do not count */
	m = load_refused(f->dir, "[agency.tax]\nname = T\n[ca]\nissuers = issuers.pem\n");
	free(m);
}

static void test_protocol(void **state)
{
	Fixture *f = *state;
	Profile *p = NULL;
	char *m;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	assert_int_equal(load(f->dir, "v1.conf",
			      "[ca]\nname = A\nprotocol = v1\nissuers = issuers.pem\n", &p, NULL),
			 0);
	assert_string_equal(p->protocol, "v1");
	profile_free(p);

	m = load_refused(f->dir, "[ca]\nname = A\nprotocol = v2\nissuers = issuers.pem\n");
	assert_contains(m, "refused.conf");
	assert_contains(m, "v2");
	free(m);
	m = load_refused(f->dir, "[ca]\nname = A\nprotocol = acme\nissuers = issuers.pem\n");
	free(m);
	m = load_refused(f->dir, "[ca]\nname = A\nprotocol =\nissuers = issuers.pem\n");
	free(m);
}

static void test_agencies(void **state)
{
	Fixture *f = *state;
	Profile *p = NULL;
	char *m, *prefix;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);

	/* url is optional; a section met twice is one agency */
	assert_int_equal(load(f->dir, "a.conf",
			      "[ca]\nname = A\nissuers = issuers.pem\n"
			      "[agency.tax]\nname = Thuế\n"
			      "[agency.customs_2]\nname = Hải quan\nurl = https://customs\n"
			      "[agency.tax]\nurl = https://tax\n",
			      &p, NULL),
			 0);
	assert_int_equal(p->n_agencies, 2);
	assert_string_equal(p->agencies[0].id, "tax");
	assert_string_equal(p->agencies[0].name, "Thuế");
	assert_string_equal(p->agencies[0].url, "https://tax");
	assert_string_equal(p->agencies[1].id, "customs_2");
	assert_string_equal(p->agencies[1].name, "Hải quan");
	profile_free(p);

	assert_int_equal(load(f->dir, "a.conf",
			      "[ca]\nname = A\nissuers = issuers.pem\n[agency.x]\nname = X\n", &p,
			      NULL),
			 0);
	assert_null(p->agencies[0].url);
	profile_free(p);

	/* an agency without a name */
	m = load_refused(
	    f->dir, "[ca]\nname = A\nissuers = issuers.pem\n[agency.tax]\nurl = https://tax\n");
	assert_contains(m, "refused.conf");
	assert_contains(m, "tax");
	free(m);

	/* bad ids, named with the line */
	static const char *const bad_ids[] = {"", "a b", "a.b", "thuế", "a/b"};
	prefix = NULL;
	for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
		char *text = NULL;
		assert_true(
		    asprintf(&text,
			     "[ca]\nname = A\nissuers = issuers.pem\n[agency.%s]\nname = X\n",
			     bad_ids[i]) > 0);
		m = load_refused(f->dir, text);
		free(prefix);
		prefix = join(f->dir, "refused.conf:5: ");
		assert_starts_with(m, prefix);
		free(m);
		free(text);
	}
	free(prefix);
}

static void test_agency_limit(void **state)
{
	Fixture *f = *state;
	char text[8192] = "[ca]\nname = A\nissuers = issuers.pem\n";
	Profile *p = NULL;
	char *m;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	for (int i = 0; i < 64; i++)
		sprintf(text + strlen(text), "[agency.a%d]\nname = A%d\n", i, i);
	assert_int_equal(load(f->dir, "a.conf", text, &p, NULL), 0);
	assert_int_equal(p->n_agencies, 64);
	assert_string_equal(p->agencies[63].name, "A63");
	profile_free(p);

	strcat(text, "[agency.one-too-many]\nname = X\n");
	m = load_refused(f->dir, text);
	free(m);
}

static void test_garbage(void **state)
{
	static const struct {
		const char *text;
		int line;
	} cases[] = {
	    {"[ca]\nname = A\nthis is not ini\nissuers = issuers.pem\n", 3},
	    {"garbage\n", 1},
	    {"[ca\nname = A\n", 1},
	    {"[ca]\nname = A\nissuers = issuers.pem\n\n\n[agency.tax]\nname\n", 7},
	    {"\x7f"
	     "ELF\x02\x01\x01\n",
	     1},
	};
	Fixture *f = *state;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		char *m = load_refused(f->dir, cases[i].text);
		char *prefix = NULL;
		assert_true(asprintf(&prefix, "%s/refused.conf:%d: ", f->dir, cases[i].line) > 0);
		assert_starts_with(m, prefix);
		free(prefix);
		free(m);
	}
}

/* The line and the reason in the message belong together. */
static void test_message_matches_line(void **state)
{
	Fixture *f = *state;
	char *m, *prefix = join(f->dir, "refused.conf:3: ");

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);

	/* a syntax error on line 3, then a bad agency id on line 5 */
	m = load_refused(
	    f->dir, "[ca]\nname = A\ngarbage\n[agency.a b]\nname = X\nissuers = issuers.pem\n");
	assert_true(strncmp(m, prefix, strlen(prefix)) == 0);
	free(prefix);
	if (strstr(m, "agency")) {
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", m);
		free(m);
		fail_msg("line 3 is a syntax error, but the message says: %s", copy);
	}
	free(m);
}

static void test_message_first_reason(void **state)
{
	Fixture *f = *state;
	char *m, *prefix = join(f->dir, "refused.conf:5: ");

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);

	/* two bad agency ids: the first one is reported, with its line */
	m = load_refused(f->dir, "[ca]\nname = A\nissuers = issuers.pem\n[agency.a b]\nname = X\n"
				 "[agency.c d]\nname = Y\n");
	assert_true(strncmp(m, prefix, strlen(prefix)) == 0);
	free(prefix);
	if (!strstr(m, "a b") || strstr(m, "c d")) {
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", m);
		free(m);
		fail_msg("line 5 has [agency.a b], but the message says: %s", copy);
	}
	free(m);
}

static void test_unknown_ignored(void **state)
{
	Fixture *f = *state;
	Profile *p = NULL;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	assert_int_equal(load(f->dir, "u.conf",
			      "[ca]\nname = A\nissuers = issuers.pem\nfuture = 1\n"
			      "[future]\nkey = v\n[agency.tax]\nname = T\nicon = tax.png\n",
			      &p, NULL),
			 0);
	assert_string_equal(p->name, "A");
	assert_int_equal(p->n_agencies, 1);
	profile_free(p);
}

static void test_issuers_file(void **state)
{
	Fixture *f = *state;
	X509 *many[65];
	Profile *p = NULL;
	char *m;

	/* missing */
	m = load_refused(f->dir, "[ca]\nname = A\nissuers = missing.pem\n");
	assert_contains(m, "missing.pem");
	free(m);

	/* a folder */
	free(tmpdir_write_string(f->dir, "folder.pem/x", ""));
	m = load_refused(f->dir, "[ca]\nname = A\nissuers = folder.pem\n");
	free(m);

	/* 64 certificates are fine, 65 too many */
	for (size_t i = 0; i < ELEMENTSOF(many); i++)
		many[i] = f->ca;
	write_issuers(f->dir, "64.pem", many, 64);
	assert_int_equal(load(f->dir, "a.conf", "[ca]\nname = A\nissuers = 64.pem\n", &p, NULL), 0);
	assert_int_equal(sk_X509_num(p->issuers), 64);
	profile_free(p);
	write_issuers(f->dir, "65.pem", many, 65);
	m = load_refused(f->dir, "[ca]\nname = A\nissuers = 65.pem\n");
	free(m);

	/* over 1 MiB */
	{
		size_t size = 1024 * 1024 + 1;
		char *big = malloc(size);
		assert_non_null(big);
		memset(big, '\n', size);
		free(tmpdir_write(f->dir, "big.pem", big, size));
		free(big);
		m = load_refused(f->dir, "[ca]\nname = A\nissuers = big.pem\n");
		free(m);
	}
}

static void test_profile_file_errors(void **state)
{
	Fixture *f = *state;
	Profile *p = (Profile *)0x1;
	char *m = NULL, *path = join(f->dir, "missing.conf");
	size_t size = 64 * 1024 + 1;
	char *big;

	assert_true(profile_load_file(path, &p, &m) < 0);
	assert_ptr_equal(p, (Profile *)0x1);
	assert_contains(m, path);
	free(m);
	free(path);

	path = tmpdir_write(f->dir, "nul.conf", "[ca]\nname = A\0\n", 15);
	m = NULL;
	assert_true(profile_load_file(path, &p, &m) < 0);
	assert_ptr_equal(p, (Profile *)0x1);
	free(m);
	free(path);

	big = malloc(size);
	assert_non_null(big);
	memset(big, '#', size);
	path = tmpdir_write(f->dir, "big.conf", big, size);
	m = NULL;
	assert_int_equal(profile_load_file(path, &p, &m), -EFBIG);
	free(m);
	free(path);
	free(big);

	/* no message wanted */
	path = tmpdir_write_string(f->dir, "bad.conf", "garbage\n");
	assert_true(profile_load_file(path, &p, NULL) < 0);
	free(path);
}

/* Values up to PROFILE_MAX_VALUE (4096 bytes) are read whole; longer ones
 * are refused. */
/* A line holds at most 199 bytes (libinih's buffer): a value that fits
 * is kept whole, a longer line refused with its number. */
static void test_value_limit(void **state)
{
	Fixture *f = *state;
	char value[200];
	char *text = NULL, *m = NULL;
	Profile *p = NULL;
	int r;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	memset(value, 'x', 189);
	value[189] = 0;
	assert_true(
	    asprintf(&text, "[ca]\nname = A\nissuers = issuers.pem\nsupport = %s\n", value) > 0);
	r = load(f->dir, "v.conf", text, &p, &m);
	free(text);
	if (r < 0) {
		char reason[512];
		snprintf(reason, sizeof(reason), "%s", strempty(m));
		free(m);
		fail_msg("a 199-byte line is refused: %s", reason);
	}
	assert_int_equal(strlen(p->support), 189);
	profile_free(p);

	memset(value, 'x', 190);
	value[190] = 0;
	assert_true(
	    asprintf(&text, "[ca]\nname = A\nissuers = issuers.pem\nsupport = %s\n", value) > 0);
	m = load_refused(f->dir, text);
	assert_non_null(strstr(m, ":4: line too long"));
	free(m);
	free(text);
}

/* A long value is never cut short silently: an agency's url with a query
 * must come out whole, or the profile be refused. */
static void test_long_value_not_truncated(void **state)
{
	Fixture *f = *state;
	char url[512] =
	    "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html";
	char *text = NULL, *m = NULL;
	Profile *p = NULL;
	int r;

	write_issuers(f->dir, "issuers.pem", &f->ca, 1);
	while (strlen(url) < 300)
		strcat(url, "/chuyen-muc");
	strcat(url, "?ma_thu_tuc=1.001234&lang=vi");
	assert_true(asprintf(&text,
			     "[ca]\nname = A\nissuers = issuers.pem\n"
			     "[agency.dvc]\nname = Cổng Dịch vụ công quốc gia\nurl = %s\n",
			     url) > 0);
	r = load(f->dir, "long.conf", text, &p, &m);
	free(text);
	if (r == 0) {
		assert_int_equal(p->n_agencies, 1);
		if (!streq(strempty(p->agencies[0].url), url)) {
			char got[512];
			snprintf(got, sizeof(got), "%s", strempty(p->agencies[0].url));
			profile_free(p);
			fail_msg("agency url silently cut from %zu to %zu bytes: \"%s\"",
				 strlen(url), strlen(got), got);
		}
		profile_free(p);
	} else
		free(m);
}

/* Profiles from <data>/ca.d and <config>/ca.d. */
static void test_profiles_load(void **state)
{
	Fixture *f = *state;
	char *data = join(f->dir, "share"), *config = join(f->dir, "etc");
	char *data_ca = join(data, "ca.d"), *config_ca = join(config, "ca.d");
	char *b_local = join(config_ca, "b.conf");
	Profiles profiles = {};
	size_t ia = SIZE_MAX, ib = SIZE_MAX, iz = SIZE_MAX, id = SIZE_MAX;

	write_issuers(data_ca, "issuers.pem", &f->ca, 1);
	write_issuers(config_ca, "issuers.pem", &f->other_ca, 1);
	free(tmpdir_write_string(data_ca, "z.conf", "[ca]\nname = Z\nissuers = issuers.pem\n"));
	free(tmpdir_write_string(data_ca, "b.conf",
				 "[ca]\nname = B shipped\nissuers = issuers.pem\n"));
	free(tmpdir_write_string(data_ca, "a.conf", "[ca]\nname = A\nissuers = issuers.pem\n"));
	free(tmpdir_write_string(data_ca, "c.conf",
				 "[ca]\nname = C shipped\nissuers = issuers.pem\n"));
	free(tmpdir_write_string(data_ca, "broken.conf", "garbage\n"));
	free(tmpdir_write_string(data_ca, "noname.conf", "[ca]\nissuers = issuers.pem\n"));
	free(
	    tmpdir_write_string(data_ca, "README", "[ca]\nname = README\nissuers = issuers.pem\n"));
	free(tmpdir_write_string(data_ca, "x.conf.bak",
				 "[ca]\nname = BAK\nissuers = issuers.pem\n"));
	free(tmpdir_write_string(data_ca, ".hidden.conf",
				 "[ca]\nname = HIDDEN\nissuers = issuers.pem\n"));
	free(tmpdir_write_string(data_ca, "dir.conf/x", ""));
	free(tmpdir_write_string(config_ca, "b.conf",
				 "[ca]\nname = B local\nissuers = issuers.pem\n"));
	/* a broken override removes the shipped file of its name */
	free(tmpdir_write_string(config_ca, "c.conf",
				 "[ca]\nname = C local\nprotocol = v9\n"
				 "issuers = issuers.pem\n"));
	free(tmpdir_write_string(config_ca, "d.conf",
				 "[ca]\nname = D local\nissuers = issuers.pem\n"));

	assert_int_equal(profiles_load(data, config, &profiles), 0);
	assert_int_equal(profiles.n_items, 4);
	/* The daemon's load reads no issuers; a worker's does. */
	for (size_t i = 0; i < profiles.n_items; i++)
		assert_null(profiles.items[i]->issuers);
	assert_int_equal(profiles_load_issuers(&profiles, true), 0);
	assert_int_equal(profiles.n_items, 4);
	for (size_t i = 0; i < profiles.n_items; i++) {
		const Profile *p = profiles.items[i];
		if (streq(p->name, "A"))
			ia = i;
		else if (streq(p->name, "B local")) {
			ib = i;
			assert_string_equal(p->file_name, "b.conf");
			assert_string_equal(p->path, b_local);
			/* its own folder's issuers */
			assert_int_equal(X509_cmp(sk_X509_value(p->issuers, 0), f->other_ca), 0);
		} else if (streq(p->name, "Z"))
			iz = i;
		else if (streq(p->name, "D local"))
			id = i;
		else
			fail_msg("unexpected profile \"%s\" from %s", p->name, p->path);
	}
	assert_true(ia != SIZE_MAX && ib != SIZE_MAX && iz != SIZE_MAX && id != SIZE_MAX);
	/* sorted by file name */
	assert_true(ia < ib);
	assert_true(ib < iz);
	profiles_clear(&profiles);
	assert_int_equal(profiles.n_items, 0);
	profiles_clear(&profiles);
	profiles_clear(NULL);

	free(data);
	free(config);
	free(data_ca);
	free(config_ca);
	free(b_local);
}

static void test_profiles_load_missing_dirs(void **state)
{
	Fixture *f = *state;
	char *none = join(f->dir, "none"), *data = join(f->dir, "share");
	Profiles profiles = {};

	assert_int_equal(profiles_load(none, none, &profiles), 0);
	assert_int_equal(profiles.n_items, 0);
	profiles_clear(&profiles);

	write_issuers(f->dir, "share/ca.d/issuers.pem", &f->ca, 1);
	free(tmpdir_write_string(data, "ca.d/only.conf",
				 "[ca]\nname = Only\nissuers = issuers.pem\n"));
	assert_int_equal(profiles_load(data, none, &profiles), 0);
	assert_int_equal(profiles.n_items, 1);
	assert_string_equal(profiles.items[0]->name, "Only");
	profiles_clear(&profiles);

	assert_int_equal(profiles_load(none, data, &profiles), 0);
	assert_int_equal(profiles.n_items, 1);
	assert_string_equal(profiles.items[0]->name, "Only");
	profiles_clear(&profiles);

	free(none);
	free(data);
}

static const Profile *find(const Profiles *profiles, const char *name)
{
	for (size_t i = 0; i < profiles->n_items; i++)
		if (streq(profiles->items[i]->name, name))
			return profiles->items[i];
	fail_msg("no profile %s", name);
	return NULL;
}

static void test_profiles_match(void **state)
{
	Fixture *f = *state;
	char *data = join(f->dir, "share"), *config = join(f->dir, "etc");
	X509 *other_and_ca[] = {f->other_ca, f->ca};
	Profiles profiles = {}, none = {};
	const Profile *safe, *other, *same, *both, *root_only, *inter;
	X509 *leaf, *leaf_ids, *leaf_same, *leaf_other, *leaf_inter, *self;

	write_issuers(data, "ca.d/safe.pem", &f->ca, 1);
	write_issuers(data, "ca.d/other.pem", &f->other_ca, 1);
	write_issuers(data, "ca.d/same.pem", &f->same_name_ca, 1);
	write_issuers(data, "ca.d/both.pem", other_and_ca, 2);
	write_issuers(data, "ca.d/root.pem", &f->root, 1);
	write_issuers(data, "ca.d/inter.pem", &f->intermediate, 1);
	free(tmpdir_write_string(data, "ca.d/1-safe.conf",
				 "[ca]\nname = SAFE\nissuers = safe.pem\n"));
	free(tmpdir_write_string(data, "ca.d/2-other.conf",
				 "[ca]\nname = OTHER\nissuers = other.pem\n"));
	free(tmpdir_write_string(data, "ca.d/3-same.conf",
				 "[ca]\nname = SAME\nissuers = same.pem\n"));
	assert_int_equal(profiles_load(data, config, &profiles), 0);
	assert_int_equal(profiles_load_issuers(&profiles, true), 0);
	safe = find(&profiles, "SAFE");
	other = find(&profiles, "OTHER");
	same = find(&profiles, "SAME");

	leaf = make_leaf(f, f->ca, f->ca_key, false);
	leaf_ids = make_leaf(f, f->ca, f->ca_key, true);
	leaf_same = make_leaf(f, f->same_name_ca, f->same_name_key, false);
	leaf_other = make_leaf(f, f->other_ca, f->other_key, false);
	leaf_inter = make_leaf(f, f->intermediate, f->ca_key, true);
	self = pki_cert_new(&(PkiCert){.subject = f->ca_name,
				       .key = f->leaf_key,
				       .serial = 9,
				       .not_before = T_2025,
				       .not_after = T_2035});

	assert_ptr_equal(profiles_match(&profiles, leaf), safe);
	assert_ptr_equal(profiles_find(&profiles, safe->file_name), safe);
	assert_null(profiles_find(&profiles, "no-such.conf"));
	assert_null(profiles_find(&profiles, NULL));
	assert_ptr_equal(profiles_match(&profiles, leaf_ids), safe);
	/* the same issuer name, another key: only SAME's CA signed it */
	assert_ptr_equal(profiles_match(&profiles, leaf_same), same);
	assert_ptr_equal(profiles_match(&profiles, leaf_other), other);
	/* the intermediate has the issuing CA's name and key */
	assert_ptr_equal(profiles_match(&profiles, leaf_inter), safe);
	/* a self-signed certificate with the CA's name is not the CA's */
	assert_null(profiles_match(&profiles, self));
	assert_null(profiles_match(&none, leaf));
	profiles_clear(&profiles);

	/* Without SAFE: a certificate signed by the CA's key must not match
	 * the CA of the same name with another key. */
	free(tmpdir_write_string(config, "ca.d/1-safe.conf", "garbage\n"));
	assert_int_equal(profiles_load(data, config, &profiles), 0);
	assert_int_equal(profiles_load_issuers(&profiles, true), 0);
	assert_int_equal(profiles.n_items, 2);
	assert_null(profiles_match(&profiles, leaf));
	assert_null(profiles_match(&profiles, leaf_ids));
	assert_null(profiles_match(&profiles, leaf_inter));
	assert_ptr_equal(profiles_match(&profiles, leaf_same), find(&profiles, "SAME"));
	profiles_clear(&profiles);

	/* several issuers in one profile; an intermediate alone is enough,
	 * its root alone is not */
	free(tmpdir_write_string(config, "ca.d/2-other.conf", "garbage\n"));
	free(tmpdir_write_string(config, "ca.d/3-same.conf", "garbage\n"));
	free(tmpdir_write_string(data, "ca.d/4-both.conf",
				 "[ca]\nname = BOTH\nissuers = both.pem\n"));
	free(tmpdir_write_string(data, "ca.d/5-root.conf",
				 "[ca]\nname = ROOT\nissuers = root.pem\n"));
	assert_int_equal(profiles_load(data, config, &profiles), 0);
	assert_int_equal(profiles_load_issuers(&profiles, true), 0);
	both = find(&profiles, "BOTH");
	root_only = find(&profiles, "ROOT");
	assert_ptr_equal(profiles_match(&profiles, leaf), both);
	assert_ptr_equal(profiles_match(&profiles, leaf_other), both);
	assert_null(profiles_match(&profiles, leaf_same));
	assert_ptr_equal(profiles_match(&profiles, f->intermediate), root_only);
	profiles_clear(&profiles);

	free(tmpdir_write_string(config, "ca.d/4-both.conf", "garbage\n"));
	free(tmpdir_write_string(config, "ca.d/5-root.conf", "garbage\n"));
	free(tmpdir_write_string(data, "ca.d/6-inter.conf",
				 "[ca]\nname = INTER\nissuers = inter.pem\n"));
	assert_int_equal(profiles_load(data, config, &profiles), 0);
	assert_int_equal(profiles_load_issuers(&profiles, true), 0);
	assert_int_equal(profiles.n_items, 1);
	inter = find(&profiles, "INTER");
	assert_ptr_equal(profiles_match(&profiles, leaf_inter), inter);
	assert_ptr_equal(profiles_match(&profiles, leaf), inter);
	assert_null(profiles_match(&profiles, leaf_same));
	profiles_clear(&profiles);

	X509_free(leaf);
	X509_free(leaf_ids);
	X509_free(leaf_same);
	X509_free(leaf_other);
	X509_free(leaf_inter);
	X509_free(self);
	free(data);
	free(config);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_minimal),
	    T(test_full_example),
	    T(test_paths_relative_to_profile),
	    T(test_trust_absolute_from_relative_path),
	    T(test_required),
	    T(test_protocol),
	    T(test_agencies),
	    T(test_agency_limit),
	    T(test_garbage),
	    T(test_message_matches_line),
	    T(test_message_first_reason),
	    T(test_unknown_ignored),
	    T(test_issuers_file),
	    T(test_profile_file_errors),
	    T(test_value_limit),
	    T(test_long_value_not_truncated),
	    T(test_profiles_load),
	    T(test_profiles_load_missing_dirs),
	    T(test_profiles_match),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
