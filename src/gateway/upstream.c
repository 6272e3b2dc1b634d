/* upstream.c - the VECOZO side of the gateway: one thread per certificate
 * label runs a libcurl multi handle, so at most cfg->pool TLS connections
 * with the token's key are kept alive and shared by every client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "gw.h"
#include "http.h"

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
};

long long vz_gw_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
			x->headers_done = true;
			wake_client(x);
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
 * when the client reads slower, the transfer pauses. */
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
		if (b->len + len > b->cap) {
			size_t cap = b->len + len > VZ_GW_BUF ? b->len + len : VZ_GW_BUF;
			char *g = realloc(b->data, cap);

			if (!g) {
				pthread_mutex_unlock(&x->m);
				return 0;
			}
			b->data = g;
			b->cap = cap;
		}
		memcpy(b->data + b->len, p, len);
		b->len += len;
		x->resp_total += (long long)len;
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
	} else if (b->len == b->off) {
		if (x->req_eof) {
			ret = 0;
		} else {
			x->read_paused = true;
			ret = CURL_READFUNC_PAUSE;
		}
	} else {
		take = b->len - b->off < max ? b->len - b->off : max;
		memcpy(p, b->data + b->off, take);
		b->off += take;
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
	c |= curl_easy_setopt(x->h, CURLOPT_SHARE, u->share);
	c |= curl_easy_setopt(x->h, CURLOPT_BUFFERSIZE, 65536L);
	if (c != CURLE_OK) {
		vz_err_set(err, "libcurl refused a setting (is it older than 7.85?)");
		return VZ_FAIL;
	}
	return VZ_OK;
}

bool vz_gw_upstream_submit(vz_gw_upstream *u, vz_gw_xfer *x)
{
	bool ok;

	pthread_mutex_lock(&u->m);
	ok = !u->draining && !u->stop;
	if (ok) {
		x->next = u->pending;
		u->pending = x;
		atomic_fetch_add(&u->n_active, 1);
	}
	pthread_mutex_unlock(&u->m);
	if (ok)
		curl_multi_wakeup(u->multi);
	return ok;
}

/* The end of a transfer: the client is woken to send what there is. */
static void finish(vz_gw_upstream *u, vz_gw_xfer *x, CURLcode c, const char *why)
{
	vz_gw_xfer **pp = &u->active;

	while (*pp && *pp != x)
		pp = &(*pp)->next;
	if (*pp)
		*pp = x->next;
	curl_multi_remove_handle(u->multi, x->h);
	bool gone;

	pthread_mutex_lock(&x->m);
	gone = x->client_gone; /* before waking it: then it may go at once */
	x->done = true;
	x->result = c;
	if (c != CURLE_OK && !x->why[0])
		snprintf(x->why, sizeof(x->why), "%s", why ? why : vz_http_curl_reason(c));
	wake_client(x);
	pthread_mutex_unlock(&x->m);
	pthread_mutex_lock(&u->m);
	if (c == CURLE_OK) {
		u->last_ok_us = vz_gw_now_us();
	} else if (!why && !gone && (vz_http_not_sent(c) || c == CURLE_OPERATION_TIMEDOUT)) {
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

static void *run(void *arg)
{
	vz_gw_upstream *u = arg;

	for (;;) {
		vz_gw_xfer *fresh, *x, *next;
		bool stop, idle;
		CURLMsg *msg;
		int running, left;

		pthread_mutex_lock(&u->m);
		fresh = u->pending;
		u->pending = NULL;
		stop = u->stop;
		pthread_mutex_unlock(&u->m);
		for (x = fresh; x; x = next) {
			next = x->next;
			x->next = u->active;
			u->active = x;
			if (curl_multi_add_handle(u->multi, x->h) != CURLM_OK)
				finish(u, x, CURLE_OUT_OF_MEMORY,
				       "the gateway cannot start a transfer");
		}
		if (stop) {
			while (u->active)
				finish(u, u->active, CURLE_ABORTED_BY_CALLBACK,
				       "the gateway is stopping");
			break;
		}
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
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			finish(u, priv, msg->data.result, NULL);
		}
		pthread_mutex_lock(&u->m);
		idle = u->draining && !u->pending && !u->active;
		pthread_mutex_unlock(&u->m);
		if (idle)
			break;
		curl_multi_poll(u->multi, NULL, 0, 1000, NULL);
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
	pthread_mutex_init(&u->m, NULL);
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
	pthread_mutex_unlock(&u->m);
}
