/* proxy.c - the server side of the gateway: libmicrohttpd frames each
 * request and calls handle() for its head, its body pieces and its end;
 * here a request is checked, handed to the upstream and answered. A
 * request waits suspended while the upstream works; bodies stream through
 * a bounded buffer each way. All on the gateway's one thread (gateway.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"

/* One client connection: who it is, checked at its first request and again
 * after a reload of the revocation list. */
struct peer {
	bool checked;
	unsigned long generation;
	const char *refused; /* a static reason, or NULL */
	char client[96];
};

static void release_cb(void *cls)
{
	vz_gw_xfer_release(cls);
}

static void suspend(vz_gw_xfer *x)
{
	if (!x->suspended) {
		x->suspended = true;
		MHD_suspend_connection(x->conn);
	}
}

/* A one-line text answer (a refusal, a failure, health, metrics). */
static enum MHD_Result answer_text(vz_gw_xfer *x, unsigned status, const char *text,
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
	if (x->gw->stopping || x->close)
		MHD_add_response_header(r, "Connection", "close");
	ret = MHD_queue_response(x->conn, status, r);
	MHD_destroy_response(r);
	x->answered = status;
	x->bytes_out = len;
	return ret;
}

/* The gateway refuses x with status and a one-line reason. Without a
 * body it is answered at the request's last call: libmicrohttpd closes the
 * connection after an answer queued before the request was read to its
 * end, and a new connection per answer costs a client a TCP (and TLS)
 * handshake each time. A request with a body is answered at once, its
 * body left unread (and the connection closed). */
static enum MHD_Result refuse(vz_gw_xfer *x, bool now, unsigned status, const char *text)
{
	if (x->h)
		vz_gw_upstream_cancel(x);
	if (x->state != VZ_GW_REFUSED && !vz_gw_xfer_to(x, VZ_GW_REFUSED))
		return MHD_NO;
	x->refuse = status;
	snprintf(x->reason, sizeof(x->reason), "%.*s", (int)sizeof(x->reason) - 1, text);
	if (!now)
		return MHD_YES;
	return answer_text(x, status, text, NULL);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	vz_gw_listener *l = cls;
	vz_gw_xfer *x = vz_gw_xfer_new(l->gw);

	(void)c;
	if (!x)
		return NULL;
	x->target = strdup(uri);
	if (!x->target) {
		vz_gw_xfer_release(x);
		return NULL;
	}
	x->l = l;
	l->gw->in_flight++;
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
static const char *check_peer(vz_gw_listener *l, vz_gw_xfer *x, struct MHD_Connection *c)
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

/* One header line for libcurl, into x->hdr_text; the node's data holds its
 * offset until link_headers(). */
static bool add_header(vz_gw_xfer *x, const char *name, size_t name_len, const char *value,
		       size_t value_len)
{
	vz_gw_buf *b = &x->hdr_text;
	size_t need = name_len + value_len + 3;

	if (x->n_hdr == sizeof(x->hdr_nodes) / sizeof(x->hdr_nodes[0]) ||
	    !vz_gw_buf_reserve(b, b->len + need, 0))
		return false;
	x->hdr_nodes[x->n_hdr++].data = (char *)(uintptr_t)b->len;
	memcpy(b->data + b->len, name, name_len);
	b->len += name_len;
	b->data[b->len++] = ':';
	if (value) {
		b->data[b->len++] = ' ';
		memcpy(b->data + b->len, value, value_len);
		b->len += value_len;
	}
	b->data[b->len++] = '\0';
	return true;
}

static void link_headers(vz_gw_xfer *x)
{
	for (size_t i = 0; i < x->n_hdr; i++) {
		x->hdr_nodes[i].data = x->hdr_text.data + (uintptr_t)x->hdr_nodes[i].data;
		x->hdr_nodes[i].next = i + 1 < x->n_hdr ? &x->hdr_nodes[i + 1] : NULL;
	}
	x->req_headers = x->n_hdr ? &x->hdr_nodes[0] : NULL;
}

struct hdr_ctx {
	vz_gw_xfer *x;
	const char *connection;
	bool accept, content_type, failed;
};

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
				   size_t key_size, const char *value, size_t value_size)
{
	struct hdr_ctx *hc = cls;

	(void)kind;
	if (vz_gw_hop_by_hop(key, hc->connection))
		return MHD_YES;
	if (strcasecmp(key, "Accept") == 0)
		hc->accept = true;
	if (strcasecmp(key, "Content-Type") == 0)
		hc->content_type = true;
	if (!add_header(hc->x, key, key_size, value ? value : "", value ? value_size : 0)) {
		hc->failed = true;
		return MHD_NO;
	}
	return MHD_YES;
}

