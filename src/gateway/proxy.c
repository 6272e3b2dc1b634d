/* proxy.c - the server side of the gateway. libmicrohttpd runs the client
 * connections in its own event loop (no thread per client); a request
 * waits suspended while the upstream thread works, and bodies stream
 * through a bounded buffer each way. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

struct listener {
	vz_gw *gw;
	struct MHD_Daemon *d;
	vz_gw_listen_policy pol;
};

/* One client connection: who it is, checked at its first request and again
 * after a reload of the revocation list. */
struct peer {
	bool checked;
	unsigned long generation;
	const char *refused; /* a static reason, or NULL */
	char client[96];
};

struct vz_gw {
	const vz_gw_cfg *cfg;
	vz_gw_metrics *metrics;
	pthread_rwlock_t lock; /* up[] */
	vz_gw_upstream **up;
	vz_gw_upstream **retired; /* draining after a reload; main thread only */
	size_t n_retired;
	struct listener listeners[VZ_GW_MAX_LISTEN];
	size_t n_listeners;
	atomic_long in_flight;
	atomic_bool stopping;
	atomic_ulong reloads;
	atomic_size_t handshakes_retired;
};

static void logf_(vz_gw *gw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(vz_gw *gw, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	gw->cfg->log(gw->cfg->log_ctx, line);
}

/* A one-line text answer (a refusal, a failure, health). */
static enum MHD_Result answer_text(vz_gw *gw, vz_gw_xfer *x, unsigned status, const char *text,
				   const char *content_type)
{
	size_t len = strlen(text);
	char *body = malloc(len + 2);
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!body)
		return MHD_NO;
	memcpy(body, text, len);
	if (!len || text[len - 1] != '\n')
		body[len++] = '\n';
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type",
				content_type ? content_type : "text/plain; charset=utf-8");
	if (status == 503)
		MHD_add_response_header(r, "Retry-After", "1");
	if (atomic_load(&gw->stopping) || x->close)
		MHD_add_response_header(r, "Connection", "close");
	ret = MHD_queue_response(x->conn, status, r);
	MHD_destroy_response(r);
	x->answered = status;
	x->bytes_out = len;
	return ret;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct listener *l = cls;
	vz_gw_xfer *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->target = strdup(uri);
	if (!x->target) {
		free(x);
		return NULL;
	}
	pthread_mutex_init(&x->m, NULL);
	x->refs = 1;
	x->start_us = vz_gw_now_us();
	x->svc = VZ_GW_SVC_REFUSED;
	x->resp_clen = -1;
	atomic_fetch_add(&l->gw->in_flight, 1);
	return x;
}

static void client_address(struct MHD_Connection *c, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof(a));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof(a));
	snprintf(buf, size, "%s", a);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	(void)c;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct peer));
	} else {
		free(*socket_context);
		*socket_context = NULL;
	}
}

/* Who the client is (x->client), or why it may not use the gateway; asks
 * the access policy once per connection, again after a reload. */
static const char *check_peer(struct listener *l, vz_gw_xfer *x, struct MHD_Connection *c)
{
	const vz_gw_access *a = l->gw->cfg->access;
	const union MHD_ConnectionInfo *sc =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct peer *p = sc ? sc->socket_context : NULL;
	unsigned long gen = vz_gw_access_generation(a);

	if (!p) /* out of memory at the connection's start */
		return "refused: the gateway is out of memory";
	if (!p->checked || p->generation != gen) {
		const union MHD_ConnectionInfo *fd =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *tls =
			l->pol.auth == VZ_GW_AUTH_CERT
				? MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION)
				: NULL;

		if (l->pol.auth == VZ_GW_AUTH_NONE)
			client_address(c, p->client, sizeof(p->client));
		p->refused = vz_gw_access_peer(a, l->pol.auth, fd ? fd->connect_fd : -1,
					       tls ? tls->tls_session : NULL, p->client,
					       sizeof(p->client));
		p->checked = true;
		p->generation = gen;
	}
	snprintf(x->client, sizeof(x->client), "%s", p->client[0] ? p->client : "?");
	return p->refused;
}

