/* gw.h - the parts of the gateway and what they share (private to
 * src/gateway/). One thread runs everything (loop.c): libmicrohttpd's
 * daemons and one libcurl multi handle per certificate label are driven
 * by one epoll set, so a request passes from the server side (proxy.c) to
 * the upstream side (upstream.c) and back without a lock or a hand-off
 * between threads. A request's life is one state (vz_gw_state), changed in
 * one place (vz_gw_xfer_to). */
#ifndef VZP11_GW_H
#define VZP11_GW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "access.h"
#include "cli/cli.h"
#include "metrics.h"
#include "policy.h"
#include "tls/tls.h"

/* Body bytes held per request and direction: bodies stream through. */
#define VZ_GW_BUF (128 * 1024)
/* An answer starts streaming to the client once this much of its body
 * waits; a smaller answer goes out whole, with its headers, in one send. */
#define VZ_GW_WAKE	 (32 * 1024)
#define VZ_GW_MAX_LISTEN 16
/* Each client connection's memory in libmicrohttpd: its read buffer, the
 * request head parsed in place, the answer's head. A head that does not
 * fit gets 431. */
#define VZ_GW_POOL (8 * 1024)
/* How long /_vzp11/health waits for its signature and handshake. */
#define VZ_GW_HEALTH_WAIT_MS 4000

/* One log line (no trailing newline). */
typedef void (*vz_gw_log_fn)(void *ctx, const char *line);

