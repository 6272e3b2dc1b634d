/* loadgen.c - a small HTTP load generator for scripts/bench-gateway: K
 * clients at once (one libcurl multi handle, one easy handle per client),
 * each sending the same request again as soon as its answer is in, until N
 * requests are answered. Every answer is checked (status, and optionally a
 * string in the body), so a fast run of errors does not count as speed.
 *
 * loadgen --url URL [--clients K] [--requests N] [--warmup N] [--data FILE]
 *         [--header 'Name: value' ...] [--cert PEM --key PEM] [--cacert PEM]
 *         [--fresh] [--unix-socket PATH] [--expect STATUS] [--expect-body TEXT]
 *
 * --fresh makes every request open a new connection with a full TLS
 * handshake (no connection reuse, no session resumption): a program that
 * starts once per request. Without it each client keeps its connection.
 * Prints key=value lines: requests, failed, seconds, rps, p50_ms, p90_ms,
 * p99_ms, max_ms, and first_error when one failed. Exit 0 when none
 * failed, 1 when some did, 2 on usage errors. Test and bench use only. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define MAX_CLIENTS 1024
#define BODY_KEEP   65536 /* bytes of each answer kept for --expect-body */

struct client {
	CURL *h;
	long long start_ns;
	char *body;
	size_t len;
};

struct opts {
	const char *url, *data_file, *cert, *key, *cacert, *unix_socket, *expect_body;
	long clients, requests, warmup, expect;
	bool fresh;
	struct curl_slist *headers;
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	struct client *c = userdata;
	size_t len = size * n;
	size_t take = c->len + len > BODY_KEEP ? BODY_KEEP - c->len : len;

	memcpy(c->body + c->len, p, take);
	c->len += take;
	return len;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)size + 1);
		if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)size;
	}
	fclose(f);
	return buf;
}

static int usage(const char *why)
{
	fprintf(stderr,
		"loadgen: %s\nUsage: loadgen --url URL [--clients K] [--requests N] [--warmup N] "
		"[--data FILE] [--header H ...] [--cert PEM --key PEM] [--cacert PEM] [--fresh] "
		"[--unix-socket PATH] [--expect STATUS] [--expect-body TEXT]\n",
		why);
	return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"clients", required_argument, NULL, 'c'},
		{"requests", required_argument, NULL, 'n'},
		{"warmup", required_argument, NULL, 'w'},
		{"data", required_argument, NULL, 'd'},
		{"header", required_argument, NULL, 'H'},
		{"cert", required_argument, NULL, 'C'},
		{"key", required_argument, NULL, 'K'},
		{"cacert", required_argument, NULL, 'A'},
		{"fresh", no_argument, NULL, 'f'},
		{"unix-socket", required_argument, NULL, 'U'},
		{"expect", required_argument, NULL, 'e'},
		{"expect-body", required_argument, NULL, 'b'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		struct curl_slist *l;

		switch (c) {
		case 'u':
			o->url = optarg;
			break;
		case 'c':
			o->clients = strtol(optarg, NULL, 10);
			break;
		case 'n':
			o->requests = strtol(optarg, NULL, 10);
			break;
		case 'w':
			o->warmup = strtol(optarg, NULL, 10);
			break;
		case 'd':
			o->data_file = optarg;
			break;
		case 'H':
			l = curl_slist_append(o->headers, optarg);
			if (!l)
				return usage("out of memory");
			o->headers = l;
			break;
		case 'C':
			o->cert = optarg;
			break;
		case 'K':
			o->key = optarg;
			break;
		case 'A':
			o->cacert = optarg;
			break;
		case 'f':
			o->fresh = true;
			break;
		case 'U':
			o->unix_socket = optarg;
			break;
		case 'e':
			o->expect = strtol(optarg, NULL, 10);
			break;
		case 'b':
			o->expect_body = optarg;
			break;
		default:
			return usage("unknown option");
		}
	}
	if (!o->url || optind != argc)
		return usage("--url is needed, and nothing else");
	if (o->clients < 1 || o->clients > MAX_CLIENTS || o->requests < 1 || o->warmup < 0)
		return usage("--clients 1..1024, --requests >= 1, --warmup >= 0");
	return -1;
}