struct hdr_ctx {
	vz_gw_xfer *x;
	const char *connection;
	bool accept, content_type, failed;
};

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct hdr_ctx *hc = cls;
	struct curl_slist *l;
	char *line;

	if (vz_gw_hop_by_hop(key, hc->connection))
		return MHD_YES;
	if (strcasecmp(key, "Accept") == 0)
		hc->accept = true;
	if (strcasecmp(key, "Content-Type") == 0)
		hc->content_type = true;
	if (asprintf(&line, "%s: %s", key, value ? value : "") < 0) {
		hc->failed = true;
		return MHD_NO;
	}
	l = curl_slist_append(hc->x->req_headers, line);
	free(line);
	if (!l) {
		hc->failed = true;
		return MHD_NO;
	}
	hc->x->req_headers = l;
	return MHD_YES;
}

/* 200 "ok" when every label's key signs and its upstream answers a
 * handshake (see vz_gw_upstream_healthy), else 503 with the reasons. This
 * thread waits for the upstream threads, at most VZ_GW_HEALTH_WAIT_MS. */
static enum MHD_Result health(vz_gw *gw, vz_gw_xfer *x)
{
	long long deadline = vz_gw_now_us() + VZ_GW_HEALTH_WAIT_MS * 1000LL;
	char text[1024] = "ok";
	size_t used = 0;
	unsigned status = 200;

	pthread_rwlock_rdlock(&gw->lock);
	for (size_t i = 0; i < gw->cfg->n_labels; i++)
		if (gw->up[i])
			vz_gw_upstream_check(gw->up[i]);
	for (size_t i = 0; i < gw->cfg->n_labels && used < sizeof(text); i++) {
		char why[400];

		if (!gw->up[i] || vz_gw_upstream_healthy(gw->up[i], deadline, why, sizeof(why)))
			continue;
		used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s",
					 status == 200 ? "" : "; ", why);
		status = 503;
	}
	pthread_rwlock_unlock(&gw->lock);
	if (atomic_load(&gw->stopping)) {
		snprintf(text, sizeof(text), "the gateway is stopping");
		status = 503;
	}
	return answer_text(gw, x, status, text, NULL);
}

static enum MHD_Result metrics(vz_gw *gw, vz_gw_xfer *x)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	enum MHD_Result ret;
	size_t handshakes = atomic_load(&gw->handshakes_retired);

	if (!f)
		return MHD_NO;
	vz_gw_metrics_write(gw->metrics, f);
	fprintf(f, "# TYPE vzp11_gateway_in_flight gauge\nvzp11_gateway_in_flight %ld\n",
		atomic_load(&gw->in_flight));
	fprintf(f, "# TYPE vzp11_gateway_reloads_total counter\nvzp11_gateway_reloads_total %lu\n",
		atomic_load(&gw->reloads));
	fprintf(f, "# TYPE vzp11_gateway_pool_size gauge\nvzp11_gateway_pool_size %ld\n",
		gw->cfg->pool);
	fprintf(f, "# HELP vzp11_gateway_upstream_handshakes_total TLS handshakes with the "
		   "token's key (one signature each).\n"
		   "# TYPE vzp11_gateway_upstream_handshakes_total counter\n"
		   "# TYPE vzp11_gateway_upstream_active gauge\n"
		   "# TYPE vzp11_gateway_upstream_failures_total counter\n"
		   "# TYPE vzp11_gateway_certificate_days_left gauge\n"
		   "# HELP vzp11_gateway_token_up 1 while the token's key signs handshakes, 0 "
		   "from a key failure until a re-connect works.\n"
		   "# TYPE vzp11_gateway_token_up gauge\n"
		   "# TYPE vzp11_gateway_token_key_failures_total counter\n"
		   "# TYPE vzp11_gateway_token_reconnects_total counter\n");
	pthread_rwlock_rdlock(&gw->lock);
	for (size_t i = 0; i < gw->cfg->n_labels; i++) {
		vz_gw_upstream_state st;

		if (!gw->up[i])
			continue;
		vz_gw_upstream_state_get(gw->up[i], &st);
		handshakes += st.handshakes;
		fprintf(f, "vzp11_gateway_upstream_active{label=\"%s\"} %zu\n", st.label,
			st.active);
		fprintf(f, "vzp11_gateway_upstream_failures_total{label=\"%s\"} %lu\n", st.label,
			st.failures);
		fprintf(f, "vzp11_gateway_token_up{label=\"%s\"} %d\n", st.label, st.token_up);
		fprintf(f, "vzp11_gateway_token_key_failures_total{label=\"%s\"} %zu\n", st.label,
			st.key_failures);
		fprintf(f, "vzp11_gateway_token_reconnects_total{label=\"%s\"} %zu\n", st.label,
			st.reconnects);
		if (st.days_left >= 0)
			fprintf(f, "vzp11_gateway_certificate_days_left{label=\"%s\"} %ld\n",
				st.label, st.days_left);
	}
	pthread_rwlock_unlock(&gw->lock);
	fprintf(f, "vzp11_gateway_upstream_handshakes_total %zu\n", handshakes);
	if (fclose(f) != 0) {
		free(text);
		return MHD_NO;
	}
	ret = answer_text(gw, x, 200, text, "text/plain; version=0.0.4");
	free(text);
	return ret;
}

