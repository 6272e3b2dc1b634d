/* http.h - HTTP details shared by the VECOZO clients. */
#ifndef VZP11_HTTP_H
#define VZP11_HTTP_H

#include <time.h>

#define VZ_RETRY_AFTER_MAX 120 /* seconds: a longer wish is cut to this */

/* Seconds to wait from a Retry-After value (delay-seconds or an HTTP date,
 * RFC 9110) received at now; 0 when it is unreadable or in the past. */
long vz_retry_after_s(const char *value, time_t now);

#endif
