/* Unit tests: the Berichtenservice's metadata, parties and flows, and the
 * readers of problem details, statuses and the pull list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "billing/billing.h"

static void parties_and_flows(void **state)
{
	vz_br_party p;
	vz_br_flow f;
	const char *why;

	assert_true(vz_br_party_parse("Praktijk:01234567", &p, &why));
	assert_string_equal(p.role, "Praktijk");
	assert_string_equal(p.code, "01234567");
	assert_true(vz_br_party_parse("Zorgverzekeraar:3311", &p, &why));
	assert_false(vz_br_party_parse("Zorgverzekeraar:33110000", &p, &why)); /* UZOVI: 4 */
	assert_false(vz_br_party_parse("Praktijk:3311", &p, &why));	       /* AGB: 8 */
	assert_false(vz_br_party_parse("praktijk:01234567", &p, &why));
	assert_false(vz_br_party_parse("Apotheek:01234567", &p, &why));
	assert_false(vz_br_party_parse("Praktijk", &p, &why));
	assert_false(vz_br_party_parse("Praktijk:0123456a", &p, &why));
	assert_true(vz_br_flow_parse("303:3.1", &f, &why));
	assert_string_equal(f.type, "303");
	assert_string_equal(f.subtype, "");
	assert_int_equal(f.version, 3);
	assert_int_equal(f.subversion, 1);
	assert_string_equal(f.action, "Indienen");
	assert_true(vz_br_flow_parse("303/ZH:10.0:Intrekken", &f, &why));
	assert_string_equal(f.subtype, "ZH");
	assert_int_equal(f.version, 10);
	assert_string_equal(f.action, "Intrekken");
	assert_false(vz_br_flow_parse("303", &f, &why));
	assert_false(vz_br_flow_parse("303:3", &f, &why));
	assert_false(vz_br_flow_parse("303:3.x", &f, &why));
	assert_false(vz_br_flow_parse(":3.1", &f, &why));
	assert_false(vz_br_flow_parse("303:3.1:", &f, &why));
}

/* The words and numbers of a flow, as VECOZO's contract has them: any
 * text of 1 to 60 characters but control characters, numbers 0 to 999. */
static void flow_contract(void **state)
{
	char sixty[200], long_flow[300];
	vz_br_flow f;
	const char *why;

	assert_true(vz_br_flow_parse("3\"03 \u00e9:999.0:Bevestig ontvangst", &f, &why));
	assert_string_equal(f.type, "3\"03 \u00e9");
	assert_int_equal(f.version, 999);
	assert_string_equal(f.action, "Bevestig ontvangst");
	assert_true(vz_br_flow_parse("a\\/b/c\\:d:0.0:x:y/z", &f, &why));
	assert_string_equal(f.type, "a/b");
	assert_string_equal(f.subtype, "c:d");
	assert_string_equal(f.action, "x:y/z");
	assert_true(vz_br_flow_parse("a\\\\:1.2", &f, &why));
	assert_string_equal(f.type, "a\\");
	assert_false(vz_br_flow_parse("303:1000.0", &f, &why));
	assert_non_null(strstr(why, "0 to 999"));
	assert_false(vz_br_flow_parse("303:3.1000", &f, &why));
	assert_non_null(strstr(why, "0 to 999"));
	assert_false(vz_br_flow_parse("30\t3:3.1", &f, &why));
	assert_non_null(strstr(why, "control characters"));
	assert_false(vz_br_flow_parse("303:3.1:In\302\205dienen", &f, &why)); /* C1: NEL */
	assert_false(vz_br_flow_parse("303/\xff:3.1", &f, &why));	      /* not UTF-8 */
	assert_false(vz_br_flow_parse("303/:3.1", &f, &why));
	/* 60 characters of two bytes each fit; 61 do not */
	sixty[0] = '\0';
	for (int i = 0; i < 60; i++)
		strcat(sixty, "\u00eb");
	snprintf(long_flow, sizeof(long_flow), "%s:1.0", sixty);
	assert_true(vz_br_flow_parse(long_flow, &f, &why));
	assert_string_equal(f.type, sixty);
	snprintf(long_flow, sizeof(long_flow), "%s\u00eb:1.0", sixty);
	assert_false(vz_br_flow_parse(long_flow, &f, &why));
	assert_true(vz_br_reference_ok("dossier \u00e9\u00e9n"));
	assert_false(vz_br_reference_ok(""));
	assert_false(vz_br_reference_ok("a\nb"));
}

