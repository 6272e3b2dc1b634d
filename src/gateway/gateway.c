/* gateway.c - the gateway's one thread: an epoll set holding every
 * libmicrohttpd daemon's own epoll fd, every libcurl socket and the signal
 * fd, so a request goes from the client to VECOZO and back in one thread,
 * without locks or hand-offs. Also what a request is made of (its states,
 * kept for reuse), reloads and the drain at the end. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "proxy.h"

/* Requests kept for reuse once answered, with their buffers. */
#define SPARE_XFERS 256
/* A request's buffer bigger than this is freed, not kept with it. */
#define KEEP_BUF (64 * 1024)

long long vz_gw_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void vz_gw_logf(const vz_gw_cfg *cfg, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!cfg->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	cfg->log(cfg->log_ctx, line);
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

/* Empties b; a big buffer is freed, a small one kept for the next use. */
static void buf_recycle(vz_gw_buf *b)
{
	if (b->cap > KEEP_BUF) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	b->off = b->len = 0;
}

static void buf_free(vz_gw_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

vz_gw_xfer *vz_gw_xfer_new(vz_gw *gw)
{
	vz_gw_xfer *x = gw->free_xfers;
	vz_gw_buf req, resp, head, text;

	if (x) {
		gw->free_xfers = x->next;
		gw->n_free--;
		req = x->req;
		resp = x->resp;
		head = x->resp_head;
		text = x->hdr_text;
	} else {
		x = malloc(sizeof(*x));
		if (!x)
			return NULL;
		memset(&req, 0, sizeof(req));
		resp = head = text = req;
	}
	/* every field from zero but the kept buffers */
	memset(x, 0, offsetof(vz_gw_xfer, hdr_nodes));
	x->n_hdr = 0;
	x->req = req;
	x->resp = resp;
	x->resp_head = head;
	x->hdr_text = text;
	x->gw = gw;
	x->refs = 1;
	x->state = VZ_GW_RECEIVED;
	x->svc = VZ_GW_SVC_REFUSED;
	x->resp_clen = -1;
	x->start_us = vz_gw_now_us();
	return x;
}

void vz_gw_xfer_release(vz_gw_xfer *x)
{
	vz_gw *gw = x->gw;

	if (--x->refs > 0)
		return;
	free(x->target);
	free(x->url);
	x->target = x->url = NULL;
	buf_recycle(&x->req);
	buf_recycle(&x->resp);
	buf_recycle(&x->resp_head);
	buf_recycle(&x->hdr_text);
	if (gw->n_free < SPARE_XFERS) {
		x->next = gw->free_xfers;
		gw->free_xfers = x;
		gw->n_free++;
		return;
	}
	buf_free(&x->req);
	buf_free(&x->resp);
	buf_free(&x->resp_head);
	buf_free(&x->hdr_text);
	free(x);
}

void vz_gw_wake_client(vz_gw_xfer *x)
{
	if (x->suspended && x->conn) {
		x->suspended = false;
		MHD_resume_connection(x->conn);
		x->gw->run_daemons = true;
	}
}

void vz_gw_kick(vz_gw_xfer *x)
{
	if (x->kicked || !x->h)
		return;
	x->kicked = true;
	x->refs++;
	x->kick_next = x->gw->kicks;
	x->gw->kicks = x;
}

/* Unpauses the transfers libmicrohttpd's callbacks asked for. */
static void run_kicks(vz_gw *gw)
{
	while (gw->kicks) {
		vz_gw_xfer *x = gw->kicks;

		gw->kicks = x->kick_next;
		x->kicked = false;
		vz_gw_upstream_unpause(x);
		vz_gw_xfer_release(x);
	}
}

void vz_gw_watch(vz_gw *gw, vz_gw_ev *ev, unsigned events)
{
	struct epoll_event e = {.events = events, .data.ptr = ev};

	if (events == ev->events)
		return;
	if (!events)
		epoll_ctl(gw->epfd, EPOLL_CTL_DEL, ev->fd, NULL); /* may be closed already */
	else if (epoll_ctl(gw->epfd, ev->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ev->fd, &e) != 0)
		vz_gw_logf(gw->cfg, "bug: epoll_ctl on fd %d: %s", ev->fd, strerror(errno));
	ev->events = events;
}

void vz_gw_unwatch_free(vz_gw *gw, vz_gw_ev *ev)
{
	vz_gw_ev **grown;

	vz_gw_watch(gw, ev, 0);
	ev->dead = true;
	if (gw->n_dead == gw->cap_dead) {
		size_t cap = gw->cap_dead ? gw->cap_dead * 2 : 16;

		grown = realloc(gw->dead, cap * sizeof(*grown));
		if (!grown) {
			free(ev); /* no later event can name it: it was removed */
			return;
		}
		gw->dead = grown;
		gw->cap_dead = cap;
	}
	gw->dead[gw->n_dead++] = ev;
}

static void free_dead(vz_gw *gw)
{
	while (gw->n_dead)
		free(gw->dead[--gw->n_dead]);
}

vz_gw_upstream *vz_gw_upstream_of(vz_gw *gw, size_t label)
{
	return gw->up && label < gw->cfg->n_labels ? gw->up[label] : NULL;
}

vz_rv vz_gw_new(const vz_gw_cfg *cfg, vz_tls **tls, vz_gw **out, vz_err *err)
{
	vz_gw *gw = calloc(1, sizeof(*gw));
	size_t i = 0;

	if (gw) {
		gw->epfd = -1;
		gw->sig.fd = -1;
		gw->cfg = cfg;
		gw->up = calloc(cfg->n_labels, sizeof(*gw->up));
		gw->metrics = vz_gw_metrics_new();
		gw->epfd = epoll_create1(EPOLL_CLOEXEC);
	}
	if (!gw || !gw->up || !gw->metrics || gw->epfd < 0) {
		vz_err_set(err, "out of memory");
		goto fail;
	}
	for (; i < cfg->n_labels; i++) {
		vz_tls *t = tls[i];

		tls[i] = NULL;
		if (vz_gw_upstream_new(gw, cfg->labels[i], t, &gw->up[i], err) != VZ_OK)
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
	if (gw->n_listeners == VZ_GW_MAX_LISTEN) {
		close(fd);
		vz_err_set(err, "at most %d listen addresses", VZ_GW_MAX_LISTEN);
		return VZ_USAGE;
	}
	if (vz_gw_listener_start(gw, &gw->listeners[gw->n_listeners], fd, pol, err) != VZ_OK)
		return VZ_FAIL;
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
		if (vz_gw_upstream_new(gw, gw->cfg->labels[i], t, &fresh[i], err) != VZ_OK)
			goto fail;
	}
	for (i = 0; i < n; i++) {
		vz_gw_upstream_drain(gw->up[i]);
		gw->retired[gw->n_retired++] = gw->up[i];
		gw->up[i] = fresh[i];
	}
	free(fresh);
	gw->reloads++;
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

/* Frees upstreams retired by a reload once their transfers are done. */
static void reap_retired(vz_gw *gw)
{
	size_t k = 0;

	for (size_t i = 0; i < gw->n_retired; i++) {
		vz_gw_upstream *u = gw->retired[i];

		if (vz_gw_upstream_idle(u)) {
			vz_gw_upstream_state st;

			vz_gw_upstream_state_get(u, &st);
			gw->handshakes_retired += st.handshakes;
			vz_gw_upstream_free(u);
		} else {
			gw->retired[k++] = u;
		}
	}
	gw->n_retired = k;
}

/* Lets every upstream run what is due; the microseconds until the next
 * thing due (-1: nothing). */
static long long run_upstreams(vz_gw *gw, long long now)
{
	long long next = -1;

	for (size_t i = 0; i < gw->cfg->n_labels + gw->n_retired; i++) {
		vz_gw_upstream *u =
			i < gw->cfg->n_labels ? gw->up[i] : gw->retired[i - gw->cfg->n_labels];
		long long d = u ? vz_gw_upstream_due(u, now) : -1;

		if (d >= 0 && (next < 0 || d < next))
			next = d;
	}
	return next;
}

static void run_daemons(vz_gw *gw)
{
	gw->run_daemons = false;
	for (size_t i = 0; i < gw->n_listeners; i++)
		MHD_run(gw->listeners[i].d);
}

/* The milliseconds epoll_wait may sleep: until the first of libcurl's,
 * libmicrohttpd's and the gateway's own timers (-1: none). */
static int turn_timeout(vz_gw *gw, long long next_us)
{
	long long ms = next_us < 0 ? -1 : (next_us + 999) / 1000;

	for (size_t i = 0; i < gw->n_listeners; i++) {
		MHD_UNSIGNED_LONG_LONG t;

		if (MHD_get_timeout(gw->listeners[i].d, &t) != MHD_YES)
			continue;
		if (t == 0) /* it has work without an event (data already read) */
			gw->run_daemons = true;
		if (ms < 0 || (long long)t < ms)
			ms = (long long)t;
	}
	if (gw->run_daemons || gw->kicks)
		ms = 0;
	return ms < 0 || ms > 1000 ? 1000 : (int)ms;
}

/* One turn of the loop: waits at most the time to the next timer, then
 * runs what is ready. Returns a signal that came (0: none). */
static int turn(vz_gw *gw)
{
	struct epoll_event evs[64];
	long long now = vz_gw_now_us(), next;
	int n, sig = 0;

	reap_retired(gw);
	next = run_upstreams(gw, now);
	vz_gw_health_poll(gw, now, &next);
	n = epoll_wait(gw->epfd, evs, 64, turn_timeout(gw, next));
	for (int i = 0; i < n; i++) {
		vz_gw_ev *ev = evs[i].data.ptr;

		if (ev->dead)
			continue;
		switch (ev->kind) {
		case VZ_GW_EV_DAEMON:
			gw->run_daemons = true;
			break;
		case VZ_GW_EV_CURL:
			vz_gw_upstream_socket(ev->owner, ev->fd, evs[i].events);
			break;
		case VZ_GW_EV_SIGNAL: {
			struct signalfd_siginfo si;

			if (read(gw->sig.fd, &si, sizeof(si)) == sizeof(si))
				sig = (int)si.ssi_signo;
			break;
		}
		}
	}
	/* Curl's answers woke connections: libmicrohttpd sends them now, not
	 * after another epoll_wait (and on a timeout: its connections' own).
	 * New transfers it hands to libcurl start in the next turn's
	 * run_upstreams (their timer is due at once). */
	if (gw->run_daemons || n == 0)
		run_daemons(gw);
	run_kicks(gw);
	free_dead(gw);
	fflush(stderr); /* the turn's log lines, in one write */
	return sig;
}

int vz_gw_run(vz_gw *gw, const sigset_t *sigs)
{
	if (gw->sig.fd < 0) {
		gw->sig.fd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
		gw->sig.kind = VZ_GW_EV_SIGNAL;
		if (gw->sig.fd < 0)
			return -1;
		vz_gw_watch(gw, &gw->sig, EPOLLIN);
	}
	for (;;) {
		int sig = turn(gw);

		if (sig)
			return sig;
	}
}

void vz_gw_quiesce(vz_gw *gw)
{
	gw->stopping = true;
	for (size_t i = 0; i < gw->n_listeners; i++) {
		MHD_socket fd = MHD_quiesce_daemon(gw->listeners[i].d);

		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
}

long vz_gw_drain(vz_gw *gw, long long until_us)
{
	while (gw->in_flight > 0 && vz_gw_now_us() < until_us)
		turn(gw);
	return gw->in_flight;
}

void vz_gw_free(vz_gw *gw)
{
	if (!gw)
		return;
	gw->stopping = true;
	/* Upstreams first: ending their transfers resumes every suspended
	 * connection, which libmicrohttpd needs before it stops. */
	for (size_t i = 0; gw->up && i < gw->cfg->n_labels; i++) {
		vz_gw_upstream_free(gw->up[i]);
		gw->up[i] = NULL;
	}
	for (size_t i = 0; i < gw->n_retired; i++)
		vz_gw_upstream_free(gw->retired[i]);
	gw->n_retired = 0;
	run_kicks(gw);
	for (size_t i = 0; i < gw->n_listeners; i++) {
		MHD_run(gw->listeners[i].d);
		MHD_stop_daemon(gw->listeners[i].d);
	}
	free_dead(gw);
	free(gw->dead);
	while (gw->free_xfers) {
		vz_gw_xfer *x = gw->free_xfers;

		gw->free_xfers = x->next;
		buf_free(&x->req);
		buf_free(&x->resp);
		buf_free(&x->resp_head);
		buf_free(&x->hdr_text);
		free(x);
	}
	if (gw->sig.fd >= 0)
		close(gw->sig.fd);
	if (gw->epfd >= 0)
		close(gw->epfd);
	vz_gw_metrics_free(gw->metrics);
	free(gw->up);
	free(gw->retired);
	free(gw);
}