/* The upstream request for x: method, URL, headers and body size. */
static vz_rv build_request(vz_gw *gw, struct MHD_Connection *c, vz_gw_xfer *x, const char *method,
			   const char *path, long long clen, bool body, vz_err *err)
{
	struct hdr_ctx hc = {.x = x};
	CURLcode cc = CURLE_OK;
	struct curl_slist *l;

	hc.connection = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection");
	if (asprintf(&x->url, "%s%s", gw->cfg->base, path) < 0) {
		x->url = NULL;
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	x->h = curl_easy_init();
	MHD_get_connection_values(c, MHD_HEADER_KIND, copy_header, &hc);
	l = hc.failed ? NULL : curl_slist_append(x->req_headers, "Expect:");
	if (l)
		x->req_headers = l;
	/* Headers libcurl would add on its own: not when the client sent none. */
	if (l && !hc.accept) {
		l = curl_slist_append(x->req_headers, "Accept:");
		if (l)
			x->req_headers = l;
	}
	if (l && !hc.content_type) {
		l = curl_slist_append(x->req_headers, "Content-Type:");
		if (l)
			x->req_headers = l;
	}
	if (!x->h || !l) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	if (strcmp(method, "HEAD") == 0) {
		cc |= curl_easy_setopt(x->h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "POST") == 0) {
		cc |= curl_easy_setopt(x->h, CURLOPT_POST, 1L);
		cc |= curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE,
				       (curl_off_t)(body ? clen : 0));
	} else if (body) {
		cc |= curl_easy_setopt(x->h, CURLOPT_UPLOAD, 1L);
		cc |= curl_easy_setopt(x->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)clen);
		cc |= curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "GET") != 0) {
		cc |= curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
	}
	if (cc != CURLE_OK) {
		vz_err_set(err, "libcurl refused a setting");
		return VZ_FAIL;
	}
	if (!body)
		x->req_eof = true;
	return VZ_OK;
}

/* The whole request body is in x->req: libcurl sends it with the request
 * headers, in one TLS record and TCP segment where it fits, instead of
 * asking on_read() for it after the headers went out (two segments, and a
 * second wake-up of the server for each request). Its length is known now,
 * also for a chunked request. */
static vz_rv body_in_memory(vz_gw_xfer *x, const char *method)
{
	size_t n = x->req.len - x->req.off;
	CURLcode cc = CURLE_OK;

	cc |= curl_easy_setopt(x->h, CURLOPT_UPLOAD, 0L);
	cc |= curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
	cc |= curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, n ? x->req.data + x->req.off : "");
	if (strcmp(method, "POST") != 0)
		cc |= curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, method);
	return cc == CURLE_OK ? VZ_OK : VZ_FAIL;
}

/* Hands x to its label's current upstream: 0, or the status to answer
 * (err says why). */
static unsigned submit(vz_gw *gw, vz_gw_xfer *x, vz_err *err)
{
	vz_gw_upstream *u;
	char why[300];

	x->submitted = true;
	pthread_rwlock_rdlock(&gw->lock);
	u = gw->up[x->label];
	if (!u) {
		pthread_rwlock_unlock(&gw->lock);
		vz_err_set(err, "the gateway is stopping");
		return 503;
	}
	if (vz_gw_upstream_prepare(u, x, err) != VZ_OK) {
		pthread_rwlock_unlock(&gw->lock);
		return 500;
	}
	pthread_mutex_lock(&x->m);
	x->refs++; /* the upstream side's */
	pthread_mutex_unlock(&x->m);
	if (!vz_gw_upstream_submit(u, x, why, sizeof(why))) {
		pthread_mutex_lock(&x->m);
		x->refs--;
		x->up = NULL;
		pthread_mutex_unlock(&x->m);
		pthread_rwlock_unlock(&gw->lock);
		vz_err_set(err, "service unavailable: %s", why);
		return 503;
	}
	pthread_rwlock_unlock(&gw->lock);
	return 0;
}

