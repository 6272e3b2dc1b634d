/* upstream.c - the VECOZO side of the gateway: one libcurl multi handle
 * per certificate label, driven by the gateway's event loop through
 * libcurl's socket interface, so at most cfg->pool TLS connections with the
 * token's key are kept alive and shared by every client. Everything here
 * runs on the loop's thread: no locks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "gw.h"
#include "tls/tls.h"
#include "probe.h"

/* After the token's key failed in a handshake, the first re-connect is
 * tried after RECONNECT_FIRST_MS, then ever more rarely, at most
 * RECONNECT_MAX_MS apart: each try re-opens the module and loads a provider
 * instance (src/tls/tls.c keeps every earlier one), so a token that stays away
 * costs a try a while, not a try a second. */
#define RECONNECT_FIRST_MS 1000
#define RECONNECT_MAX_MS   30000

/* A signature probe's answer holds this long: handshakes that fail in a
 * row, or a load balancer asking for /_vzp11/health in a loop, cost one
 * signature a second, not one each. */
#define PROBE_HOLD_US (1000LL * 1000)

/* How long a health check's answer holds: see check_holds(). */
#define CHECK_HOLD_US (5000LL * 1000)
#define CHECK_MIN_US  (1000LL * 1000)

/* Easy handles kept for reuse (their buffers stay allocated). */
#define SPARE_HANDLES 64

struct vz_gw_upstream {
	vz_gw *gw;
	const vz_gw_cfg *cfg;
	char *label;
	vz_tls *tls;
	CURLM *multi;
	CURLSH *share;
	long long timer_at; /* libcurl's timer, vz_gw_now_us() time; -1: none */
	bool draining;
	vz_gw_xfer *active;
	size_t n_active;
	CURL *spare[SPARE_HANDLES];
	size_t n_spare;
	size_t handshakes;
	long days_left;
	long long last_ok_us, last_fail_us;
	unsigned long failures;
	char last_why[200];
	/* The token: down after its key failed in a handshake, until a
	 * re-connect works; final when the PIN failed (never sent again). */
	bool token_down, token_final;
	char token_why[300];
	size_t key_failures, key_failures_seen, reconnects;
	bool proven; /* the key signed since the last re-connect */
	long long probe_at_us;
	vz_gw_probe probe;
	char probe_why[200];
	long long next_reconnect_us;
	long reconnect_wait_ms;
	/* Health checks: wanted, running (check_h: a connect-only handshake),
	 * and the last answer */
	bool check_wanted;
	CURL *check_h;
	long long check_at_us;
	bool check_ok;
	char check_why[400];
};

/* A libcurl socket in the loop's epoll set. */
struct sock {
	vz_gw_ev ev;
};

static void ulog(const vz_gw_upstream *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ulog(const vz_gw_upstream *u, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	vz_gw_logf(u->cfg, "%s", line);
}

/* libcurl's sockets into the loop's epoll set. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	vz_gw_upstream *u = userp;
	struct sock *k = socketp;
	unsigned events;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (k)
			vz_gw_unwatch_free(u->gw, &k->ev);
		return 0;
	}
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return -1;
		k->ev = (vz_gw_ev){.kind = VZ_GW_EV_CURL, .fd = s, .owner = u};
		curl_multi_assign(u->multi, s, k);
	}
	events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	vz_gw_watch(u->gw, &k->ev, events);
	return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	vz_gw_upstream *u = userp;

	(void)m;
	u->timer_at = timeout_ms < 0 ? -1 : vz_gw_now_us() + timeout_ms * 1000LL;
	return 0;
}

/* Days until the client certificate of this connection expires. */
static long days_left(CURL *h)
{
	struct curl_tlssessioninfo *info = NULL;
	X509 *cert;
	int days = 0, secs = 0;

	if (curl_easy_getinfo(h, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || !info ||
	    info->backend != CURLSSLBACKEND_OPENSSL || !info->internals)
		return -1;
	cert = SSL_get_certificate(info->internals);
	if (!cert || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)))
		return -1;
	return days;
}

/* A header line of the answer into x->resp_head as "Name\0value\0";
 * hop-by-hop ones are left out. false when out of memory. */