static void uuids(void **state)
{
	char a[37], b[37];
	vz_err err = {0};

	assert_int_equal(vz_br_uuid(a, &err), VZ_OK);
	assert_int_equal(vz_br_uuid(b, &err), VZ_OK);
	assert_true(vz_br_uuid_valid(a));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');		/* version 4 */
	assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
	assert_false(vz_br_uuid_valid("0123456789abcdef0123456789abcdef0123"));
	assert_false(vz_br_uuid_valid("01234567-89ab-cdef-0123-456789abcdeg"));
}

static void metadata(void **state)
{
	vz_br_party from = {"Praktijk", "01234567"},
		    to[2] = {{"Zorgverzekeraar", "3311"}, {"Zorgverzekeraar", "3000"}};
	vz_br_flow flow = {"303", "ZH", 3, 1, "Indienen"};
	char *m = vz_br_metadata(&from, to, 2, &flow, "c0c0c0c0-0000-4000-8000-000000000000",
				 "7e7e7e7e-0000-4000-8000-000000000000", "ref \"1\"");
	json_t *j = json_loads(m, 0, NULL);

	assert_non_null(j);
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(j, "routeringgegevens"), "afzender"),
			"code")),
		"01234567");
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "routeringgegevens"),
							 "geadresseerden")),
			 2);
	assert_int_equal(
		json_integer_value(json_object_get(
			json_object_get(json_object_get(j, "routeringgegevens"), "berichtstroom"),
			"berichtsubversie")),
		1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(j, "referentiegegevens"), "referentieId")),
			    "ref \"1\"");
	json_decref(j);
	free(m);
}

static void problem_details(void **state)
{
	const char body[] = "{\"type\":\"about:blank\",\"title\":\"Ongeldig\",\"status\":400,"
			    "\"detail\":\"Metadata klopt niet\",\"errors\":{\"routeringgegevens."
			    "afzender.code\":[\"moet 8 cijfers zijn\",\"\\u001b[2Jx\"],\"payload\":"
			    "\"ontbreekt\"}}";
	char *lines[8], *errs = NULL;
	size_t n = vz_br_problem(body, strlen(body), lines, 8, &errs);

	assert_int_equal(n, 4);
	assert_string_equal(lines[0], "Ongeldig: Metadata klopt niet");
	assert_string_equal(lines[1], "routeringgegevens.afzender.code: moet 8 cijfers zijn");
	assert_string_equal(lines[2], "routeringgegevens.afzender.code:  [2Jx"); /* cleaned */
	assert_string_equal(lines[3], "payload: ontbreekt");
	assert_non_null(errs);
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(errs);
	assert_int_equal(vz_br_problem("<html>", 6, lines, 8, NULL), 0);
	assert_int_equal(vz_br_problem("[1]", 3, lines, 8, NULL), 0);
}

