/* berichten.c - vzmock's stand-in for VECOZO's Berichtenservice REST services
 * (billing): push, status and return messages. The contract, the options and
 * the stats are described in the header comment of vzmock.c.
 *
 * Threads: MHD runs one thread per connection; the records and the queue of
 * return messages are guarded by one mutex. Payloads are never held whole:
 * a push is streamed through SHA-256 keeping its first 64 KiB, return
 * messages are generated or read from their file while they are sent. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <jansson.h>
#include <microhttpd.h>

#include "berichten.h"

#define BASE	     "/berichtenservice"
#define PUSH_PATH    BASE "/berichten/rest-push/v1/berichten"
#define STATUS_PATH  BASE "/berichtstatus/rest-pull/v3/berichtstatussen"
#define PULL_PATH    BASE "/berichten/rest-pull/v1/berichten"
#define ALT_PATH     BASE "/downloads" /* --retour-url's other place of a payload */
#define MAX_PUSH     (600ULL << 20)    /* a whole push request */
#define MAX_META     (1 << 20)	       /* the berichtMetadata part */
#define HEAD_MAX     (64 << 10)	       /* kept of a payload, for the markers */
#define MAX_LIMIT    250
#define MAX_RETOURS  10000
#define RETOUR_SEED  0x7665636f7a6f6d6bULL
#define CHUNK	     (64 << 10)
#define MAX_ADRESSEN 100

/* ---- options ---- */

struct retour_spec {
	unsigned long n;  /* --retour N:SIZE: n messages ... */
	uint64_t size;	  /* ... of size bytes; */
	const char *path; /* --retour-file PATH: one message (n == 0) */
};

static struct {
	long push_delay_ms;
	long push_stall_ms; /* the body of each push stops this long after its start */
	const char *push_fault;
	long push_fault_every;
	const char *retour_fault;
	long retour_fault_every;
	bool delete_fault;   /* every DELETE answers 503: receipt never confirmed */
	bool delete_unknown; /* every DELETE answers 404: not found or not authorised */
	long retour_corrupt;
	bool wrap_list;
	bool status_history;	    /* every status so far, not the last only */
	bool status_clock;	    /* stamps from clock_base, not the real clock */
	struct timespec clock_base; /* --status-clock UTC:STEP */
	long clock_step;
	const char *contract_log;   /* --contract-log F: every exchange, one JSON line */
	const char *retour_urls[8]; /* --retour-url TEMPLATE..., message k takes [k % n] */
	int n_retour_urls;
	struct retour_spec specs[64];
	int n_specs;
} opt = {.push_fault_every = 1, .retour_fault_every = 1};

/* ---- state ---- */

/* A pushed message. */
struct msg {
	char traceer[37], conversatie[37];
	json_t *berichtstroom;
	char sha[65];
	uint64_t size;
	char *filename;
	bool afkeuren;
	unsigned queries;
	/* every status it had, oldest first; [0] is Ontvangen, on arrival */
	struct {
		const char *status;
		struct timespec at;
	} hist[4];
	unsigned n_hist;
};

