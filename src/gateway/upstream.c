/* upstream.c - the VECOZO side of the gateway: one thread per certificate
 * label runs a libcurl multi handle, so at most cfg->pool TLS connections
 * with the token's key are kept alive and shared by every client. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "gw.h"
#include "http.h"
#include "probe.h"

/* After the token's key failed in a handshake, the first re-connect is
 * tried after RECONNECT_FIRST_MS, then ever more rarely, at most
 * RECONNECT_MAX_MS apart: each try re-opens the module and loads a provider
 * instance (src/tls.c keeps every earlier one), so a token that stays away
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

/* One token re-connect (or key load) at a time in the process: src/tls.c
 * keeps process-wide state for them. */
static pthread_mutex_t token_m = PTHREAD_MUTEX_INITIALIZER;

struct vz_gw_upstream {
	const vz_gw_cfg *cfg;
	char *label;
	vz_tls *tls;
	CURLM *multi;
	CURLSH *share;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t m; /* pending, draining, stop, the state below */
	vz_gw_xfer *pending;
	bool draining, stop;
	atomic_bool exited;
	vz_gw_xfer *active; /* the thread's own */
	atomic_size_t n_active;
	atomic_size_t handshakes; /* vz_tls_connections(), read by this thread */
	long days_left;
	long long last_ok_us, last_fail_us;
	unsigned long failures;
	char last_why[200];
	/* The token: down after its key failed in a handshake, until a
	 * re-connect works; final when the PIN failed (never sent again). */
	bool token_down, token_final;
	char token_why[300];
	atomic_size_t key_failures, reconnects;
	/* Health checks (vz_gw_upstream_check): asked for, running, and the
	 * last answer (when, ok, why), under m; check_cv signals an answer. */
	pthread_cond_t check_cv;
	bool check_wanted, check_running;
	unsigned long check_gen;
	long long check_at_us;
	bool check_ok;
	char check_why[400];
	/* the thread's own */
	CURL *check_h; /* a connect-only handshake for a health check */
	bool proven;   /* the key signed since the last re-connect */
	size_t key_failures_seen;
	long long probe_at_us;
	vz_gw_probe probe;
	char probe_why[200];
	long long next_reconnect_us;
	long reconnect_wait_ms;
};

void vz_gw_token_lock(void)
{
	pthread_mutex_lock(&token_m);
}

void vz_gw_token_unlock(void)
{
	pthread_mutex_unlock(&token_m);
}

static void ulog(const vz_gw_upstream *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ulog(const vz_gw_upstream *u, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!u->cfg->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	u->cfg->log(u->cfg->log_ctx, line);
}

long long vz_gw_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool vz_gw_buf_reserve(vz_gw_buf *b, size_t total, long long hint)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *g;

	if (total <= b->cap)
		return true;
	if (!b->cap && hint > 0 && (unsigned long long)hint > cap)
		cap = (unsigned long long)hint < VZ_GW_BUF ? (size_t)hint : VZ_GW_BUF;
	while (cap < total)
		cap *= 2;
	g = realloc(b->data, cap);
	if (!g)
		return false;
	b->data = g;
	b->cap = cap;
	return true;
}