static void statuses(void **state)
{
	const char *tid = "7e7e7e7e-0000-4000-8000-000000000000";
	const char body[] =
		"[{\"referentiegegevens\":{\"traceerId\":\"7e7e7e7e-0000-4000-8000-000000000000\"},"
		"\"berichtstatus\":\"Ontvangen\",\"berichtstatusGewijzigdOp\":\"2026-11-29T10:00:00Z\"},"
		"{\"referentiegegevens\":{\"traceerId\":\"7E7E7E7E-0000-4000-8000-000000000000\"},"
		"\"berichtstatus\":\"AfgekeurdDoorDienst\",\"berichtstatusGewijzigdOp\":"
		"\"2026-11-29T10:05:00Z\",\"meldingen\":[{\"code\":\"AF01\",\"omschrijving\":"
		"\"Bestand afgekeurd\",\"toelichting\":\"Regel 3\"}]},"
		"{\"referentiegegevens\":{\"traceerId\":\"00000000-0000-4000-8000-000000000000\"},"
		"\"berichtstatus\":\"VerwerkingVoltooid\",\"berichtstatusGewijzigdOp\":"
		"\"2026-11-29T11:00:00Z\"}]";
	vz_br_status st = {0};
	vz_err err = {0};
	char *mj;

	assert_int_equal(vz_br_status_parse(body, strlen(body), tid, &st, &err), VZ_OK);
	assert_string_equal(st.status, "AfgekeurdDoorDienst"); /* the newest, for this id */
	assert_int_equal(st.n_meldingen, 1);
	assert_string_equal(st.meldingen[0].code, "AF01");
	assert_true(vz_br_status_final(st.status));
	assert_true(vz_br_status_failed(st.status));
	mj = vz_br_meldingen_json(&st);
	assert_string_equal(mj, "[{\"code\":\"AF01\",\"omschrijving\":\"Bestand afgekeurd\","
				"\"toelichting\":\"Regel 3\"}]");
	free(mj);
	vz_br_status_clear(&st);
	assert_int_equal(vz_br_status_parse("[]", 2, tid, &st, &err), VZ_NOT_FOUND);
	assert_int_equal(vz_br_status_parse("{\"berichtstatussen\":[]}", 23, tid, &st, &err),
			 VZ_NOT_FOUND);
	assert_int_equal(vz_br_status_parse("nope", 4, tid, &st, &err), VZ_FAIL);
	assert_false(vz_br_status_final("Ontvangen"));
	assert_true(vz_br_status_final("VerwerkingVoltooid"));
	assert_false(vz_br_status_failed("VerwerkingVoltooid"));
}

/* Status times are local with an offset and fractions of any length: the
 * newest entry is the latest instant, not the largest text. */
static void status_times(void **state)
{
	const char *tid = "7e7e7e7e-0000-4000-8000-000000000000";
	/* 00:30:00.5Z, 01:00:00Z and 01:30:00.25Z, around the clock change of
	 * 2025-10-26 (02:00+01:00 follows 02:59:59+02:00): as text the first
	 * sorts last */
	const char body[] =
		"[{\"referentiegegevens\":{\"traceerId\":\"7e7e7e7e-0000-4000-8000-000000000000\"},"
		"\"berichtstatus\":\"Ontvangen\","
		"\"berichtstatusGewijzigdOp\":\"2025-10-26T02:30:00.5+02:00\"},"
		"{\"referentiegegevens\":{\"traceerId\":\"7e7e7e7e-0000-4000-8000-000000000000\"},"
		"\"berichtstatus\":\"VerwerkingVoltooid\","
		"\"berichtstatusGewijzigdOp\":\"2025-10-26T02:30:00.25+01:00\"},"
		"{\"referentiegegevens\":{\"traceerId\":\"7e7e7e7e-0000-4000-8000-000000000000\"},"
		"\"berichtstatus\":\"WordtVerwerkt\","
		"\"berichtstatusGewijzigdOp\":\"2025-10-26T02:00:00+01:00\"},"
		"{\"referentiegegevens\":{\"traceerId\":\"7e7e7e7e-0000-4000-8000-000000000000\"},"
		"\"berichtstatus\":\"Bezorgd\",\"berichtstatusGewijzigdOp\":\"gisteren\"}]";
	vz_br_instant a, b;
	vz_br_status st = {0};
	vz_err err = {0};

	assert_true(vz_br_time_parse("2025-11-24T16:58:44.0867+01:00", &a));
	assert_true(vz_br_time_parse("2025-11-24T15:58:44.0867Z", &b));
	assert_int_equal(vz_br_instant_cmp(&a, &b), 0);
	assert_int_equal(a.ns, 86700000);
	assert_true(vz_br_time_parse("2025-11-24T15:58:44.08670001z", &b));
	assert_int_equal(vz_br_instant_cmp(&a, &b), -1);
	assert_true(vz_br_time_parse("2025-11-24T15:58:44Z", &b));
	assert_int_equal(vz_br_instant_cmp(&a, &b), 1);
	assert_true(vz_br_time_parse("1999-12-31T23:30:00-01:00", &a));
	assert_true(vz_br_time_parse("2000-01-01T00:30:00Z", &b));
	assert_int_equal(vz_br_instant_cmp(&a, &b), 0);
	assert_int_equal(b.s, 946686600);
	assert_false(vz_br_time_parse("2025-11-24T16:58:44", &a)); /* no zone */
	assert_false(vz_br_time_parse("2025-11-24T16:58:44.+01:00", &a));
	assert_false(vz_br_time_parse("2025-02-30T16:58:44Z", &a));
	assert_false(vz_br_time_parse("2025-11-24T16:58:44+0100", &a));
	assert_false(vz_br_time_parse("2025-11-24T16:58:44Z ", &a));
	assert_int_equal(vz_br_status_parse(body, strlen(body), tid, &st, &err), VZ_OK);
	assert_string_equal(st.status, "VerwerkingVoltooid");
	assert_string_equal(st.changed_at, "2025-10-26T01:30:00Z");
	vz_br_status_clear(&st);
}