static bool keep_header(vz_gw_xfer *x, const char *p, size_t len)
{
	const char *colon = memchr(p, ':', len);
	size_t nlen, vlen;
	const char *v;
	vz_gw_buf *b = &x->resp_head;
	char name[128];

	if (!colon || (size_t)(colon - p) >= sizeof(name))
		return true; /* not a header line libcurl would pass: dropped */
	nlen = (size_t)(colon - p);
	memcpy(name, p, nlen);
	name[nlen] = '\0';
	v = colon + 1;
	while (v < p + len && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(p + len - v);
	if (strcasecmp(name, "Content-Length") == 0)
		x->resp_clen = strtoll(v, NULL, 10);
	if (vz_gw_hop_by_hop(name, NULL))
		return true;
	if (!vz_gw_buf_reserve(b, b->len + nlen + vlen + 2, 0))
		return false;
	memcpy(b->data + b->len, name, nlen + 1);
	b->len += nlen + 1;
	memcpy(b->data + b->len, v, vlen);
	b->data[b->len + vlen] = '\0';
	b->len += vlen + 1;
	return true;
}

/* The answer's status line and headers. */
static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	vz_gw_xfer *x = userdata;
	long long max = x->up->cfg->max_response;
	size_t len = size * n, vlen = len;

	while (vlen && (p[vlen - 1] == '\n' || p[vlen - 1] == '\r'))
		vlen--;
	if (x->state != VZ_GW_UPSTREAM)
		return x->state == VZ_GW_ANSWERING ? len : 0; /* trailers: not forwarded */
	if (vlen > 5 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', vlen);

		/* "HTTP/1.1 200 Reason": libcurl has read it already */
		x->resp_head.len = 0;
		x->resp_clen = -1;
		x->status = sp && p + vlen - sp > 3 ? strtol(sp + 1, NULL, 10) : 0;
	} else if (vlen == 0 && x->status >= 200) {
		if (max > 0 && x->resp_clen > max) {
			snprintf(
				x->why, sizeof(x->why),
				"the answer (%lld bytes) is larger than the gateway's limit of %lld "
				"bytes (--max-response)",
				x->resp_clen, max);
			return 0;
		}
		if (x->up->days_left < 0)
			x->up->days_left = days_left(x->h);
		/* The client is woken by the body (or the end): an answer
		 * that is all in goes out whole, with its headers. */
		vz_gw_xfer_to(x, VZ_GW_ANSWERING);
	} else if (vlen > 0 && !keep_header(x, p, vlen)) {
		return 0;
	}
	return len;
}

/* The answer's body into x->resp, at most VZ_GW_BUF waiting at a time:
 * when the client reads slower, the transfer pauses. The client is woken
 * once VZ_GW_WAKE bytes wait (or at the end), then for every piece once its
 * answer streams. */
static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	vz_gw_xfer *x = userdata;
	long long max = x->up->cfg->max_response;
	size_t len = size * n;
	vz_gw_buf *b = &x->resp;
	size_t waiting = b->len - b->off;

	if (x->state != VZ_GW_ANSWERING)
		return 0;
	if (max > 0 && x->resp_total + (long long)len > max) {
		snprintf(x->why, sizeof(x->why),
			 "the answer is larger than the gateway's limit of %lld bytes "
			 "(--max-response)",
			 max);
		return 0;
	}
	if (waiting && waiting + len > VZ_GW_BUF) {
		x->write_paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (b->off) {
		memmove(b->data, b->data + b->off, waiting);
		b->off = 0;
		b->len = waiting;
	}
	if (!vz_gw_buf_reserve(b, b->len + len, x->resp_clen))
		return 0;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	x->resp_total += (long long)len;
	if (x->streaming || b->len - b->off >= VZ_GW_WAKE)
		vz_gw_wake_client(x);
	return len;
}