/* A return message waiting to be pulled. */
struct retour {
	char traceer[37], conversatie[37];
	time_t ontvangen;
	uint64_t size;
	char sha[65];
	const char *path; /* NULL: generated from index */
	unsigned long index;
	bool corrupt, deleted;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hashed_cond = PTHREAD_COND_INITIALIZER;
static bool hashed; /* every retour has its sha */
static struct msg *msgs;
static size_t n_msgs, cap_msgs;
static long max_per_content;
static struct retour *retours;
static size_t n_retours;
static unsigned long push_calls, retour_calls; /* for the --*-fault-every counts */
static pthread_t hasher;
static bool hasher_started;
static atomic_bool quitting; /* stops the hashing at exit */

static atomic_long n_pushes, n_accepted, n_repeats, n_status, n_lists, n_downloads, n_deleted;

/* ---- small helpers ---- */

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The offset of Dutch local time at t: +02:00 from the last Sunday of
 * March 01:00 UTC to the last Sunday of October 01:00 UTC, else +01:00. */
static long amsterdam_offset(time_t t)
{
	struct tm tm, b = {0};
	time_t start, end;
	int y;

	gmtime_r(&t, &tm);
	y = tm.tm_year + 1900;
	b.tm_year = tm.tm_year;
	b.tm_hour = 1;
	b.tm_mon = 2;
	b.tm_mday = 31 - (5 * y / 4 + 4) % 7;
	start = timegm(&b);
	b.tm_mon = 9;
	b.tm_mday = 31 - (5 * y / 4 + 1) % 7;
	end = timegm(&b);
	return t >= start && t < end ? 7200 : 3600;
}

/* A time as VECOZO's services write it (the published examples): Dutch
 * local time with its offset, the fraction in 100 ns units without
 * trailing zeros (none when zero), e.g. 2025-11-24T16:58:44.0867+01:00. */
static void stamp(struct timespec at, char out[40])
{
	long off = amsterdam_offset(at.tv_sec);
	time_t local = at.tv_sec + off;
	char frac[9] = "";
	long units = at.tv_nsec / 100;
	struct tm tm;

	if (units) {
		int n = snprintf(frac, sizeof(frac), ".%07ld", units);

		while (n > 1 && frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	gmtime_r(&local, &tm);
	strftime(out, 20, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, 21, "%s%s", frac, off == 7200 ? "+02:00" : "+01:00");
}

/* When the status change number k of a message (0: its arrival) happened:
 * now, or with --status-clock base + k * step seconds and a fraction of .5,
 * none and .25 in turn (fractions of varying length, as VECOZO's). */
static struct timespec status_time(unsigned k)
{
	static const long fractions[] = {500000000, 0, 250000000};
	struct timespec t;

	if (!opt.status_clock) {
		clock_gettime(CLOCK_REALTIME, &t);
		return t;
	}
	t.tv_sec = opt.clock_base.tv_sec + (time_t)k * opt.clock_step;
	t.tv_nsec = fractions[k % 3];
	return t;
}

static bool digits(const char *s, size_t n)
{
	size_t k = strspn(s, "0123456789");

	return k == strlen(s) && (n ? k == n : k > 0);
}

static bool uuid_ok(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-'
							    : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* The media type of a Content-Type value is type (case-insensitive); any
 * parameters after ';' are allowed. */
static bool media_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	if (!ct)
		return false;
	ct += strspn(ct, " \t");
	if (strncasecmp(ct, type, n) != 0)
		return false;
	ct += n;
	ct += strspn(ct, " \t");
	return *ct == '\0' || *ct == ';';
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p && *p;) {
		size_t k;

		p += strspn(p, " \t,");
		k = strcspn(p, " \t,");
		if (k == n && strncmp(p, word, n) == 0)
			return true;
		p += k;
	}
	return false;
}

/* A 1 in every chance, as the COV faults: a fixed every-Kth pattern would
 * hit the same request again when retries come in lockstep. */
/* Every Nth call with this counter faults (N = every): deterministic, so a
 * client that retries always gets through ("every 2": each retry works). */
static bool chance(const char *mode, long every, unsigned long *count)
{
	bool hit;

	if (!mode || strcmp(mode, "none") == 0 || every <= 0)
		return false;
	pthread_mutex_lock(&lock);
	hit = ++*count % (unsigned long)every == 0;
	pthread_mutex_unlock(&lock);
	if (hit)
		mock_count_fault();
	return hit;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- return message content: SIZE pseudo-random bytes per index ---- */

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Bytes pos .. pos+n of generated message idx. */
static void generate(unsigned long idx, uint64_t pos, unsigned char *buf, size_t n)
{
	uint64_t key = RETOUR_SEED ^ ((uint64_t)(idx + 1) << 40);

	while (n > 0) {
		uint64_t w = mix(key ^ (pos / 8));
		unsigned off = (unsigned)(pos % 8);
		size_t k = 8 - off < n ? 8 - off : n;

		for (size_t i = 0; i < k; i++)
			buf[i] = (unsigned char)(w >> (8 * (off + i)));
		buf += k;
		pos += k;
		n -= k;
	}
}

static void hash_retour(struct retour *m)
{
	unsigned char *buf = malloc(CHUNK), d[32];
	gnutls_hash_hd_t h;
	int fd = -1;

	if (!buf || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) != 0)
		mock_die("%s", "out of memory hashing return messages");
	if (m->path && (fd = open(m->path, O_RDONLY)) < 0)
		mock_die("cannot open %s", m->path);
	for (uint64_t pos = 0; pos < m->size && !atomic_load(&quitting);) {
		size_t n = m->size - pos < CHUNK ? (size_t)(m->size - pos) : CHUNK;

		if (fd >= 0) {
			ssize_t r = pread(fd, buf, n, (off_t)pos);

			if (r <= 0)
				mock_die("cannot read %s", m->path);
			n = (size_t)r;
		} else {
			generate(m->index, pos, buf, n);
		}
		gnutls_hash(h, buf, n);
		pos += n;
	}
	gnutls_hash_deinit(h, d);
	if (fd >= 0)
		close(fd);
	free(buf);
	pthread_mutex_lock(&lock);
	hex(d, 32, m->sha);
	pthread_mutex_unlock(&lock);
}

/* Hashes the return messages after the server has started, so a big queue
 * does not delay the port file; list requests wait for it. */
static void *hash_all(void *arg)
{
	for (size_t i = 0; i < n_retours; i++)
		hash_retour(&retours[i]);
	pthread_mutex_lock(&lock);
	hashed = !atomic_load(&quitting); /* else some are cut short */
	pthread_cond_broadcast(&hashed_cond);
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* ---- options and start ---- */

static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		mock_die("bad size %s", s);
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10, end++;
		break;
	case 'M':
		v <<= 20, end++;
		break;
	case 'G':
		v <<= 30, end++;
		break;
	}
	if (*end)
		mock_die("bad size %s", s);
	return v;
}

int berichten_option(const char *o, const char *v)
{
	if (strcmp(o, "--wrap-list") == 0) {
		opt.wrap_list = true;
		return 1;
	}
	if (strcmp(o, "--delete-fault") == 0) {
		opt.delete_fault = true;
		return 1;
	}
	if (strcmp(o, "--delete-unknown") == 0) {
		opt.delete_unknown = true;
		return 1;
	}
	if (strcmp(o, "--status-history") == 0) {
		opt.status_history = true;
		return 1;
	}
	if (!v)
		return 0;
	if (strcmp(o, "--push-delay") == 0)
		opt.push_delay_ms = atol(v);
	else if (strcmp(o, "--push-stall") == 0)
		opt.push_stall_ms = atol(v);
	else if (strcmp(o, "--push-fault") == 0)
		opt.push_fault = v;
	else if (strcmp(o, "--push-fault-every") == 0)
		opt.push_fault_every = atol(v);
	else if (strcmp(o, "--retour-fault") == 0)
		opt.retour_fault = v;
	else if (strcmp(o, "--retour-fault-every") == 0)
		opt.retour_fault_every = atol(v);
	else if (strcmp(o, "--retour-corrupt") == 0)
		opt.retour_corrupt = atol(v);
	else if (strcmp(o, "--contract-log") == 0)
		opt.contract_log = v;
	else if (strcmp(o, "--retour-url") == 0) {
		if (opt.n_retour_urls ==
		    (int)(sizeof(opt.retour_urls) / sizeof(opt.retour_urls[0])))
			mock_die("%s", "too many --retour-url options");
		opt.retour_urls[opt.n_retour_urls++] = v;
	} else if (strcmp(o, "--status-clock") == 0) {
		/* UTC-TIME:STEP, the time as YYYY-MM-DDTHH:MM:SSZ */
		struct tm tm = {0};
		const char *end = strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm);

		if (!end || *end != ':' || atol(end + 1) <= 0)
			mock_die("--status-clock %s: YYYY-MM-DDTHH:MM:SSZ:STEP expected", v);
		opt.status_clock = true;
		opt.clock_base.tv_sec = timegm(&tm);
		opt.clock_step = atol(end + 1);
	} else if (strcmp(o, "--retour") == 0 || strcmp(o, "--retour-file") == 0) {
		struct retour_spec *s = &opt.specs[opt.n_specs];
		const char *colon = strchr(v, ':');

		if (opt.n_specs == (int)(sizeof(opt.specs) / sizeof(opt.specs[0])))
			mock_die("%s", "too many --retour and --retour-file options");
		if (o[8] == '-') {
			s->path = v;
		} else {
			char *end;

			if (!colon)
				mock_die("--retour %s: N:SIZE expected", v);
			s->n = strtoul(v, &end, 10);
			if (end != colon || s->n == 0 || s->n > MAX_RETOURS)
				mock_die("--retour %s: N must be 1 to 10000", v);
			s->size = parse_size(colon + 1);
		}
		opt.n_specs++;
	} else
		return 0;
	return 2;
}

void berichten_init(void)
{
	const char *pf = opt.push_fault, *rf = opt.retour_fault;
	size_t total = 0, k = 0;
	time_t now = time(NULL);

	if (pf && strcmp(pf, "503") != 0 && strcmp(pf, "reset") != 0 && strcmp(pf, "none") != 0)
		mock_die("unknown --push-fault %s (503, reset or none)", pf);
	if (rf && strcmp(rf, "503") != 0 && strcmp(rf, "reset") != 0 && strcmp(rf, "delay") != 0 &&
	    strcmp(rf, "none") != 0)
		mock_die("unknown --retour-fault %s (503, reset, delay or none)", rf);
	for (int i = 0; i < opt.n_specs; i++)
		total += opt.specs[i].path ? 1 : opt.specs[i].n;
	if (total > MAX_RETOURS)
		mock_die("%s", "more than 10000 return messages");
	retours = calloc(total + 1, sizeof(*retours));
	if (!retours)
		mock_die("%s", "out of memory");
	for (int i = 0; i < opt.n_specs; i++) {
		const struct retour_spec *s = &opt.specs[i];
		unsigned long n = s->path ? 1 : s->n;

		for (unsigned long j = 0; j < n; j++, k++) {
			struct retour *m = &retours[k];

			if (s->path) {
				struct stat st;

				if (stat(s->path, &st) != 0 || !S_ISREG(st.st_mode))
					mock_die("--retour-file %s: not a readable file", s->path);
				m->path = s->path;
				m->size = (uint64_t)st.st_size;
			} else {
				m->size = s->size;
			}
			m->index = (unsigned long)k;
			snprintf(m->traceer, sizeof(m->traceer), "7e7e0000-0000-4000-8000-%012lx",
				 (unsigned long)k + 1);
			snprintf(m->conversatie, sizeof(m->conversatie),
				 "c0c00000-0000-4000-8000-%012lx", (unsigned long)k + 1);
			/* oldest first, one second apart, the last one a minute ago */
			m->ontvangen = now - 60 - (time_t)(total - k);
			m->corrupt = opt.retour_corrupt == (long)k + 1 && m->size > 0;
		}
	}
	n_retours = total;
	hashed = total == 0;
	if (total > 0) {
		if (pthread_create(&hasher, NULL, hash_all, NULL) != 0)
			mock_die("%s", "cannot start the hashing thread");
		hasher_started = true;
	}
}