static void buf_free(vz_gw_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void vz_gw_xfer_release(vz_gw_xfer *x)
{
	int left;

	pthread_mutex_lock(&x->m);
	left = --x->refs;
	pthread_mutex_unlock(&x->m);
	if (left > 0)
		return;
	if (x->h)
		curl_easy_cleanup(x->h);
	curl_slist_free_all(x->req_headers);
	curl_slist_free_all(x->resp_headers);
	buf_free(&x->req);
	buf_free(&x->resp);
	free(x->url);
	free(x->target);
	pthread_mutex_destroy(&x->m);
	free(x);
}

void vz_gw_xfer_poke(vz_gw_xfer *x)
{
	if (x->up && !x->done)
		curl_multi_wakeup(x->up->multi);
}

/* Resumes the client's connection if it waits for this transfer; with
 * x->m held. */
static void wake_client(vz_gw_xfer *x)
{
	if (x->suspended && !x->client_gone) {
		x->suspended = false;
		MHD_resume_connection(x->conn);
	}
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

/* The certificate's days left, once known: read from a live connection
 * (libcurl detaches it when the transfer ends). */
static void note_days_left(vz_gw_upstream *u, CURL *h)
{
	long days;

	pthread_mutex_lock(&u->m);
	days = u->days_left;
	pthread_mutex_unlock(&u->m);
	if (days >= 0)
		return;
	days = days_left(h);
	pthread_mutex_lock(&u->m);
	u->days_left = days;
	pthread_mutex_unlock(&u->m);
}

/* The answer's status line and headers; hop-by-hop ones are dropped. */
static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	vz_gw_xfer *x = userdata;
	long long max = x->up->cfg->max_response;
	size_t len = size * n, vlen = len;
	size_t ret = len;

	while (vlen && (p[vlen - 1] == '\n' || p[vlen - 1] == '\r'))
		vlen--;
	pthread_mutex_lock(&x->m);
	if (x->client_gone) {
		ret = 0;
	} else if (x->headers_done) {
		/* trailers of a chunked answer: not forwarded, and the headers
		 * must not change once queue_answer() may read them */
	} else if (vlen > 5 && strncmp(p, "HTTP/", 5) == 0) {
		char line[64];

		snprintf(line, sizeof(line), "%.*s", (int)(vlen < 63 ? vlen : 63), p);
		curl_slist_free_all(x->resp_headers);
		x->resp_headers = NULL;
		x->resp_clen = -1;
		if (sscanf(line, "HTTP/%*s %ld", &x->status) != 1)
			x->status = 0;
	} else if (vlen == 0 && x->status >= 200) {
		if (max > 0 && x->resp_clen > max) {
			snprintf(
				x->why, sizeof(x->why),
				"the answer (%lld bytes) is larger than the gateway's limit of %lld "
				"bytes (--max-response)",
				x->resp_clen, max);
			ret = 0;
		} else {
			/* The client is woken by the body (or the end): an
			 * answer queued whole goes out in one send. */
			x->headers_done = true;
			note_days_left(x->up, x->h);
		}
	} else if (vlen > 0) {
		char *line = strndup(p, vlen);
		char *colon = line ? strchr(line, ':') : NULL;

		if (!line) {
			ret = 0;
		} else if (colon) {
			*colon = '\0';
			if (strcasecmp(line, "Content-Length") == 0)
				x->resp_clen = strtoll(colon + 1, NULL, 10);
			if (!vz_gw_hop_by_hop(line, NULL)) {
				struct curl_slist *l;

				*colon = ':';
				l = curl_slist_append(x->resp_headers, line);
				if (l)
					x->resp_headers = l;
				else
					ret = 0;
			}
		}
		free(line);
	}
	pthread_mutex_unlock(&x->m);
	return ret;
}

/* The answer's body into x->resp, at most VZ_GW_BUF waiting at a time:
 * when the client reads slower, the transfer pauses. The client is woken
 * once VZ_GW_WAKE bytes wait (or at the end, by finish()), then for every
 * piece once its answer streams. */
static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	vz_gw_xfer *x = userdata;
	long long max = x->up->cfg->max_response;
	size_t len = size * n, waiting;
	vz_gw_buf *b = &x->resp;
	size_t ret = len;

	pthread_mutex_lock(&x->m);
	waiting = b->len - b->off;
	if (x->client_gone) {
		ret = 0;
	} else if (max > 0 && x->resp_total + (long long)len > max) {
		snprintf(x->why, sizeof(x->why),
			 "the answer is larger than the gateway's limit of %lld bytes "
			 "(--max-response)",
			 max);
		ret = 0;
	} else if (waiting && waiting + len > VZ_GW_BUF) {
		x->write_paused = true;
		ret = CURL_WRITEFUNC_PAUSE;
	} else {
		if (b->off) {
			memmove(b->data, b->data + b->off, waiting);
			b->off = 0;
			b->len = waiting;
		}
		if (!vz_gw_buf_reserve(b, b->len + len, x->resp_clen)) {
			pthread_mutex_unlock(&x->m);
			return 0;
		}
		memcpy(b->data + b->len, p, len);
		b->len += len;
		x->resp_total += (long long)len;
		if (x->streaming || b->len - b->off >= VZ_GW_WAKE)
			wake_client(x);
	}
	pthread_mutex_unlock(&x->m);
	return ret;
}

