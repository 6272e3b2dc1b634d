/* covrun.c - the COV request engine on libcurl's multi interface: no thread
 * per request; connections are kept alive and reused. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "cov/cov.h"
#include "tls/tls.h"
#include "cli/cli.h"

struct request {
	size_t rows[VZ_COV_MAX_SEARCHES]; /* positions in the row window */
	size_t n;
	unsigned attempt;
	long long not_before_ms;
	char *body;
	size_t body_len;
	char reason[256]; /* why the last try failed */
};

struct slot {
	CURL *h;
	struct request *req; /* NULL when idle */
	char *resp;	     /* grows as needed, up to max */
	size_t resp_len, resp_size, max;
	long retry_after_s;
	bool too_big;
};

struct run {
	const vz_cov_cfg *cfg;
	vz_tls *tls;
	vz_cov_row *win; /* ring of rows read and not yet emitted */
	size_t cap, head, count;
	struct request **queue; /* requests waiting to be sent */
	size_t nq, qcap;
	struct slot *slots;
	unsigned active;
	CURLM *multi;
	CURLSH *share;
	struct curl_slist *headers;
	vz_cov_stats *st;
	/* the token (see vz_cov_run() in cov/cov.h) */
	size_t key_failures_seen;	/* vz_tls_key_failures() dealt with */
	size_t handshakes_at_reconnect; /* vz_tls_handshakes() at the last re-connect */
	long long down_since;		/* 0: the token is usable */
	long long next_reconnect;	/* no re-connect before this time */
	char lost[256];			/* set: the token is gone for good; rows fail so */
	/* the input */
	size_t batch[VZ_COV_MAX_SEARCHES]; /* window positions of searches not yet sent */
	size_t batch_n;
	bool eof; /* next() said there are no more rows */
	/* now_ms() at the start and at the last progress report */
	long long started, last_progress;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	struct slot *s = userdata;
	size_t len = size * n;

	if (len > s->max - s->resp_len) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (s->resp_len + len > s->resp_size) {
		size_t want = s->resp_size ? s->resp_size : 16384;
		char *grown;

		while (want < s->resp_len + len)
			want *= 2;
		if (want > s->max)
			want = s->max;
		grown = realloc(s->resp, want);
		if (!grown) {
			s->too_big = true;
			return 0;
		}
		s->resp = grown;
		s->resp_size = want;
	}
	memcpy(s->resp + s->resp_len, p, len);
	s->resp_len += len;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct slot *s = userdata;
	size_t len = size * n;

	if (len > 12 && len < 200 && strncasecmp(p, "Retry-After:", 12) == 0) {
		char v[200];

		memcpy(v, p + 12, len - 12);
		v[len - 12] = '\0';
		s->retry_after_s = vz_retry_after_s(v, time(NULL));
	}
	return len;
}

static vz_cov_row *row_at(struct run *r, size_t pos)
{
	return &r->win[pos % r->cap];
}

static void fail_rows(struct run *r, struct request *q, const char *why)
{
	for (size_t i = 0; i < q->n; i++) {
		vz_cov_row *row = row_at(r, q->rows[i]);

		snprintf(row->error, sizeof(row->error), "%s", why);
		row->done = true;
	}
}

static bool enqueue(struct run *r, struct request *q)
{
	if (r->nq == r->qcap) {
		size_t ncap = r->qcap ? r->qcap * 2 : 16;
		struct request **g = realloc(r->queue, ncap * sizeof(*g));

		if (!g)
			return false;
		r->queue = g;
		r->qcap = ncap;
	}
	r->queue[r->nq++] = q;
	return true;
}

static void free_request(struct request *q)
{
	free(q->body);
	free(q);
}

/* Makes one request of the rows at these window positions. The searches
 * are numbered 1..n in the request (VECOZO's WSDL types Volgnummer as a
 * 16-bit short, so a line number could not go past 32,767): search i is
 * q->rows[i - 1], and that map alone says which row an answer is for. */