/* A local answer decided from the headers. Without a request body it is
 * queued at the request's last call: libmicrohttpd closes the connection
 * after an answer queued before the request was read to its end, and a
 * new connection per answer costs a client a TCP (and TLS) handshake each
 * time. A request with a body is answered at once, its body left unread
 * (and the connection closed). */
static enum MHD_Result answer_later(vz_gw *gw, vz_gw_xfer *x, bool body, unsigned status,
				    const char *text)
{
	if (body)
		return answer_text(gw, x, status, text, NULL);
	x->refuse = status;
	snprintf(x->reason, sizeof(x->reason), "%.*s", (int)sizeof(x->reason) - 1, text);
	return MHD_YES;
}

struct fields {
	vz_gw_field f[VZ_GW_MAX_FIELDS + 1];
	size_t n;
};

static enum MHD_Result collect_field(void *cls, enum MHD_ValueKind kind, const char *key,
				     size_t key_size, const char *value, size_t value_size)
{
	struct fields *fs = cls;

	(void)kind;
	if (fs->n == VZ_GW_MAX_FIELDS + 1)
		return MHD_NO;
	fs->f[fs->n++] = (vz_gw_field){.name = key,
				       .name_len = key_size,
				       .value = value ? value : "",
				       .value_len = value ? value_size : 0};
	return MHD_YES;
}

/* libmicrohttpd alone frames the body; this refuses a head whose framing
 * or fields it may have read otherwise than the upstream would (see
 * vz_gw_check_head). *clen: the body's length, -1 when chunked, 0 none. */
static const char *check_framing(struct MHD_Connection *c, const char *method, long long *clen)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct fields fs = {.n = 0};
	unsigned long long len = 0;
	vz_gw_body body = VZ_GW_BODY_NONE;
	const char *why;

	MHD_get_connection_values_n(c, MHD_HEADER_KIND, collect_field, &fs);
	why = vz_gw_check_head(method, ci ? ci->header_size : 0, fs.f, fs.n, &body, &len);
	if (why)
		return why;
	*clen = body == VZ_GW_BODY_CHUNKED ? -1 : body == VZ_GW_BODY_LENGTH ? (long long)len : 0;
	return NULL;
}

/* The first call for a request: its headers are in. Refusals are decided
 * here, before anything goes upstream. */
