/* rest.c - one libcurl easy handle per client: the connection stays open
 * between requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tls/tls.h"
#include "cli/cli.h"
#include "billing/billing.h"

#define MAX_ANSWER (4L << 20)

struct vz_rest {
	vz_rest_cfg cfg;
	vz_tls *tls;
	CURL *h;
	char url[2048];
};

/* The state of one try. */
struct xfer {
	vz_rest_answer *a;
	long retry_after_s;
	bool too_big;
	vz_rest_sink sink;
	void *ctx;
	bool sink_failed;
	/* upload */
	int fd;
	long long size, offset;
	vz_rest_beat beat;
	void *beat_ctx;
	struct timespec last_beat;
};

void vz_rest_answer_clear(vz_rest_answer *a)
{
	free(a->body);
	memset(a, 0, sizeof(*a));
}

vz_rv vz_rest_new(const vz_rest_cfg *cfg, vz_tls *tls, vz_rest **out, vz_err *err)
{
	vz_rest *r = calloc(1, sizeof(*r));

	if (!r || !(r->h = curl_easy_init())) {
		free(r);
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	r->cfg = *cfg;
	r->tls = tls;
	if (vz_tls_setup_curl(tls, r->h, cfg->cacert, err) != VZ_OK) {
		vz_rest_free(r);
		return VZ_FAIL;
	}
	*out = r;
	return VZ_OK;
}

void vz_rest_free(vz_rest *r)
{
	if (!r)
		return;
	curl_easy_cleanup(r->h);
	free(r);
}

size_t vz_rest_connections(const vz_rest *r)
{
	return vz_tls_connections(r->tls);
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	struct xfer *x = userdata;
	vz_rest_answer *a = x->a;
	size_t len = size * n;
	char *grown;

	/* a->http is the status line's code (on_header): only a 200 body is
	 * the payload; anything else is an answer to read. */
	if (x->sink && a->http == 200) {
		if (!x->sink(x->ctx, p, len)) {
			x->sink_failed = true;
			return 0;
		}
		return len;
	}
	if (a->len + len > (size_t)MAX_ANSWER) {
		x->too_big = true;
		return 0;
	}
	grown = realloc(a->body, a->len + len + 1);
	if (!grown) {
		x->too_big = true;
		return 0;
	}
	a->body = grown;
	memcpy(a->body + a->len, p, len);
	a->len += len;
	a->body[a->len] = '\0';
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct xfer *x = userdata;
	size_t len = size * n;
	char v[200];

	/* The status line of each answer comes first: remember its code for
	 * on_body (the last one counts after redirects or 100 Continue). */
	if (len > 9 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', len);

		x->a->http = sp ? strtol(sp + 1, NULL, 10) : 0;
	} else if (len > 12 && len < sizeof(v) + 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		memcpy(v, p + 12, len - 12);
		v[len - 12] = '\0';
		x->retry_after_s = vz_retry_after_s(v, time(NULL));
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *userdata)
{
	struct xfer *x = userdata;
	size_t want = size * n;
	ssize_t got;

	if ((long long)want > x->size - x->offset)
		want = (size_t)(x->size - x->offset);
	if (want == 0)
		return 0;
	do {
		got = pread(x->fd, buf, want, (off_t)x->offset);
	} while (got < 0 && errno == EINTR);
	if (got <= 0)
		return CURL_READFUNC_ABORT; /* the file shrank or cannot be read */
	x->offset += got;
	return (size_t)got;
}

static int on_seek(void *userdata, curl_off_t offset, int origin)
{
	struct xfer *x = userdata;

	if (origin != SEEK_SET || offset < 0 || offset > x->size)
		return CURL_SEEKFUNC_FAIL;
	x->offset = offset;
	return CURL_SEEKFUNC_OK;
}

/* The beat of a push, at most once per VZ_REST_BEAT_S. */
static void beat(struct xfer *x)
{
	struct timespec now;

	if (!x->beat)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - x->last_beat.tv_sec < VZ_REST_BEAT_S)
		return;
	x->last_beat = now;
	x->beat(x->beat_ctx);
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	beat(userdata);
	return 0;
}

static bool retry_status(long http)
{
	return http == 429 || http == 502 || http == 503 || http == 504;
}

/* Runs the prepared handle with retries, on r->url. */
static vz_rv perform_url(vz_rest *r, struct xfer *x, void (*restart)(void *), vz_err *err)
{
	vz_rest_answer *a = x->a;
	CURLcode c = CURLE_OK;

	curl_easy_setopt(r->h, CURLOPT_URL, r->url);
	curl_easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(r->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, r->cfg.connect_timeout_ms);
	curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->h, CURLOPT_USERAGENT, "vzp11");
	for (a->attempts = 1;; a->attempts++) {
		free(a->body);
		a->body = NULL;
		a->len = 0;
		a->http = 0;
		x->too_big = x->sink_failed = false;
		x->retry_after_s = 0;
		x->offset = 0;
		if (a->attempts > 1 && restart)
			restart(x->ctx);
		c = curl_easy_perform(r->h);
		if (c == CURLE_OK)
			curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &a->http);
		a->maybe_sent |= !vz_http_not_sent(c);
		if (x->too_big || x->sink_failed)
			break;
		if (a->attempts >= r->cfg.attempts ||
		    !(c == CURLE_OK ? retry_status(a->http) : vz_http_transient(c)))
			break;
		{
			long ms = vz_http_backoff_ms(a->attempts, x->retry_after_s,
						     r->cfg.max_backoff_ms);
			struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

			beat(x);
			while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
				;
		}
	}
	if (x->too_big) {
		vz_err_set(err, "the answer is larger than %ld bytes", MAX_ANSWER);
		return VZ_FAIL;
	}
	if (x->sink_failed) {
		vz_err_set(err, "the download could not be stored");
		return VZ_FAIL;
	}
	if (c != CURLE_OK) {
		vz_err_set(err, "%s", vz_http_curl_reason(c));
		if (a->attempts > 1) {
			size_t used = strlen(err->msg);

			snprintf(err->msg + used, sizeof(err->msg) - used, " (after %u attempts)",
				 a->attempts);
		}
		a->http = 0;
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* Runs the prepared handle with retries, on base+path. */
static vz_rv perform(vz_rest *r, const char *path, struct xfer *x, void (*restart)(void *),
		     vz_err *err)
{
	if (snprintf(r->url, sizeof(r->url), "%s%s", r->cfg.base, path) >= (int)sizeof(r->url)) {
		vz_err_set(err, "the URL is too long");
		return VZ_FAIL;
	}
	return perform_url(r, x, restart, err);
}

/* One part of a parsed URL (malloc'ed by libcurl), NULL when absent. */
static char *url_part(CURLU *u, CURLUPart what, unsigned flags)
{
	char *v = NULL;

	if (curl_url_get(u, what, &v, flags) != CURLUE_OK)
		return NULL;
	return v;
}

static bool same_text(const char *a, const char *b, bool ignore_case)
{
	if (!a || !b)
		return a == b;
	return ignore_case ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

vz_rv vz_rest_on_base(const vz_rest *r, const char *url, char *out, size_t size, vz_err *err)
{
	CURLU *base = curl_url(), *u = curl_url();
	char *bs = NULL, *bh = NULL, *bp = NULL, *us = NULL, *uh = NULL, *up = NULL;
	char *user = NULL, *full = NULL;
	vz_rv ret = VZ_FAIL;

	if (!base || !u || curl_url_set(base, CURLUPART_URL, r->cfg.base, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_URL, r->cfg.base, 0) != CURLUE_OK) {
		vz_err_set(err, "cannot read the endpoint's URL");
		goto out;
	}
	/* a relative reference is resolved against the base, as a browser would */
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		vz_err_set(err, "the payload URL is not a URL");
		goto out;
	}
	bs = url_part(base, CURLUPART_SCHEME, 0);
	bh = url_part(base, CURLUPART_HOST, 0);
	bp = url_part(base, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	us = url_part(u, CURLUPART_SCHEME, 0);
	uh = url_part(u, CURLUPART_HOST, 0);
	up = url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT);
	user = url_part(u, CURLUPART_USER, 0);
	if (!user)
		user = url_part(u, CURLUPART_PASSWORD, 0);
	if (!same_text(bs, us, true) || !same_text(bh, uh, true) || !same_text(bp, up, false) ||
	    user) {
		vz_err_set(err,
			   "it points to %s://%s:%s%s, not to the configured Berichtenservice "
			   "%s://%s:%s",
			   us ? us : "?", uh ? uh : "?", up ? up : "?",
			   user ? _(" with a user name") : "", bs ? bs : "?", bh ? bh : "?",
			   bp ? bp : "?");
		goto out;
	}
	full = url_part(u, CURLUPART_URL, 0);
	if (!full || strlen(full) >= size) {
		vz_err_set(err, "the payload URL is too long");
		goto out;
	}
	memcpy(out, full, strlen(full) + 1);
	ret = VZ_OK;
out:
	curl_free(bs);
	curl_free(bh);
	curl_free(bp);
	curl_free(us);
	curl_free(uh);
	curl_free(up);
	curl_free(user);
	curl_free(full);
	curl_url_cleanup(base);
	curl_url_cleanup(u);
	return ret;
}

/* Back to a plain GET. Order matters: setting CURLOPT_MIMEPOST, even to
 * NULL, makes the method a POST again, so HTTPGET comes last. */
static void reset(vz_rest *r)
{
	curl_easy_setopt(r->h, CURLOPT_MIMEPOST, NULL);
	curl_easy_setopt(r->h, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(r->h, CURLOPT_NOBODY, 0L);
	curl_easy_setopt(r->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, r->cfg.timeout_ms);
}

vz_rv vz_rest_push(vz_rest *r, const char *path, const char *meta_json, int fd, long long size,
		   const char *file_name, vz_rest_beat beat_fn, void *beat_ctx, vz_rest_answer *a,
		   vz_err *err)
{
	struct xfer x = {.a = a, .fd = fd, .size = size, .beat = beat_fn, .beat_ctx = beat_ctx};
	curl_mime *mime = curl_mime_init(r->h);
	curl_mimepart *meta = mime ? curl_mime_addpart(mime) : NULL;
	curl_mimepart *payload = mime ? curl_mime_addpart(mime) : NULL;
	CURLcode c = CURLE_OK;
	vz_rv ret;

	memset(a, 0, sizeof(*a));
	if (!meta || !payload) {
		curl_mime_free(mime);
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	c |= curl_mime_name(meta, "berichtMetadata");
	c |= curl_mime_type(meta, "application/json");
	c |= curl_mime_data(meta, meta_json, CURL_ZERO_TERMINATED);
	c |= curl_mime_name(payload, "payload");
	/* libcurl would call a .txt file text/plain. */
	c |= curl_mime_type(payload, "application/octet-stream");
	c |= curl_mime_filename(payload, file_name);
	c |= curl_mime_data_cb(payload, (curl_off_t)size, on_read, on_seek, NULL, &x);
	if (c != CURLE_OK) {
		curl_mime_free(mime);
		vz_err_set(err, "libcurl refused the message parts");
		return VZ_FAIL;
	}
	reset(r);
	curl_easy_setopt(r->h, CURLOPT_MIMEPOST, mime);
	/* The payload may be large: no limit on the whole, a floor on speed. */
	curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(r->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(r->h, CURLOPT_LOW_SPEED_TIME, (long)(r->cfg.timeout_ms / 1000));
	if (beat_fn) {
		clock_gettime(CLOCK_MONOTONIC, &x.last_beat);
		curl_easy_setopt(r->h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(r->h, CURLOPT_XFERINFODATA, &x);
		curl_easy_setopt(r->h, CURLOPT_NOPROGRESS, 0L);
	}
	ret = perform(r, path, &x, NULL, err);
	reset(r); /* the handle must not keep a pointer to the freed parts */
	curl_easy_setopt(r->h, CURLOPT_LOW_SPEED_LIMIT, 0L);
	curl_easy_setopt(r->h, CURLOPT_NOPROGRESS, 1L);
	curl_easy_setopt(r->h, CURLOPT_XFERINFOFUNCTION, NULL);
	curl_mime_free(mime);
	return ret;
}

vz_rv vz_rest_get(vz_rest *r, const char *path, vz_rest_answer *a, vz_err *err)
{
	struct xfer x = {.a = a};

	memset(a, 0, sizeof(*a));
	reset(r);
	return perform(r, path, &x, NULL, err);
}

vz_rv vz_rest_download_url(vz_rest *r, const char *url, vz_rest_sink sink,
			   void (*restart)(void *ctx), void *ctx, vz_rest_answer *a, vz_err *err)
{
	struct xfer x = {.a = a, .sink = sink, .ctx = ctx};
	vz_rv ret;

	memset(a, 0, sizeof(*a));
	if (snprintf(r->url, sizeof(r->url), "%s", url) >= (int)sizeof(r->url)) {
		vz_err_set(err, "the URL is too long");
		return VZ_FAIL;
	}
	reset(r);
	curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(r->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(r->h, CURLOPT_LOW_SPEED_TIME, (long)(r->cfg.timeout_ms / 1000));
	ret = perform_url(r, &x, restart, err);
	curl_easy_setopt(r->h, CURLOPT_LOW_SPEED_LIMIT, 0L);
	return ret;
}

vz_rv vz_rest_delete(vz_rest *r, const char *path, vz_rest_answer *a, vz_err *err)
{
	struct xfer x = {.a = a};

	memset(a, 0, sizeof(*a));
	reset(r);
	curl_easy_setopt(r->h, CURLOPT_CUSTOMREQUEST, "DELETE");
	return perform(r, path, &x, NULL, err);
}
