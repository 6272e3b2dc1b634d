/* Unit tests: BSN and date checks, the VZ801 builder, the VZ802 parser and
 * the CSV reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cov.h"
#include "csv.h"

static void bsn_and_dates(void **state)
{
	char out[10];

	assert_true(vz_bsn_valid("999979668", out));
	assert_string_equal(out, "999979668");
	assert_true(vz_bsn_valid("12345672", out)); /* 8 digits: zero-padded */
	assert_string_equal(out, "012345672");
	assert_false(vz_bsn_valid("999979667", out));
	assert_false(vz_bsn_valid("000000000", out));
	assert_false(vz_bsn_valid("9999796680", out));
	assert_false(vz_bsn_valid("99997966a", out));
	assert_false(vz_bsn_valid("", out));
	assert_true(vz_date_valid("1962-03-15"));
	assert_true(vz_date_valid("2024-02-29"));
	assert_false(vz_date_valid("2023-02-29"));
	assert_false(vz_date_valid("1962-3-15"));
	assert_false(vz_date_valid("15-03-1962"));
	assert_false(vz_date_valid("1962-03-15x"));
	assert_false(vz_date_valid("1962-13-01"));
	assert_true(vz_agb_valid("01234567"));
	assert_false(vz_agb_valid("1234567"));
	assert_string_equal(vz_cov_endpoint("acc"),
			    "https://tst-api.vecozo.nl/acc/cov/vz801802/v1/soap11");
	assert_null(vz_cov_endpoint("dev"));
}

static void builder_order_and_escaping(void **state)
{
	vz_cov_search s = {.seq = 7,
			   .bsn = "999979668",
			   .birthdate = "1962-03-15",
			   .date = "2026-01-01",
			   .reference = "a<b&\"c\""};
	char *xml = NULL;
	size_t len = 0;
	vz_err err = {0};
	const char *v, *g, *p, *b, *r, *agb;

	assert_int_equal(vz_cov_build(&s, 1, "01234567", &xml, &len, &err), VZ_OK);
	assert_int_equal(strlen(xml), len);
	assert_non_null(strstr(xml, "xmlns:v1=\"http://schemas.vecozo.nl/VZ801802/v1\""));
	assert_non_null(strstr(xml, "<v1:Controleer><v1:request>"));
	agb = strstr(
		xml,
		"<typ:AGB-zorgverlenersoort>01</typ:AGB-zorgverlenersoort><typ:AGB-nummer>234567</typ:AGB-nummer>");
	v = strstr(xml, "<typ:Volgnummer>7</typ:Volgnummer>");
	g = strstr(xml, "<typ:Geboortedatum>1962-03-15</typ:Geboortedatum>");
	p = strstr(xml, "<typ:Peildatum>2026-01-01</typ:Peildatum>");
	b = strstr(xml, "<typ:Bsn>999979668</typ:Bsn>");
	r = strstr(xml,
		   "<typ:ReferentieZorgaanbieder>a&lt;b&amp;\"c\"</typ:ReferentieZorgaanbieder>");
	assert_non_null(agb);
	assert_true(agb && v && g && p && b && r);
	assert_true(agb < v && v < g && g < p && p < b && b < r); /* schema order */
	free(xml);
	assert_int_equal(vz_cov_build(&s, 0, NULL, &xml, &len, &err), VZ_FAIL);
	assert_int_equal(vz_cov_build(&s, 21, NULL, &xml, &len, &err), VZ_FAIL);
}

static const char response[] =
	"<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
	"<s:Body><x:ControleerResponse xmlns:x=\"urn:x\"><x:ControleerResult xmlns:b=\"urn:b\">"
	"<b:Resultaat>VerzoekAkkoord</b:Resultaat><b:Zoekresultaten>"
	"<b:Zoekresultaat><b:Volgnummer>3</b:Volgnummer><b:Resultaat>Gevonden</b:Resultaat>"
	"<b:ReferentieZorgaanbieder>ref</b:ReferentieZorgaanbieder><b:Verzekerde>"
	"<b:Resultaat>ActieveVerzekeringen</b:Resultaat><b:Geboortedatum>1962-03-15</b:Geboortedatum>"
	"<b:Geslacht>Vrouw</b:Geslacht><b:Overleden>false</b:Overleden><b:Voorletters>J.</b:Voorletters>"
	"<b:Voorvoegsel1>de</b:Voorvoegsel1><b:Achternaam1>Vries</b:Achternaam1><b:Verzekeringen>"
	"<b:Verzekering><b:Resultaat>Actief</b:Resultaat><b:UZOVI>3000</b:UZOVI>"
	"<b:SoortVerzekering>Basis</b:SoortVerzekering><b:Ingangsdatum>2015-01-01</b:Ingangsdatum>"
	"</b:Verzekering></b:Verzekeringen></b:Verzekerde></b:Zoekresultaat>"
	"<b:Zoekresultaat><b:Volgnummer>4</b:Volgnummer><b:Resultaat>BsnOnbekend</b:Resultaat>"
	"</b:Zoekresultaat></b:Zoekresultaten></x:ControleerResult></x:ControleerResponse>"
	"</s:Body></s:Envelope>";