static enum MHD_Result begin(struct listener *l, vz_gw_xfer *x, struct MHD_Connection *c,
			     const char *method)
{
	vz_gw *gw = l->gw;
	const vz_gw_cfg *cfg = gw->cfg;
	const char *path = NULL, *why;
	long long clen = -1;
	bool body;
	vz_err err = {0};
	char msg[400];

	x->started = true;
	x->conn = c;
	snprintf(x->method, sizeof(x->method), "%s", method);
	snprintf(x->path, sizeof(x->path), "%.*s", (int)strcspn(x->target, "?"), x->target);
	why = check_framing(c, method, &clen);
	if (why) {
		x->svc = VZ_GW_SVC_REFUSED;
		x->close = true;
		return answer_text(gw, x, 400, why, NULL);
	}
	x->req_clen = clen;
	body = clen != 0;
	why = check_peer(l, x, c);
	if (!why)
		why = vz_gw_access_browser(
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site"));
	if (!why)
		why = vz_gw_check_target(method, x->target, cfg->upstream_host, &path, &x->svc);
	if (!why)
		why = vz_gw_check_host(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"),
				       cfg->upstream_host, l->pol.names, l->pol.n_names);
	if (!why && x->svc != VZ_GW_SVC_OPS)
		why = vz_gw_pick_label(
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Vzp11-Label"), cfg->labels,
			cfg->n_labels, &x->label);
	if (why) {
		x->svc = VZ_GW_SVC_REFUSED;
		return answer_later(gw, x, body, 403, why);
	}
	if (x->svc == VZ_GW_SVC_OPS) {
		if (strcmp(method, "GET") != 0)
			return answer_later(gw, x, body, 403,
					    "refused: the gateway's own paths take GET");
		x->ops = strncmp(path, VZ_GW_HEALTH_PATH, strlen(VZ_GW_HEALTH_PATH)) == 0
				 ? VZ_GW_OPS_HEALTH
				 : VZ_GW_OPS_METRICS;
		if (body) /* at once, as answer_later() does */
			return x->ops == VZ_GW_OPS_HEALTH ? health(gw, x) : metrics(gw, x);
		return MHD_YES; /* answered at the last call, see answer_later() */
	}
	if (cfg->max_request > 0 && clen > cfg->max_request) {
		snprintf(msg, sizeof(msg),
			 "refused: the request body (%lld bytes) is larger than the gateway's "
			 "limit of %lld bytes",
			 clen, cfg->max_request);
		return answer_text(gw, x, 413, msg, NULL);
	}
	if (build_request(gw, c, x, method, path, clen, body, &err) != VZ_OK)
		return answer_later(gw, x, body, 500, err.msg);
	/* A request with a body goes upstream once the body is in, or fills
	 * the buffer: a slow client must not hold a pooled connection. */
	if (!body) {
		unsigned st = submit(gw, x, &err);

		if (st)
			return answer_later(gw, x, body, st, err.msg);
	}
	return MHD_YES;
}

/* A piece of the request body: into x->req as far as it fits; the rest
 * waits (the connection suspended) until the upstream has taken some. */
static enum MHD_Result upload(vz_gw *gw, vz_gw_xfer *x, struct MHD_Connection *c, const char *data,
			      size_t *size)
{
	vz_gw_buf *b = &x->req;
	long long max = gw->cfg->max_request;
	bool full;

	pthread_mutex_lock(&x->m);
	if (x->done || x->headers_done || x->too_big || x->refuse || x->ops || x->answered) {
		*size = 0; /* the answer is decided: the rest of the body is moot */
	} else if (max > 0 && (long long)(x->bytes_in + *size) > max) {
		x->too_big = true;
		x->want_abort = true;
		vz_gw_xfer_poke(x);
		*size = 0;
	} else {
		size_t waiting = b->len - b->off;
		size_t take = VZ_GW_BUF - waiting < *size ? VZ_GW_BUF - waiting : *size;

		if (b->off) {
			memmove(b->data, b->data + b->off, waiting);
			b->off = 0;
			b->len = waiting;
		}
		if (!vz_gw_buf_reserve(b, b->len + take, x->req_clen)) {
			pthread_mutex_unlock(&x->m);
			return MHD_NO;
		}
		memcpy(b->data + b->len, data, take);
		b->len += take;
		x->bytes_in += take;
		*size -= take;
		if (x->read_paused && take) {
			x->read_paused = false;
			x->want_resume = true;
			vz_gw_xfer_poke(x);
		}
		if (*size && x->submitted) {
			x->suspended = true;
			MHD_suspend_connection(c);
		}
	}
	full = b->len == VZ_GW_BUF;
	pthread_mutex_unlock(&x->m);
	if (full && !x->submitted) {
		vz_err err = {0};

		x->refuse = submit(gw, x, &err); /* MHD calls again with the rest */
		if (x->refuse)
			snprintf(x->reason, sizeof(x->reason), "%.*s", (int)sizeof(x->reason) - 1,
				 err.msg);
	}
	return MHD_YES;
}

static ssize_t read_answer(void *cls, uint64_t pos, char *buf, size_t max)
{
	vz_gw_xfer *x = cls;
	vz_gw_buf *b = &x->resp;
	ssize_t ret;

	pthread_mutex_lock(&x->m);
	if (b->len > b->off) {
		size_t n = b->len - b->off < max ? b->len - b->off : max;

		memcpy(buf, b->data + b->off, n);
		b->off += n;
		x->bytes_out += n;
		if (x->write_paused && b->len - b->off < VZ_GW_BUF / 2) {
			x->write_paused = false;
			x->want_resume = true;
			vz_gw_xfer_poke(x);
		}
		ret = (ssize_t)n;
	} else if (x->done) {
		ret = x->result == CURLE_OK ? MHD_CONTENT_READER_END_OF_STREAM
					    : MHD_CONTENT_READER_END_WITH_ERROR;
	} else {
		x->suspended = true;
		MHD_suspend_connection(x->conn);
		ret = 0;
	}
	pthread_mutex_unlock(&x->m);
	return ret;
}

static void answer_freed(void *cls)
{
	vz_gw_xfer_release(cls);
}

/* The upstream's status and headers, with its body: whole when it is all
 * in (headers and body then leave in one send), else streamed. Called with
 * x->m held, which it releases before libmicrohttpd queues the answer:
 * libmicrohttpd holds its response's lock while it calls read_answer(),
 * which takes x->m, so x->m must never be held while libmicrohttpd takes
 * that lock (ThreadSanitizer found the inversion). Status and headers no
 * longer change once x->headers_done is set (on_header ignores trailers). */
static enum MHD_Result queue_answer(vz_gw *gw, vz_gw_xfer *x)
{
	bool empty = strcmp(x->method, "HEAD") == 0 || x->status == 204 || x->status == 304;
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (empty) {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else if (x->done && x->result == CURLE_OK) {
		size_t n = x->resp.len - x->resp.off;

		r = MHD_create_response_from_buffer(n, n ? x->resp.data + x->resp.off : (void *)"",
						    MHD_RESPMEM_MUST_COPY);
		x->bytes_out = n;
	} else {
		x->streaming = true;
		r = MHD_create_response_from_callback(x->resp_clen >= 0 ? (uint64_t)x->resp_clen
									: MHD_SIZE_UNKNOWN,
						      32 * 1024, read_answer, x, answer_freed);
		if (r)
			x->refs++; /* the response's */
	}
	pthread_mutex_unlock(&x->m);
	if (!r)
		return MHD_NO;
	for (struct curl_slist *h = x->resp_headers; h; h = h->next) {
		char *colon = strchr(h->data, ':');
		char name[128];
		const char *value;

		if (!colon || (size_t)(colon - h->data) >= sizeof(name))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(colon - h->data), h->data);
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		MHD_add_response_header(r, name, value);
	}
	if (atomic_load(&gw->stopping))
		MHD_add_response_header(r, "Connection", "close");
	ret = MHD_queue_response(x->conn, (unsigned)x->status, r);
	MHD_destroy_response(r);
	x->answered = (unsigned)x->status;
	return ret;
}

/* The request body is all in: answer if the upstream has, else wait. */
static enum MHD_Result complete(vz_gw *gw, vz_gw_xfer *x, struct MHD_Connection *c)
{
	enum MHD_Result ret = MHD_YES;
	char msg[400];
	vz_err err = {0};

	if (x->refuse)
		return answer_text(gw, x, x->refuse, x->reason, NULL);
	if (x->ops == VZ_GW_OPS_HEALTH)
		return health(gw, x);
	if (x->ops == VZ_GW_OPS_METRICS)
		return metrics(gw, x);
	if (!x->submitted && !x->too_big) {
		pthread_mutex_lock(&x->m);
		x->req_eof = true;
		pthread_mutex_unlock(&x->m);
		if (body_in_memory(x, x->method) != VZ_OK)
			return answer_text(gw, x, 500, "libcurl refused a setting", NULL);
		x->refuse = submit(gw, x, &err);
		if (x->refuse)
			return answer_text(gw, x, x->refuse, err.msg, NULL);
	}
	pthread_mutex_lock(&x->m);
	if (!x->req_eof) {
		x->req_eof = true;
		if (x->read_paused) {
			x->read_paused = false;
			x->want_resume = true;
			vz_gw_xfer_poke(x);
		}
	}
	if (x->too_big) {
		pthread_mutex_unlock(&x->m);
		snprintf(msg, sizeof(msg),
			 "refused: the request body is larger than the gateway's limit of %lld "
			 "bytes",
			 gw->cfg->max_request);
		return answer_text(gw, x, 413, msg, NULL);
	}
	if (x->headers_done) {
		return queue_answer(gw, x); /* releases x->m */
	} else if (x->done) {
		unsigned status = x->unavailable ? 503 : 502;

		pthread_mutex_unlock(&x->m);
		snprintf(msg, sizeof(msg),
			 status == 503 ? "service unavailable: %s"
				       : "bad gateway: VECOZO could not be reached: %s",
			 x->why);
		return answer_text(gw, x, status, msg, NULL);
	} else {
		x->suspended = true;
		MHD_suspend_connection(c);
	}
	pthread_mutex_unlock(&x->m);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *data_size, void **con_cls)
{
	struct listener *l = cls;
	vz_gw_xfer *x = *con_cls;

	if (!x)
		return MHD_NO;
	if (!x->started)
		return begin(l, x, c, method);
	if (*data_size)
		return upload(l->gw, x, c, data, data_size);
	return complete(l->gw, x, c);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct listener *l = cls;
	vz_gw *gw = l->gw;
	vz_gw_xfer *x = *con_cls;
	double secs;
	time_t now = time(NULL);
	struct tm tm;
	char when[32], why[sizeof(x->why)];
	unsigned status;

	if (!x)
		return;
	pthread_mutex_lock(&x->m);
	/* The upstream thread may still write it (a transfer being aborted). */
	snprintf(why, sizeof(why), "%s", x->why);
	x->client_gone = true;
	x->suspended = false;
	if (x->up && !x->done) {
		x->want_abort = true;
		vz_gw_xfer_poke(x);
	}
	status = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? x->answered : 0;
	pthread_mutex_unlock(&x->m);
	secs = (double)(vz_gw_now_us() - x->start_us) / 1e6;
	vz_gw_metrics_request(gw->metrics, x->svc, status, secs, x->bytes_in, x->bytes_out);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (x->started)
		logf_(gw, "%s %s %s %s %u in=%zu out=%zu %.1fms%s%s%s", when, x->client, x->method,
		      x->path, status, x->bytes_in, x->bytes_out, secs * 1000, why[0] ? " (" : "",
		      why, why[0] ? ")" : "");
	*con_cls = NULL;
	vz_gw_xfer_release(x);
	atomic_fetch_sub(&gw->in_flight, 1); /* last: the drain waits for the release */
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct listener *l = cls;
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	logf_(l->gw, "server: %s", line);
}

vz_rv vz_gw_new(const vz_gw_cfg *cfg, vz_tls **tls, vz_gw **out, vz_err *err)
{
	vz_gw *gw = calloc(1, sizeof(*gw));
	size_t i = 0;

	if (gw) {
		gw->up = calloc(cfg->n_labels, sizeof(*gw->up));
		gw->metrics = vz_gw_metrics_new();
	}
	if (!gw || !gw->up || !gw->metrics) {
		vz_err_set(err, "out of memory");
		goto fail;
	}
	pthread_rwlock_init(&gw->lock, NULL);
	gw->cfg = cfg;
	for (; i < cfg->n_labels; i++) {
		vz_tls *t = tls[i];

		tls[i] = NULL;
		if (vz_gw_upstream_start(cfg, cfg->labels[i], t, &gw->up[i], err) != VZ_OK)
			goto fail;
	}
	*out = gw;
	return VZ_OK;
fail:
	for (; i < cfg->n_labels; i++) {
		vz_tls_close(tls[i]);
		tls[i] = NULL;
	}
	vz_gw_free(gw);
	return VZ_FAIL;
}

vz_rv vz_gw_serve(vz_gw *gw, int fd, const vz_gw_listen_policy *pol, vz_err *err)
{
	const vz_gw_access *a = gw->cfg->access;
	bool https = pol->auth == VZ_GW_AUTH_CERT;
	struct listener *l;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const vz_gw_cfg *cfg = gw->cfg;
	struct MHD_OptionItem tls_opts[] = {
		{MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)vz_gw_access_cert_pem(a)},
		{MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)vz_gw_access_key_pem(a)},
		/* so that clients are asked for a certificate; access.c verifies it */
		{MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)vz_gw_access_ca_pem(a)},
		{MHD_OPTION_HTTPS_PRIORITIES, 0,
		 (void *)"NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"},
		{MHD_OPTION_END, 0, NULL},
	};
	struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};

	if (gw->n_listeners == VZ_GW_MAX_LISTEN) {
		close(fd);
		vz_err_set(err, "at most %d listen addresses", VZ_GW_MAX_LISTEN);
		return VZ_USAGE;
	}
	l = &gw->listeners[gw->n_listeners];
	l->gw = gw;
	l->pol = *pol;
	if (https)
		flags |= MHD_USE_TLS;
	l->d = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, l,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
		(unsigned)(cfg->threads > 1 ? cfg->threads : 0), MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)cfg->max_clients, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)cfg->client_timeout_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
		/* pedantic: HTTP/1.1 without Host, spaces in the target; from
		 * libmicrohttpd 1.0 on also a bare LF ending a line or chunk */
		MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_NOTIFY_COMPLETED, completed, l,
		MHD_OPTION_ARRAY, https ? tls_opts : none, MHD_OPTION_END);
	if (!l->d) {
		close(fd);
		vz_err_set(err, "libmicrohttpd cannot serve on this address%s",
			   https ? " (check --tls-cert, --tls-key and --client-ca)" : "");
		return VZ_FAIL;
	}
	gw->n_listeners++;
	return VZ_OK;
}