/* The upstream request for x: its URL and headers. Headers libcurl would
 * add on its own are switched off when the client sent none. */
static bool build_request(vz_gw_xfer *x, struct MHD_Connection *c, const char *path)
{
	struct hdr_ctx hc = {.x = x};

	hc.connection = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Connection");
	if (asprintf(&x->url, "%s%s", x->gw->cfg->base, path) < 0) {
		x->url = NULL;
		return false;
	}
	MHD_get_connection_values_n(c, MHD_HEADER_KIND, copy_header, &hc);
	if (hc.failed || !add_header(x, "Expect", 6, NULL, 0) ||
	    (!hc.accept && !add_header(x, "Accept", 6, NULL, 0)) ||
	    (!hc.content_type && !add_header(x, "Content-Type", 12, NULL, 0)))
		return false;
	link_headers(x);
	return true;
}

/* Hands x to its label's upstream: ADMITTED -> UPSTREAM, or a refusal
 * (503: stopping, or the token is away). */
static enum MHD_Result submit(vz_gw_xfer *x)
{
	vz_gw_upstream *u = vz_gw_upstream_of(x->gw, x->label);
	char why[300], text[400];

	if (!u)
		return refuse(x, !x->body_in && x->req_clen != 0, 503, "the gateway is stopping");
	if (vz_gw_upstream_submit(u, x, why, sizeof(why)))
		return MHD_YES;
	snprintf(text, sizeof(text), "service unavailable: %s", why);
	return refuse(x, false, 503, text);
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

/* The first call for a request: its head is in. Every refusal is decided
 * here, before anything goes upstream: RECEIVED -> ADMITTED (or REFUSED,
 * or LOCAL for the gateway's own paths). */
static enum MHD_Result begin(vz_gw_listener *l, vz_gw_xfer *x, struct MHD_Connection *c,
			     const char *method)
{
	const vz_gw_cfg *cfg = l->gw->cfg;
	const char *path = NULL, *why;
	long long clen = -1;
	bool body;
	char msg[400];

	x->conn = c;
	snprintf(x->method, sizeof(x->method), "%s", method);
	snprintf(x->path, sizeof(x->path), "%.*s", (int)strcspn(x->target, "?"), x->target);
	why = check_framing(c, method, &clen);
	if (why) {
		x->close = true;
		return refuse(x, true, 400, why);
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
		return refuse(x, body, 403, why);
	}
	if (x->svc == VZ_GW_SVC_OPS) {
		if (strcmp(method, "GET") != 0)
			return refuse(x, body, 403, "refused: the gateway's own paths take GET");
		x->ops = strncmp(path, VZ_GW_HEALTH_PATH, strlen(VZ_GW_HEALTH_PATH)) == 0
				 ? VZ_GW_OPS_HEALTH
				 : VZ_GW_OPS_METRICS;
		vz_gw_xfer_to(x, VZ_GW_LOCAL);
		return MHD_YES; /* answered at the last call, see refuse() */
	}
	if (cfg->max_request > 0 && clen > cfg->max_request) {
		snprintf(msg, sizeof(msg),
			 "refused: the request body (%lld bytes) is larger than the gateway's "
			 "limit of %lld bytes",
			 clen, cfg->max_request);
		return refuse(x, true, 413, msg);
	}
	vz_gw_xfer_to(x, VZ_GW_ADMITTED);
	if (!build_request(x, c, path))
		return refuse(x, body, 500, "the gateway is out of memory");
	/* A request with a body goes upstream once the body is in, or fills
	 * the buffer: a slow client must not hold a pooled connection. */
	return body ? MHD_YES : submit(x);
}

/* A piece of the request body: into x->req as far as it fits; the rest
 * waits (the connection suspended) until libcurl has taken some. */
static enum MHD_Result upload(vz_gw_xfer *x, const char *data, size_t *size)
{
	vz_gw_buf *b = &x->req;
	long long max = x->gw->cfg->max_request;
	size_t waiting, take;
	char msg[300];