static vz_rv make_request(struct run *r, const size_t *pos, size_t n, vz_err *err)
{
	vz_cov_search s[VZ_COV_MAX_SEARCHES];
	struct request *q = calloc(1, sizeof(*q));

	if (!q) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		q->rows[i] = pos[i];
		s[i] = row_at(r, pos[i])->s;
		s[i].seq = i + 1;
	}
	q->n = n;
	if (vz_cov_build(s, n, r->cfg->agb, &q->body, &q->body_len, err) != VZ_OK ||
	    !enqueue(r, q)) {
		free_request(q);
		if (!err->msg[0])
			vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	return VZ_OK;
}

static vz_rv start(struct run *r, struct slot *s, struct request *q, vz_err *err)
{
	CURLcode c = CURLE_OK;

	s->req = q;
	s->resp_len = 0;
	s->too_big = false;
	s->retry_after_s = 0;
	q->attempt++;
	c |= curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, q->body);
	c |= curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)q->body_len);
	if (c != CURLE_OK || curl_multi_add_handle(r->multi, s->h) != CURLM_OK) {
		vz_err_set(err, "cannot start a request");
		return VZ_FAIL;
	}
	r->active++;
	r->st->requests++;
	if (q->attempt > 1)
		r->st->retries++;
	return VZ_OK;
}

static void schedule_retry(struct run *r, struct request *q, long retry_after_s)
{
	q->not_before_ms =
		now_ms() + vz_http_backoff_ms(q->attempt, retry_after_s, r->cfg->max_backoff_ms);
}

static const char *fault_text(vz_cov_fault_kind k)
{
	switch (k) {
	case VZ_FAULT_NOT_AUTHENTICATED:
		return _("VECOZO did not accept the certificate (Niet geauthenticeerd): is it "
		       "expired, not the system certificate, meant for another environment, or is "
		       "this computer's IP address not registered at VECOZO?");
	case VZ_FAULT_NOT_AUTHORIZED:
		return _("the certificate lacks the COV right (Niet geautoriseerd): ask for the "
		       "VZ801/802 right for this system certificate in VECOZO's portal");
	default:
		return _("VECOZO returned a SOAP fault");
	}
}

/* Each Volgnummer of the answer is one the request sent (1..q->n) and is
 * answered once; otherwise results cannot be matched to persons at all. */
static bool numbers_match(const struct request *q, const vz_cov_result *res, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		size_t answered = 0;

		if (res[j].seq < 1 || res[j].seq > q->n)
			return false;
		for (size_t k = 0; k < n; k++)
			answered += res[k].seq == res[j].seq;
		if (answered != 1)
			return false;
	}
	return true;
}

/* Two BSNs are the same person's; an answer may drop leading zeros. */
static bool same_bsn(const char *asked, const char *answer)
{
	while (*asked == '0')
		asked++;
	while (*answer == '0')
		answer++;
	return strcmp(asked, answer) == 0;
}

/* An xs:date may carry a time zone after YYYY-MM-DD. */
static bool same_date(const char *asked, const char *answer)
{
	return strncmp(asked, answer, 10) == 0 &&
	       (answer[10] == '\0' || answer[10] == 'Z' || answer[10] == '+' || answer[10] == '-');
}

/* Whether what VECOZO says about the person fits what this row asked. */
static const char *mismatch(const vz_cov_row *row, const vz_cov_result *res)
{
	if (res->reference && strcmp(res->reference, row->s.reference) != 0)
		return _("the answer echoes another reference than this row sent; not used");
	if (res->has_person && res->bsn && !same_bsn(row->s.bsn, res->bsn))
		return _("the answer is about a person with another BSN than this row asked for; "
		       "not used");
	if (res->has_person && res->birthdate && !same_date(row->s.birthdate, res->birthdate))
		return _("the answer is about a person with another birth date than this row asked "
		       "for; not used");
	return NULL;
}

/* Puts each result on the row its Volgnummer stands for in this request,
 * after checking that it answers that row's question. */