vz_rv vz_gw_reload(vz_gw *gw, vz_tls **tls, vz_err *err)
{
	size_t n = gw->cfg->n_labels;
	vz_gw_upstream **fresh = calloc(n, sizeof(*fresh));
	vz_gw_upstream **retired = realloc(gw->retired, (gw->n_retired + n) * sizeof(*retired));
	size_t i = 0;

	if (retired)
		gw->retired = retired;
	if (!fresh || !retired) {
		vz_err_set(err, "out of memory");
		goto fail;
	}
	for (; i < n; i++) {
		vz_tls *t = tls[i];

		tls[i] = NULL;
		if (vz_gw_upstream_start(gw->cfg, gw->cfg->labels[i], t, &fresh[i], err) != VZ_OK)
			goto fail;
	}
	pthread_rwlock_wrlock(&gw->lock);
	for (i = 0; i < n; i++) {
		gw->retired[gw->n_retired++] = gw->up[i];
		gw->up[i] = fresh[i];
	}
	pthread_rwlock_unlock(&gw->lock);
	for (i = 0; i < n; i++)
		vz_gw_upstream_drain(gw->retired[gw->n_retired - n + i]);
	free(fresh);
	atomic_fetch_add(&gw->reloads, 1);
	return VZ_OK;
fail:
	for (size_t k = 0; fresh && k < i; k++)
		vz_gw_upstream_free(fresh[k]);
	for (; i < n; i++) {
		vz_tls_close(tls[i]);
		tls[i] = NULL;
	}
	free(fresh);
	return VZ_FAIL;
}

