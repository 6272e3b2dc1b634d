/* test_gateway.c - the gateway's policy (src/gateway/policy.c): what is
 * forwarded and what is refused, before anything goes upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "access.h"
#include "gw.h"
#include "policy.h"

static const char *check(const char *method, const char *target, const char **path,
			 vz_gw_service *svc)
{
	return vz_gw_check_target(method, target, "api.vecozo.nl", path, svc);
}

static void allowed_paths(void **state)
{
	const char *path = NULL;
	vz_gw_service svc = VZ_GW_SVC_N;

	assert_null(check("POST", "/cov/vz801802/v1/soap11", &path, &svc));
	assert_string_equal(path, "/cov/vz801802/v1/soap11");
	assert_int_equal(svc, VZ_GW_SVC_COV);
	assert_null(check("GET",
			  "/berichtenservice/berichtstatus/rest-pull/v3/"
			  "berichtstatussen?traceerId=a%2Fb",
			  &path, &svc));
	assert_int_equal(svc, VZ_GW_SVC_BERICHTEN);
	assert_non_null(strstr(path, "?traceerId=a%2Fb")); /* the query passes as sent */
	assert_null(check("POST", "https://api.vecozo.nl/cov/x", &path, &svc));
	assert_string_equal(path, "/cov/x");
	assert_null(check("GET", "http://API.vecozo.nl:443/berichtenservice/x", &path, &svc));
	assert_null(check("GET", "/_vzp11/health", &path, &svc));
	assert_int_equal(svc, VZ_GW_SVC_OPS);
}

static void refused_targets(void **state)
{
	static const char *const bad[] = {
		"/admin",
		"/cov",
		"/cov/",
		"/covx/y",
		"/cov/../admin",
		"/cov/./x",
		"/cov/x/..",
		"/cov//x",
		"/cov%2fx",
		"/cov/%2F..",
		"/cov/%2e%2e/admin",
		"/cov/%5cx",
		"/cov/x%",
		"/cov/x%zz",
		"/cov\\x",
		"/cov/x#frag",
		"/cov/ x",
		"/cov/\x01",
		"*",
		"http://evil.example/cov/x",
		"https://api.vecozo.nl.evil.example/cov/x",
		"https://user@api.vecozo.nl/cov/x",
		"ftp://api.vecozo.nl/cov/x",
		"https://api.vecozo.nl",
		"http://api.vecozo.nl/_vzp11/metrics",
		"",
	};
	const char *path = NULL;
	vz_gw_service svc = VZ_GW_SVC_N;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = check("GET", bad[i], &path, &svc);

		if (!why)
			fail_msg("'%s' was allowed", bad[i]);
		assert_non_null(strstr(why, "refused"));
		assert_null(strchr(why, '\n'));
	}
	assert_non_null(check("CONNECT", "api.vecozo.nl:443", &path, &svc));
	assert_non_null(check("TRACE", "/cov/x", &path, &svc));
	assert_non_null(check(NULL, "/cov/x", &path, &svc));
}

static void hosts(void **state)
{
	const char loop[][256] = {"127.0.0.1", "localhost"};
	const char tls[][256] = {"192.0.2.10", "gw.praktijk.example", ""};

	(void)state;
	assert_null(vz_gw_check_host(NULL, "api.vecozo.nl", loop, 2));
	assert_null(vz_gw_check_host("localhost", "api.vecozo.nl", loop, 2));
	assert_null(vz_gw_check_host("127.0.0.1:8801", "api.vecozo.nl", loop, 2));
	assert_null(vz_gw_check_host("API.vecozo.nl", "api.vecozo.nl", loop, 2));
	/* a name of another listen address, or any other loopback name: no */
	assert_non_null(vz_gw_check_host("[::1]:8801", "api.vecozo.nl", loop, 2));
	assert_non_null(vz_gw_check_host("127.0.0.2", "api.vecozo.nl", loop, 2));
	assert_non_null(vz_gw_check_host("192.0.2.10", "api.vecozo.nl", loop, 2));
	/* DNS rebinding: a page's own name that resolves to the gateway */
	assert_non_null(vz_gw_check_host("evil.example:8801", "api.vecozo.nl", loop, 2));
	assert_null(vz_gw_check_host("192.0.2.10:8801", "api.vecozo.nl", tls, 3));
	assert_null(vz_gw_check_host("GW.praktijk.example", "api.vecozo.nl", tls, 3));
	assert_non_null(vz_gw_check_host("localhost", "api.vecozo.nl", tls, 3));
	assert_non_null(vz_gw_check_host("", "api.vecozo.nl", tls, 3));
	assert_non_null(vz_gw_check_host("192.0.2.11", "api.vecozo.nl", tls, 3));
	assert_non_null(vz_gw_check_host("[::1", "api.vecozo.nl", loop, 2));
	assert_non_null(vz_gw_check_host("a:b:c", "api.vecozo.nl", loop, 2));
}

