/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A CA profile → profile_load_file() and profiles_match().
 *
 * The input is the profile's text, optionally followed by a NUL byte and
 * the text of issuers.pem, which is written next to it, so that a profile
 * saying "issuers = issuers.pem" reads fuzzed certificates too. */
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "log/log.h"
#include "macro.h"
#include "state/profiles.h"

static char folder[] = "/tmp/safecad-fuzz-profile-XXXXXX";
static char profile_path[sizeof(folder) + 32];
static char issuers_path[sizeof(folder) + 32];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void remove_folder(void)
{
	nftw(folder, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	log_set_max_level(LOG_CRIT);
	/* "issuers = /dev/stdin" must not wait for a terminal */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		abort();
	close(fd);
	if (!mkdtemp(folder))
		abort();
	atexit(remove_folder);
	snprintf(profile_path, sizeof(profile_path), "%s/fuzz.conf", folder);
	snprintf(issuers_path, sizeof(issuers_path), "%s/issuers.pem", folder);
	return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		abort();
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n <= 0)
			abort();
		data += n;
		size -= (size_t)n;
	}
	close(fd);
}

static void check_profile(const Profile *p)
{
	fuzz_check(p->name && p->path && p->file_name);
	fuzz_check(streq(p->file_name, "fuzz.conf"));
	fuzz_check(p->protocol && streq(p->protocol, "v1"));
	fuzz_check(!p->trust || p->trust[0] == '/');
	fuzz_check(p->issuers && sk_X509_num(p->issuers) <= 64);
	fuzz_check(p->n_agencies <= 64);
	for (size_t i = 0; i < p->n_agencies; i++) {
		fuzz_check(p->agencies[i].id && p->agencies[i].id[0]);
		fuzz_check(p->agencies[i].name);
		for (size_t j = 0; j < i; j++)
			fuzz_check(!streq(p->agencies[i].id, p->agencies[j].id));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *separator;
	size_t text_size = size;
	Profile *profile = NULL;
	char *message = NULL;
	int r;

	if (size > 256 * 1024)
		return 0;
	separator = memchr(data, 0, size);
	if (separator) {
		text_size = (size_t)(separator - data);
		write_file(issuers_path, separator + 1, size - text_size - 1);
	} else
		unlink(issuers_path);
	write_file(profile_path, data, text_size);

	r = profile_load_file(profile_path, &profile, &message);
	if (r < 0) {
		fuzz_check(!profile);
		fuzz_check(r == -ENOMEM || message);
		free(message);
		return 0;
	}
	fuzz_check(!message);
	check_profile(profile);

	/* A CA of the profile is issued by itself when it is self-signed:
	 * match the first few against the profile. */
	{
		Profile *items[] = {profile};
		Profiles profiles = {.items = items, .n_items = 1};
		for (int i = 0; i < sk_X509_num(profile->issuers) && i < 2; i++) {
			const Profile *match =
			    profiles_match(&profiles, sk_X509_value(profile->issuers, i));
			fuzz_check(!match || match == profile);
		}
	}
	profile_free(profile);
	return 0;
}