/* The request's body from x->req, as the client sends it. */
static size_t on_read(char *p, size_t size, size_t n, void *userdata)
{
	vz_gw_xfer *x = userdata;
	size_t max = size * n, take;
	vz_gw_buf *b = &x->req;

	if (x->state != VZ_GW_UPSTREAM && x->state != VZ_GW_ANSWERING)
		return CURL_READFUNC_ABORT;
	/* never more than announced: the pooled connection would read the
	 * rest as another request (aborting closes it) */
	if (x->req_clen >= 0 && x->req_sent + (long long)(b->len - b->off) > x->req_clen)
		return CURL_READFUNC_ABORT;
	if (b->len == b->off) {
		if (!x->body_in) {
			x->read_paused = true;
			return CURL_READFUNC_PAUSE;
		}
		if (x->req_clen >= 0 && x->req_sent != x->req_clen)
			return CURL_READFUNC_ABORT;
		return 0;
	}
	take = b->len - b->off < max ? b->len - b->off : max;
	memcpy(p, b->data + b->off, take);
	b->off += take;
	x->req_sent += (long long)take;
	if (b->off == b->len)
		b->off = b->len = 0;
	vz_gw_wake_client(x); /* room again for the body */
	return take;
}

/* An easy handle for x: a spare one reset, or a new one. */
static CURL *take_handle(vz_gw_upstream *u)
{
	CURL *h;

	if (u->n_spare) {
		h = u->spare[--u->n_spare];
		curl_easy_reset(h);
		return h;
	}
	return curl_easy_init();
}

static void give_handle(vz_gw_upstream *u, CURL *h)
{
	if (u->n_spare < SPARE_HANDLES)
		u->spare[u->n_spare++] = h;
	else
		curl_easy_cleanup(h);
}

/* x->h set up for this upstream: TLS with the token key, callbacks, and
 * the method and body as x says. */
static bool prepare(vz_gw_upstream *u, vz_gw_xfer *x)
{
	CURL *h = x->h;
	vz_err err = {0};
	CURLcode c = CURLE_OK;
	bool has_body = x->req_clen != 0;
	bool in_memory = x->body_in; /* all of it in x->req: sent with the headers */
	const char *m = x->method;

	if (vz_tls_setup_curl(u->tls, h, u->cfg->cacert, &err) != VZ_OK) {
		snprintf(x->why, sizeof(x->why), "%.300s", err.msg);
		return false;
	}
	c |= curl_easy_setopt(h, CURLOPT_URL, x->url);
	c |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	c |= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	c |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->req_headers);
	c |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	c |= curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	c |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	c |= curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	c |= curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
	c |= curl_easy_setopt(h, CURLOPT_READDATA, x);
	c |= curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	c |= curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	c |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, u->cfg->connect_timeout_ms);
	c |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, u->cfg->timeout_ms);
	c |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	c |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	c |= curl_easy_setopt(h, CURLOPT_SHARE, u->share);
	if (strcmp(m, "HEAD") == 0) {
		c |= curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (in_memory && (has_body || strcmp(m, "POST") == 0)) {
		/* the whole body with the request headers: one TLS record and
		 * TCP segment where it fits */
		size_t len = x->req.len - x->req.off;

		c |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		c |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, len ? x->req.data + x->req.off : "");
		if (strcmp(m, "POST") != 0)
			c |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "POST") == 0) {
		c |= curl_easy_setopt(h, CURLOPT_POST, 1L);
		c |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				      (curl_off_t)(has_body ? x->req_clen : 0));
	} else if (has_body) {
		c |= curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		c |= curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->req_clen);
		c |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "GET") != 0) {
		c |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
	if (c != CURLE_OK) {
		snprintf(x->why, sizeof(x->why),
			 "libcurl refused a setting (is it older than 7.85?)");
		return false;
	}
	return true;
}

bool vz_gw_upstream_submit(vz_gw_upstream *u, vz_gw_xfer *x, char *why, size_t size)
{
	if (u->token_down) {
		snprintf(why, size, "%s", u->token_why);
		return false;
	}
	if (u->draining) {
		snprintf(why, size, "the gateway is stopping");
		return false;
	}
	x->up = u;
	x->h = take_handle(u);
	if (!x->h || !prepare(u, x) || curl_multi_add_handle(u->multi, x->h) != CURLM_OK) {
		snprintf(why, size, "the gateway cannot start a transfer%s%s",
			 x->why[0] ? ": " : "", x->why);
		if (x->h)
			give_handle(u, x->h);
		x->h = NULL;
		x->up = NULL;
		return false;
	}
	x->next = u->active;
	u->active = x;
	u->n_active++;
	x->refs++; /* the transfer's */
	vz_gw_xfer_to(x, VZ_GW_UPSTREAM);
	return true;
}