void vz_gw_reap(vz_gw *gw)
{
	size_t k = 0;

	for (size_t i = 0; i < gw->n_retired; i++) {
		vz_gw_upstream *u = gw->retired[i];

		if (vz_gw_upstream_drained(u)) {
			vz_gw_upstream_state st;

			vz_gw_upstream_state_get(u, &st);
			atomic_fetch_add(&gw->handshakes_retired, st.handshakes);
			vz_gw_upstream_free(u);
		} else {
			gw->retired[k++] = u;
		}
	}
	gw->n_retired = k;
}

void vz_gw_quiesce(vz_gw *gw)
{
	atomic_store(&gw->stopping, true);
	for (size_t i = 0; i < gw->n_listeners; i++) {
		MHD_socket fd = MHD_quiesce_daemon(gw->listeners[i].d);

		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
}

long vz_gw_in_flight(vz_gw *gw)
{
	return atomic_load(&gw->in_flight);
}

void vz_gw_free(vz_gw *gw)
{
	if (!gw)
		return;
	atomic_store(&gw->stopping, true);
	/* Upstreams first: ending their transfers resumes every suspended
	 * connection, which libmicrohttpd needs before it stops. */
	for (size_t i = 0; gw->up && i < gw->cfg->n_labels; i++) {
		vz_gw_upstream *u;

		pthread_rwlock_wrlock(&gw->lock);
		u = gw->up[i];
		gw->up[i] = NULL;
		pthread_rwlock_unlock(&gw->lock);
		vz_gw_upstream_free(u);
	}
	for (size_t i = 0; i < gw->n_retired; i++)
		vz_gw_upstream_free(gw->retired[i]);
	for (size_t i = 0; i < gw->n_listeners; i++)
		MHD_stop_daemon(gw->listeners[i].d);
	vz_gw_metrics_free(gw->metrics);
	free(gw->up);
	free(gw->retired);
	pthread_rwlock_destroy(&gw->lock);
	free(gw);
}