static void assign(struct run *r, struct request *q, vz_cov_result *res, size_t n)
{
	for (size_t i = 0; i < q->n; i++) {
		vz_cov_row *row = row_at(r, q->rows[i]);
		const char *why;

		for (size_t j = 0; j < n; j++) {
			if (res[j].seq == i + 1 && res[j].result) {
				row->r = res[j];
				memset(&res[j], 0, sizeof(res[j]));
				break;
			}
		}
		why = row->r.result ? mismatch(row, &row->r)
				    : "the response holds no result for this search";
		if (why) {
			vz_cov_result_clear(&row->r);
			snprintf(row->error, sizeof(row->error), "%s", why);
		}
		row->done = true;
	}
	for (size_t j = 0; j < n; j++)
		vz_cov_result_clear(&res[j]);
}

/* Fails every waiting request with the reason the token is lost. */
static void fail_waiting(struct run *r)
{
	for (size_t i = 0; i < r->nq; i++) {
		fail_rows(r, r->queue[i], r->lost);
		free_request(r->queue[i]);
	}
	r->nq = 0;
}

/* Ends the wait for the token: every request waiting fails with why. */
static void lose_token(struct run *r, const char *why)
{
	snprintf(r->lost, sizeof(r->lost), "%s", why);
	r->down_since = 0;
	fail_waiting(r);
}

/* A transfer failed while the token's key failed in a handshake: the
 * request waits for the token without using up a try. A key that fails
 * again after a re-connect, before any handshake succeeded, is not the
 * token being away: then the rows fail. */
static void hold_for_token(struct run *r, struct request *q)
{
	size_t failures = vz_tls_key_failures(r->tls);

	if (!r->lost[0] && r->st->reconnects && failures != r->key_failures_seen &&
	    vz_tls_handshakes(r->tls) == r->handshakes_at_reconnect)
		lose_token(r, "not checked: the token's key still cannot sign the TLS handshake "
			      "after re-connecting to the token");
	r->key_failures_seen = failures;
	if (!r->lost[0]) {
		if (!r->down_since)
			r->down_since = now_ms();
		q->attempt--;
		q->not_before_ms = 0;
		if (enqueue(r, q))
			return;
	}
	fail_rows(r, q, r->lost[0] ? r->lost : "out of memory");
	free_request(q);
}

/* Re-opens the token once no transfer is running, at most once per
 * VZ_COV_RECONNECT_MS; gives up after a PIN failure or cfg->token_wait_ms. */
static void try_reconnect(struct run *r)
{
	long long now = now_ms();
	vz_err e = {0};
	bool final = false;
	char why[sizeof(r->lost)];

	if (!r->down_since || r->active || now < r->next_reconnect)
		return;
	r->next_reconnect = now + VZ_COV_RECONNECT_MS;
	if (vz_tls_reconnect(r->tls, &final, &e) == VZ_OK) {
		r->down_since = 0;
		r->st->reconnects++;
		r->key_failures_seen = vz_tls_key_failures(r->tls);
		r->handshakes_at_reconnect = vz_tls_handshakes(r->tls);
		return;
	}
	if (final) {
		snprintf(why, sizeof(why), _("not checked: re-connecting to the token failed: %.200s"),
			 e.msg);
		lose_token(r, why);
	} else if (now - r->down_since >= r->cfg->token_wait_ms) {
		snprintf(why, sizeof(why),
			 _("not checked: the token did not come back within %ld s: %.180s"),
			 r->cfg->token_wait_ms / 1000, e.msg);
		lose_token(r, why);
	}
}

/* What the transfer itself says: true when there is an answer to read;
 * else q->reason, and *retry when the failure can pass. */
static bool transfer_answered(const struct run *r, const struct slot *s, struct request *q,
			      CURLcode c, long http, bool *retry)
{
	if (s->too_big) {
		snprintf(q->reason, sizeof(q->reason),
			 _("the response is larger than the limit of %zu bytes"),
			 r->cfg->max_response);
	} else if (c != CURLE_OK) {
		snprintf(q->reason, sizeof(q->reason), "%s", vz_http_curl_reason(c));
		*retry = vz_http_transient(c);
	} else if (http == 429 || http == 502 || http == 503 || http == 504) {
		snprintf(q->reason, sizeof(q->reason), _("HTTP %ld from the endpoint"), http);
		*retry = true;
	} else if (http != 200 && http != 500) {
		snprintf(q->reason, sizeof(q->reason),
			 _("HTTP %ld from the endpoint (check the endpoint URL)"), http);
	} else {
		return true;
	}
	return false;
}