/* Takes x off u's list and libcurl's, the handle back for reuse. */
static void detach(vz_gw_upstream *u, vz_gw_xfer *x)
{
	vz_gw_xfer **pp = &u->active;

	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (*pp)
		*pp = x->next;
	x->next = NULL;
	curl_multi_remove_handle(u->multi, x->h);
	give_handle(u, x->h);
	x->h = NULL;
	u->n_active--;
	u->handshakes = vz_tls_connections(u->tls);
}

void vz_gw_upstream_unpause(vz_gw_xfer *x)
{
	if (!x->h || !(x->read_paused || x->write_paused))
		return;
	x->read_paused = x->write_paused = false;
	vz_tls_enter(x->up->tls);
	curl_easy_pause(x->h, CURLPAUSE_CONT);
}

void vz_gw_upstream_cancel(vz_gw_xfer *x)
{
	if (!x->h)
		return;
	detach(x->up, x);
	x->transfer_done = true;
	x->result = CURLE_ABORTED_BY_CALLBACK;
	vz_gw_xfer_release(x); /* the transfer's reference */
}

/* The token's key failed in a handshake: new requests get 503 until a
 * re-connect works (tried from vz_gw_upstream_due). */
static void token_lost(vz_gw_upstream *u, const char *how)
{
	if (u->token_down)
		return;
	u->token_down = true;
	snprintf(u->token_why, sizeof(u->token_why),
		 "the token's key for label %s cannot sign (%s): the token may be away; "
		 "re-connecting, try again shortly",
		 u->label, how);
	vz_tls_forget_key(u->tls);
	/* A key that fails again right after a re-connect, before it signed
	 * anything, is not a token that was away: no quicker tries then. */
	if (u->proven || !u->reconnects)
		u->reconnect_wait_ms = RECONNECT_FIRST_MS;
	u->next_reconnect_us = vz_gw_now_us() + u->reconnect_wait_ms * 1000LL;
	ulog(u,
	     "label %s: the token's key cannot sign (%s); the token may be away: answering "
	     "503 and re-connecting",
	     u->label, how);
}

/* A signature with the token's key now, or the answer of one made less
 * than PROBE_HOLD_US ago. */
static vz_gw_probe probe_key(vz_gw_upstream *u)
{
	long long now = vz_gw_now_us();

	if (u->probe_at_us && now - u->probe_at_us < PROBE_HOLD_US)
		return u->probe;
	vz_tls_enter(u->tls);
	u->probe = vz_gw_sign_probe(u->tls, u->probe_why, sizeof(u->probe_why));
	u->probe_at_us = vz_gw_now_us();
	if (u->probe == VZ_GW_PROBE_OK)
		u->proven = true;
	return u->probe;
}

/* Whether a failed transfer means the token's key no longer signs: a
 * handshake in which the key failed (src/tls/tls.c counts those), or a failed
 * handshake after which a signature with the key fails too (pkcs11-provider
 * can fail before the CertificateVerify, e.g. reading the key's
 * attributes); how in words. */
static bool key_failed(vz_gw_upstream *u, CURLcode c, size_t key_failures, const char **how)
{
	*how = "it failed in a TLS handshake";
	if (key_failures != u->key_failures_seen)
		return true;
	*how = u->probe_why;
	return (c == CURLE_SSL_CONNECT_ERROR || c == CURLE_SSL_CERTPROBLEM) &&
	       probe_key(u) == VZ_GW_PROBE_NO_SIGNATURE;
}

/* libcurl is through with x: an answer that never began is a failure
 * (503 when the token's key failed, else 502); the client is woken to
 * get what there is. */
