/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "context.h"
#include "token-info.h"

/* One token as the bus shows it. */
struct Token {
	Context *context;
	char *path;
	TokenInfo info;
	bool present;
};

int token_new(Context *context, TokenInfo *info, Token **ret);
Token *token_free(Token *token);

/* Takes the new scan's info for this token; emits PropertiesChanged for
 * what differs. Takes ownership of info. */
void token_update(Token *token, TokenInfo *info);

/* The fallback vtable serving every token object under the prefix. */
int bus_token_register(Context *context);
