/* rest.h - requests to the Berichtenservice over mutual TLS with the token
 * key: one kept-alive connection per client, bounded retries of what is
 * safe to repeat, answers bounded in size, payloads streamed both ways. */
#ifndef VZP11_REST_H
#define VZP11_REST_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "tls.h"

typedef struct vz_rest vz_rest;

typedef struct vz_rest_cfg {
	const char *base;   /* https://.../berichtenservice, no trailing slash */
	const char *cacert; /* NULL: the system store */
	unsigned attempts;  /* tries per request, at least 1 */
	long connect_timeout_ms;
	long timeout_ms;     /* a request without a payload; payloads get no limit */
	long max_backoff_ms; /* upper bound of one wait between tries */
} vz_rest_cfg;

/* What a request came to. body holds an answer of at most 4 MiB (NUL
 * terminated), not a streamed payload. */
typedef struct vz_rest_answer {
	long http;  /* 0 when no answer came */
	char *body; /* malloc'ed, or NULL */
	size_t len;
	unsigned attempts; /* tries made */
	bool maybe_sent;   /* the request may have reached the server */
} vz_rest_answer;

void vz_rest_answer_clear(vz_rest_answer *a);

vz_rv vz_rest_new(const vz_rest_cfg *cfg, vz_tls *tls, vz_rest **out, vz_err *err);
void vz_rest_free(vz_rest *r);

/* Called about once a second (VZ_REST_BEAT_S) while a push is under way:
 * connecting, uploading, waiting for the answer, and before each wait
 * between tries. */
#define VZ_REST_BEAT_S 1
typedef void (*vz_rest_beat)(void *ctx);

/* POSTs multipart/form-data to base+path: a part berichtMetadata (JSON)
 * and a part payload read from fd (size bytes, sent as
 * application/octet-stream under file_name). Retried on connection errors
 * and 429/502/503/504 (the caller makes that safe: same traceerId). beat
 * (may be NULL) gets beat_ctx while it runs. VZ_OK when any HTTP answer
 * came (a->http says which); VZ_FAIL when none did. */
vz_rv vz_rest_push(vz_rest *r, const char *path, const char *meta_json, int fd, long long size,
		   const char *file_name, vz_rest_beat beat, void *beat_ctx, vz_rest_answer *a,
		   vz_err *err);

/* GET base+path (with its query). */
vz_rv vz_rest_get(vz_rest *r, const char *path, vz_rest_answer *a, vz_err *err);

/* A sink takes a 200 answer's body as it arrives; false aborts. */
typedef bool (*vz_rest_sink)(void *ctx, const void *p, size_t n);

/* The absolute URL of url (absolute, or relative to the base) when it is
 * on the base: the same scheme, host and port, no user name or password;
 * the client certificate goes to no other place. VZ_OK with out (size
 * bytes) filled; VZ_FAIL with err saying where it points instead. */
vz_rv vz_rest_on_base(const vz_rest *r, const char *url, char *out, size_t size, vz_err *err);

/* GETs an absolute URL that vz_rest_on_base gave, handing a 200 answer's
 * body to sink as it arrives (other answers land in a->body). restart is
 * called before every try after the first, so the sink can start over. */
vz_rv vz_rest_download_url(vz_rest *r, const char *url, vz_rest_sink sink,
			   void (*restart)(void *ctx), void *ctx, vz_rest_answer *a, vz_err *err);

/* DELETE base+path. */
vz_rv vz_rest_delete(vz_rest *r, const char *path, vz_rest_answer *a, vz_err *err);

/* TLS connections made so far. */
size_t vz_rest_connections(const vz_rest *r);

#endif