/* The request's body from x->req, as the client sends it. */
static size_t on_read(char *p, size_t size, size_t n, void *userdata)
{
	vz_gw_xfer *x = userdata;
	size_t max = size * n, take;
	vz_gw_buf *b = &x->req;
	size_t ret;

	pthread_mutex_lock(&x->m);
	if (x->client_gone || x->too_big) {
		ret = CURL_READFUNC_ABORT;
	} else if (x->req_clen >= 0 && x->req_sent + (long long)(b->len - b->off) > x->req_clen) {
		/* never more than announced: the pooled connection would read the
		 * rest as another request (aborting closes it) */
		ret = CURL_READFUNC_ABORT;
	} else if (b->len == b->off) {
		if (x->req_eof && x->req_clen >= 0 && x->req_sent != x->req_clen) {
			ret = CURL_READFUNC_ABORT;
		} else if (x->req_eof) {
			ret = 0;
		} else {
			x->read_paused = true;
			ret = CURL_READFUNC_PAUSE;
		}
	} else {
		take = b->len - b->off < max ? b->len - b->off : max;
		memcpy(p, b->data + b->off, take);
		b->off += take;
		x->req_sent += (long long)take;
		if (b->off == b->len)
			b->off = b->len = 0;
		wake_client(x);
		ret = take;
	}
	pthread_mutex_unlock(&x->m);
	return ret;
}

vz_rv vz_gw_upstream_prepare(vz_gw_upstream *u, vz_gw_xfer *x, vz_err *err)
{
	CURLcode c = CURLE_OK;

	x->up = u;
	if (vz_tls_setup_curl(u->tls, x->h, u->cfg->cacert, err) != VZ_OK)
		return VZ_FAIL;
	c |= curl_easy_setopt(x->h, CURLOPT_URL, x->url);
	c |= curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "https");
	c |= curl_easy_setopt(x->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	c |= curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->req_headers);
	c |= curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header);
	c |= curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
	c |= curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
	c |= curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
	c |= curl_easy_setopt(x->h, CURLOPT_READFUNCTION, on_read);
	c |= curl_easy_setopt(x->h, CURLOPT_READDATA, x);
	c |= curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
	c |= curl_easy_setopt(x->h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	c |= curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, u->cfg->connect_timeout_ms);
	c |= curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, u->cfg->timeout_ms);
	c |= curl_easy_setopt(x->h, CURLOPT_TCP_KEEPALIVE, 1L);
	c |= curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
	c |= curl_easy_setopt(x->h, CURLOPT_BUFFERSIZE, 65536L);
	if (c != CURLE_OK) {
		vz_err_set(err, "libcurl refused a setting (is it older than 7.85?)");
		return VZ_FAIL;
	}
	return VZ_OK;
}

bool vz_gw_upstream_submit(vz_gw_upstream *u, vz_gw_xfer *x, char *why, size_t size)
{
	bool ok, wake = false;

	pthread_mutex_lock(&u->m);
	ok = !u->draining && !u->stop && !u->token_down;
	if (u->token_down)
		snprintf(why, size, "%s", u->token_why);
	else if (!ok)
		snprintf(why, size, "the gateway is stopping");
	if (ok) {
		/* The thread takes all pending at once: only the first one
		 * since it last looked needs to wake it. */
		wake = !u->pending;
		x->next = u->pending;
		u->pending = x;
		atomic_fetch_add(&u->n_active, 1);
	}
	pthread_mutex_unlock(&u->m);
	if (wake)
		curl_multi_wakeup(u->multi);
	return ok;
}

/* The token's key failed in a handshake: new requests get 503 until a
 * re-connect works (tried from run()). */
static void token_lost(vz_gw_upstream *u, const char *how)
{
	bool was;

	pthread_mutex_lock(&u->m);
	was = u->token_down;
	if (!was) {
		u->token_down = true;
		snprintf(u->token_why, sizeof(u->token_why),
			 "the token's key for label %s cannot sign (%s): the token may be away; "
			 "re-connecting, try again shortly",
			 u->label, how);
	}
	pthread_mutex_unlock(&u->m);
	if (was)
		return;
	vz_tls_forget_key(u->tls);
	/* A key that fails again right after a re-connect, before it signed
	 * anything, is not a token that was away: no quicker tries then. */
	if (u->proven || !atomic_load(&u->reconnects))
		u->reconnect_wait_ms = RECONNECT_FIRST_MS;
	u->next_reconnect_us = vz_gw_now_us() + u->reconnect_wait_ms * 1000LL;
	ulog(u,
	     "label %s: the token's key cannot sign (%s); the token may be away: answering "
	     "503 and re-connecting",
	     u->label, how);
}

