/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "name.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

void name_clear(Name *name)
{
	if (!name)
		return;
	for (size_t i = 0; i < name->n_pairs; i++) {
		free(name->pairs[i].attribute);
		free(name->pairs[i].value);
	}
	free(name->pairs);
	name->pairs = NULL;
	name->n_pairs = 0;
}

static void name_clearp(Name *n)
{
	name_clear(n);
}

int name_copy(const Name *source, Name *ret)
{
	_cleanup_(name_clearp) Name copy = {};

	if (source->n_pairs > 0) {
		copy.pairs = calloc(source->n_pairs, sizeof(NamePair));
		if (!copy.pairs)
			return -ENOMEM;
	}
	for (size_t i = 0; i < source->n_pairs; i++) {
		copy.pairs[i].attribute = strdup(source->pairs[i].attribute);
		copy.pairs[i].value = strdup(source->pairs[i].value);
		copy.n_pairs++;
		if (!copy.pairs[i].attribute || !copy.pairs[i].value)
			return -ENOMEM;
	}
	*ret = copy;
	copy = (Name){};
	return 0;
}

bool name_equal(const Name *a, const Name *b)
{
	if (a->n_pairs != b->n_pairs)
		return false;
	for (size_t i = 0; i < a->n_pairs; i++)
		if (!streq(a->pairs[i].attribute, b->pairs[i].attribute) ||
		    !streq(a->pairs[i].value, b->pairs[i].value))
			return false;
	return true;
}
