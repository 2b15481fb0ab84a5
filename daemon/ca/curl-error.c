/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ca/curl-error.h"

#include <errno.h>
#include <stdbool.h>

#include "i18n.h"

static bool unreachable(long os_errno)
{
	return os_errno == EHOSTUNREACH || os_errno == ENETUNREACH || os_errno == EHOSTDOWN ||
	       os_errno == ENETDOWN;
}

int curl_error_to_errno(CURLcode code, long os_errno)
{
	switch (code) {
	case CURLE_OK:
		return 0;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return unreachable(os_errno) ? -EHOSTUNREACH : -ECONNREFUSED;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return -EKEYREJECTED;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return -ECONNABORTED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
		return -ECONNRESET;
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		return -EBADMSG;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPROTONOSUPPORT;
	case CURLE_URL_MALFORMAT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return -EINVAL;
	case CURLE_UNKNOWN_OPTION:
	case CURLE_NOT_BUILT_IN:
		return -EOPNOTSUPP;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

const char *curl_error_reason(CURLcode code, long os_errno)
{
	switch (code) {
	case CURLE_OK:
		return _("no error");
	case CURLE_OUT_OF_MEMORY:
		return _("out of memory");
	case CURLE_OPERATION_TIMEDOUT:
		return _("timed out");
	case CURLE_COULDNT_RESOLVE_HOST:
		return _("host name not found");
	case CURLE_COULDNT_RESOLVE_PROXY:
		return _("proxy name not found");
	case CURLE_COULDNT_CONNECT:
		if (os_errno == EHOSTUNREACH || os_errno == EHOSTDOWN)
			return _("host unreachable");
		if (os_errno == ENETUNREACH || os_errno == ENETDOWN)
			return _("network unreachable");
		return _("connection refused");
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return _("its TLS certificate is not trusted");
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return _("its TLS key is not the expected one");
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
		return _("the profile's trust file cannot be used");
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		return _("TLS handshake failed");
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
		return _("connection lost");
	case CURLE_GOT_NOTHING:
		return _("the server closed the connection without answering");
	case CURLE_PARTIAL_FILE:
		return _("it was cut short");
	case CURLE_WEIRD_SERVER_REPLY:
		return _("it is not HTTP");
	case CURLE_BAD_CONTENT_ENCODING:
		return _("its content encoding is not valid");
	case CURLE_FILESIZE_EXCEEDED:
		return _("it is too large");
	case CURLE_UNSUPPORTED_PROTOCOL:
		return _("the address's scheme is not supported");
	case CURLE_URL_MALFORMAT:
		return _("the address is not valid");
	default:
		return curl_easy_strerror(code);
	}
}