/* A signature with the token's key now, or the answer of one made less
 * than PROBE_HOLD_US ago; on the upstream thread only. */
static vz_gw_probe probe_key(vz_gw_upstream *u)
{
	long long now = vz_gw_now_us();

	if (u->probe_at_us && now - u->probe_at_us < PROBE_HOLD_US)
		return u->probe;
	u->probe = vz_gw_sign_probe(u->tls, u->probe_why, sizeof(u->probe_why));
	u->probe_at_us = vz_gw_now_us();
	if (u->probe == VZ_GW_PROBE_OK)
		u->proven = true;
	return u->probe;
}

/* Whether a failed transfer means the token's key no longer signs: a
 * handshake in which the key failed (src/tls.c counts those), or a failed
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

/* The end of a transfer: the client is woken to send what there is. A
 * transfer that failed while the token's key failed is answered 503. */
static void finish(vz_gw_upstream *u, vz_gw_xfer *x, CURLcode c, const char *why)
{
	vz_gw_xfer **pp = &u->active;
	size_t key_failures = vz_tls_key_failures(u->tls);
	char token_why[sizeof(u->token_why)] = "";
	const char *how;
	bool gone;

	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (*pp)
		*pp = x->next;
	curl_multi_remove_handle(u->multi, x->h);
	atomic_store(&u->key_failures, key_failures);
	if (c != CURLE_OK && key_failed(u, c, key_failures, &how))
		token_lost(u, how);
	u->key_failures_seen = key_failures;
	if (c != CURLE_OK) {
		pthread_mutex_lock(&u->m);
		if (u->token_down)
			snprintf(token_why, sizeof(token_why), "%s", u->token_why);
		pthread_mutex_unlock(&u->m);
	}
	pthread_mutex_lock(&x->m);
	gone = x->client_gone; /* before waking it: then it may go at once */
	x->done = true;
	x->result = c;
	if (token_why[0]) {
		x->unavailable = true;
		snprintf(x->why, sizeof(x->why), "%s", token_why);
	} else if (c != CURLE_OK && !x->why[0]) {
		snprintf(x->why, sizeof(x->why), "%s", why ? why : vz_http_curl_reason(c));
	}
	wake_client(x);
	pthread_mutex_unlock(&x->m);
	if (c == CURLE_OK)
		u->proven = true;
	pthread_mutex_lock(&u->m);
	if (c == CURLE_OK) {
		u->last_ok_us = vz_gw_now_us();
	} else if (!why && !gone && !token_why[0] &&
		   (vz_http_not_sent(c) || c == CURLE_OPERATION_TIMEDOUT)) {
		u->last_fail_us = vz_gw_now_us();
		u->failures++;
		snprintf(u->last_why, sizeof(u->last_why), "%s", vz_http_curl_reason(c));
	}
	pthread_mutex_unlock(&u->m);
	curl_easy_cleanup(x->h);
	x->h = NULL;
	atomic_store(&u->handshakes, vz_tls_connections(u->tls));
	atomic_fetch_sub(&u->n_active, 1);
	vz_gw_xfer_release(x);
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
	return false;
}

/* While the token is down: re-opens the module and loads the key again
 * (src/tls.c), at most once per u->reconnect_wait_ms, never after the PIN
 * failed; returns the microseconds until the next try (-1: none due). */