/* A request's life: only the changes of gw.h's table happen. */
static void states(void **state)
{
	static vz_gw_cfg cfg;
	static vz_gw gw;
	static vz_gw_xfer x;

	(void)state;
	gw.cfg = &cfg;
	x.gw = &gw;
	x.state = VZ_GW_RECEIVED;
	assert_false(vz_gw_xfer_to(&x, VZ_GW_UPSTREAM)); /* not before it was checked */
	assert_int_equal(x.state, VZ_GW_RECEIVED);
	assert_true(vz_gw_xfer_to(&x, VZ_GW_ADMITTED));
	assert_false(vz_gw_xfer_to(&x, VZ_GW_ANSWERING)); /* no answer without a transfer */
	assert_false(vz_gw_xfer_to(&x, VZ_GW_LOCAL));
	assert_true(vz_gw_xfer_to(&x, VZ_GW_UPSTREAM));
	assert_true(vz_gw_xfer_to(&x, VZ_GW_ANSWERING));
	assert_false(vz_gw_xfer_to(&x, VZ_GW_REFUSED)); /* the upstream answers it now */
	assert_true(vz_gw_xfer_to(&x, VZ_GW_DONE));
	for (vz_gw_state s = VZ_GW_RECEIVED; s <= VZ_GW_ABORTED; s++)
		assert_false(vz_gw_xfer_to(&x, s)); /* done is done */
	x.state = VZ_GW_RECEIVED;
	assert_true(vz_gw_xfer_to(&x, VZ_GW_REFUSED));
	assert_false(vz_gw_xfer_to(&x, VZ_GW_UPSTREAM)); /* a refused request never goes upstream */
	assert_true(vz_gw_xfer_to(&x, VZ_GW_ABORTED));
	assert_false(vz_gw_xfer_to(&x, VZ_GW_DONE));
}

static void browsers(void **state)
{
	(void)state;
	assert_null(vz_gw_access_browser(NULL, NULL));
	assert_null(vz_gw_access_browser(NULL, "none"));
	assert_null(vz_gw_access_browser(NULL, "same-origin"));
	assert_non_null(vz_gw_access_browser("null", NULL));
	assert_non_null(vz_gw_access_browser("https://evil.example", "cross-site"));
	assert_non_null(vz_gw_access_browser("http://127.0.0.1:8801", "same-origin"));
	assert_non_null(vz_gw_access_browser(NULL, "cross-site"));
	assert_non_null(vz_gw_access_browser(NULL, "same-site"));
}

/* Who may use which listen address, without client certificates. */
static void listen_policy(void **state)
{
	vz_gw_access_cfg plain = {.insecure_loopback = false};
	vz_gw_access_cfg insecure = {.insecure_loopback = true};
	vz_gw_access *a = NULL, *b = NULL;
	vz_gw_listen_policy p;
	vz_gw_addr addr;
	char line[600];
	vz_err err = {0};

	(void)state;
	assert_int_equal(vz_gw_access_new(&plain, &a, &err), VZ_OK);
	assert_int_equal(vz_gw_access_new(&insecure, &b, &err), VZ_OK);
	assert_int_equal(vz_gw_parse_listen("127.0.0.1:8801", &addr, &err), VZ_OK);
	/* loopback TCP: refused unless --insecure-loopback, which warns */
	assert_int_equal(vz_gw_access_listen(a, &addr, &p, line, sizeof(line), &err), VZ_USAGE);
	assert_non_null(strstr(err.hint, "--insecure-loopback"));
	assert_int_equal(vz_gw_access_listen(b, &addr, &p, line, sizeof(line), &err), VZ_OK);
	assert_int_equal(p.auth, VZ_GW_AUTH_NONE);
	assert_non_null(strstr(line, "WARNING"));
	/* other addresses: never without client certificates */
	assert_int_equal(vz_gw_parse_listen("0.0.0.0:8801", &addr, &err), VZ_OK);
	assert_int_equal(vz_gw_access_listen(b, &addr, &p, line, sizeof(line), &err), VZ_USAGE);
	/* unix: sockets: plain HTTP, answering to localhost */
	assert_int_equal(vz_gw_parse_listen("unix:/run/vzp11/gw.sock", &addr, &err), VZ_OK);
	assert_int_equal(vz_gw_access_listen(a, &addr, &p, line, sizeof(line), &err), VZ_OK);
	assert_int_equal(p.auth, VZ_GW_AUTH_UNIX);
	assert_null(vz_gw_check_host("localhost", "api.vecozo.nl", p.names, p.n_names));
	vz_gw_access_free(a);
	vz_gw_access_free(b);
}

