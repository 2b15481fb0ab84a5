/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <curl/curl.h>

/* The one place where libcurl's CURLcode becomes our negative errno.
 * os_errno is CURLINFO_OS_ERRNO of the transfer (0 when unknown): it tells
 * a refused connection from an unreachable host. */
int curl_error_to_errno(CURLcode code, long os_errno);

/* A few words for people (translated) on what went wrong, for the same
 * pair: what kept the CA from being reached ("connection refused"), or,
 * for the codes that map to -EBADMSG, what is wrong with its answer ("it
 * was cut short"). */
const char *curl_error_reason(CURLcode code, long os_errno);