static long long try_reconnect(vz_gw_upstream *u)
{
	long long now = vz_gw_now_us();
	vz_err e = {0};
	bool down, final = false;
	vz_rv r;

	pthread_mutex_lock(&u->m);
	down = u->token_down && !u->token_final;
	pthread_mutex_unlock(&u->m);
	if (!down)
		return -1;
	if (now < u->next_reconnect_us)
		return u->next_reconnect_us - now;
	if (in_handshake(u))
		return 50 * 1000;
	vz_gw_token_lock();
	r = vz_tls_reconnect(u->tls, &final, &e);
	vz_gw_token_unlock();
	u->key_failures_seen = vz_tls_key_failures(u->tls);
	pthread_mutex_lock(&u->m);
	u->probe_at_us = 0;
	u->proven = false;
	if (r == VZ_OK) {
		u->token_down = false;
		u->token_why[0] = '\0';
	} else if (final) {
		u->token_final = true;
		snprintf(
			u->token_why, sizeof(u->token_why),
			"label %s: the token is not re-connected: %.200s; restart the gateway once "
			"the PIN source is right",
			u->label, e.msg);
	}
	pthread_mutex_unlock(&u->m);
	if (r == VZ_OK) {
		atomic_fetch_add(&u->reconnects, 1);
		ulog(u, "label %s: re-connected to the token; serving again", u->label);
		return -1;
	}
	u->reconnect_wait_ms = u->reconnect_wait_ms < RECONNECT_FIRST_MS ? RECONNECT_FIRST_MS
									 : u->reconnect_wait_ms;
	if (final) {
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

/* The answer of a health check: to every waiter. */
static void check_done(vz_gw_upstream *u, bool ok, const char *why)
{
	pthread_mutex_lock(&u->m);
	u->check_at_us = vz_gw_now_us();
	u->check_ok = ok;
	u->check_running = false;
	snprintf(u->check_why, sizeof(u->check_why), "%s", ok ? "" : why);
	u->check_gen++;
	pthread_cond_broadcast(&u->check_cv);
	pthread_mutex_unlock(&u->m);
}

/* A health check: a signature with the token's key (probe_key), and
 * unless a transfer worked since the last failure, a fresh TLS handshake
 * with the upstream (a connect-only transfer, no session resumption, so
 * the key signs in it); its end is in check_handshake_done(). */
static void check_start(vz_gw_upstream *u)
{
	char why[400];
	vz_err err = {0};
	bool known_good;
	CURLcode c = CURLE_OK;
	CURL *h;

	switch (probe_key(u)) {
	case VZ_GW_PROBE_NO_SIGNATURE:
		token_lost(u, u->probe_why);
		pthread_mutex_lock(&u->m);
		snprintf(why, sizeof(why), "%s", u->token_why);
		pthread_mutex_unlock(&u->m);
		check_done(u, false, why);
		return;
	case VZ_GW_PROBE_MISMATCH:
		snprintf(why, sizeof(why), "label %s: %s", u->label, u->probe_why);
		check_done(u, false, why);
		return;
	case VZ_GW_PROBE_OK:
		break;
	}
	pthread_mutex_lock(&u->m);
	known_good = u->last_ok_us && u->last_ok_us >= u->last_fail_us;
	pthread_mutex_unlock(&u->m);
	if (known_good) {
		check_done(u, true, "");
		return;
	}
	h = curl_easy_init();
	if (!h || vz_tls_setup_curl(u->tls, h, u->cfg->cacert, &err) != VZ_OK) {
		curl_easy_cleanup(h);
		snprintf(why, sizeof(why),
			 "label %s: the gateway cannot set up a handshake: %.200s", u->label,
			 err.msg[0] ? err.msg : "out of memory");
		check_done(u, false, why);
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
		check_done(u, false, why);
		return;
	}
	u->check_h = h;
}

/* The health check's handshake is over. */
static void check_handshake_done(vz_gw_upstream *u, CURLcode c)
{
	size_t key_failures = vz_tls_key_failures(u->tls);
	const char *how;
	char why[400];

	curl_multi_remove_handle(u->multi, u->check_h);
	curl_easy_cleanup(u->check_h);
	u->check_h = NULL;
	atomic_store(&u->handshakes, vz_tls_connections(u->tls));
	atomic_store(&u->key_failures, key_failures);
	if (c != CURLE_OK && key_failed(u, c, key_failures, &how))
		token_lost(u, how);
	u->key_failures_seen = key_failures;
	pthread_mutex_lock(&u->m);
	if (c == CURLE_OK) {
		u->last_ok_us = vz_gw_now_us();
	} else if (u->token_down) {
		snprintf(why, sizeof(why), "%s", u->token_why);
	} else {
		u->last_fail_us = vz_gw_now_us();
		u->failures++;
		snprintf(u->last_why, sizeof(u->last_why), "%s", vz_http_curl_reason(c));
		snprintf(why, sizeof(why),
			 "label %s: a fresh TLS handshake with the upstream failed: %s", u->label,
			 u->last_why);
	}
	pthread_mutex_unlock(&u->m);
	check_done(u, c == CURLE_OK, c == CURLE_OK ? "" : why);
}

static void *run(void *arg)
{
	vz_gw_upstream *u = arg;

	for (;;) {
		vz_gw_xfer *fresh, *x, *next;
		bool stop, idle, want;
		CURLMsg *msg;
		int running, left, wait_ms = 1000;
		long long due;

		pthread_mutex_lock(&u->m);
		fresh = u->pending;
		u->pending = NULL;
		stop = u->stop;
		pthread_mutex_unlock(&u->m);
		for (x = fresh; x; x = next) {
			next = x->next;
			x->next = u->active;
			u->active = x;
			/* Set here, not in vz_gw_upstream_prepare(): without lock
			 * callbacks a share is for one thread, and setting it or
			 * cleaning a handle that has it counts its users. */
			if (curl_easy_setopt(x->h, CURLOPT_SHARE, u->share) != CURLE_OK ||
			    curl_multi_add_handle(u->multi, x->h) != CURLM_OK)
				finish(u, x, CURLE_OUT_OF_MEMORY,
				       "the gateway cannot start a transfer");
		}
		if (stop) {
			while (u->active)
				finish(u, u->active, CURLE_ABORTED_BY_CALLBACK,
				       "the gateway is stopping");
			if (u->check_h) {
				curl_multi_remove_handle(u->multi, u->check_h);
				curl_easy_cleanup(u->check_h);
				u->check_h = NULL;
			}
			check_done(u, false, "the gateway is stopping");
			break;
		}
		pthread_mutex_lock(&u->m);
		want = u->check_wanted && !u->check_h;
		u->check_wanted = false;
		pthread_mutex_unlock(&u->m);
		if (want)
			check_start(u);
		for (x = u->active; x; x = next) {
			bool abort, resume;

			next = x->next;
			pthread_mutex_lock(&x->m);
			abort = x->want_abort;
			resume = x->want_resume;
			x->want_abort = x->want_resume = false;
			pthread_mutex_unlock(&x->m);
			if (abort)
				finish(u, x, CURLE_ABORTED_BY_CALLBACK, "the client went away");
			else if (resume)
				curl_easy_pause(x->h, CURLPAUSE_CONT);
		}
		curl_multi_perform(u->multi, &running);
		for (msg = curl_multi_info_read(u->multi, &left); msg;
		     msg = curl_multi_info_read(u->multi, &left)) {
			void *priv = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			if (msg->easy_handle == u->check_h) {
				check_handshake_done(u, msg->data.result);
				continue;
			}
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			finish(u, priv, msg->data.result, NULL);
		}
		pthread_mutex_lock(&u->m);
		idle = u->draining && !u->pending && !u->active && !u->check_h;
		pthread_mutex_unlock(&u->m);
		if (idle)
			break;
		due = try_reconnect(u);
		if (due >= 0 && due / 1000 < wait_ms)
			wait_ms = (int)(due / 1000) + 1;
		curl_multi_poll(u->multi, NULL, 0, wait_ms, NULL);
	}
	atomic_store(&u->exited, true);
	return NULL;
}

vz_rv vz_gw_upstream_start(const vz_gw_cfg *cfg, const char *label, vz_tls *tls,
			   vz_gw_upstream **out, vz_err *err)
{
	vz_gw_upstream *u = calloc(1, sizeof(*u));

	if (!u) {
		vz_tls_close(tls);
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	pthread_condattr_t ca;

	pthread_mutex_init(&u->m, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->check_cv, &ca);
	pthread_condattr_destroy(&ca);
	u->cfg = cfg;
	u->tls = tls;
	u->days_left = -1;
	u->label = strdup(label);
	u->multi = curl_multi_init();
	u->share = curl_share_init();
	if (!u->label || !u->multi || !u->share ||
	    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
		    CURLSHE_OK ||
	    curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
		vz_err_set(err, "libcurl cannot set up a connection pool");
		goto fail;
	}
	/* Connections with one label's key never serve another label: each
	 * label has its own multi handle, so its own connection cache. */
	curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, cfg->pool);
	curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, cfg->pool);
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, cfg->pool);
	curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	if (pthread_create(&u->thread, NULL, run, u) != 0) {
		vz_err_set(err, "cannot start the upstream thread");
		goto fail;
	}
	u->thread_started = true;
	*out = u;
	return VZ_OK;
fail:
	vz_gw_upstream_free(u);
	return VZ_FAIL;
}