void berichten_stop(void)
{
	pthread_mutex_lock(&lock);
	atomic_store(&quitting, true);
	pthread_cond_broadcast(&hashed_cond);
	pthread_mutex_unlock(&lock);
}

void berichten_free(void)
{
	berichten_stop();
	if (hasher_started)
		pthread_join(hasher, NULL);
	for (size_t i = 0; i < n_msgs; i++) {
		json_decref(msgs[i].berichtstroom);
		free(msgs[i].filename);
	}
	free(msgs);
	free(retours);
}

void berichten_stats(FILE *f)
{
	long waiting = 0, maxc;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_retours; i++)
		waiting += !retours[i].deleted;
	maxc = max_per_content;
	pthread_mutex_unlock(&lock);
	fprintf(f,
		", \"pushes\": %ld, \"accepted\": %ld, \"repeats\": %ld, \"max_per_content\": %ld, "
		"\"status_queries\": %ld, \"retour_lists\": %ld, \"retour_downloads\": %ld, "
		"\"retour_deleted\": %ld, \"retour_waiting\": %ld",
		atomic_load(&n_pushes), atomic_load(&n_accepted), atomic_load(&n_repeats), maxc,
		atomic_load(&n_status), atomic_load(&n_lists), atomic_load(&n_downloads),
		atomic_load(&n_deleted), waiting);
}

bool berichten_path(const char *url)
{
	return strncmp(url, BASE, strlen(BASE)) == 0 &&
	       (url[strlen(BASE)] == '/' || url[strlen(BASE)] == '\0');
}

/* ---- per request ---- */

enum route {
	R_NONE,
	R_PUSH,
	R_STATUS,
	R_LIST,
	R_PAYLOAD,
	R_ITEM
};

struct req {
	bool rest; /* always true: vzmock.c's completed() tells our state by it */
	enum route route;
	char *method, *path; /* for the contract log */
	bool answered_early; /* before the body came: the log cannot show it */
	json_t *parts;	     /* every multipart part: name, content_type, filename, size */
	char id[64];	     /* the {traceerId} of R_PAYLOAD and R_ITEM */
	/* an answer decided from the headers, sent once the body has been read */
	int early_status;
	json_t *early;
	const char *early_header, *early_value;
	/* push */
	struct MHD_PostProcessor *pp;
	bool pp_error;
	bool stalled; /* --push-stall done */
	uint64_t total;
	int cur; /* the part the last iterator call was for: -1 none, 0 other, 1 meta, 2 payload */
	uint64_t cur_end;
	bool meta_seen, meta_dup, meta_too_big;
	char *meta, *meta_type;
	size_t meta_len;
	bool payload_seen, payload_dup;
	char *payload_name, *payload_type;
	gnutls_hash_hd_t hash;
	bool hashing;
	uint64_t payload_size;
	unsigned char *head;
	size_t head_len;
};

/* ---- responses ---- */

static json_t *problem(int status, const char *title, const char *detail)
{
	return json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title, "status",
			 status, "detail", detail);
}

/* ---- the contract log (--contract-log F) ---- */

/* The request this thread is answering (MHD runs a thread per connection,
 * and a connection has one request at a time). */
static _Thread_local struct req *current;
static pthread_mutex_t contract_lock = PTHREAD_MUTEX_INITIALIZER;

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			       const char *value)
{
	json_object_set_new(cls, key, value ? json_string(value) : json_null());
	return MHD_YES;
}

/* Options that make the mock answer off the published contract on purpose
 * (the client must cope): the answer check is left out for them. */
static json_t *deviations(const struct req *r)
{
	json_t *d = json_array();

	if (r->route == R_LIST && opt.wrap_list)
		json_array_append_new(d, json_string("--wrap-list"));
	if (r->route == R_LIST && opt.n_retour_urls > 0)
		json_array_append_new(d, json_string("--retour-url"));
	return d;
}

/* Appends one line for the answer given now to the current request:
 * {"method", "path", "query", "request": {"content_type", "body_size",
 * push: "parts", "metadata" (JSON, or its text when it is none)},
 * "status" (0: no answer, the connection dropped), "response":
 * {"content_type", "size", "json"} or null, "deviates"}. body is borrowed. */
static void contract_log(struct MHD_Connection *c, int status, const char *ctype,
			 const json_t *body, uint64_t size)
{
	struct req *r = current;
	json_t *query, *req, *ans, *line;
	char *text;
	FILE *f;

	if (!opt.contract_log || !r || !r->method)
		return;
	query = json_object();
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, query);
	req = json_pack("{s:s?, s:I, s:b}", "content_type",
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
			"body_size", (json_int_t)r->total, "body_read", !r->answered_early);
	if (r->route == R_PUSH && !r->answered_early) {
		json_t *m = r->meta ? json_loadb(r->meta, r->meta_len, 0, NULL) : NULL;

		json_object_set(req, "parts", r->parts ? r->parts : json_array());
		json_object_set_new(req, "metadata",
				    m ? m : json_string(r->meta ? r->meta : "(none)"));
	}
	ans = status ? json_pack("{s:s?, s:I}", "content_type", ctype, "size", (json_int_t)size)
		     : json_null();
	if (status && body)
		json_object_set(ans, "json", (json_t *)body);
	line = json_pack("{s:s, s:s, s:o, s:o, s:i, s:o, s:o}", "method", r->method, "path",
			 r->path, "query", query, "request", req, "status", status, "response", ans,
			 "deviates", deviations(r));
	text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	pthread_mutex_lock(&contract_lock);
	f = text ? fopen(opt.contract_log, "a") : NULL;
	if (f) {
		fprintf(f, "%s\n", text);
		fclose(f);
	}
	pthread_mutex_unlock(&contract_lock);
	free(text);
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *j,
				 const char *header, const char *value)
{
	char *text = json_dumps(j, JSON_COMPACT);
	const char *ctype = status >= 400 ? "application/problem+json" : "application/json";
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (text)
		contract_log(c, status, ctype, j, strlen(text));
	json_decref(j);
	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", ctype);
	if (header)
		MHD_add_response_header(r, header, value);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	mock_write_stats();
	return ret;
}

static enum MHD_Result send_empty(struct MHD_Connection *c, int status)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);

	contract_log(c, status, NULL, NULL, 0);
	MHD_destroy_response(r);
	mock_write_stats();
	return ret;
}

/* errors[field] gets message appended. */
static void add_error(json_t *errors, const char *field, const char *message)
{
	json_t *list = json_object_get(errors, field);

	if (!list) {
		list = json_array();
		json_object_set_new(errors, field, list);
	}
	json_array_append_new(list, json_string(message));
}

static json_t *bad_request(json_t *errors, const char *detail)
{
	json_t *p = problem(400, "Ongeldig verzoek", detail);

	json_object_set_new(p, "errors", errors);
	return p;
}

void berichten_completed(void *state)
{
	struct req *r = state;

	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	if (r->hashing)
		gnutls_hash_deinit(r->hash, NULL);
	json_decref(r->early);
	json_decref(r->parts);
	free(r->method);
	free(r->path);
	free(r->meta);
	free(r->meta_type);
	free(r->payload_name);
	free(r->payload_type);
	free(r->head);
	free(r);
}

static void early(struct req *r, int status, json_t *j, const char *header, const char *value)
{
	r->early_status = status;
	r->early = j;
	r->early_header = header;
	r->early_value = value;
}

/* Which service url is, and the traceerId in it. */
static enum route route_of(const char *url, char *id, size_t idlen)
{
	size_t n = strlen(PULL_PATH);
	const char *rest, *slash;