static void finish(vz_gw_upstream *u, vz_gw_xfer *x, CURLcode c)
{
	size_t key_failures = vz_tls_key_failures(u->tls);
	const char *how;

	detach(u, x);
	u->key_failures = key_failures;
	if (c != CURLE_OK && key_failed(u, c, key_failures, &how))
		token_lost(u, how);
	u->key_failures_seen = key_failures;
	x->transfer_done = true;
	x->result = c;
	if (c == CURLE_OK) {
		u->proven = true;
		u->last_ok_us = vz_gw_now_us();
	} else if (u->token_down) {
		snprintf(x->why, sizeof(x->why), "%s", u->token_why);
	} else {
		if (!x->why[0])
			snprintf(x->why, sizeof(x->why), "%s", vz_http_curl_reason(c));
		if (x->state != VZ_GW_ABORTED &&
		    (vz_http_not_sent(c) || c == CURLE_OPERATION_TIMEDOUT)) {
			u->last_fail_us = vz_gw_now_us();
			u->failures++;
			snprintf(u->last_why, sizeof(u->last_why), "%s", vz_http_curl_reason(c));
		}
	}
	if (x->state == VZ_GW_UPSTREAM) {
		x->refuse = u->token_down && c != CURLE_OK ? 503 : 502;
		vz_gw_xfer_to(x, VZ_GW_FAILED);
	}
	vz_gw_wake_client(x);
	vz_gw_xfer_release(x); /* the transfer's reference */
}

/* The health check's handshake is over. */
static void check_handshake_done(vz_gw_upstream *u, CURLcode c)
{
	size_t key_failures = vz_tls_key_failures(u->tls);
	const char *how;

	curl_multi_remove_handle(u->multi, u->check_h);
	curl_easy_cleanup(u->check_h);
	u->check_h = NULL;
	u->handshakes = vz_tls_connections(u->tls);
	u->key_failures = key_failures;
	if (c != CURLE_OK && key_failed(u, c, key_failures, &how))
		token_lost(u, how);
	u->key_failures_seen = key_failures;
	u->check_at_us = vz_gw_now_us();
	u->check_ok = c == CURLE_OK;
	if (c == CURLE_OK) {
		u->last_ok_us = u->check_at_us;
		u->check_why[0] = '\0';
	} else if (u->token_down) {
		snprintf(u->check_why, sizeof(u->check_why), "%s", u->token_why);
	} else {
		u->last_fail_us = u->check_at_us;
		u->failures++;
		snprintf(u->last_why, sizeof(u->last_why), "%s", vz_http_curl_reason(c));
		snprintf(u->check_why, sizeof(u->check_why),
			 "label %s: a fresh TLS handshake with the upstream failed: %s", u->label,
			 u->last_why);
	}
}

/* What libcurl finished, after it ran. */
static void reap(vz_gw_upstream *u)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left))) {
		void *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (msg->easy_handle == u->check_h) {
			check_handshake_done(u, msg->data.result);
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		finish(u, priv, msg->data.result);
	}
}

void vz_gw_upstream_socket(vz_gw_upstream *u, int fd, unsigned events)
{
	int running, mask = 0;

	mask |= events & EPOLLIN ? CURL_CSELECT_IN : 0;
	mask |= events & EPOLLOUT ? CURL_CSELECT_OUT : 0;
	mask |= events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0;
	vz_tls_enter(u->tls);
	curl_multi_socket_action(u->multi, fd, mask, &running);
	reap(u);
}

/* Whether a transfer may be in a TLS handshake (not yet past connecting):
 * the key must not be swapped under it. */