static void pull_list(void **state)
{
	const char one[] =
		"{\"referentiegegevens\":{\"traceerId\":"
		"\"AAAAAAAA-0000-4000-8000-000000000001\"},\"basisgegevens\":{\"payload\":"
		"{\"grootte\":12,\"checksum\":{\"algoritme\":\"SHA256\",\"waarde\":"
		"\"ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\"}}}}";
	const char bad[] = "{\"referentiegegevens\":{\"traceerId\":\"x\"},\"basisgegevens\":{}}";
	char body[2048];
	vz_br_retour *r = NULL;
	size_t n = 0, skipped = 0;
	vz_err err = {0};

	snprintf(body, sizeof(body), "[%s,%s]", one, bad);
	assert_int_equal(vz_br_pull_parse(body, strlen(body), &r, &n, &skipped, &err), VZ_OK);
	assert_int_equal(n, 1);
	assert_int_equal(skipped, 1);
	assert_string_equal(r[0].traceer_id, "aaaaaaaa-0000-4000-8000-000000000001");
	assert_string_equal(r[0].sha256,
			    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_int_equal(r[0].size, 12);
	assert_string_equal(r[0].url, "");
	free(r);
	snprintf(
		body, sizeof(body),
		"[{\"referentiegegevens\":{\"traceerId\":\"AAAAAAAA-0000-4000-8000-000000000001\"},"
		"\"basisgegevens\":{\"payload\":{\"url\":\"https://h/p\",\"grootte\":1,"
		"\"checksum\":{\"algoritme\":\"SHA256\",\"waarde\":\"%064d\"}}}},"
		"{\"referentiegegevens\":{\"traceerId\":\"AAAAAAAA-0000-4000-8000-000000000002\"},"
		"\"basisgegevens\":{\"payload\":{\"url\":7,\"grootte\":1,"
		"\"checksum\":{\"algoritme\":\"SHA256\",\"waarde\":\"%064d\"}}}}]",
		0, 0);
	assert_int_equal(vz_br_pull_parse(body, strlen(body), &r, &n, &skipped, &err), VZ_OK);
	assert_int_equal(n, 1); /* a URL that is not a string: left out */
	assert_int_equal(skipped, 1);
	assert_string_equal(r[0].url, "https://h/p");
	free(r);
	snprintf(body, sizeof(body), "{\"berichten\":[%s]}", one);
	assert_int_equal(vz_br_pull_parse(body, strlen(body), &r, &n, &skipped, &err), VZ_OK);
	assert_int_equal(n, 1);
	free(r);
	assert_int_equal(vz_br_pull_parse("[]", 2, &r, &n, &skipped, &err), VZ_OK);
	assert_int_equal(n, 0);
	free(r);
	assert_int_equal(vz_br_pull_parse("<html>", 6, &r, &n, &skipped, &err), VZ_FAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parties_and_flows),
		cmocka_unit_test(flow_contract),
		cmocka_unit_test(uuids),
		cmocka_unit_test(metadata),
		cmocka_unit_test(problem_details),
		cmocka_unit_test(statuses),
		cmocka_unit_test(status_times),
		cmocka_unit_test(pull_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