	if (strcmp(url, PUSH_PATH) == 0)
		return R_PUSH;
	if (strcmp(url, STATUS_PATH) == 0)
		return R_STATUS;
	if (strcmp(url, PULL_PATH) == 0)
		return R_LIST;
	if (strncmp(url, ALT_PATH "/", strlen(ALT_PATH) + 1) == 0) {
		rest = url + strlen(ALT_PATH) + 1;
		if (!rest[0] || strchr(rest, '/') || strlen(rest) >= idlen)
			return R_NONE;
		snprintf(id, idlen, "%s", rest);
		return R_PAYLOAD;
	}
	if (strncmp(url, PULL_PATH "/", n + 1) != 0)
		return R_NONE;
	rest = url + n + 1;
	slash = strchr(rest, '/');
	if ((slash ? (size_t)(slash - rest) : strlen(rest)) >= idlen || rest[0] == '/' ||
	    rest[0] == '\0')
		return R_NONE;
	snprintf(id, idlen, "%.*s", slash ? (int)(slash - rest) : (int)strlen(rest), rest);
	if (!slash)
		return R_ITEM;
	return strcmp(slash, "/payload") == 0 ? R_PAYLOAD : R_NONE;
}

static const char *method_for(enum route r)
{
	switch (r) {
	case R_PUSH:
		return "POST";
	case R_ITEM:
		return "DELETE";
	default:
		return "GET";
	}
}

/* ---- push: the multipart parts ---- */

static enum MHD_Result part(void *cls, enum MHD_ValueKind kind, const char *key,
			    const char *filename, const char *ctype, const char *enc,
			    const char *data, uint64_t off, size_t size)
{
	struct req *r = cls;
	int which = 0;

	if (key && strcmp(key, "berichtMetadata") == 0)
		which = 1;
	else if (key && strcmp(key, "payload") == 0)
		which = 2;

	/* a new part starts at offset 0; an empty part may come as one call of
	 * size 0, which a next call at offset 0 continues */
	if (off == 0 && (r->cur != which || r->cur_end > 0)) {
		if (!r->parts)
			r->parts = json_array();
		json_array_append_new(r->parts, json_pack("{s:s?, s:s?, s:s?, s:I}", "name", key,
							  "content_type", ctype, "filename",
							  filename, "size", (json_int_t)0));
		if (which == 1) {
			r->meta_dup |= r->meta_seen;
			r->meta_seen = true;
			if (!r->meta_dup)
				r->meta_type = ctype ? strdup(ctype) : NULL;
		} else if (which == 2) {
			r->payload_dup |= r->payload_seen;
			if (!r->payload_seen) {
				r->payload_seen = true;
				r->payload_name = filename ? strdup(filename) : NULL;
				r->payload_type = ctype ? strdup(ctype) : NULL;
				r->hashing = gnutls_hash_init(&r->hash, GNUTLS_DIG_SHA256) == 0;
				if (!r->hashing)
					return MHD_NO;
			}
		}
	}
	r->cur = which;
	r->cur_end = off + size;
	if (size == 0)
		return MHD_YES;
	{
		json_t *last = json_array_get(r->parts, json_array_size(r->parts) - 1);

		json_object_set_new(last, "size",
				    json_integer(json_integer_value(json_object_get(last, "size")) +
						 (json_int_t)size));
	}
	if (which == 1 && !r->meta_dup && !r->meta_too_big) {
		char *g;

		if (r->meta_len + size > MAX_META) {
			r->meta_too_big = true;
			return MHD_YES;
		}
		g = realloc(r->meta, r->meta_len + size + 1);
		if (!g)
			return MHD_NO;
		r->meta = g;
		memcpy(r->meta + r->meta_len, data, size);
		r->meta_len += size;
		r->meta[r->meta_len] = '\0';
	} else if (which == 2 && !r->payload_dup) {
		gnutls_hash(r->hash, data, size);
		r->payload_size += size;
		if (r->head_len < HEAD_MAX) {
			size_t k = HEAD_MAX - r->head_len < size ? HEAD_MAX - r->head_len : size;

			if (!r->head && !(r->head = malloc(HEAD_MAX)))
				return MHD_NO;
			memcpy(r->head + r->head_len, data, k);
			r->head_len += k;
		}
	}
	return MHD_YES;
}

/* ---- push: the metadata ---- */

static bool role_ok(const char *rol)
{
	static const char *const roles[] = {"Praktijk", "Zorgverlener", "Instelling",
					    "Zorgverzekeraar"};

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(rol, roles[i]) == 0)
			return true;
	return false;
}

/* A JSON path: base + suffix. */
static const char *at(char *buf, size_t len, const char *base, const char *suffix)
{
	snprintf(buf, len, "%s%s", base, suffix);
	return buf;
}

/* Object member name of parent at path, NULL (with an error) when it is not
 * an object; missing adds "verplicht". */
static json_t *object(json_t *parent, const char *name, const char *path, json_t *errors)
{
	json_t *o = json_object_get(parent, name);

	if (!o || json_is_null(o))
		add_error(errors, path, "Verplicht veld ontbreekt.");
	else if (!json_is_object(o))
		add_error(errors, path, "Moet een object zijn.");
	else
		return o;
	return NULL;
}