/* Reads the answer in s: true when its results went to q's rows; else
 * q->reason, and *retry when another try may get a readable answer. */
static bool take_answer(struct run *r, struct request *q, const struct slot *s, long http,
			bool *retry)
{
	vz_cov_result res[VZ_COV_MAX_SEARCHES];
	vz_cov_fault_kind fk;
	char detail[128];
	size_t n = 0;

	switch (vz_cov_parse(s->resp, s->resp_len, res, VZ_COV_MAX_SEARCHES, &n, &fk, detail,
			     sizeof(detail))) {
	case VZ_COV_OK:
		if (numbers_match(q, res, n)) {
			assign(r, q, res, n);
			return true;
		}
		for (size_t j = 0; j < n; j++)
			vz_cov_result_clear(&res[j]);
		snprintf(q->reason, sizeof(q->reason),
			 _("the answer does not match the request (a Volgnummer is unknown or "
			   "repeated); no result of it was used"));
		*retry = true;
		break;
	case VZ_COV_FAULT:
		snprintf(q->reason, sizeof(q->reason), "%s", fault_text(fk));
		if (fk == VZ_FAULT_OTHER) {
			size_t used = strlen(q->reason);

			snprintf(q->reason + used, sizeof(q->reason) - used, ": %.50s", detail);
		}
		break;
	case VZ_COV_REQUEST_REFUSED:
		snprintf(q->reason, sizeof(q->reason), _("VECOZO refused the request: %.100s"),
			 detail);
		break;
	case VZ_COV_MALFORMED:
		snprintf(q->reason, sizeof(q->reason), _("unreadable response (HTTP %ld): %.100s"),
			 http, detail);
		*retry = true;
		break;
	}
	return false;
}

/* A request without a usable answer goes again when the failure can pass
 * and tries are left; else its rows fail with q->reason. */
static void retry_or_fail(struct run *r, struct request *q, bool retry, long retry_after_s)
{
	if (retry && q->attempt < r->cfg->attempts && enqueue(r, q)) {
		schedule_retry(r, q, retry_after_s);
		return;
	}
	if (retry && q->attempt > 1) {
		char why[sizeof(((vz_cov_row *)0)->error)];

		snprintf(why, sizeof(why), _("failed after %u attempts: %.256s"), q->attempt,
			 q->reason);
		fail_rows(r, q, why);
	} else {
		fail_rows(r, q, q->reason);
	}
	free_request(q);
}

/* One finished transfer: results, a wait for the token, a retry, or a
 * final error for its rows. */
static void finish(struct run *r, struct slot *s, CURLcode c)
{
	struct request *q = s->req;
	long http = 0;
	bool retry = false;

	curl_multi_remove_handle(r->multi, s->h);
	r->active--;
	s->req = NULL;
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &http);
	if (c != CURLE_OK &&
	    (r->down_since || vz_tls_key_failures(r->tls) != r->key_failures_seen)) {
		hold_for_token(r, q);
		return;
	}
	if (transfer_answered(r, s, q, c, http, &retry) && take_answer(r, q, s, http, &retry)) {
		free_request(q);
		return;
	}
	retry_or_fail(r, q, retry, s->retry_after_s);
}

/* Sends what is due while there are idle slots. */
static vz_rv dispatch(struct run *r, long long *next_due, vz_err *err)
{
	long long now = now_ms();

	*next_due = -1;
	if (r->lost[0])
		fail_waiting(r);
	if (r->down_since) {
		*next_due = r->next_reconnect;
		return VZ_OK;
	}
	for (size_t i = 0; i < r->nq && r->active < r->cfg->jobs;) {
		struct request *q = r->queue[i];

		if (q->not_before_ms > now) {
			if (*next_due < 0 || q->not_before_ms < *next_due)
				*next_due = q->not_before_ms;
			i++;
			continue;
		}
		for (unsigned k = 0; k < r->cfg->jobs; k++) {
			if (!r->slots[k].req) {
				memmove(&r->queue[i], &r->queue[i + 1],
					(r->nq - i - 1) * sizeof(*r->queue));
				r->nq--;
				if (start(r, &r->slots[k], q, err) != VZ_OK)
					return VZ_FAIL;
				break;
			}
		}
	}
	return VZ_OK;
}

