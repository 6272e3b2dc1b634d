/* test_gateway.c - the gateway's policy (src/gateway/policy.c): what is
 * forwarded and what is refused, before anything goes upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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
	const char *listen[] = {"192.0.2.10", ""};

	assert_null(vz_gw_check_host(NULL, "api.vecozo.nl", listen, 2));
	assert_null(vz_gw_check_host("localhost", "api.vecozo.nl", listen, 2));
	assert_null(vz_gw_check_host("127.0.0.1:8801", "api.vecozo.nl", listen, 2));
	assert_null(vz_gw_check_host("[::1]:8801", "api.vecozo.nl", listen, 2));
	assert_null(vz_gw_check_host("API.vecozo.nl", "api.vecozo.nl", listen, 2));
	assert_null(vz_gw_check_host("192.0.2.10:8801", "api.vecozo.nl", listen, 2));
	assert_non_null(vz_gw_check_host("evil.example", "api.vecozo.nl", listen, 2));
	assert_non_null(vz_gw_check_host("192.0.2.11", "api.vecozo.nl", listen, 2));
	assert_non_null(vz_gw_check_host("[::1", "api.vecozo.nl", listen, 2));
	assert_non_null(vz_gw_check_host("a:b:c", "api.vecozo.nl", listen, 2));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allowed_paths), cmocka_unit_test(refused_targets),
		cmocka_unit_test(hosts),	 cmocka_unit_test(labels),
		cmocka_unit_test(hop_by_hop),	 cmocka_unit_test(listen_addrs),
		cmocka_unit_test(upstreams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