	if (x->state != VZ_GW_ADMITTED && x->state != VZ_GW_UPSTREAM &&
	    x->state != VZ_GW_ANSWERING) {
		*size = 0; /* the answer is decided: the rest of the body is moot */
		return MHD_YES;
	}
	if (max > 0 && (long long)(x->bytes_in + *size) > max) {
		*size = 0;
		snprintf(msg, sizeof(msg),
			 "refused: the request body is larger than the gateway's limit of %lld "
			 "bytes",
			 max);
		if (x->state == VZ_GW_ANSWERING) { /* the upstream answered already */
			vz_gw_upstream_cancel(x);
			vz_gw_xfer_to(x, VZ_GW_ABORTED);
			return MHD_NO;
		}
		return refuse(x, false, 413, msg);
	}
	waiting = b->len - b->off;
	take = VZ_GW_BUF - waiting < *size ? VZ_GW_BUF - waiting : *size;
	if (b->off) {
		memmove(b->data, b->data + b->off, waiting);
		b->off = 0;
		b->len = waiting;
	}
	if (take && !vz_gw_buf_reserve(b, b->len + take, x->req_clen))
		return MHD_NO;
	memcpy(b->data + b->len, data, take);
	b->len += take;
	x->bytes_in += take;
	*size -= take;
	if (take && x->read_paused)
		vz_gw_kick(x);
	if (*size) { /* the buffer is full */
		if (x->state == VZ_GW_ADMITTED &&
		    (submit(x) != MHD_YES || x->state != VZ_GW_UPSTREAM))
			return MHD_YES; /* refused: the rest is discarded above */
		suspend(x);
	}
	return MHD_YES;
}

static ssize_t read_answer(void *cls, uint64_t pos, char *buf, size_t max)
{
	vz_gw_xfer *x = cls;
	vz_gw_buf *b = &x->resp;

	(void)pos;
	if (b->len > b->off) {
		size_t n = b->len - b->off < max ? b->len - b->off : max;

		memcpy(buf, b->data + b->off, n);
		b->off += n;
		x->bytes_out += n;
		if (x->write_paused && b->len - b->off < VZ_GW_BUF / 2)
			vz_gw_kick(x);
		return (ssize_t)n;
	}
	if (x->transfer_done)
		return x->result == CURLE_OK ? MHD_CONTENT_READER_END_OF_STREAM
					     : MHD_CONTENT_READER_END_WITH_ERROR;
	suspend(x);
	return 0;
}

/* The upstream's status and headers, with its body: whole when it is all
 * in (headers and body then leave in one send), else streamed. */
static enum MHD_Result queue_answer(vz_gw_xfer *x)
{
	bool empty = strcmp(x->method, "HEAD") == 0 || x->status == 204 || x->status == 304;
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (empty) {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else if (x->transfer_done && x->result == CURLE_OK) {
		size_t n = x->resp.len - x->resp.off;

		r = MHD_create_response_from_buffer_with_free_callback_cls(
			n, n ? x->resp.data + x->resp.off : (void *)"", release_cb, x);
		if (r)
			x->refs++; /* the response reads x->resp */
		x->bytes_out = n;
	} else {
		x->streaming = true;
		r = MHD_create_response_from_callback(x->resp_clen >= 0 ? (uint64_t)x->resp_clen
									: MHD_SIZE_UNKNOWN,
						      32 * 1024, read_answer, x, release_cb);
		if (r)
			x->refs++; /* the response's */
	}
	if (!r)
		return MHD_NO;
	for (size_t off = 0; off < x->resp_head.len;) {
		const char *name = x->resp_head.data + off;
		const char *value = name + strlen(name) + 1;

		MHD_add_response_header(r, name, value);
		off = (size_t)(value - x->resp_head.data) + strlen(value) + 1;
	}
	if (x->gw->stopping)
		MHD_add_response_header(r, "Connection", "close");
	ret = MHD_queue_response(x->conn, (unsigned)x->status, r);
	MHD_destroy_response(r);
	x->answered = (unsigned)x->status;
	return ret;
}

/* 200 "ok" when every label's key signs and its upstream answers a
 * handshake (see vz_gw_upstream_healthy), else 503 with the reasons; NULL
 * while a check still runs (before the deadline). */
static enum MHD_Result health(vz_gw_xfer *x)
{
	vz_gw *gw = x->gw;
	long long now = vz_gw_now_us();
	char text[1024] = "ok";
	size_t used = 0;
	unsigned status = 200;