static vz_rv setup(struct run *r, vz_err *err)
{
	const vz_cov_cfg *cfg = r->cfg;

	r->cap = (size_t)cfg->jobs * cfg->per_request * 4;
	r->win = calloc(r->cap, sizeof(*r->win));
	r->slots = calloc(cfg->jobs, sizeof(*r->slots));
	r->multi = curl_multi_init();
	r->share = curl_share_init();
	r->headers = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
	r->headers = curl_slist_append(r->headers, "SOAPAction: \"" VZ_COV_SOAP_ACTION "\"");
	if (!r->win || !r->slots || !r->multi || !r->share || !r->headers) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	if (curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
		    CURLSHE_OK ||
	    curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
		vz_err_set(err, "libcurl cannot share TLS sessions between connections");
		return VZ_FAIL;
	}
	curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->jobs);
	curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)cfg->jobs);
	for (unsigned i = 0; i < cfg->jobs; i++) {
		struct slot *s = &r->slots[i];
		CURLcode c = CURLE_OK;

		s->h = curl_easy_init();
		s->max = cfg->max_response;
		if (!s->h) {
			vz_err_set(err, "out of memory");
			return VZ_FAIL;
		}
		if (vz_tls_setup_curl(r->tls, s->h, cfg->cacert, err) != VZ_OK)
			return VZ_FAIL;
		c |= curl_easy_setopt(s->h, CURLOPT_URL, cfg->endpoint);
		c |= curl_easy_setopt(s->h, CURLOPT_PROTOCOLS_STR, "https");
		c |= curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, r->headers);
		c |= curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
		c |= curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
		c |= curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, on_header);
		c |= curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
		c |= curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
		c |= curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, cfg->timeout_ms);
		c |= curl_easy_setopt(s->h, CURLOPT_TCP_KEEPALIVE, 1L);
		c |= curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
		c |= curl_easy_setopt(s->h, CURLOPT_SHARE, r->share);
		c |= curl_easy_setopt(s->h, CURLOPT_USERAGENT, "vzp11");
		if (c != CURLE_OK) {
			vz_err_set(err, "libcurl refused a setting (is it older than 7.85?)");
			return VZ_FAIL;
		}
	}
	return VZ_OK;
}

static void teardown(struct run *r)
{
	for (unsigned i = 0; r->slots && i < r->cfg->jobs; i++) {
		struct slot *s = &r->slots[i];

		if (s->req) {
			curl_multi_remove_handle(r->multi, s->h);
			free_request(s->req);
		}
		curl_easy_cleanup(s->h);
		free(s->resp);
	}
	for (size_t i = 0; i < r->nq; i++)
		free_request(r->queue[i]);
	for (size_t i = 0; r->win && i < r->count; i++)
		vz_cov_result_clear(&row_at(r, r->head + i)->r);
	free(r->queue);
	free(r->slots);
	free(r->win);
	curl_multi_cleanup(r->multi);
	curl_share_cleanup(r->share);
	curl_slist_free_all(r->headers);
}

/* The searches gathered so far go as one request. */
static vz_rv send_batch(struct run *r, vz_err *err)
{
	if (make_request(r, r->batch, r->batch_n, err) != VZ_OK)
		return VZ_FAIL;
	r->batch_n = 0;
	return VZ_OK;
}

/* Reads rows while the window has room and gathers their searches into
 * requests of cfg->per_request; a short one goes when nothing more can
 * join it (the input ended or the window is full). */