static void parser(void **state)
{
	vz_cov_result res[20];
	vz_cov_fault_kind fk;
	char detail[128];
	size_t n = 0;

	assert_int_equal(
		vz_cov_parse(response, strlen(response), res, 20, &n, &fk, detail, sizeof(detail)),
		VZ_COV_OK);
	assert_int_equal(n, 2);
	assert_int_equal(res[0].seq, 3);
	assert_string_equal(res[0].result, "Gevonden");
	assert_true(res[0].has_person);
	assert_string_equal(res[0].surname, "Vries");
	assert_string_equal(res[0].prefix, "de");
	assert_false(res[0].deceased);
	assert_int_equal(res[0].n_ins, 1);
	assert_string_equal(res[0].ins[0].uzovi, "3000");
	assert_null(res[0].ins[0].end);
	assert_int_equal(res[1].seq, 4);
	assert_false(res[1].has_person);
	for (size_t i = 0; i < n; i++)
		vz_cov_result_clear(&res[i]);
}

static vz_cov_status parse_str(const char *x, vz_cov_fault_kind *fk, char *detail)
{
	vz_cov_result res[20];
	size_t n = 0;
	vz_cov_status st = vz_cov_parse(x, strlen(x), res, 20, &n, fk, detail, 128);

	for (size_t i = 0; i < n; i++)
		vz_cov_result_clear(&res[i]);
	return st;
}

static void faults_and_garbage(void **state)
{
	char detail[128];
	vz_cov_fault_kind fk;

	assert_int_equal(parse_str("<Envelope><Body><Fault><faultcode>s:Client</faultcode>"
				   "<faultstring>Niet geauthenticeerd</faultstring></Fault></Body>"
				   "</Envelope>",
				   &fk, detail),
			 VZ_COV_FAULT);
	assert_int_equal(fk, VZ_FAULT_NOT_AUTHENTICATED);
	assert_int_equal(
		parse_str("<Envelope><Body><Fault><faultstring>x</faultstring><detail>"
			  "Niet geautoriseerd voor deze dienst</detail></Fault></Body></Envelope>",
			  &fk, detail),
		VZ_COV_FAULT);
	assert_int_equal(fk, VZ_FAULT_NOT_AUTHORIZED);
	assert_int_equal(parse_str("<Envelope><Body><ControleerResult><Resultaat>"
				   "MeerDan20Zoekopdrachten</Resultaat></ControleerResult></Body>"
				   "</Envelope>",
				   &fk, detail),
			 VZ_COV_REQUEST_REFUSED);
	assert_string_equal(detail, "MeerDan20Zoekopdrachten");
	assert_int_equal(parse_str("<html>busy</html>", &fk, detail), VZ_COV_MALFORMED);
	assert_int_equal(parse_str("<Envelope><Body><Contr", &fk, detail), VZ_COV_MALFORMED);
	/* An entity bomb is refused, not expanded. */
	assert_int_equal(
		parse_str("<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;\">]>"
			  "<Envelope><Body><ControleerResult><Resultaat>&b;</Resultaat>"
			  "</ControleerResult></Body></Envelope>",
			  &fk, detail),
		VZ_COV_MALFORMED);
}

static void csv_reader(void **state)
{
	const char text[] = "\xEF\xBB\xBF"
			    "bsn;birthdate;reference\r\n"
			    "1;2;\"a;b\"\r\n"
			    "\r\n"
			    "3;4;\"multi\nline \"\"quoted\"\"\"\n"
			    "5;6;\"unclosed\n";
	FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");
	vz_csv *c = vz_csv_new(f);
	vz_err err = {0};
	char **fl;
	size_t n;

	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 1);
	assert_int_equal(vz_csv_sep(c), ';');
	assert_int_equal(n, 3);
	assert_string_equal(fl[0], "bsn");
	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 1);
	assert_int_equal(vz_csv_line(c), 2);
	assert_string_equal(fl[2], "a;b");
	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 1);
	assert_int_equal(vz_csv_line(c), 4);
	assert_string_equal(fl[2], "multi\nline \"quoted\"");
	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 2);
	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 0);
	vz_csv_free(c);
	fclose(f);
}

static void csv_writer(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *row[] = {"plain", "a,b", "say \"hi\"", NULL, "x;y"};

	vz_csv_write(f, ',', row, 5);
	fclose(f);
	assert_string_equal(buf, "plain,\"a,b\",\"say \"\"hi\"\"\",,x;y\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bsn_and_dates), cmocka_unit_test(builder_order_and_escaping),
		cmocka_unit_test(parser),	 cmocka_unit_test(faults_and_garbage),
		cmocka_unit_test(csv_reader),	 cmocka_unit_test(csv_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