/* A required non-empty string; NULL with an error otherwise. */
static const char *text(json_t *parent, const char *name, const char *path, json_t *errors)
{
	json_t *v = json_object_get(parent, name);

	if (!v || json_is_null(v))
		add_error(errors, path, "Verplicht veld ontbreekt.");
	else if (!json_is_string(v))
		add_error(errors, path, "Moet een tekst zijn.");
	else if (json_string_length(v) == 0)
		add_error(errors, path, "Mag niet leeg zijn.");
	else
		return json_string_value(v);
	return NULL;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* A string of min..max characters, when present (required: also when
 * absent). */
static void check_length(json_t *parent, const char *name, const char *path, size_t min, size_t max,
			 bool required, json_t *errors)
{
	json_t *v = json_object_get(parent, name);
	char msg[80];

	if (!v || json_is_null(v)) {
		if (required)
			add_error(errors, path, "Verplicht veld ontbreekt.");
		return;
	}
	if (!json_is_string(v)) {
		add_error(errors, path, "Moet een tekst zijn.");
		return;
	}
	if (utf8_chars(json_string_value(v)) < min || utf8_chars(json_string_value(v)) > max) {
		snprintf(msg, sizeof(msg), "Moet %zu tot %zu tekens lang zijn.", min, max);
		add_error(errors, path, msg);
	}
}

/* The contract's additionalProperties: false. */
static void only(json_t *o, const char *path, const char *const *names, json_t *errors)
{
	const char *key;
	json_t *v;
	char at_key[200];

	json_object_foreach(o, key, v)
	{
		size_t i;

		for (i = 0; names[i] && strcmp(names[i], key) != 0; i++)
			;
		if (names[i])
			continue;
		snprintf(at_key, sizeof(at_key), "%s%s%.100s", path, path[0] ? "." : "", key);
		add_error(errors, at_key, "Onbekend veld.");
	}
}

static void check_party(json_t *p, const char *path, json_t *errors)
{
	static const char *const relatie[] = {"rol", "code", NULL};
	char a[160], b[160];
	const char *rol, *code;

	if (!json_is_object(p)) {
		add_error(errors, path, p ? "Moet een object zijn." : "Verplicht veld ontbreekt.");
		return;
	}
	only(p, path, relatie, errors);
	rol = text(p, "rol", at(a, sizeof(a), path, ".rol"), errors);
	if (rol && !role_ok(rol))
		add_error(errors, a,
			  "Onbekende rol; toegestaan: Praktijk, Zorgverlener, Instelling, "
			  "Zorgverzekeraar.");
	code = text(p, "code", at(b, sizeof(b), path, ".code"), errors);
	if (!code)
		return;
	if (rol && strcmp(rol, "Zorgverzekeraar") == 0) {
		if (!digits(code, 4))
			add_error(errors, b, "Een UZOVI-code bestaat uit 4 cijfers.");
	} else if (rol && role_ok(rol)) {
		if (!digits(code, 8))
			add_error(errors, b, "Een AGB-code bestaat uit 8 cijfers.");
	} else if (!digits(code, 4) && !digits(code, 8)) {
		add_error(errors, b, "Geen AGB-code (8 cijfers) of UZOVI-code (4 cijfers).");
	}
}

/* berichtversie, berichtsubversie: 0 to 999 (a JSON integer, or a string
 * of digits as ASP.NET's web defaults read one). */
static void check_version(json_t *parent, const char *name, const char *path, json_t *errors)
{
	json_t *v = json_object_get(parent, name);
	const char *s = json_string_value(v);

	if (!v || json_is_null(v))
		add_error(errors, path, "Verplicht veld ontbreekt.");
	else if (json_is_integer(v) ? json_integer_value(v) < 0
				    : !s || !digits(s, 0) || strlen(s) > 9)
		add_error(errors, path, "Moet een geheel getal zijn.");
	else if ((json_is_integer(v) ? json_integer_value(v) : atol(s)) > 999)
		add_error(errors, path, "Moet tussen 0 en 999 liggen.");
}

/* verwerkingscontext: 1 to 100 of {sleutel, waarde: [1 to 100 texts]}. */
static void check_context(json_t *c, json_t *errors)
{
	static const char *const pair[] = {"sleutel", "waarde", NULL};
	char path[64], p2[96];
	json_t *e, *w;
	size_t i, k;

	if (!json_is_array(c) || json_array_size(c) < 1 || json_array_size(c) > 100) {
		add_error(errors, "verwerkingscontext", "Moet een lijst van 1 tot 100 paren zijn.");
		return;
	}
	json_array_foreach(c, i, e)
	{
		snprintf(path, sizeof(path), "verwerkingscontext[%zu]", i);
		if (!json_is_object(e)) {
			add_error(errors, path, "Moet een object zijn.");
			continue;
		}
		only(e, path, pair, errors);
		snprintf(p2, sizeof(p2), "%s.sleutel", path);
		check_length(e, "sleutel", p2, 1, 100, true, errors);
		w = json_object_get(e, "waarde");
		snprintf(p2, sizeof(p2), "%s.waarde", path);
		if (!json_is_array(w) || json_array_size(w) < 1 || json_array_size(w) > 100) {
			add_error(errors, p2, "Moet een lijst van 1 tot 100 teksten zijn.");
			continue;
		}
		for (k = 0; k < json_array_size(w); k++) {
			const char *t = json_string_value(json_array_get(w, k));

			if (!t || utf8_chars(t) < 1 || utf8_chars(t) > 250)
				add_error(errors, p2,
					  "Moet teksten van 1 tot 250 tekens bevatten.");
		}
	}
}

/* Checks the metadata against the published schema (every object
 * additionalProperties: false) and what VECOZO knows of roles and codes;
 * errors gets one entry per problem. */
static void check_meta(json_t *m, json_t *errors)
{
	static const char *const top[] = {"routeringgegevens", "referentiegegevens",
					  "verwerkingscontext", NULL};
	static const char *const routing[] = {"afzender", "geadresseerden", "berichtstroom", NULL};
	static const char *const stream[] = {"berichttype",	 "berichtsubtype", "berichtversie",
					     "berichtsubversie", "actie",	   NULL};
	static const char *const refs[] = {"conversatieId", "traceerId", "alsAntwoordOp",
					   "referentieId", NULL};
	static const char *const uuids[] = {"conversatieId", "traceerId", "alsAntwoordOp"};
	json_t *rg, *bs, *ref, *g, *v;
	const char *s;
	char path[64];

	if (!json_is_object(m)) {
		add_error(errors, "berichtMetadata", "Moet een JSON-object zijn.");
		return;
	}
	only(m, "", top, errors);
	v = json_object_get(m, "verwerkingscontext");
	if (v && !json_is_null(v))
		check_context(v, errors);
	rg = object(m, "routeringgegevens", "routeringgegevens", errors);
	if (rg) {
		only(rg, "routeringgegevens", routing, errors);
		check_party(json_object_get(rg, "afzender"), "routeringgegevens.afzender", errors);
		g = json_object_get(rg, "geadresseerden");
		if (!g || json_is_null(g))
			add_error(errors, "routeringgegevens.geadresseerden",
				  "Verplicht veld ontbreekt.");
		else if (!json_is_array(g))
			add_error(errors, "routeringgegevens.geadresseerden",
				  "Moet een lijst zijn.");
		else if (json_array_size(g) < 1 || json_array_size(g) > MAX_ADRESSEN)
			add_error(errors, "routeringgegevens.geadresseerden",
				  "Moet 1 tot 100 geadresseerden bevatten.");
		else
			for (size_t i = 0; i < json_array_size(g); i++) {
				snprintf(path, sizeof(path),
					 "routeringgegevens.geadresseerden[%zu]", i);
				check_party(json_array_get(g, i), path, errors);
			}
		bs = object(rg, "berichtstroom", "routeringgegevens.berichtstroom", errors);
		if (bs) {
			only(bs, "routeringgegevens.berichtstroom", stream, errors);
			check_length(bs, "berichttype",
				     "routeringgegevens.berichtstroom.berichttype", 1, 60, true,
				     errors);
			check_length(bs, "berichtsubtype",
				     "routeringgegevens.berichtstroom.berichtsubtype", 1, 60, false,
				     errors);
			check_version(bs, "berichtversie",
				      "routeringgegevens.berichtstroom.berichtversie", errors);
			check_version(bs, "berichtsubversie",
				      "routeringgegevens.berichtstroom.berichtsubversie", errors);
			check_length(bs, "actie", "routeringgegevens.berichtstroom.actie", 1, 60,
				     true, errors);
		}
	}
	ref = object(m, "referentiegegevens", "referentiegegevens", errors);
	if (ref) {
		only(ref, "referentiegegevens", refs, errors);
		for (size_t i = 0; i < sizeof(uuids) / sizeof(uuids[0]); i++) {
			snprintf(path, sizeof(path), "referentiegegevens.%s", uuids[i]);
			v = json_object_get(ref, uuids[i]);
			if (i == 2 && (!v || json_is_null(v)))
				continue; /* alsAntwoordOp is optional */
			s = text(ref, uuids[i], path, errors);
			if (s && !uuid_ok(s))
				add_error(errors, path, "Geen geldige UUID.");
		}
		check_length(ref, "referentieId", "referentiegegevens.referentieId", 1, 150, false,
			     errors);
	}
}

static const char *jget(json_t *o, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(json_object_get(o, a), b);

	return json_string_value(c ? json_object_get(v, c) : v);
}

/* Records a push; true when its traceerId is new. */
static bool record(json_t *meta, const char *sha, struct req *r)
{
	const char *traceer = jget(meta, "referentiegegevens", "traceerId", NULL);
	struct msg *m;
	long same = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_msgs; i++)
		if (strcasecmp(msgs[i].traceer, traceer) == 0) {
			pthread_mutex_unlock(&lock);
			return false;
		}
	if (n_msgs == cap_msgs) {
		size_t cap = cap_msgs ? cap_msgs * 2 : 64;
		struct msg *g = realloc(msgs, cap * sizeof(*msgs));

		if (!g) {
			pthread_mutex_unlock(&lock);
			mock_die("%s", "out of memory recording a push");
		}
		msgs = g;
		cap_msgs = cap;
	}
	m = &msgs[n_msgs++];
	memset(m, 0, sizeof(*m));
	snprintf(m->traceer, sizeof(m->traceer), "%s", traceer);
	snprintf(m->conversatie, sizeof(m->conversatie), "%s",
		 jget(meta, "referentiegegevens", "conversatieId", NULL));
	m->berichtstroom = json_deep_copy(
		json_object_get(json_object_get(meta, "routeringgegevens"), "berichtstroom"));
	snprintf(m->sha, sizeof(m->sha), "%s", sha);
	m->size = r->payload_size;
	m->filename = strdup(r->payload_name);
	m->afkeuren = r->head && memmem(r->head, r->head_len, "AFKEUREN", 8);
	m->hist[0].status = "Ontvangen";
	m->hist[0].at = status_time(0);
	m->n_hist = 1;
	/* the status service gives the versions as integers, whatever came */
	for (size_t k = 0; k < 2; k++) {
		const char *name = k ? "berichtsubversie" : "berichtversie";
		const char *v = json_string_value(json_object_get(m->berichtstroom, name));

		if (v)
			json_object_set_new(m->berichtstroom, name, json_integer(atol(v)));
	}
	for (size_t i = 0; i < n_msgs; i++)
		same += strcmp(msgs[i].sha, sha) == 0;
	if (same > max_per_content)
		max_per_content = same;
	pthread_mutex_unlock(&lock);
	return true;
}

