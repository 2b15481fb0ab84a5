/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * module-rss: the resident memory a PKCS#11 module costs a bare process.
 *
 *   module-rss MODULE
 *
 * Loads MODULE, calls C_Initialize and C_GetSlotList (so the module reads
 * its tokens, as SoftHSM does from SOFTHSM2_CONF's folder), and prints
 *
 *   before_kb=… after_kb=…
 *
 * the process's VmRSS before loading and after. Every daemon that keeps a
 * module loaded pays at least after_kb: the benchmark prints it next to
 * safecad's RSS so that the daemon's own share can be told apart.
 */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The start of CK_FUNCTION_LIST, with the types of the standard's headers
 * on Linux (CK_RV and CK_ULONG are unsigned long, CK_BBOOL a byte). Through
 * C_GetFunctionList, because some modules (p11-kit's proxy) export nothing
 * else. */
typedef unsigned long (*initialize_fn)(void *init_args);
typedef unsigned long (*get_slot_list_fn)(unsigned char token_present, unsigned long *slots,
					  unsigned long *count);
struct function_list {
	unsigned char version[2];
	initialize_fn initialize;
	void *finalize;
	void *get_info;
	void *get_function_list;
	get_slot_list_fn get_slot_list;
};
typedef unsigned long (*get_function_list_fn)(struct function_list **list);

static long vm_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

int main(int argc, char *argv[])
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s MODULE\n", argv[0]);
		return 2;
	}
	long before = vm_rss_kb();

	void *module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!module) {
		fprintf(stderr, "module-rss: %s\n", dlerror());
		return 1;
	}
	get_function_list_fn get_function_list =
	    (get_function_list_fn)dlsym(module, "C_GetFunctionList");
	struct function_list *functions = NULL;
	if (!get_function_list || get_function_list(&functions) != 0 || !functions) {
		fprintf(stderr, "module-rss: %s gives no function list\n", argv[1]);
		return 1;
	}
	unsigned long rv = functions->initialize(NULL), count = 0;
	if (rv == 0)
		rv = functions->get_slot_list(1, NULL, &count);
	if (rv != 0) {
		fprintf(stderr, "module-rss: %s failed: CK_RV 0x%lx\n", argv[1], rv);
		return 1;
	}

	printf("before_kb=%ld after_kb=%ld slots=%lu\n", before, vm_rss_kb(), count);
	return 0;
}
