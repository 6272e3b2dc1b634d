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

#include "err.h"
#include "metrics.h"
#include "policy.h"
#include "tls.h"

/* Body bytes held per request and direction: bodies stream through. */
#define VZ_GW_BUF	 (128 * 1024)
#define VZ_GW_MAX_LISTEN 16

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
	const char *listen_hosts[VZ_GW_MAX_LISTEN];
	size_t n_listen;
} vz_gw_cfg;

typedef struct vz_gw_buf {
	char *data;
	size_t off, len, cap;
} vz_gw_buf;

typedef struct vz_gw_upstream vz_gw_upstream;

typedef struct vz_gw_xfer {
	pthread_mutex_t m;	 /* guards everything below that both sides touch */
	int refs;		 /* server side, upstream side, the response */
	struct vz_gw_xfer *next; /* the upstream's lists */
	/* server side */
	char *target; /* the raw request-target */
	struct MHD_Connection *conn;
	bool started, suspended, client_gone, too_big, submitted;
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
	char client[64];
	char method[16];
	char path[128]; /* for the log: the path without its query */
	long long start_us;
	size_t bytes_in, bytes_out;
	/* the request, handed over at submit */
	CURL *h;
	struct curl_slist *req_headers;
	char *url;
	vz_gw_upstream *up;
	vz_gw_buf req;
	bool req_eof, read_paused;
	/* the answer */
	long status;
	long long resp_clen, resp_total;
	struct curl_slist *resp_headers;
	bool headers_done, write_paused;
	vz_gw_buf resp;
	bool done;
	CURLcode result;
	char why[200]; /* why it failed, for a 502 body or the log */
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
 * when the upstream no longer takes work (draining or stopping). */
bool vz_gw_upstream_submit(vz_gw_upstream *u, vz_gw_xfer *x);

/* No new work; the thread ends when what it has is done. */
void vz_gw_upstream_drain(vz_gw_upstream *u);
/* Whether a draining upstream's thread has ended. */
bool vz_gw_upstream_drained(vz_gw_upstream *u);
/* Aborts what is left, ends the thread, frees u and closes its tls. */
void vz_gw_upstream_free(vz_gw_upstream *u);

/* For health and metrics. */
typedef struct vz_gw_upstream_state {
	const char *label;
	size_t handshakes; /* TLS connections made */
	size_t active;	   /* transfers in progress or queued */
	long days_left;	   /* of the certificate, -1 not yet known */
	long long last_ok_us, last_fail_us;
	unsigned long failures;
	char last_why[200];
} vz_gw_upstream_state;
void vz_gw_upstream_state_get(vz_gw_upstream *u, vz_gw_upstream_state *st);

#endif