static enum MHD_Result push_done(struct MHD_Connection *c, struct req *r)
{
	json_t *errors = json_object(), *meta = NULL, *p;
	json_error_t jerr;
	unsigned char d[32];
	char sha[65] = "", msg[300];
	const char *code;
	size_t n;

	if (r->pp && MHD_destroy_post_processor(r->pp) != MHD_YES)
		r->pp_error = true;
	r->pp = NULL;
	if (r->hashing) {
		gnutls_hash_deinit(r->hash, d);
		r->hashing = false;
		hex(d, 32, sha);
	}
	if (chance(opt.push_fault, opt.push_fault_every, &push_calls)) {
		json_decref(errors);
		fprintf(stderr, "vzmock: push fault %s\n", opt.push_fault);
		if (strcmp(opt.push_fault, "reset") == 0) {
			contract_log(c, 0, NULL, NULL, 0);
			mock_write_stats();
			return MHD_NO; /* drops the connection without an answer */
		}
		return send_json(c, 503,
				 problem(503, "Dienst niet beschikbaar",
					 "De dienst is tijdelijk niet beschikbaar (vzmock)."),
				 "Retry-After", "1");
	}
	if (r->pp_error)
		add_error(errors, "multipart", "Geen geldige multipart/form-data.");
	if (!r->meta_seen)
		add_error(errors, "berichtMetadata", "Het deel berichtMetadata ontbreekt.");
	else if (r->meta_dup)
		add_error(errors, "berichtMetadata",
			  "Het deel berichtMetadata komt meer dan eens voor.");
	else if (r->meta_type && !media_is(r->meta_type, "application/json"))
		add_error(errors, "berichtMetadata", "Content-Type moet application/json zijn.");
	else if (r->meta_too_big)
		add_error(errors, "berichtMetadata", "Groter dan 1 MiB.");
	else if (!(meta = json_loadb(r->meta ? r->meta : "", r->meta_len, 0, &jerr))) {
		snprintf(msg, sizeof(msg), "Geen geldige JSON: %s (regel %d, kolom %d).", jerr.text,
			 jerr.line, jerr.column);
		add_error(errors, "berichtMetadata", msg);
	} else {
		check_meta(meta, errors);
	}
	if (!r->payload_seen) {
		add_error(errors, "payload", "Het deel payload ontbreekt.");
	} else if (r->payload_dup) {
		add_error(errors, "payload", "Het deel payload komt meer dan eens voor.");
	} else {
		n = r->payload_name ? strlen(r->payload_name) : 0;
		if (n == 0)
			add_error(errors, "payload", "Het deel payload heeft geen bestandsnaam.");
		else if (n < 5 || strcmp(r->payload_name + n - 4, ".txt") != 0)
			add_error(errors, "payload", "De bestandsnaam moet eindigen op .txt.");
		if (!media_is(r->payload_type, "application/octet-stream"))
			add_error(errors, "payload",
				  "Content-Type moet application/octet-stream zijn.");
	}
	/* A test marker: the service finds the content malformed. */
	if (r->head && memmem(r->head, r->head_len, "ONGELDIG", 8)) {
		add_error(errors, "payload", "Regel 2: onbekend recordtype.");
		add_error(errors, "payload", "Regel 9: het sluitrecord ontbreekt.");
	}
	if (json_object_size(errors) > 0) {
		char *e = json_dumps(errors, JSON_COMPACT);

		fprintf(stderr, "vzmock: push refused (400): %s\n", e ? e : "");
		free(e);
		json_decref(meta);
		return send_json(c, 400,
				 bad_request(errors, "Het verzoek voldoet niet aan het contract."),
				 NULL, NULL);
	}
	json_decref(errors);
	p = NULL;
	if (strcmp(jget(meta, "routeringgegevens", "afzender", "code"), "00000000") == 0) {
		code = "BRS01";
		p = problem(422, "Bericht geweigerd",
			    "De AGB-code van de afzender is met deze rol niet bekend bij VECOZO.");
	} else if (r->head && memmem(r->head, r->head_len, "WEIGEREN", 8)) {
		code = "BRS02";
		p = problem(422, "Bericht geweigerd",
			    "Het bestand is geweigerd: het bevat WEIGEREN (vzmock).");
	}
	if (p) {
		json_object_set_new(p, "code", json_string(code));
		fprintf(stderr, "vzmock: push refused (422 %s)\n", code);
		json_decref(meta);
		return send_json(c, 422, p, NULL, NULL);
	}
	if (record(meta, sha, r)) {
		atomic_fetch_add(&n_accepted, 1);
		fprintf(stderr, "vzmock: push %s accepted: %s, %llu bytes, sha256 %s\n",
			jget(meta, "referentiegegevens", "traceerId", NULL), r->payload_name,
			(unsigned long long)r->payload_size, sha);
	} else {
		atomic_fetch_add(&n_repeats, 1);
		fprintf(stderr, "vzmock: push %s repeated\n",
			jget(meta, "referentiegegevens", "traceerId", NULL));
	}
	json_decref(meta);
	mock_write_stats();
	if (opt.push_delay_ms > 0) {
		sleep_ms(opt.push_delay_ms);
		mock_touch();
	}
	return send_empty(c, 204);
}

/* ---- status ---- */

/* Entry k of m's history as the status service gives it; meldingen only
 * when there are some (the schema has it 1 to 100 long). */
static json_t *status_entry(const struct msg *m, unsigned k)
{
	char arrived[40], changed[40];
	json_t *e;

	stamp(m->hist[0].at, arrived);
	stamp(m->hist[k].at, changed);
	e = json_pack("{s:{s:s, s:s}, s:o*, s:s, s:s, s:s}", "referentiegegevens", "conversatieId",
		      m->conversatie, "traceerId", m->traceer, "berichtstroom",
		      json_deep_copy(m->berichtstroom), "berichtstatus", m->hist[k].status,
		      "berichtstatusGewijzigdOp", changed, "berichtOntvangenOp", arrived);
	if (strcmp(m->hist[k].status, "AfgekeurdDoorDienst") == 0)
		json_object_set_new(e, "meldingen",
				    json_pack("[{s:s, s:s, s:s}]", "code", "AF01", "omschrijving",
					      "Bestand afgekeurd", "toelichting",
					      "Regel 3: onbekende prestatiecode"));
	return e;
}

