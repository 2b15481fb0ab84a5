/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The CA clients' HTTP: one libcurl conversation with a profile's CA
 * (https verified against the profile's trust, or plain http to this
 * machine only), the limits of [network], answers capped at 1 MiB, and
 * every failure as one sentence in a CaError. Shared by protocol v1 and
 * CMP. */

#include <curl/curl.h>
#include <stddef.h>

#include "ca/ca-client.h"
#include "ca/ca-v1.h"
#include "macro.h"

/* One conversation with the CA: a curl handle (so that the requests of one
 * exchange share a connection) and the base URL. */
typedef struct Client {
	CURL *curl;
	char *base;
	unsigned connect_timeout_sec;
	unsigned timeout_sec;
	char curl_error[CURL_ERROR_SIZE];
} Client;

/* Fills *client in place (libcurl keeps a pointer to its error buffer);
 * on failure the caller's ca_http_clear() releases what was made. */
int ca_http_open(Client *client, const Profile *profile, const CaNetwork *network, CaError *error);
void ca_http_clear(Client *client);

/* One request: GET when body is NULL, else a POST of body_size bytes as
 * content_type. On success *ret holds the answer, whatever its status. */
int ca_http_send(Client *client, const char *url, const char *content_type, const char *body,
		 size_t body_size, CaV1Answer *ret, CaError *error);

/* Fills *error (cleared first; error may be NULL) and returns r. */
_printf_(5, 6) int ca_error_set(CaError *error, CaErrorKind kind, long http_status, int r,
				const char *format, ...);

/* How long a CA may keep a request waiting (HTTP 202 or CMP polling), in
 * seconds: 10 minutes, or less for the tests. */
unsigned ca_poll_limit_sec(void);
