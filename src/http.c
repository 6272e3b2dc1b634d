/* http.c - HTTP details shared by the VECOZO clients. */
#include <stdlib.h>

#include <curl/curl.h>

#include "http.h"

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
