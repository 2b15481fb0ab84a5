/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "build-config.h"
#include "state/config.h"
#include "macro.h"
#include "tmpdir.h"

static int setup_dir(void **state)
{
	*state = tmpdir_new();
	return 0;
}

static int teardown_dir(void **state)
{
	tmpdir_remove(*state);
	return 0;
}

static void assert_modules(const Config *c, const char *const *expected, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		assert_non_null(c->modules[i]);
		assert_string_equal(c->modules[i], expected[i]);
	}
	assert_null(c->modules[i]);
}

static void assert_warn_days(const Config *c, const unsigned *expected, size_t n)
{
	assert_int_equal(c->n_warn_days, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c->warn_days[i], expected[i]);
}

static void assert_defaults(const Config *c)
{
	static const char *const modules[] = {"p11-kit-proxy.so"};
	static const unsigned days[] = {30, 14, 7, 3, 1};

	assert_modules(c, modules, 1);
	assert_warn_days(c, days, 5);
	assert_int_equal(c->connect_timeout_sec, 10);
	assert_int_equal(c->timeout_sec, 60);
	assert_int_equal(c->confirm_timeout_sec, 300);
	assert_int_equal(c->call_timeout_sec, 30);
	assert_int_equal(c->keygen_timeout_sec, 180);
	assert_non_null(c->writable_paths);
	assert_string_equal(c->writable_paths[0], "/tmp");
	assert_string_equal(c->writable_paths[3], "/var/lib/softhsm");
}

/* Loads text as safecad.conf; returns config_load's result. */
static int load_text(const char *dir, const char *text, Config *ret, char **ret_message)
{
	char *path = tmpdir_write_string(dir, "safecad.conf", text);
	int r = config_load(path, ret, ret_message);

	free(path);
	return r;
}

