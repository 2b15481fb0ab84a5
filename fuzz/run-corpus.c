/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a fuzz target over files and folders of inputs, without libFuzzer:
 * the seed corpus becomes a regression test with any compiler. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define INPUT_MAX (4 * 1024 * 1024)

static int run_file(const char *path)
{
	struct stat st;
	uint8_t *data;
	size_t size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > INPUT_MAX) {
		fprintf(stderr, "%s: cannot read\n", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Exactly the input's size, so that ASan sees a read past its end. */
	data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!data) {
		close(fd);
		return -1;
	}
	while (size < (size_t)st.st_size) {
		ssize_t n = read(fd, data + size, (size_t)st.st_size - size);
		if (n <= 0)
			break;
		size += (size_t)n;
	}
	close(fd);
	fprintf(stderr, "Running %s (%zu bytes)\n", path, size);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 1;
}

static int run_folder(const char *path)
{
	struct dirent **entries = NULL;
	int n = scandir(path, &entries, NULL, alphasort), count = 0;

	if (n < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *child = NULL;
		struct stat st;

		if (entries[i]->d_name[0] != '.' &&
		    asprintf(&child, "%s/%s", path, entries[i]->d_name) >= 0 &&
		    stat(child, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(child) < 0)
				count = -1;
			else if (count >= 0)
				count++;
		}
		free(child);
		free(entries[i]);
	}
	free(entries);
	return count;
}

int main(int argc, char **argv)
{
	int total = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int r;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return EXIT_FAILURE;
		}
		r = S_ISDIR(st.st_mode) ? run_folder(argv[i]) : run_file(argv[i]);
		if (r < 0)
			return EXIT_FAILURE;
		total += r;
	}
	fprintf(stderr, "%d inputs, no crash\n", total);
	/* An empty run is a broken setup, not a pass. */
	return total > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