	if (gw->stopping)
		return answer_text(x, 503, "the gateway is stopping", NULL);
	if (!x->health_deadline_us) {
		x->health_deadline_us = now + VZ_GW_HEALTH_WAIT_MS * 1000LL;
		for (size_t i = 0; i < gw->cfg->n_labels; i++)
			vz_gw_upstream_check(gw->up[i]);
	}
	for (size_t i = 0; i < gw->cfg->n_labels && used < sizeof(text); i++) {
		char why[400];
		int h = vz_gw_upstream_healthy(gw->up[i], why, sizeof(why));

		if (h == 1)
			continue;
		if (h < 0 && now < x->health_deadline_us) {
			/* wait: vz_gw_health_poll() wakes it */
			x->health_next = gw->health_waiting;
			gw->health_waiting = x;
			suspend(x);
			return MHD_YES;
		}
		if (h < 0)
			snprintf(why, sizeof(why),
				 "label %s: the health check (a signature with the token's key and "
				 "a handshake with the upstream) did not finish in time",
				 gw->cfg->labels[i]);
		used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s",
					 status == 200 ? "" : "; ", why);
		status = 503;
	}
	return answer_text(x, status, text, NULL);
}

void vz_gw_health_poll(vz_gw *gw, long long now, long long *next_us)
{
	vz_gw_xfer **pp = &gw->health_waiting;

	while (*pp) {
		vz_gw_xfer *x = *pp;
		bool ready = now >= x->health_deadline_us;

		for (size_t i = 0; !ready && i < gw->cfg->n_labels; i++) {
			char why[8];

			ready = vz_gw_upstream_healthy(gw->up[i], why, sizeof(why)) >= 0;
			if (!ready)
				break;
		}
		if (ready) {
			*pp = x->health_next;
			vz_gw_wake_client(x);
			continue;
		}
		if (*next_us < 0 || x->health_deadline_us - now < *next_us)
			*next_us = x->health_deadline_us - now;
		pp = &x->health_next;
	}
}

/* Takes x off the health list (its client left). */
static void health_unlink(vz_gw_xfer *x)
{
	for (vz_gw_xfer **pp = &x->gw->health_waiting; *pp; pp = &(*pp)->health_next)
		if (*pp == x) {
			*pp = x->health_next;
			return;
		}
}

static enum MHD_Result metrics(vz_gw_xfer *x)
{
	vz_gw *gw = x->gw;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	enum MHD_Result ret;
	size_t handshakes = gw->handshakes_retired;

	if (!f)
		return MHD_NO;
	vz_gw_metrics_write(gw->metrics, f);
	fprintf(f, "# TYPE vzp11_gateway_in_flight gauge\nvzp11_gateway_in_flight %ld\n",
		gw->in_flight);
	fprintf(f, "# TYPE vzp11_gateway_reloads_total counter\nvzp11_gateway_reloads_total %lu\n",
		gw->reloads);
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
	for (size_t i = 0; i < gw->n_retired; i++) {
		vz_gw_upstream_state st;

		vz_gw_upstream_state_get(gw->retired[i], &st);
		handshakes += st.handshakes;
	}
	fprintf(f, "vzp11_gateway_upstream_handshakes_total %zu\n", handshakes);
	if (fclose(f) != 0) {
		free(text);
		return MHD_NO;
	}
	ret = answer_text(x, 200, text, "text/plain; version=0.0.4");
	free(text);
	return ret;
}

/* The request's last call (its body is all in), and every call after a
 * wake-up: the one place where x's answer is queued, once its state says
 * which answer it is; otherwise x waits, suspended. */
static enum MHD_Result complete(vz_gw_xfer *x)
{
	char msg[400];