void vz_gw_upstream_drain(vz_gw_upstream *u)
{
	pthread_mutex_lock(&u->m);
	u->draining = true;
	pthread_mutex_unlock(&u->m);
	curl_multi_wakeup(u->multi);
}

bool vz_gw_upstream_drained(vz_gw_upstream *u)
{
	return atomic_load(&u->exited);
}

void vz_gw_upstream_free(vz_gw_upstream *u)
{
	if (!u)
		return;
	if (u->thread_started) {
		pthread_mutex_lock(&u->m);
		u->stop = true;
		pthread_mutex_unlock(&u->m);
		curl_multi_wakeup(u->multi);
		pthread_join(u->thread, NULL);
	}
	curl_multi_cleanup(u->multi);
	curl_share_cleanup(u->share);
	vz_tls_close(u->tls);
	free(u->label);
	pthread_cond_destroy(&u->check_cv);
	pthread_mutex_destroy(&u->m);
	free(u);
}

void vz_gw_upstream_state_get(vz_gw_upstream *u, vz_gw_upstream_state *st)
{
	memset(st, 0, sizeof(*st));
	st->label = u->label;
	st->handshakes = atomic_load(&u->handshakes);
	st->active = atomic_load(&u->n_active);
	pthread_mutex_lock(&u->m);
	st->days_left = u->days_left;
	st->last_ok_us = u->last_ok_us;
	st->last_fail_us = u->last_fail_us;
	st->failures = u->failures;
	snprintf(st->last_why, sizeof(st->last_why), "%s", u->last_why);
	st->token_up = !u->token_down;
	snprintf(st->token_why, sizeof(st->token_why), "%s", u->token_why);
	pthread_mutex_unlock(&u->m);
	st->key_failures = atomic_load(&u->key_failures);
	st->reconnects = atomic_load(&u->reconnects);
}