static void labels(void **state)
{
	const char *l[] = {"praktijk-a", "praktijk-b"};
	size_t idx = 9;

	assert_null(vz_gw_pick_label(NULL, l, 2, &idx));
	assert_int_equal(idx, 0);
	assert_null(vz_gw_pick_label("praktijk-b", l, 2, &idx));
	assert_int_equal(idx, 1);
	assert_non_null(vz_gw_pick_label("praktijk-c", l, 2, &idx));
	assert_non_null(vz_gw_pick_label("Praktijk-A", l, 2, &idx));
}

static void hop_by_hop(void **state)
{
	assert_true(vz_gw_hop_by_hop("connection", NULL));
	assert_true(vz_gw_hop_by_hop("Transfer-Encoding", NULL));
	assert_true(vz_gw_hop_by_hop("Host", NULL));
	assert_true(vz_gw_hop_by_hop("Vzp11-Label", NULL));
	assert_true(vz_gw_hop_by_hop("X-Secret", "keep-alive, x-secret"));
	assert_false(vz_gw_hop_by_hop("SOAPAction", "keep-alive"));
	assert_false(vz_gw_hop_by_hop("Content-Type", NULL));
}

static void listen_addrs(void **state)
{
	vz_gw_addr a;
	vz_err err = {0};

	assert_int_equal(vz_gw_parse_listen("127.0.0.1:8801", &a, &err), VZ_OK);
	assert_true(a.loopback);
	assert_int_equal(vz_gw_parse_listen("[::1]:0", &a, &err), VZ_OK);
	assert_true(a.loopback);
	assert_int_equal(vz_gw_parse_listen("localhost:1", &a, &err), VZ_OK);
	assert_true(a.loopback);
	assert_int_equal(vz_gw_parse_listen("unix:/run/vzp11/gw.sock", &a, &err), VZ_OK);
	assert_true(a.is_unix);
	assert_int_equal(vz_gw_parse_listen("0.0.0.0:8801", &a, &err), VZ_OK);
	assert_false(a.loopback);
	assert_int_equal(vz_gw_parse_listen("[::]:8801", &a, &err), VZ_OK);
	assert_false(a.loopback);
	assert_int_equal(vz_gw_parse_listen("example.org:80", &a, &err), VZ_USAGE);
	assert_int_equal(vz_gw_parse_listen("127.0.0.1", &a, &err), VZ_USAGE);
	assert_int_equal(vz_gw_parse_listen("127.0.0.1:70000", &a, &err), VZ_USAGE);
	assert_int_equal(vz_gw_parse_listen("unix:relative", &a, &err), VZ_USAGE);
}

static void upstreams(void **state)
{
	char host[256], base[256];
	vz_err err = {0};

	assert_int_equal(
		vz_gw_parse_upstream("https://tst-api.vecozo.nl/acc", host, sizeof(host), &err),
		VZ_OK);
	assert_string_equal(host, "tst-api.vecozo.nl");
	assert_int_equal(vz_gw_parse_upstream("https://[::1]:8443", host, sizeof(host), &err),
			 VZ_OK);
	assert_string_equal(host, "::1");
	assert_int_equal(vz_gw_parse_upstream("http://api.vecozo.nl", host, sizeof(host), &err),
			 VZ_USAGE);
	assert_int_equal(vz_gw_parse_upstream("https://u@api.vecozo.nl", host, sizeof(host), &err),
			 VZ_USAGE);
	assert_int_equal(vz_gw_parse_upstream("https://api.vecozo.nl/?a", host, sizeof(host), &err),
			 VZ_USAGE);
	assert_string_equal(vz_gw_env_base("prd", base, sizeof(base)), "https://api.vecozo.nl");
	assert_string_equal(vz_gw_env_base("acc", base, sizeof(base)),
			    "https://tst-api.vecozo.nl/acc");
	assert_null(vz_gw_env_base("dev", base, sizeof(base)));
}

/* A request head laid out as libmicrohttpd 0.9.75 leaves it in its read
 * buffer: line ends and each field's colon turned to NULs, blanks after
 * the colon skipped. raw has no NULs of its own; CR LF or LF line ends. */
struct head {
	char buf[1024];
	size_t size;
	vz_gw_field f[16];
	size_t n;
};