	if (!x->body_in) {
		x->body_in = true;
		if (x->read_paused)
			vz_gw_kick(x); /* libcurl waits for the end of the body */
	}
	switch (x->state) {
	case VZ_GW_ADMITTED:
		if (submit(x) != MHD_YES)
			return MHD_NO;
		if (x->state != VZ_GW_UPSTREAM)
			return complete(x); /* refused */
		suspend(x);
		return MHD_YES;
	case VZ_GW_UPSTREAM:
		suspend(x);
		return MHD_YES;
	case VZ_GW_ANSWERING:
		if (x->transfer_done && x->result != CURLE_OK) {
			/* it broke off before any of it went to the client */
			x->refuse = 502;
			vz_gw_xfer_to(x, VZ_GW_FAILED);
			return complete(x);
		}
		if (x->transfer_done || x->resp.len - x->resp.off >= VZ_GW_WAKE)
			return queue_answer(x);
		suspend(x); /* woken by the body or the end: see on_body() */
		return MHD_YES;
	case VZ_GW_REFUSED:
		return answer_text(x, x->refuse, x->reason, NULL);
	case VZ_GW_FAILED:
		snprintf(msg, sizeof(msg),
			 x->refuse == 503 ? "service unavailable: %s"
					  : "bad gateway: VECOZO could not be reached: %s",
			 x->why);
		return answer_text(x, x->refuse, msg, NULL);
	case VZ_GW_LOCAL:
		return x->ops == VZ_GW_OPS_HEALTH ? health(x) : metrics(x);
	case VZ_GW_RECEIVED:
	case VZ_GW_DONE:
	case VZ_GW_ABORTED:
		break;
	}
	vz_gw_logf(x->gw->cfg, "bug: a %s request at its end (%s %s)", vz_gw_state_name(x->state),
		   x->method, x->path);
	return MHD_NO;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *data_size, void **con_cls)
{
	vz_gw_listener *l = cls;
	vz_gw_xfer *x = *con_cls;

	(void)url;
	(void)version;
	if (!x)
		return MHD_NO;
	if (x->state == VZ_GW_RECEIVED)
		return begin(l, x, c, method);
	if (x->answered) /* answered at once (a refusal): the rest of the body is moot */
		return *data_size = 0, MHD_YES;
	if (*data_size)
		return upload(x, data, data_size);
	return complete(x);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	vz_gw_listener *l = cls;
	vz_gw *gw = l->gw;
	vz_gw_xfer *x = *con_cls;
	bool ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && x && x->answered;
	time_t now = time(NULL);
	struct tm tm;
	char when[32];
	unsigned status;
	double secs;

	(void)c;
	if (!x)
		return;
	if (x->h)
		vz_gw_upstream_cancel(x); /* the client left, or a limit cut it */
	if (x->ops == VZ_GW_OPS_HEALTH)
		health_unlink(x);
	if (x->state != VZ_GW_RECEIVED && x->state != VZ_GW_ABORTED)
		vz_gw_xfer_to(x, ok ? VZ_GW_DONE : VZ_GW_ABORTED);
	status = ok ? x->answered : 0;
	secs = (double)(vz_gw_now_us() - x->start_us) / 1e6;
	vz_gw_metrics_request(gw->metrics, x->svc, status, secs, x->bytes_in, x->bytes_out);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (x->method[0])
		vz_gw_logf(gw->cfg, "%s %s %s %s %u in=%zu out=%zu %.1fms%s%s%s", when, x->client,
			   x->method, x->path, status, x->bytes_in, x->bytes_out, secs * 1000,
			   x->why[0] ? " (" : "", x->why, x->why[0] ? ")" : "");
	x->conn = NULL;
	x->suspended = false;
	*con_cls = NULL;
	vz_gw_xfer_release(x);
	gw->in_flight--;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	vz_gw_listener *l = cls;
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	vz_gw_logf(l->gw->cfg, "server: %s", line);
}

vz_rv vz_gw_listener_start(vz_gw *gw, vz_gw_listener *l, int fd, const vz_gw_listen_policy *pol,
			   vz_err *err)
{
	const vz_gw_access *a = gw->cfg->access;
	bool https = pol->auth == VZ_GW_AUTH_CERT;
	/* No thread of its own: the gateway's loop runs it (MHD_run). */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
	const union MHD_DaemonInfo *di;

	l->gw = gw;
	l->pol = *pol;
	if (https)
		flags |= MHD_USE_TLS;
	l->d = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, l,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)cfg->max_clients, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)cfg->client_timeout_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
		/* libmicrohttpd zeroes a connection's whole pool for every request:
		 * VZ_GW_POOL, not its default 32 KiB */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)VZ_GW_POOL,
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
	di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di) {
		MHD_stop_daemon(l->d);
		vz_err_set(err, "libmicrohttpd gives no epoll descriptor");
		return VZ_FAIL;
	}
	l->ev = (vz_gw_ev){.kind = VZ_GW_EV_DAEMON, .fd = di->epoll_fd, .owner = l};
	vz_gw_watch(gw, &l->ev, EPOLLIN);
	return VZ_OK;
}