/* Moves m on (each answer that holds it does) and appends its entries. */
static void status_of(struct msg *m, json_t *out)
{
	const char *st;

	m->queries++;
	if (m->afkeuren)
		st = m->queries <= 1 ? "Ontvangen" : "AfgekeurdDoorDienst";
	else
		st = m->queries <= 1   ? "Ontvangen"
		     : m->queries == 2 ? "WordtVerwerkt"
				       : "VerwerkingVoltooid";
	if (strcmp(st, m->hist[m->n_hist - 1].status) != 0 &&
	    m->n_hist < sizeof(m->hist) / sizeof(m->hist[0])) {
		m->hist[m->n_hist].status = st;
		m->hist[m->n_hist].at = status_time(m->n_hist);
		m->n_hist++;
	}
	for (unsigned k = opt.status_history ? 0 : m->n_hist - 1; k < m->n_hist; k++)
		json_array_append_new(out, status_entry(m, k));
}

static enum MHD_Result status_query(struct MHD_Connection *c)
{
	const char *t = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "traceerId");
	const char *cv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "conversatieId");
	const char *key = t ? "traceerId" : "conversatieId", *want = t ? t : cv;
	json_t *out, *errors = json_object();

	if (!t && !cv)
		add_error(errors, "traceerId", "Geef traceerId of conversatieId.");
	else if (t && cv)
		add_error(errors, "conversatieId", "Geef traceerId of conversatieId, niet beide.");
	else if (!uuid_ok(want))
		add_error(errors, key, "Geen geldige UUID.");
	if (json_object_size(errors) > 0)
		return send_json(c, 400, bad_request(errors, "Ongeldige zoekvraag."), NULL, NULL);
	json_decref(errors);
	out = json_array();
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_msgs; i++)
		if (strcasecmp(t ? msgs[i].traceer : msgs[i].conversatie, want) == 0)
			status_of(&msgs[i], out);
	pthread_mutex_unlock(&lock);
	return send_json(c, 200, out, NULL, NULL);
}

/* ---- return messages ---- */

/* The queue entry for traceerId id that is not deleted; call with lock. */
static struct retour *find_retour(const char *id)
{
	for (size_t i = 0; i < n_retours; i++)
		if (!retours[i].deleted && strcasecmp(retours[i].traceer, id) == 0)
			return &retours[i];
	return NULL;
}

/* The payload URL of m: --retour-url's template with %h the Host the
 * client asked for, %p the mock's port, %i the traceerId; by default
 * https://%h{base}/berichten/rest-pull/v1/berichten/%i/payload, absolute as
 * in the published example. */
static void payload_url(struct MHD_Connection *c, const struct retour *m, char *out, size_t size)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	const char *t = opt.n_retour_urls
				? opt.retour_urls[m->index % (unsigned long)opt.n_retour_urls]
				: "https://%h" PULL_PATH "/%i/payload";
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
	const union MHD_DaemonInfo *di =
		ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	char port[8];
	size_t n = 0;

	snprintf(port, sizeof(port), "%u", di ? (unsigned)di->port : 0);
	for (; *t && n + 1 < size; t++) {
		const char *part = NULL;

		if (*t == '%' && t[1]) {
			t++;
			part = *t == 'h'   ? (host ? host : "localhost")
			       : *t == 'p' ? port
			       : *t == 'i' ? m->traceer
					   : "%";
		}
		if (!part) {
			out[n++] = *t;
			continue;
		}
		n += (size_t)snprintf(out + n, size - n, "%s", part);
		if (n >= size)
			n = size - 1;
	}
	out[n] = '\0';
}

static json_t *retour_json(struct MHD_Connection *c, const struct retour *m)
{
	char when[40], url[512];

	stamp((struct timespec){m->ontvangen, 0}, when);
	payload_url(c, m, url, sizeof(url));
	return json_pack("{s:{s:{s:s, s:s}, s:[{s:s, s:s}], s:{s:s, s:i, s:i, s:s}}, "
			 "s:{s:s, s:s}, s:{s:s, s:{s:s, s:I, s:{s:s, s:s}}}}",
			 "routeringgegevens", "afzender", "rol", "Zorgverzekeraar", "code", "3311",
			 "geadresseerden", "rol", "Praktijk", "code", "01234567", "berichtstroom",
			 "berichttype", "Retourinformatie", "berichtversie", 1, "berichtsubversie",
			 0, "actie", "Retourneren", "referentiegegevens", "conversatieId",
			 m->conversatie, "traceerId", m->traceer, "basisgegevens", "ontvangenOp",
			 when, "payload", "url", url, "grootte", (json_int_t)m->size, "checksum",
			 "algoritme", "SHA256", "waarde", m->sha);
}

/* Applies --retour-fault to a list or payload request: "503" or "reset" when
 * that is to be done, NULL otherwise (after sleeping for "delay"). */
static const char *retour_fault(void)
{
	if (!chance(opt.retour_fault, opt.retour_fault_every, &retour_calls))
		return NULL;
	fprintf(stderr, "vzmock: return message fault %s\n", opt.retour_fault);
	if (strcmp(opt.retour_fault, "delay") == 0) {
		long ms = mock_delay_ms() > 0 ? mock_delay_ms() : 1000;

		sleep_ms(ms);
		mock_touch();
		return NULL;
	}
	return opt.retour_fault;
}

static enum MHD_Result retour_unavailable(struct MHD_Connection *c)
{
	return send_json(c, 503,
			 problem(503, "Dienst niet beschikbaar",
				 "De dienst is tijdelijk niet beschikbaar (vzmock)."),
			 "Retry-After", "1");
}

static enum MHD_Result retour_list(struct MHD_Connection *c)
{
	const char *l = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	long limit = MAX_LIMIT;
	const char *f;
	json_t *list;

	if (l) {
		limit = digits(l, 0) && strlen(l) <= 3 ? atol(l) : 0;
		if (limit < 1 || limit > MAX_LIMIT) {
			json_t *errors = json_object();

			add_error(errors, "limit", "Moet een geheel getal van 1 tot 250 zijn.");
			return send_json(c, 400, bad_request(errors, "Ongeldige limit."), NULL,
					 NULL);
		}
	}
	if ((f = retour_fault())) {
		if (strcmp(f, "503") == 0)
			return retour_unavailable(c);
		contract_log(c, 0, NULL, NULL, 0);
		mock_write_stats();
		return MHD_NO; /* reset: no answer */
	}
	list = json_array();
	pthread_mutex_lock(&lock);
	while (!hashed && !atomic_load(&quitting))
		pthread_cond_wait(&hashed_cond, &lock);
	if (!hashed) {
		pthread_mutex_unlock(&lock);
		json_decref(list);
		return MHD_NO; /* stopping */
	}
	for (size_t i = 0; i < n_retours && (long)json_array_size(list) < limit; i++)
		if (!retours[i].deleted)
			json_array_append_new(list, retour_json(c, &retours[i]));
	pthread_mutex_unlock(&lock);
	if (opt.wrap_list)
		list = json_pack("{s:o}", "berichten", list);
	return send_json(c, 200, list, NULL, NULL);
}

struct download {
	unsigned long index;
	int fd; /* -1: generated */
	uint64_t size, limit, corrupt_at;
};