/* One easy handle set up for the request; the same handle is reused. */
static CURL *make_handle(const struct opts *o, struct client *c, const char *data, size_t len)
{
	CURL *h = curl_easy_init();
	CURLcode r = CURLE_OK;

	if (!h)
		return NULL;
	r |= curl_easy_setopt(h, CURLOPT_URL, o->url);
	r |= curl_easy_setopt(h, CURLOPT_PRIVATE, c);
	r |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	r |= curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	r |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	r |= curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	r |= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (o->headers)
		r |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, o->headers);
	if (data) {
		r |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
		r |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (o->cert)
		r |= curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert);
	if (o->key)
		r |= curl_easy_setopt(h, CURLOPT_SSLKEY, o->key);
	if (o->cacert) {
		r |= curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
		r |= curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	if (o->unix_socket)
		r |= curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
	if (o->fresh) {
		r |= curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		r |= curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
		r |= curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	}
	if (r != CURLE_OK) {
		curl_easy_cleanup(h);
		return NULL;
	}
	return h;
}

/* Whether the finished transfer got the answer wanted; why not in err. */
static bool answer_ok(const struct opts *o, struct client *c, CURLcode r, char *err, size_t size)
{
	long status = 0;

	if (r != CURLE_OK) {
		snprintf(err, size, "%s", curl_easy_strerror(r));
		return false;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	c->body[c->len < BODY_KEEP ? c->len : BODY_KEEP - 1] = '\0';
	if (status != o->expect) {
		snprintf(err, size, "HTTP %ld: %.100s", status, c->body);
		return false;
	}
	if (o->expect_body && !strstr(c->body, o->expect_body)) {
		snprintf(err, size, "the answer lacks '%s'", o->expect_body);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct opts o = {.clients = 32, .requests = 1000, .expect = 200};
	struct client *cl = NULL;
	double *lat = NULL;
	char *data = NULL, first_error[256] = "";
	size_t data_len = 0;
	long started = 0, done = 0, failed = 0, total, measured = 0;
	long long t0 = 0, t1;
	CURLM *m = NULL;
	int rc = parse(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (o.data_file && !(data = slurp(o.data_file, &data_len))) {
		fprintf(stderr, "loadgen: cannot read %s\n", o.data_file);
		return 2;
	}
	total = o.warmup + o.requests;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	cl = calloc((size_t)o.clients, sizeof(*cl));
	lat = calloc((size_t)o.requests, sizeof(*lat));
	if (!m || !cl || !lat) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 2;
	}
	/* Each client keeps its own connection: as many kept as clients. */
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, o.clients);
	curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
	for (long i = 0; i < o.clients; i++) {
		cl[i].body = malloc(BODY_KEEP);
		cl[i].h = cl[i].body ? make_handle(&o, &cl[i], data, data_len) : NULL;
		if (!cl[i].h) {
			fprintf(stderr, "loadgen: libcurl refused a setting\n");
			return 2;
		}
	}
	for (long i = 0; i < o.clients && started < total; i++, started++) {
		cl[i].start_ns = now_ns();
		curl_multi_add_handle(m, cl[i].h);
	}
	if (o.warmup == 0)
		t0 = now_ns();
	while (done < total) {
		int running, left;
		CURLMsg *msg;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct client *c = NULL;
			char err[256];
			long long end = now_ns();

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			if (!answer_ok(&o, c, msg->data.result, err, sizeof(err))) {
				failed++;
				if (!first_error[0])
					snprintf(first_error, sizeof(first_error), "%s", err);
			}
			curl_multi_remove_handle(m, c->h);
			done++;
			if (done > o.warmup && measured < o.requests)
				lat[measured++] = (double)(end - c->start_ns) / 1e6;
			if (done == o.warmup)
				t0 = now_ns();
			c->len = 0;
			if (started < total) {
				started++;
				c->start_ns = now_ns();
				curl_multi_add_handle(m, c->h);
			}
		}
		if (done < total)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	t1 = now_ns();
	qsort(lat, (size_t)measured, sizeof(*lat), cmp_double);
	printf("requests=%ld\nfailed=%ld\nseconds=%.3f\nrps=%.1f\n", measured, failed,
	       (double)(t1 - t0) / 1e9, (double)measured / ((double)(t1 - t0) / 1e9));
	if (measured)
		printf("p50_ms=%.3f\np90_ms=%.3f\np99_ms=%.3f\nmax_ms=%.3f\n",
		       lat[(measured - 1) / 2], lat[(measured * 90 - 1) / 100],
		       lat[(measured * 99 - 1) / 100], lat[measured - 1]);
	if (first_error[0])
		printf("first_error=%s\n", first_error);
	for (long i = 0; i < o.clients; i++) {
		curl_easy_cleanup(cl[i].h);
		free(cl[i].body);
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(o.headers);
	curl_global_cleanup();
	free(cl);
	free(lat);
	free(data);
	return failed ? 1 : 0;
}
