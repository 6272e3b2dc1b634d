/* gw.h - the parts of the gateway and what they share (private to
 * src/gateway/): one request in flight (vz_gw_xfer) passes between the
 * server side (proxy.c, libmicrohttpd threads) and the upstream side
 * (upstream.c, one libcurl multi thread per certificate label). */
#ifndef VZP11_GW_H
#define VZP11_GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "access.h"
#include "err.h"
#include "metrics.h"
#include "policy.h"
#include "tls.h"

/* Body bytes held per request and direction: bodies stream through. */
#define VZ_GW_BUF (128 * 1024)
/* An answer starts streaming to the client once this much of its body
 * waits; a smaller answer goes out whole, with its headers, in one send. */
#define VZ_GW_WAKE	 (32 * 1024)
#define VZ_GW_MAX_LISTEN 16
/* How long /_vzp11/health waits for its signature and handshake. */
#define VZ_GW_HEALTH_WAIT_MS 4000

/* One log line (no trailing newline), from any thread. */
typedef void (*vz_gw_log_fn)(void *ctx, const char *line);

typedef struct vz_gw_cfg {
	const char *base; /* upstream base URL, without a trailing '/' */
	char upstream_host[256];
	const char *cacert;
	long pool;	  /* TLS connections per label */
	long max_clients; /* connections per listen address */
	long threads;	  /* server threads per listen address */
	long timeout_ms, connect_timeout_ms, client_timeout_s;
	long long max_request, max_response;
	const char *const *labels;
	size_t n_labels;
	const vz_gw_access *access; /* who may use the gateway */
	vz_gw_log_fn log;
	void *log_ctx;
} vz_gw_cfg;

typedef struct vz_gw_buf {
	char *data;
	size_t off, len, cap;
} vz_gw_buf;

/* Room for total bytes in b: grown by doubling from 4 KiB, or from hint (a
 * Content-Length; at most VZ_GW_BUF) on the first call, so a small body
 * costs a small buffer. false when out of memory (b unchanged). */
bool vz_gw_buf_reserve(vz_gw_buf *b, size_t total, long long hint);

typedef struct vz_gw_upstream vz_gw_upstream;

typedef struct vz_gw_xfer {
	pthread_mutex_t m;	 /* guards everything below that both sides touch */
	int refs;		 /* server side, upstream side, the response */
	struct vz_gw_xfer *next; /* the upstream's lists */
	/* server side */
	char *target; /* the raw request-target */
	struct MHD_Connection *conn;
	bool started, suspended, client_gone, too_big, submitted;
	bool close;	  /* a refusal of the framing: no second request on this connection */
	unsigned refuse;  /* a local answer's status, decided before the last call */
	char reason[300]; /* its one-line body */
	enum {
		VZ_GW_OPS_NONE,
		VZ_GW_OPS_HEALTH,
		VZ_GW_OPS_METRICS
	} ops;
	unsigned answered;
	vz_gw_service svc;
	size_t label;
	char client[96];
	char method[16];
	char path[128]; /* for the log: the path without its query */
	long long start_us;
	size_t bytes_in, bytes_out;
	/* the request, handed over at submit */
	CURL *h;
	struct curl_slist *req_headers;
	char *url;
	vz_gw_upstream *up;
	long long req_clen; /* the body's length as libmicrohttpd frames it, -1 chunked */
	long long req_sent; /* body bytes given to libcurl */
	vz_gw_buf req;
	bool req_eof, read_paused;
	/* the answer */
	long status;
	long long resp_clen, resp_total;
	struct curl_slist *resp_headers;
	bool headers_done, write_paused;
	bool streaming; /* queued as a stream: wake the client for every piece */
	vz_gw_buf resp;
	bool done;
	bool unavailable; /* failed because the token is away: 503, not 502 */
	CURLcode result;
	char why[320]; /* why it failed, for a 502/503 body or the log */
	/* asked of the upstream thread */
	bool want_resume, want_abort;
} vz_gw_xfer;

/* Drops one reference; the last frees x. */
void vz_gw_xfer_release(vz_gw_xfer *x);

/* Asks the upstream thread to look at x (resume a paused direction, or
 * abort); call with x->m held, only while !x->done. */
void vz_gw_xfer_poke(vz_gw_xfer *x);

/* Microseconds of a monotonic clock. */
long long vz_gw_now_us(void);

/* Starts a thread with a libcurl multi handle (its own pool of at most
 * cfg->pool kept-alive connections) for one label; takes tls (closed when
 * the upstream is freed). */
vz_rv vz_gw_upstream_start(const vz_gw_cfg *cfg, const char *label, vz_tls *tls,
			   vz_gw_upstream **out, vz_err *err);

/* Sets up x->h for this upstream (TLS with the token key, callbacks). */
vz_rv vz_gw_upstream_prepare(vz_gw_upstream *u, vz_gw_xfer *x, vz_err *err);

/* Hands x (with a reference for the upstream side) to the thread; false
 * when the upstream takes no work now (draining or stopping, or the token
 * is away: a 503), with a one-line reason in why. */
bool vz_gw_upstream_submit(vz_gw_upstream *u, vz_gw_xfer *x, char *why, size_t size);

/* Held while a token is opened or re-connected (one at a time in the
 * process: src/tls.c keeps process-wide state for it). */
void vz_gw_token_lock(void);
void vz_gw_token_unlock(void);

/* No new work; the thread ends when what it has is done. */
void vz_gw_upstream_drain(vz_gw_upstream *u);
/* Whether a draining upstream's thread has ended. */
bool vz_gw_upstream_drained(vz_gw_upstream *u);
/* Aborts what is left, ends the thread, frees u and closes its tls. */
void vz_gw_upstream_free(vz_gw_upstream *u);

/* Health, in two steps so that several labels are checked at once: _check
 * asks the thread for a check unless the last answer still holds (healthy
 * 5 s unless a transfer fails since, unhealthy 1 s unless a transfer works
 * since); _healthy waits for an answer until
 * deadline_us (vz_gw_now_us() time): true when the token's key signed (a
 * real signature, at most one a second) and the last handshake with the
 * upstream worked or a fresh one does; else false and a one-line reason. */
void vz_gw_upstream_check(vz_gw_upstream *u);
bool vz_gw_upstream_healthy(vz_gw_upstream *u, long long deadline_us, char *why, size_t size);

/* For metrics. */
typedef struct vz_gw_upstream_state {
	const char *label;
	size_t handshakes; /* TLS connections made */
	size_t active;	   /* transfers in progress or queued */
	long days_left;	   /* of the certificate, -1 not yet known */
	long long last_ok_us, last_fail_us;
	unsigned long failures;
	char last_why[200];
	bool token_up;	     /* false from a key failure until a re-connect works */
	char token_why[300]; /* why it is down */
	size_t key_failures; /* handshakes in which the key did not sign */
	size_t reconnects;   /* re-connects to the token that worked */
} vz_gw_upstream_state;
void vz_gw_upstream_state_get(vz_gw_upstream *u, vz_gw_upstream_state *st);

#endif