static ssize_t download_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct download *d = cls;
	size_t n;

	if (pos >= d->limit)
		return d->limit < d->size ? MHD_CONTENT_READER_END_WITH_ERROR
					  : MHD_CONTENT_READER_END_OF_STREAM;
	n = d->limit - pos < max ? (size_t)(d->limit - pos) : max;
	if (d->fd >= 0) {
		ssize_t k = pread(d->fd, buf, n, (off_t)pos);

		if (k <= 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		n = (size_t)k;
	} else {
		generate(d->index, pos, (unsigned char *)buf, n);
	}
	if (d->corrupt_at >= pos && d->corrupt_at < pos + n)
		buf[d->corrupt_at - pos] ^= (char)0xff;
	mock_touch();
	return (ssize_t)n;
}

static void download_free(void *cls)
{
	struct download *d = cls;

	if (d->fd >= 0)
		close(d->fd);
	free(d);
}

static enum MHD_Result not_found(struct MHD_Connection *c, const char *what)
{
	char detail[200];

	snprintf(detail, sizeof(detail), "Geen bericht met traceerId %.64s.", what);
	return send_json(c, 404, problem(404, "Niet gevonden", detail), NULL, NULL);
}

static enum MHD_Result retour_payload(struct MHD_Connection *c, const char *id)
{
	struct download *d = calloc(1, sizeof(*d));
	struct MHD_Response *resp;
	struct retour *m;
	const char *f;
	enum MHD_Result ret;

	if (!d)
		return MHD_NO;
	pthread_mutex_lock(&lock);
	m = find_retour(id);
	if (m) {
		d->index = m->index;
		d->size = d->limit = m->size;
		d->corrupt_at = m->corrupt ? m->size / 2 : UINT64_MAX;
		d->fd = m->path ? open(m->path, O_RDONLY) : -1;
	}
	pthread_mutex_unlock(&lock);
	if (!m) {
		free(d);
		return not_found(c, id);
	}
	if (m->path && d->fd < 0) {
		free(d);
		return send_json(c, 500, problem(500, "Interne fout", "Bestand onleesbaar."), NULL,
				 NULL);
	}
	if ((f = retour_fault())) {
		if (strcmp(f, "503") == 0) {
			download_free(d);
			return retour_unavailable(c);
		}
		d->limit = d->size / 2; /* reset: half the body, then the connection drops */
	}
	atomic_fetch_add(&n_downloads, 1);
	resp = MHD_create_response_from_callback(d->size, CHUNK, download_reader, d, download_free);
	if (!resp) {
		download_free(d);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
	contract_log(c, 200, "application/octet-stream", NULL, d->size);
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	mock_write_stats();
	return ret;
}

static enum MHD_Result retour_delete(struct MHD_Connection *c, const char *id)
{
	struct retour *m;

	if (opt.delete_fault) {
		fprintf(stderr, "vzmock: delete fault for %s\n", id);
		return retour_unavailable(c);
	}
	if (opt.delete_unknown) {
		fprintf(stderr, "vzmock: delete of %s answered 404\n", id);
		return send_empty(c, 404);
	}
	pthread_mutex_lock(&lock);
	m = find_retour(id);
	if (m)
		m->deleted = true;
	pthread_mutex_unlock(&lock);
	if (!m)
		return not_found(c, id);
	atomic_fetch_add(&n_deleted, 1);
	fprintf(stderr, "vzmock: return message %s deleted\n", id);
	return send_empty(c, 202);
}

/* ---- the handler ---- */

static bool expects_continue(struct MHD_Connection *c)
{
	const char *e = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");

	return e && strcasestr(e, "100-continue");
}

/* The first call, with the headers: decides what it can. */
static void start(struct MHD_Connection *c, struct req *r, const char *url, const char *method)
{
	const char *rights = mock_rights(c);
	const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	char detail[160];

	r->cur = -1;
	r->route = route_of(url, r->id, sizeof(r->id));
	if (r->route == R_PUSH && strcmp(method, "POST") == 0)
		atomic_fetch_add(&n_pushes, 1);
	if (r->route == R_STATUS && strcmp(method, "GET") == 0)
		atomic_fetch_add(&n_status, 1);
	if (r->route == R_LIST && strcmp(method, "GET") == 0)
		atomic_fetch_add(&n_lists, 1);
	/* a push body is read part by part even when the answer is an error
	 * decided here, so --contract-log shows what the client sent */
	if (r->route == R_PUSH && strcmp(method, "POST") == 0 &&
	    media_is(ct, "multipart/form-data"))
		r->pp = MHD_create_post_processor(c, CHUNK, part, r);
	if (!rights) {
		early(r, 401,
		      problem(401, "Niet geauthenticeerd",
			      "Het clientcertificaat is niet geldig of niet bekend bij VECOZO."),
		      NULL, NULL);
		return;
	}
	if (!has_word(rights, "billing")) {
		early(r, 403,
		      problem(403, "Niet geautoriseerd",
			      "Het certificaat heeft geen recht op de Berichtenservice."),
		      NULL, NULL);
		return;
	}
	if (r->route == R_NONE) {
		early(r, 404, problem(404, "Niet gevonden", "Onbekend pad."), NULL, NULL);
		return;
	}
	if (strcmp(method, method_for(r->route)) != 0) {
		snprintf(detail, sizeof(detail), "Alleen %s is toegestaan.", method_for(r->route));
		early(r, 405, problem(405, "Methode niet toegestaan", detail), "Allow",
		      method_for(r->route));
		return;
	}
	if (r->route != R_PUSH)
		return;
	if (len && strtoull(len, NULL, 10) > MAX_PUSH) {
		early(r, 413, problem(413, "Verzoek te groot", "Hoogstens 600 MiB."), NULL, NULL);
		return;
	}
	if (!r->pp)
		early(r, 415,
		      problem(415, "Mediatype niet ondersteund",
			      "Verwacht multipart/form-data met een boundary."),
		      NULL, NULL);
}

enum MHD_Result berichten_handle(struct MHD_Connection *c, const char *url, const char *method,
				 const char *data, size_t *data_size, void **con_cls)
{
	struct req *r = *con_cls;

	mock_touch();
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->rest = true;
		r->method = strdup(method);
		r->path = strdup(url);
		*con_cls = r;
		current = r;
		start(c, r, url, method);
		/* Answer an error before the body when the client waits for 100
		 * Continue or the body is too big; otherwise read (and drop) the
		 * body first, so the client is not cut off while sending it. */
		if (r->early && (expects_continue(c) || r->early_status == 413)) {
			json_t *j = r->early;

			r->early = NULL;
			r->answered_early = true;
			return send_json(c, r->early_status, j, r->early_header, r->early_value);
		}
		return MHD_YES;
	}
	current = r;
	if (*data_size) {
		if (r->route == R_PUSH && opt.push_stall_ms > 0 && !r->stalled) {
			/* a slow upload: the rest of the body waits in the network */
			r->stalled = true;
			fprintf(stderr, "vzmock: push body stalled for %ld ms\n",
				opt.push_stall_ms);
			mock_wait(opt.push_stall_ms);
			mock_touch();
		}
		r->total += *data_size;
		if (r->total > MAX_PUSH) {
			fprintf(stderr, "vzmock: request body over 600 MiB: connection dropped\n");
			return MHD_NO;
		}
		if (r->pp && !r->pp_error && MHD_post_process(r->pp, data, *data_size) != MHD_YES)
			r->pp_error = true;
		*data_size = 0;
		return MHD_YES;
	}
	if (r->early) {
		json_t *j = r->early;

		r->early = NULL;
		return send_json(c, r->early_status, j, r->early_header, r->early_value);
	}
	switch (r->route) {
	case R_PUSH:
		return push_done(c, r);
	case R_STATUS:
		return status_query(c);
	case R_LIST:
		return retour_list(c);
	case R_PAYLOAD:
		return retour_payload(c, r->id);
	case R_ITEM:
		return retour_delete(c, r->id);
	default:
		return MHD_NO;
	}
}