/* Expects text to be refused with "<path>:<line>: …" */
static void assert_refused_at(const char *dir, const char *text, int line)
{
	char *path = tmpdir_write_string(dir, "safecad.conf", text);
	char *message = NULL, *prefix = NULL;
	Config c = {.timeout_sec = 4242};
	int r = config_load(path, &c, &message);

	if (r != -EINVAL)
		fail_msg("config_load() = %d, expected -EINVAL, for:\n%s", r, text);
	/* ret stays untouched on failure */
	assert_int_equal(c.timeout_sec, 4242);
	assert_null(c.modules);
	assert_non_null(message);
	assert_true(asprintf(&prefix, "%s:%d: ", path, line) > 0);
	if (strncmp(message, prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", message, prefix);
	free(prefix);
	free(message);
	free(path);
}

static void test_missing_file(void **state)
{
	const char *dir = *state;
	char *path = NULL, *message = NULL;
	Config c = {};

	assert_true(asprintf(&path, "%s/no-such.conf", dir) > 0);
	assert_int_equal(config_load(path, &c, &message), 0);
	assert_null(message);
	assert_defaults(&c);
	config_clear(&c);
	assert_null(c.modules);
	config_clear(&c);
	config_clear(NULL);
	free(path);
}

static void test_empty_file(void **state)
{
	Config c = {};

	assert_int_equal(load_text(*state, "", &c, NULL), 0);
	assert_defaults(&c);
	config_clear(&c);

	assert_int_equal(load_text(*state, "# nothing here\n; nor here\n\n", &c, NULL), 0);
	assert_defaults(&c);
	config_clear(&c);

	assert_int_equal(load_text(*state, "[pkcs11]\n[expiry]\n[network]\n", &c, NULL), 0);
	assert_defaults(&c);
	config_clear(&c);
}

static void test_full_example(void **state)
{
	static const char text[] = "# safecad.conf\n"
				   "[pkcs11]\n"
				   "# comma-separated; default: p11-kit-proxy.so\n"
				   "modules = /usr/lib/softhsm/libsofthsm2.so\n"
				   "[expiry]\n"
				   "warn_days = 30,14,7,3,1\n"
				   "[network]\n"
				   "# seconds, to connect to the CA\n"
				   "connect_timeout = 10\n"
				   "# seconds, a whole request; answers slower than this fail\n"
				   "timeout = 60\n";
	static const char *const modules[] = {"/usr/lib/softhsm/libsofthsm2.so"};
	static const unsigned days[] = {30, 14, 7, 3, 1};
	char *message = NULL;
	Config c = {};

	assert_int_equal(load_text(*state, text, &c, &message), 0);
	assert_null(message);
	assert_modules(&c, modules, 1);
	assert_warn_days(&c, days, 5);
	assert_int_equal(c.connect_timeout_sec, 10);
	assert_int_equal(c.timeout_sec, 60);
	config_clear(&c);
}

static void test_values(void **state)
{
	static const char text[] = "[network]\n"
				   "timeout = 3600\n"
				   "connect_timeout=600\n"
				   "[expiry]\n"
				   "warn_days = 60, 45 ,0\n"
				   "[pkcs11]\n"
				   "modules = /a/one.so, two.so ,,/c/three.so,\n"
				   "call_timeout = 1\n"
				   "keygen_timeout=3600\n"
				   "writable_paths = /run/vendor , /var/lib/vendor/,\n"
				   "[activation]\n"
				   "confirm_timeout = 5\n";
	static const char *const modules[] = {"/a/one.so", "two.so", "/c/three.so"};
	static const unsigned days[] = {60, 45, 0};
	Config c = {};

	assert_int_equal(load_text(*state, text, &c, NULL), 0);
	assert_modules(&c, modules, 3);
	assert_warn_days(&c, days, 3);
	assert_int_equal(c.connect_timeout_sec, 600);
	assert_int_equal(c.timeout_sec, 3600);
	assert_int_equal(c.confirm_timeout_sec, 5);
	assert_int_equal(c.call_timeout_sec, 1);
	assert_int_equal(c.keygen_timeout_sec, 3600);
	assert_string_equal(c.writable_paths[0], "/run/vendor");
	assert_string_equal(c.writable_paths[1], "/var/lib/vendor/");
	assert_null(c.writable_paths[2]);
	config_clear(&c);
}

/* An empty list is allowed: the workers write to the state folder only. */
static void test_writable_paths_empty(void **state)
{
	Config c = {};

	assert_int_equal(load_text(*state, "[pkcs11]\nwritable_paths =\n", &c, NULL), 0);
	assert_non_null(c.writable_paths);
	assert_null(c.writable_paths[0]);
	config_clear(&c);
}

static void test_repeated_keys(void **state)
{
	/* modules add up (a long list spans lines); for other keys the last
	 * one wins; the earlier list is not leaked */
	static const char text[] = "[pkcs11]\n"
				   "modules = a.so, b.so\n"
				   "modules = c.so\n"
				   "[expiry]\n"
				   "warn_days = 1,2,3\n"
				   "warn_days = 9\n";
	static const char *const modules[] = {"a.so", "b.so", "c.so"};
	static const unsigned days[] = {9};
	Config c = {};

	assert_int_equal(load_text(*state, text, &c, NULL), 0);
	assert_modules(&c, modules, 3);
	assert_warn_days(&c, days, 1);
	config_clear(&c);
}

static void test_limits(void **state)
{
	char text[4096];
	Config c = {};

	/* 16 warning days fit, 17 do not */
	strcpy(text, "[expiry]\nwarn_days = 16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1\n");
	assert_int_equal(load_text(*state, text, &c, NULL), 0);
	assert_int_equal(c.n_warn_days, 16);
	assert_int_equal(c.warn_days[0], 16);
	assert_int_equal(c.warn_days[15], 1);
	config_clear(&c);
	assert_refused_at(*state,
			  "[expiry]\nwarn_days = 17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1\n", 2);

	assert_int_equal(load_text(*state, "[expiry]\nwarn_days = 3660\n", &c, NULL), 0);
	config_clear(&c);
	assert_refused_at(*state, "[expiry]\nwarn_days = 3661\n", 2);

	/* 32 modules fit, 33 do not */
	strcpy(text, "[pkcs11]\nmodules = ");
	for (int i = 0; i < 32; i++)
		strcat(text, i ? ",m.so" : "m.so");
	strcat(text, "\n");
	assert_int_equal(load_text(*state, text, &c, NULL), 0);
	assert_non_null(c.modules[31]);
	assert_null(c.modules[32]);
	config_clear(&c);
	text[strlen(text) - 1] = 0;
	strcat(text, ",m.so\n");
	assert_refused_at(*state, text, 2);
}

static void test_bad_values(void **state)
{
	static const struct {
		const char *text;
		int line;
	} cases[] = {
	    {"[network]\ntimeout = 0\n", 2},
	    {"[network]\ntimeout = 3601\n", 2},
	    {"[network]\ntimeout = -1\n", 2},
	    {"[network]\ntimeout = 1e3\n", 2},
	    {"[network]\ntimeout = sixty\n", 2},
	    {"[network]\ntimeout =\n", 2},
	    {"[network]\nconnect_timeout = 0\n", 2},
	    {"[network]\nconnect_timeout = 601\n", 2},
	    {"[network]\nconnect_timeout = 99999999999999999999\n", 2},
	    {"[expiry]\nwarn_days = 30,abc\n", 2},
	    {"[expiry]\nwarn_days = 30;14\n", 2},
	    {"[expiry]\nwarn_days = -1\n", 2},
	    {"[activation]\nconfirm_timeout = 4\n", 2},
	    {"[activation]\nconfirm_timeout = 3601\n", 2},
	    {"[pkcs11]\nmodules =\n", 2},
	    {"[pkcs11]\ncall_timeout = 0\n", 2},
	    {"[pkcs11]\ncall_timeout = 3601\n", 2},
	    {"[pkcs11]\nkeygen_timeout = 0\n", 2},
	    {"[pkcs11]\nkeygen_timeout = 1 minute\n", 2},
	    {"[pkcs11]\nmodules = , ,\n", 2},
	    {"[pkcs11]\nwritable_paths = relative/dir\n", 2},
	    {"[pkcs11]\nwritable_paths = /tmp, ~/x\n", 2},
	    /* an inline '#' is part of the value (PRODUCT.md) */
	    {"[network]\n# fine\ntimeout = 60 # seconds\n", 3},
	    /* the first bad line is named */
	    {"[network]\ntimeout = 5\n\nconnect_timeout = 0\ntimeout = 0\n", 4},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		assert_refused_at(*state, cases[i].text, cases[i].line);
}

static void test_syntax_errors(void **state)
{
	static const struct {
		const char *text;
		int line;
	} cases[] = {
	    {"garbage\n", 1},
	    {"[network]\ntimeout 60\n", 2},
	    {"[network\ntimeout = 60\n", 1},
	    {"[pkcs11]\nmodules = a.so\n\n\nthis is not ini\n", 5},
	    {"\x01\x02\x03\n", 1},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		assert_refused_at(*state, cases[i].text, cases[i].line);
}

/* The message pairs the line with that line's reason: a syntax error on
 * line 2 must not be explained by a bad value on line 3. */
static void test_message_matches_line(void **state)
{
	char *message = NULL;
	Config c = {};

	assert_int_equal(load_text(*state, "[network]\ngarbage\ntimeout = 0\n", &c, &message),
			 -EINVAL);
	assert_non_null(message);
	assert_non_null(strstr(message, ":2: "));
	if (strstr(message, "timeout")) {
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", message);
		free(message);
		fail_msg("line 2 is a syntax error, but the message says: %s", copy);
	}
	free(message);
}

static void test_unknown_settings_ignored(void **state)
{
	static const char text[] = "[network]\n"
				   "proxy = http://example\n"
				   "[future]\n"
				   "feature = on\n"
				   "[expiry]\n"
				   "warn_days = 5\n";
	static const unsigned days[] = {5};
	Config c = {};

	assert_int_equal(load_text(*state, text, &c, NULL), 0);
	assert_warn_days(&c, days, 1);
	config_clear(&c);
}

static void test_no_message_wanted(void **state)
{
	Config c = {};

	assert_int_equal(load_text(*state, "garbage\n", &c, NULL), -EINVAL);
	assert_int_equal(load_text(*state, "[network]\ntimeout = 0\n", &c, NULL), -EINVAL);
}

static void test_unreadable(void **state)
{
	const char *dir = *state;
	char big[70 * 1024];
	char *path, *message = NULL;
	Config c = {};

	/* a folder, not a file */
	assert_true(config_load(dir, &c, &message) < 0);
	assert_null(c.modules);
	free(message);
	message = NULL;

	/* over the size limit */
	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(load_text(dir, big, &c, &message), -EFBIG);
	assert_null(c.modules);
	free(message);
	message = NULL;

	/* a NUL byte */
	path = tmpdir_write(dir, "nul.conf", "[network]\ntimeout = 6\0\n", 23);
	assert_true(config_load(path, &c, &message) < 0);
	assert_null(c.modules);
	free(message);
	free(path);
}

/* A long line is read whole: a list of several module paths easily passes
 * 200 bytes, and the file may have up to 32 of them. */
/* libinih reads 199 bytes a line: a longer line is refused, naming it,
 * never split; a long module list goes on continuation lines. */
static void test_long_line(void **state)
{
	static const char *const modules[] = {
	    "/usr/lib/x86_64-linux-gnu/pkcs11/vendor-one/libvendor-one-pkcs11-module.so",
	    "/usr/lib/x86_64-linux-gnu/pkcs11/vendor-two/libvendor-two-pkcs11-module.so",
	    "/usr/lib/x86_64-linux-gnu/pkcs11/vendor-three/libvendor-three-pkcs11-module.so",
	    "/usr/lib/x86_64-linux-gnu/pkcs11/vendor-four/libvendor-four-pkcs11-module.so",
	};
	char text[1024] = "[pkcs11]\nmodules = ";
	char *message = NULL;
	Config c = {};
	int r;

	for (size_t i = 0; i < ELEMENTSOF(modules); i++) {
		if (i)
			strcat(text, ", ");
		strcat(text, modules[i]);
	}
	strcat(text, "\n[network]\ntimeout = 30\n");
	r = load_text(*state, text, &c, &message);
	assert_int_equal(r, -EINVAL);
	assert_non_null(message);
	assert_non_null(strstr(message, ":2: line too long"));
	free(message);
	message = NULL;

	strcpy(text, "[pkcs11]\nmodules = ");
	for (size_t i = 0; i < ELEMENTSOF(modules); i++) {
		if (i)
			strcat(text, ",\n  ");
		strcat(text, modules[i]);
	}
	strcat(text, "\n[network]\ntimeout = 30\n");
	r = load_text(*state, text, &c, &message);
	if (r != 0) {
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", strempty(message));
		free(message);
		fail_msg("continuation lines are refused: %d %s", r, copy);
	}
	assert_modules(&c, modules, ELEMENTSOF(modules));
	assert_int_equal(c.timeout_sec, 30);
	config_clear(&c);
}

static void test_directories(void **state)
{
	char *saved_conf =
	    getenv("CONFIGURATION_DIRECTORY") ? strdup(getenv("CONFIGURATION_DIRECTORY")) : NULL;

	assert_int_equal(setenv("CONFIGURATION_DIRECTORY", "/run/test/conf", 1), 0);
	assert_int_equal(setenv("STATE_DIRECTORY", "/run/test/state", 1), 0);
	assert_int_equal(setenv("SAFECAD_DATADIR", "/run/test/data", 1), 0);
	assert_string_equal(config_directory(), "/run/test/conf");
	assert_string_equal(state_directory(), "/run/test/state");
	assert_string_equal(data_directory(), "/run/test/data");

	/* several folders (StateDirectory= naming more than one): the first
	 * is the service's own */
	assert_int_equal(setenv("STATE_DIRECTORY", "/a:/b", 1), 0);
	assert_string_equal(state_directory(), "/a");
	assert_int_equal(setenv("STATE_DIRECTORY", ":/b", 1), 0);
	assert_string_equal(state_directory(), SAFECAD_STATEDIR);

	assert_int_equal(setenv("CONFIGURATION_DIRECTORY", "", 1), 0);
	assert_string_equal(config_directory(), SAFECAD_CONFDIR);

	assert_int_equal(unsetenv("CONFIGURATION_DIRECTORY"), 0);
	assert_int_equal(unsetenv("STATE_DIRECTORY"), 0);
	assert_int_equal(unsetenv("SAFECAD_DATADIR"), 0);
	assert_string_equal(config_directory(), SAFECAD_CONFDIR);
	assert_string_equal(state_directory(), SAFECAD_STATEDIR);
	assert_string_equal(data_directory(), SAFECAD_DATADIR);
	if (saved_conf)
		setenv("CONFIGURATION_DIRECTORY", saved_conf, 1);
	free(saved_conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_missing_file, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_empty_file, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_full_example, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_writable_paths_empty, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_values, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_repeated_keys, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_limits, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_bad_values, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_syntax_errors, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_message_matches_line, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_unknown_settings_ignored, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_no_message_wanted, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_unreadable, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_long_line, setup_dir, teardown_dir),
	    cmocka_unit_test(test_directories),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