static bool in_handshake(const vz_gw_upstream *u)
{
	for (const vz_gw_xfer *x = u->active; x; x = x->next) {
		curl_off_t pre = 0;

		if (curl_easy_getinfo(x->h, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK || !pre)
			return true;
	}
	return u->check_h != NULL;
}

/* While the token is down: re-opens the module and loads the key again
 * (src/tls/tls.c), at most once per u->reconnect_wait_ms, never after the PIN
 * failed; returns the microseconds until the next try (-1: none due). */
static long long try_reconnect(vz_gw_upstream *u, long long now)
{
	vz_err e = {0};
	bool final = false;
	vz_rv r;

	if (!u->token_down || u->token_final)
		return -1;
	if (now < u->next_reconnect_us)
		return u->next_reconnect_us - now;
	if (in_handshake(u))
		return 50 * 1000;
	r = vz_tls_reconnect(u->tls, &final, &e);
	u->key_failures_seen = vz_tls_key_failures(u->tls);
	u->probe_at_us = 0;
	u->proven = false;
	if (r == VZ_OK) {
		u->token_down = false;
		u->token_why[0] = '\0';
		u->reconnects++;
		ulog(u, "label %s: re-connected to the token; serving again", u->label);
		return -1;
	}
	u->reconnect_wait_ms = u->reconnect_wait_ms < RECONNECT_FIRST_MS ? RECONNECT_FIRST_MS
									 : u->reconnect_wait_ms;
	if (final) {
		u->token_final = true;
		snprintf(
			u->token_why, sizeof(u->token_why),
			"label %s: the token is not re-connected: %.200s; restart the gateway once "
			"the PIN source is right",
			u->label, e.msg);
		ulog(u, "label %s: re-connecting to the token failed for good: %s %s", u->label,
		     e.msg, e.hint);
		return -1;
	}
	u->next_reconnect_us = now + u->reconnect_wait_ms * 1000LL;
	ulog(u, "label %s: the token is still away (%s); next try in %ld s", u->label, e.msg,
	     u->reconnect_wait_ms / 1000);
	u->reconnect_wait_ms = u->reconnect_wait_ms * 2 > RECONNECT_MAX_MS
				       ? RECONNECT_MAX_MS
				       : u->reconnect_wait_ms * 2;
	return u->next_reconnect_us - now;
}

/* An answer to a health check without a handshake. */
static void check_answer(vz_gw_upstream *u, bool ok, const char *why)
{
	u->check_at_us = vz_gw_now_us();
	u->check_ok = ok;
	snprintf(u->check_why, sizeof(u->check_why), "%s", ok ? "" : why);
}

/* A health check: a signature with the token's key (probe_key), and
 * unless a transfer worked since the last failure, a fresh TLS handshake
 * with the upstream (a connect-only transfer, no session resumption, so
 * the key signs in it), finished in check_handshake_done(). */
static void check_start(vz_gw_upstream *u)
{
	char why[400];
	vz_err err = {0};
	CURLcode c = CURLE_OK;
	CURL *h;

	switch (probe_key(u)) {
	case VZ_GW_PROBE_NO_SIGNATURE:
		token_lost(u, u->probe_why);
		check_answer(u, false, u->token_why);
		return;
	case VZ_GW_PROBE_MISMATCH:
		snprintf(why, sizeof(why), "label %s: %s", u->label, u->probe_why);
		check_answer(u, false, why);
		return;
	case VZ_GW_PROBE_OK:
		break;
	}
	if (u->last_ok_us && u->last_ok_us >= u->last_fail_us) {
		check_answer(u, true, "");
		return;
	}
	h = curl_easy_init();
	if (!h || vz_tls_setup_curl(u->tls, h, u->cfg->cacert, &err) != VZ_OK) {
		curl_easy_cleanup(h);
		snprintf(why, sizeof(why),
			 "label %s: the gateway cannot set up a handshake: %.200s", u->label,
			 err.msg[0] ? err.msg : "out of memory");
		check_answer(u, false, why);
		return;
	}
	c |= curl_easy_setopt(h, CURLOPT_URL, u->cfg->base);
	c |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	c |= curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	c |= curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	c |= curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	c |= curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	c |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	c |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, u->cfg->connect_timeout_ms);
	c |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, u->cfg->connect_timeout_ms);
	if (c != CURLE_OK || curl_multi_add_handle(u->multi, h) != CURLM_OK) {
		curl_easy_cleanup(h);
		snprintf(why, sizeof(why), "label %s: libcurl refused the handshake's settings",
			 u->label);
		check_answer(u, false, why);
		return;
	}
	u->check_h = h;
}