typedef struct vz_gw_cfg {
	const char *base; /* upstream base URL, without a trailing '/' */
	char upstream_host[256];
	const char *cacert;
	long pool;	  /* TLS connections per label */
	long max_clients; /* connections per listen address */
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

/* Where a request is in its life. Each change goes through vz_gw_xfer_to(),
 * which allows only these (anything else is a bug, logged and refused):
 *   RECEIVED  -> ADMITTED, REFUSED, LOCAL, ABORTED
 *   ADMITTED  -> UPSTREAM, REFUSED, ABORTED
 *   UPSTREAM  -> ANSWERING, FAILED, REFUSED, ABORTED
 *   ANSWERING -> DONE, ABORTED, FAILED (the answer broke off before any of
 *                it went to the client)
 *   REFUSED, LOCAL, FAILED -> DONE, ABORTED (once answered, or not)
 * Only UPSTREAM and ANSWERING have a transfer with libcurl, and only
 * ANSWERING has an answer from the upstream: an answer is sent to the
 * client of the request it was read for, or to nobody. */
typedef enum vz_gw_state {
	VZ_GW_RECEIVED,	 /* the head is in, not yet checked */
	VZ_GW_ADMITTED,	 /* checked; its body comes in, nothing sent upstream */
	VZ_GW_UPSTREAM,	 /* with libcurl: being sent, no answer yet */
	VZ_GW_ANSWERING, /* the upstream's status and headers are in */
	VZ_GW_REFUSED,	 /* the gateway answers it with a refusal (4xx, 5xx) */
	VZ_GW_LOCAL,	 /* the gateway answers it itself: health, metrics */
	VZ_GW_FAILED,	 /* the upstream failed before answering: 502 or 503 */
	VZ_GW_DONE,	 /* answered in full */
	VZ_GW_ABORTED,	 /* cut off: the client left, or the answer broke off */
} vz_gw_state;

typedef struct vz_gw vz_gw;
typedef struct vz_gw_upstream vz_gw_upstream;
typedef struct vz_gw_listener vz_gw_listener;

/* One request. Each holder keeps a reference (refs): libmicrohttpd's
 * request (on_uri .. completed), libcurl's transfer, a response that
 * reads from it, the loop's list of transfers to unpause. */
typedef struct vz_gw_xfer {
	vz_gw_state state;
	int refs;
	struct vz_gw_xfer *next;      /* the upstream's active list; the free list */
	struct vz_gw_xfer *kick_next; /* the loop's list of transfers to unpause */
	bool kicked;
	vz_gw *gw;
	vz_gw_listener *l;
	struct MHD_Connection *conn;
	char *target; /* the raw request-target */
	/* the server side */
	bool suspended;	   /* the client's connection waits for the upstream */
	bool body_in;	   /* libmicrohttpd's last call came: the body is all in */
	bool close;	   /* a refusal of the framing: no second request on this connection */
	unsigned answered; /* the status queued, 0 before */
	unsigned refuse;   /* REFUSED/FAILED: the status to answer */
	char reason[320];  /* its one-line body */
	enum {
		VZ_GW_OPS_NONE,
		VZ_GW_OPS_HEALTH,
		VZ_GW_OPS_METRICS
	} ops;
	long long health_deadline_us;
	struct vz_gw_xfer *health_next; /* health requests waiting for their checks */
	vz_gw_service svc;
	size_t label;
	char client[96];
	char method[16];
	char path[128]; /* for the log: the path without its query */
	long long start_us;
	size_t bytes_in, bytes_out;
	/* the upstream side */
	vz_gw_upstream *up;
	CURL *h;
	char *url;
	struct curl_slist *req_headers;
	long long req_clen; /* the body's length as libmicrohttpd frames it, -1 chunked */
	long long req_sent; /* body bytes given to libcurl */
	vz_gw_buf req;
	bool read_paused, write_paused;
	long status; /* the upstream's */
	long long resp_clen, resp_total;
	vz_gw_buf resp_head; /* its headers, each "Name\0value\0" */
	vz_gw_buf resp;
	bool streaming;	    /* queued as a stream: wake the client for every piece */
	bool transfer_done; /* libcurl is through with it (result) */
	CURLcode result;
	char why[320]; /* why it failed, for a 502/503 body or the log */
	/* the request's headers for libcurl, without an allocation each */
	vz_gw_buf hdr_text;
	struct curl_slist hdr_nodes[VZ_GW_MAX_FIELDS + 8];
	size_t n_hdr;
} vz_gw_xfer;

/* Moves x to state to, if the table above allows it; false (and a log
 * line naming the bug) otherwise. */
bool vz_gw_xfer_to(vz_gw_xfer *x, vz_gw_state to);
const char *vz_gw_state_name(vz_gw_state s);

/* Drops one reference; the last returns x to the gateway's free list. */
void vz_gw_xfer_release(vz_gw_xfer *x);

/* Wakes the client's connection when it waits for x (suspended). */
void vz_gw_wake_client(vz_gw_xfer *x);

/* Asks the loop to resume x's paused transfer (after libmicrohttpd's
 * callbacks return: never from inside them). */
void vz_gw_kick(vz_gw_xfer *x);

/* Microseconds of a monotonic clock. */
long long vz_gw_now_us(void);

/* One log line through cfg->log. */
void vz_gw_logf(const vz_gw_cfg *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the gateway and its event loop (gateway.c) ---- */

/* What an epoll registration stands for: a libmicrohttpd daemon, a
 * libcurl socket, the signal fd. */
typedef enum vz_gw_ev_kind {
	VZ_GW_EV_DAEMON,
	VZ_GW_EV_CURL,
	VZ_GW_EV_SIGNAL
} vz_gw_ev_kind;

typedef struct vz_gw_ev {
	vz_gw_ev_kind kind;
	int fd;
	unsigned events; /* registered now; 0: not registered */
	bool dead;	 /* freed at the end of the loop's turn: skip its events */
	void *owner;	 /* the listener, or the upstream */
} vz_gw_ev;

/* One listen address: its libmicrohttpd daemon (external event loop). */
typedef struct vz_gw_listener {
	vz_gw *gw;
	struct MHD_Daemon *d;
	vz_gw_listen_policy pol;
	vz_gw_ev ev; /* the daemon's epoll fd in the loop's set */
} vz_gw_listener;

struct vz_gw {
	const vz_gw_cfg *cfg;
	vz_gw_metrics *metrics;
	int epfd;
	vz_gw_ev sig;
	vz_gw_upstream **up;	  /* one per label, in cfg->labels' order */
	vz_gw_upstream **retired; /* draining after a reload */
	size_t n_retired;
	vz_gw_listener listeners[VZ_GW_MAX_LISTEN];
	size_t n_listeners;
	long in_flight; /* requests begun and not yet completed */
	bool stopping;
	bool run_daemons; /* a connection was resumed: libmicrohttpd has work */
	unsigned long reloads;
	size_t handshakes_retired;
	vz_gw_xfer *free_xfers; /* for reuse: their buffers stay allocated */
	size_t n_free;
	vz_gw_xfer *kicks;	    /* transfers to unpause after libmicrohttpd returns */
	vz_gw_xfer *health_waiting; /* health requests waiting for their checks */
	vz_gw_ev **dead;	    /* registrations to free at the end of the turn */
	size_t n_dead, cap_dead;
};

/* Adds, changes (events != 0) or removes (events == 0) a registration. */
void vz_gw_watch(vz_gw *gw, vz_gw_ev *ev, unsigned events);
/* Removes ev and frees it (with free()) once the loop's turn is over. */
void vz_gw_unwatch_free(vz_gw *gw, vz_gw_ev *ev);

/* The label's upstream now (NULL while stopping). */
vz_gw_upstream *vz_gw_upstream_of(vz_gw *gw, size_t label);

/* A request, from the free list or new; NULL when out of memory. */
vz_gw_xfer *vz_gw_xfer_new(vz_gw *gw);

/* ---- the server side (proxy.c) ---- */

/* Serves a listening socket fd (taken) as pol says; logs through cfg. */
vz_rv vz_gw_listener_start(vz_gw *gw, vz_gw_listener *l, int fd, const vz_gw_listen_policy *pol,
			   vz_err *err);

/* Health requests: answers those whose checks are all in or whose time is
 * up; *next_us gets the microseconds until the next deadline (or stays). */
void vz_gw_health_poll(vz_gw *gw, long long now, long long *next_us);

/* ---- the upstream side (upstream.c) ---- */

/* One libcurl multi handle (its own pool of at most cfg->pool kept-alive
 * connections) for one label, driven by gw's loop; takes tls. */
vz_rv vz_gw_upstream_new(vz_gw *gw, const char *label, vz_tls *tls, vz_gw_upstream **out,
			 vz_err *err);
/* Aborts what is left and frees u with its tls. */
void vz_gw_upstream_free(vz_gw_upstream *u);

/* Hands x to libcurl: state ADMITTED -> UPSTREAM. false when the upstream
 * takes no work now (draining, or the token is away: a 503), with a
 * one-line reason in why. */
bool vz_gw_upstream_submit(vz_gw_upstream *u, vz_gw_xfer *x, char *why, size_t size);

/* Resumes x's transfer where it paused for want of body or of room. */
void vz_gw_upstream_unpause(vz_gw_xfer *x);

/* Ends x's transfer now (the client left, or a limit): no callback of it
 * runs afterwards. */
void vz_gw_upstream_cancel(vz_gw_xfer *x);

/* The loop's calls: libcurl's socket fd is ready (events EPOLLIN/OUT/ERR);
 * or a timer may be due. Each finishes what completed. */
void vz_gw_upstream_socket(vz_gw_upstream *u, int fd, unsigned events);
/* Microseconds until u wants the loop's attention (-1: not on its own);
 * runs what is due when 0. */
long long vz_gw_upstream_due(vz_gw_upstream *u, long long now);

/* No new work; vz_gw_upstream_idle() says when it is done with the old. */
void vz_gw_upstream_drain(vz_gw_upstream *u);
bool vz_gw_upstream_idle(const vz_gw_upstream *u);

/* Health (see vz_gw_upstream_healthy): asks for a check unless the last
 * answer still holds; the loop's vz_gw_upstream_due runs it. */
void vz_gw_upstream_check(vz_gw_upstream *u);
/* -1 while the check runs; else 1 healthy, 0 not, with a one-line reason. */
int vz_gw_upstream_healthy(vz_gw_upstream *u, char *why, size_t size);

/* For metrics. */
typedef struct vz_gw_upstream_state {
	const char *label;
	size_t handshakes; /* TLS connections made */
	size_t active;	   /* transfers in progress */
	long days_left;	   /* of the certificate, -1 not yet known */
	unsigned long failures;
	bool token_up;	     /* false from a key failure until a re-connect works */
	size_t key_failures; /* handshakes in which the key did not sign */
	size_t reconnects;   /* re-connects to the token that worked */
} vz_gw_upstream_state;
void vz_gw_upstream_state_get(const vz_gw_upstream *u, vz_gw_upstream_state *st);

#endif
