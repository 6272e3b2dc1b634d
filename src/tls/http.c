/* http.c - HTTP details shared by the VECOZO clients. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "tls/tls.h"
#include "cli/cli.h"

long vz_retry_after_s(const char *value, time_t now)
{
	char *end = NULL;
	long v;
	time_t t;

	while (*value == ' ' || *value == '\t')
		value++;
	if (*value >= '0' && *value <= '9') {
		v = strtol(value, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end)
			return 0;
	} else {
		/* An HTTP date: how long from now. */
		t = curl_getdate(value, NULL);
		if (t == (time_t)-1)
			return 0;
		v = t > now ? (long)(t - now) : 0;
	}
	if (v < 0)
		return 0;
	return v > VZ_RETRY_AFTER_MAX ? VZ_RETRY_AFTER_MAX : v;
}

const char *vz_http_curl_reason(CURLcode c)
{
	switch (c) {
	case CURLE_PEER_FAILED_VERIFICATION:
		return _("the server's certificate is not trusted or does not match its host name "
		       "(check --cacert and the endpoint)");
	case CURLE_SSL_CACERT_BADFILE:
		return _("the CA bundle given with --cacert cannot be read");
	case CURLE_SSL_CERTPROBLEM:
		return _("the client certificate or key from the token cannot be used");
	case CURLE_SSL_CONNECT_ERROR:
		return _("the TLS handshake failed (the server may have refused the certificate, "
		       "or speaks no TLS 1.2+)");
	case CURLE_COULDNT_RESOLVE_HOST:
		return _("the endpoint's host name cannot be resolved");
	case CURLE_COULDNT_CONNECT:
		return _("cannot connect to the endpoint");
	case CURLE_OPERATION_TIMEDOUT:
		return _("the request timed out");
	default:
		return curl_easy_strerror(c);
	}
}

bool vz_http_transient(CURLcode c)
{
	return c == CURLE_COULDNT_CONNECT || c == CURLE_OPERATION_TIMEDOUT ||
	       c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR || c == CURLE_GOT_NOTHING ||
	       c == CURLE_PARTIAL_FILE || c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_HTTP2 ||
	       c == CURLE_HTTP2_STREAM;
}

bool vz_http_not_sent(CURLcode c)
{
	return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST ||
	       c == CURLE_SSL_CONNECT_ERROR || c == CURLE_PEER_FAILED_VERIFICATION ||
	       c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CACERT_BADFILE ||
	       c == CURLE_URL_MALFORMAT || c == CURLE_UNSUPPORTED_PROTOCOL;
}

long vz_http_backoff_ms(unsigned attempt, long retry_after_s, long max_ms)
{
	long wait = 250L << (attempt > 6 ? 6 : attempt > 0 ? attempt - 1 : 0);
	uint32_t noise = 0;

	if (retry_after_s * 1000 > wait)
		wait = retry_after_s * 1000;
	if (wait > max_ms)
		wait = max_ms;
	/* Up to a fifth more, so parallel clients do not retry in lockstep. */
	if (RAND_bytes((unsigned char *)&noise, sizeof(noise)) == 1)
		wait += (long)(noise % (uint32_t)(wait / 5 + 1));
	return wait;
}