/* Whether the last health check still answers (under u->m): healthy for
 * CHECK_HOLD_US unless a transfer failed since, unhealthy for CHECK_MIN_US
 * unless a transfer worked since. */
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
	bool wake = false;

	pthread_mutex_lock(&u->m);
	if (!u->token_down && !check_holds(u, vz_gw_now_us()) && !u->check_wanted &&
	    !u->check_running) {
		u->check_wanted = u->check_running = true;
		wake = true;
	}
	pthread_mutex_unlock(&u->m);
	if (wake)
		curl_multi_wakeup(u->multi);
}

bool vz_gw_upstream_healthy(vz_gw_upstream *u, long long deadline_us, char *why, size_t size)
{
	unsigned long gen;
	bool ok = false;

	pthread_mutex_lock(&u->m);
	gen = u->check_gen;
	for (;;) {
		long long now = vz_gw_now_us();
		struct timespec ts;

		if (u->token_down) {
			snprintf(why, size, "%s", u->token_why);
			break;
		}
		if (u->check_gen != gen || check_holds(u, now)) {
			ok = u->check_ok;
			snprintf(why, size, "%s", u->check_why);
			break;
		}
		if (now >= deadline_us) {
			snprintf(why, size,
				 "label %s: the health check (a signature with the token's key and "
				 "a handshake with the upstream) did not finish in time",
				 u->label);
			break;
		}
		if (!u->check_wanted && !u->check_running) {
			u->check_wanted = u->check_running = true;
			curl_multi_wakeup(u->multi);
		}
		ts.tv_sec = (time_t)(deadline_us / 1000000);
		ts.tv_nsec = (long)(deadline_us % 1000000) * 1000;
		pthread_cond_timedwait(&u->check_cv, &u->m, &ts);
	}
	pthread_mutex_unlock(&u->m);
	return ok;
}