static vz_rv read_rows(struct run *r, vz_cov_next_fn next, void *ctx, vz_err *err)
{
	while (!r->eof && r->count < r->cap) {
		vz_cov_row *row = row_at(r, r->head + r->count);
		int got;

		memset(row, 0, sizeof(*row));
		got = next(ctx, row, err);
		if (got < 0)
			return VZ_FAIL;
		if (got == 0) {
			r->eof = true;
			break;
		}
		if (!row->done)
			r->batch[r->batch_n++] = r->head + r->count;
		r->count++;
		if (r->batch_n == r->cfg->per_request && send_batch(r, err) != VZ_OK)
			return VZ_FAIL;
	}
	if (r->batch_n && (r->eof || r->count == r->cap))
		return send_batch(r, err);
	return VZ_OK;
}

/* Hands back the finished rows at the window's head, in input order. */
static vz_rv emit_done(struct run *r, vz_cov_emit_fn emit, void *ctx, vz_err *err)
{
	while (r->count && row_at(r, r->head)->done) {
		vz_cov_row *row = row_at(r, r->head);
		vz_rv rv;

		r->st->rows++;
		r->st->failed += row->error[0] != '\0';
		rv = emit(ctx, row, err);
		vz_cov_result_clear(&row->r);
		r->head++;
		r->count--;
		if (rv != VZ_OK)
			return VZ_FAIL;
	}
	return VZ_OK;
}

/* The counters so far, at most every 200 ms. */
static void report_progress(struct run *r, void (*progress)(void *ctx, const vz_cov_stats *st),
			    void *ctx)
{
	if (!progress || now_ms() - r->last_progress < 200)
		return;
	r->st->connections = vz_tls_connections(r->tls);
	r->st->elapsed_ms = now_ms() - r->started;
	progress(ctx, r->st);
	r->last_progress = now_ms();
}

/* Lets libcurl move the transfers on and takes in those that ended. */
static void collect_finished(struct run *r)
{
	int running = 0, left;
	CURLMsg *m;

	curl_multi_perform(r->multi, &running);
	for (m = curl_multi_info_read(r->multi, &left); m;
	     m = curl_multi_info_read(r->multi, &left)) {
		if (m->msg != CURLMSG_DONE)
			continue;
		for (unsigned k = 0; k < r->cfg->jobs; k++)
			if (r->slots[k].h == m->easy_handle && r->slots[k].req)
				finish(r, &r->slots[k], m->data.result);
	}
}

/* Waits for news of a transfer, at most 200 ms while one runs; with none
 * running, until the next request is due (at most 1 s). */
static void wait_for_news(struct run *r, long long due)
{
	long wait = 200;

	if (!r->active && !r->nq)
		return;
	if (!r->active && due > 0)
		wait = (long)(due - now_ms());
	if (wait < 0)
		wait = 0;
	if (wait > 1000)
		wait = 1000;
	curl_multi_poll(r->multi, NULL, 0, (int)wait, NULL);
}

int vz_cov_next_one(void *ctx, vz_cov_row *row, vz_err *err)
{
	vz_cov_one *one = ctx;

	if (one->given)
		return 0;
	*row = one->row;
	one->given = true;
	return 1;
}

vz_rv vz_cov_run(const vz_cov_cfg *cfg, vz_tls *tls, vz_cov_next_fn next, vz_cov_emit_fn emit,
		 void (*progress)(void *ctx, const vz_cov_stats *st), void *ctx,
		 vz_cov_stats *stats, vz_err *err)
{
	struct run r = {.cfg = cfg, .tls = tls, .st = stats, .started = now_ms()};
	vz_rv ret = VZ_FAIL;

	memset(stats, 0, sizeof(*stats));
	if (setup(&r, err) != VZ_OK)
		goto out;
	for (;;) {
		long long due;

		if (read_rows(&r, next, ctx, err) != VZ_OK)
			goto out;
		try_reconnect(&r);
		if (dispatch(&r, &due, err) != VZ_OK || emit_done(&r, emit, ctx, err) != VZ_OK)
			goto out;
		report_progress(&r, progress, ctx);
		if (r.eof && r.count == 0)
			break;
		collect_finished(&r);
		wait_for_news(&r, due);
	}
	ret = VZ_OK;
out:
	stats->connections = vz_tls_connections(tls);
	stats->elapsed_ms = now_ms() - r.started;
	teardown(&r);
	return ret;
}
