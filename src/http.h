/* http.h - HTTP details shared by the VECOZO clients. */
#ifndef VZP11_HTTP_H
#define VZP11_HTTP_H

#include <stdbool.h>
#include <time.h>

#include <curl/curl.h>

#define VZ_RETRY_AFTER_MAX 120 /* seconds: a longer wish is cut to this */

/* Seconds to wait from a Retry-After value (delay-seconds or an HTTP date,
 * RFC 9110) received at now; 0 when it is unreadable or in the past. */
long vz_retry_after_s(const char *value, time_t now);

/* A transfer error in words, with what to check. */
const char *vz_http_curl_reason(CURLcode c);

/* A transfer error worth another try (the network, not the request). */
bool vz_http_transient(CURLcode c);

/* A transfer error that happened before the request could reach the
 * server (so nothing was sent). */
bool vz_http_not_sent(CURLcode c);

/* How long to wait before try attempt+1: exponential from 250 ms, or what
 * the server asked for (Retry-After), at most max_ms, plus random jitter. */
long vz_http_backoff_ms(unsigned attempt, long retry_after_s, long max_ms);

#endif