long long vz_gw_upstream_due(vz_gw_upstream *u, long long now)
{
	long long next = -1, r;

	if (u->check_wanted && !u->check_h && !u->token_down) {
		u->check_wanted = false;
		check_start(u);
	}
	if (u->timer_at >= 0 && now >= u->timer_at) {
		int running;

		u->timer_at = -1;
		vz_tls_enter(u->tls);
		curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		reap(u);
	}
	if (u->timer_at >= 0)
		next = u->timer_at > now ? u->timer_at - now : 0;
	r = try_reconnect(u, now);
	if (r >= 0 && (next < 0 || r < next))
		next = r;
	return next;
}

vz_rv vz_gw_upstream_new(vz_gw *gw, const char *label, vz_tls *tls, vz_gw_upstream **out,
			 vz_err *err)
{
	vz_gw_upstream *u = calloc(1, sizeof(*u));

	if (!u) {
		vz_tls_close(tls);
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	u->gw = gw;
	u->cfg = gw->cfg;
	u->tls = tls;
	u->days_left = -1;
	u->timer_at = -1;
	u->label = strdup(label);
	u->multi = curl_multi_init();
	u->share = curl_share_init();
	if (!u->label || !u->multi || !u->share ||
	    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
		    CURLSHE_OK ||
	    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
		vz_err_set(err, "libcurl cannot set up a connection pool");
		vz_gw_upstream_free(u);
		return VZ_FAIL;
	}
	/* Connections with one label's key never serve another label: each
	 * label has its own multi handle, so its own connection cache. */
	curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, u->cfg->pool);
	curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, u->cfg->pool);
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, u->cfg->pool);
	curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	*out = u;
	return VZ_OK;
}

void vz_gw_upstream_drain(vz_gw_upstream *u)
{
	u->draining = true;
}

bool vz_gw_upstream_idle(const vz_gw_upstream *u)
{
	return !u->active && !u->check_h;
}

void vz_gw_upstream_free(vz_gw_upstream *u)
{
	if (!u)
		return;
	while (u->active) {
		vz_gw_xfer *x = u->active;

		snprintf(x->why, sizeof(x->why), "the gateway is stopping");
		finish(u, x, CURLE_ABORTED_BY_CALLBACK);
	}
	if (u->check_h) {
		curl_multi_remove_handle(u->multi, u->check_h);
		curl_easy_cleanup(u->check_h);
	}
	while (u->n_spare)
		curl_easy_cleanup(u->spare[--u->n_spare]);
	curl_multi_cleanup(u->multi); /* removes its sockets from the loop */
	curl_share_cleanup(u->share);
	vz_tls_close(u->tls);
	free(u->label);
	free(u);
}

void vz_gw_upstream_state_get(const vz_gw_upstream *u, vz_gw_upstream_state *st)
{
	memset(st, 0, sizeof(*st));
	st->label = u->label;
	st->handshakes = u->handshakes;
	st->active = u->n_active;
	st->days_left = u->days_left;
	st->failures = u->failures;
	st->token_up = !u->token_down;
	st->key_failures = u->key_failures;
	st->reconnects = u->reconnects;
}

/* Whether the last health check still answers: healthy for CHECK_HOLD_US
 * unless a transfer failed since, unhealthy for CHECK_MIN_US unless a
 * transfer worked since. */
static bool check_holds(const vz_gw_upstream *u, long long now)
{
	long long age = now - u->check_at_us;

	if (!u->check_at_us)
		return false;
	if (u->check_ok)
		return age < CHECK_MIN_US ||
		       (age < CHECK_HOLD_US && u->last_fail_us <= u->check_at_us);
	return age < CHECK_MIN_US && u->last_ok_us <= u->check_at_us;
}

void vz_gw_upstream_check(vz_gw_upstream *u)
{
	if (!u->token_down && !u->check_h && !check_holds(u, vz_gw_now_us()))
		u->check_wanted = true;
}

int vz_gw_upstream_healthy(vz_gw_upstream *u, char *why, size_t size)
{
	if (u->token_down) {
		snprintf(why, size, "%s", u->token_why);
		return 0;
	}
	if (u->check_wanted || u->check_h)
		return -1;
	snprintf(why, size, "%s", u->check_why);
	return u->check_ok;
}