static void lay_out(struct head *h, const char *raw)
{
	size_t len = strlen(raw);
	char *p = h->buf, *end;

	assert_true(len < sizeof(h->buf));
	memcpy(h->buf, raw, len + 1);
	h->size = len;
	h->n = 0;
	end = h->buf + len;
	for (bool first = true; p < end; first = false) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line = p, *colon, *v;

		assert_non_null(nl);
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		p = nl + 1;
		if (first || !*line || *line == ' ' || *line == '\t')
			continue; /* a folded line stays behind in the buffer */
		colon = strchr(line, ':');
		assert_non_null(colon);
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		h->f[h->n++] = (vz_gw_field){line, v, strlen(line), strlen(v)};
	}
}

static const char *check_raw(const char *raw, vz_gw_body *body, unsigned long long *len)
{
	static struct head h;

	lay_out(&h, raw);
	return vz_gw_check_head(h.buf, h.size, h.f, h.n, body, len);
}

static void framing(void **state)
{
	static const char *const bad[] = {
		"POST /cov/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: "
		"chunked\r\n\r\n",
		"POST /cov/x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"POST /cov/x HTTP/1.1\r\nContent-Length: 3x\r\n\r\n",
		"POST /cov/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST /cov/x HTTP/1.1\r\nContent-Length: \r\n\r\n",
		"POST /cov/x HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"POST /cov/x HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
		"POST /cov/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
		"chunked\r\n\r\n",
		"GET /cov/x HTTP/1.1\r\nX-A: a\rb\r\n\r\n",
		"GET /cov/x HTTP/1.1\r\nX-A: a\x01\r\n\r\n",
		"GET /cov/x HTTP/1.1\r\nX-A : a\r\n\r\n",
		"GET /cov/x HTTP/1.1\r\nX(A): a\r\n\r\n",
		"GET /cov/x HTTP/1.1\r\n: a\r\n\r\n",
	};
	vz_gw_body body = VZ_GW_BODY_NONE;
	unsigned long long len = 7;
	struct head h;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = check_raw(bad[i], &body, &len);

		if (!why)
			fail_msg("'%s' was allowed", bad[i]);
		assert_non_null(strstr(why, "refused"));
	}
	assert_null(check_raw("POST /cov/x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
			      "content-length: 12\r\n\r\n",
			      &body, &len));
	assert_int_equal(body, VZ_GW_BODY_LENGTH);
	assert_int_equal(len, 12);
	assert_null(check_raw("POST /cov/x HTTP/1.1\nHost:  a \nTransfer-Encoding: Chunked\n\n",
			      &body, &len));
	assert_int_equal(body, VZ_GW_BODY_CHUNKED);
	assert_null(check_raw("GET /cov/x HTTP/1.1\r\nHost: a\r\nX-E:\r\n\r\n", &body, &len));
	assert_int_equal(body, VZ_GW_BODY_NONE);
	assert_null(check_raw("GET /cov/x HTTP/1.0\r\n\r\n", &body, &len));

	/* A NUL in a value: libmicrohttpd hands "a", the rest stays behind. */
	lay_out(&h, "GET /cov/x HTTP/1.1\r\nX-A: abc\r\nHost: a\r\n\r\n");
	h.f[0].value_len = 1;
	h.buf[h.f[0].value - h.buf + 1] = '\0';
	assert_non_null(vz_gw_check_head(h.buf, h.size, h.f, h.n, &body, &len));
	/* A folded line: its text glued to the name, elsewhere in the pool. */
	lay_out(&h, "GET /cov/x HTTP/1.1\r\nX-A: a\r\n b\r\nHost: a\r\n\r\n");
	h.f[0].name = "X-Ab";
	h.f[0].name_len = 4;
	assert_non_null(vz_gw_check_head(h.buf, h.size, h.f, h.n, &body, &len));
	/* A folded line of blanks: the name stays, the line stays behind. */
	lay_out(&h, "GET /cov/x HTTP/1.1\r\nX-A: a\r\n \r\nHost: a\r\n\r\n");
	assert_non_null(vz_gw_check_head(h.buf, h.size, h.f, h.n, &body, &len));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allowed_paths), cmocka_unit_test(refused_targets),
		cmocka_unit_test(hosts),	 cmocka_unit_test(browsers),
		cmocka_unit_test(states),	 cmocka_unit_test(listen_policy),
		cmocka_unit_test(labels),	 cmocka_unit_test(hop_by_hop),
		cmocka_unit_test(listen_addrs),	 cmocka_unit_test(upstreams),
		cmocka_unit_test(framing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
