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

#include "cov/cov.h"
#include "tls/tls.h"
#include "cli/cli.h"

static void bsn_and_dates(void **state)
{
	char out[10];

	assert_true(vz_bsn_valid("999979668", out));
	assert_string_equal(out, "999979668");
	assert_true(vz_bsn_valid("012345672", out));
	assert_string_equal(out, "012345672");
	assert_false(vz_bsn_valid("12345672", out)); /* exactly nine digits */
	assert_false(vz_bsn_valid(" 99997966", out));
	assert_false(vz_bsn_valid("+99979668", out));
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
	/* sscanf would take these; they must not reach VECOZO. */
	assert_false(vz_date_valid("1962-+3-15"));
	assert_false(vz_date_valid("1962- 3-15"));
	assert_false(vz_date_valid("+962-03-15"));
	assert_false(vz_date_valid("1962-03-+5"));
	assert_false(vz_date_valid("1962-03-00"));
	assert_false(vz_date_valid("1900-02-29"));
	assert_true(vz_date_valid("2000-02-29"));
	assert_true(vz_date_valid("1962-12-31"));
	assert_false(vz_date_valid("1962-04-31"));
	assert_true(vz_agb_valid("01234567"));
	assert_false(vz_agb_valid("1234567"));
	assert_string_equal(vz_cov_endpoint("acc"),
			    "https://tst-api.vecozo.nl/acc/cov/vz801802/v1/soap11");
	assert_null(vz_cov_endpoint("dev"));
}

/* The element order itself is checked by the mock, which refuses a request
 * out of VZ801 order; this checks what the mock cannot see: escaping. */
static void builder_escaping(void **state)
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

/* Reads every record of text; returns the results joined as
 * "line:r:field|field;...", problems as "line:2". */
static void read_all(const char *text, size_t len, char *out, size_t size)
{
	FILE *f = fmemopen((void *)text, len, "r");
	vz_csv *c = vz_csv_new(f);
	vz_err err = {0};
	size_t used = 0, n;
	char **fl;
	int r;

	out[0] = '\0';
	for (r = vz_csv_read(c, &fl, &n, &err); r > 0; r = vz_csv_read(c, &fl, &n, &err)) {
		used += (size_t)snprintf(out + used, size - used, "%zu:%d:", vz_csv_line(c), r);
		for (size_t i = 0; i < n; i++)
			used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "|" : "",
						 fl[i]);
		used += (size_t)snprintf(out + used, size - used, ";");
	}
	assert_int_equal(r, 0);
	vz_csv_free(c);
	fclose(f);
}

#define READS(text, want)                                                                          \
	do {                                                                                       \
		char got[1024];                                                                    \
		read_all(text, sizeof(text) - 1, got, sizeof(got));                                \
		assert_string_equal(got, want);                                                    \
	} while (0)

static void csv_reader(void **state)
{
	const char text[] = "\xEF\xBB\xBF"
			    "bsn;birthdate;reference\r\n"
			    "1;2;\"a;b\"\r\n"
			    "\r\n"
			    " ; ;\t\n"
			    "3;4;\"say \"\"hi\"\"\"\n"
			    "5;6;last";
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
	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 1); /* blank lines skipped */
	assert_int_equal(vz_csv_line(c), 5);
	assert_string_equal(fl[2], "say \"hi\"");
	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 1); /* no line end at the end */
	assert_int_equal(vz_csv_line(c), 6);
	assert_string_equal(fl[2], "last");
	assert_int_equal(vz_csv_read(c, &fl, &n, &err), 0);
	vz_csv_free(c);
	fclose(f);
}

/* A quote opens quoting only at the start of a field; a line is a record. */
static void csv_quotes(void **state)
{
	/* Quotes in the middle of fields, in the middle of the file. */
	READS("h,r\nO\"Brien,1\n12\" x,2\na\"\"b,3\n\"\",4\n", "1:1:h|r;2:1:O\"Brien|1;"
							       "3:1:12\" x|2;4:1:a\"\"b|3;5:1:|4;");
	/* An unclosed quote in the middle of the file swallows nothing. */
	READS("h,r\n\"open,1\nnext,2\n", "1:1:h|r;2:2:;3:1:next|2;");
	/* Text after a closing quote, in the middle of the file. */
	READS("h,r\n\"a\"b,1\nnext,2\n", "1:1:h|r;2:2:;3:1:next|2;");
	/* A quoted field cannot span lines: both lines are rows. */
	READS("h,r\n\"multi\nline\",1\n", "1:1:h|r;2:2:;3:1:line\"|1;");
	/* Quoted separators and an empty last field. */
	READS("h,r\n\"a,b\",\n", "1:1:h|r;2:1:a,b|;");
	/* A NUL byte, and a lone CR, are content: the line is one row. */
	READS("h,r\na\0b,1\nc\rd,2\n", "1:1:h|r;2:2:;3:1:c\rd|2;");
}

static void csv_encodings(void **state)
{
	/* Windows-1252 (an Excel export) is converted; 0x81 is not a
	 * character there. Valid UTF-8 is kept as it is. */
	READS("h,r\nZo\xEB,1\nZo\xC3\xAB,2\nbad\x81,3\n",
	      "1:1:h|r;2:1:Zo\xC3\xAB|1;3:1:Zo\xC3\xAB|2;4:2:;");
}

static void csv_long_line(void **state)
{
	size_t len = VZ_CSV_MAX_RECORD + 100;
	char *text = malloc(len + 32), got[256];

	memcpy(text, "h,r\n", 4);
	memset(text + 4, 'x', len);
	memcpy(text + 4 + len, "\nok,1\n", 7);
	read_all(text, 4 + len + 6, got, sizeof(got));
	assert_string_equal(got, "1:1:h|r;2:2:;3:1:ok|1;");
	free(text);
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

/* Cells a spreadsheet would run as formulas stay text. */
static void csv_writer_formulas(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *row[] = {"=1+1", "+31", "-2", "@A1", "\tx", "=a,b", "a=b", "0"};

	vz_csv_write(f, ',', row, 8);
	fclose(f);
	assert_string_equal(buf, "'=1+1,'+31,'-2,'@A1,'\tx,\"'=a,b\",a=b,0\n");
	free(buf);
}

static void text_checks(void **state)
{
	char s[64];

	assert_true(vz_utf8_valid("Zo\xC3\xAB", 4));
	assert_false(vz_utf8_valid("Zo\xEB", 3));
	assert_false(vz_utf8_valid("\xC0\xAF", 2));	    /* overlong '/' */
	assert_false(vz_utf8_valid("\xED\xA0\x80", 3));	    /* a surrogate */
	assert_false(vz_utf8_valid("\xF4\x90\x80\x80", 4)); /* past U+10FFFF */
	assert_true(vz_text_printable("dossier 17 \xC3\xA9", 80));
	assert_false(vz_text_printable("a\tb", 80));
	assert_false(vz_text_printable("a\x7F", 80));
	assert_false(vz_text_printable("a\xC2\x9B"
				       "2J",
				       80)); /* C1 CSI */
	assert_false(vz_text_printable("abc", 2));
	snprintf(s, sizeof(s), "%s", "\x1B[2J\x1B]0;x\x07 ok\r\xC2\x9B\xFF");
	vz_text_clean(s);
	assert_string_equal(s, " [2J ]0;x  ok  ?");
}

static void retry_after(void **state)
{
	time_t now = curl_getdate("Wed, 21 Oct 2026 07:28:00 GMT", NULL);

	assert_int_equal(vz_retry_after_s("7", now), 7);
	assert_int_equal(vz_retry_after_s(" 7\r\n", now), 7);
	assert_int_equal(vz_retry_after_s("100000", now), VZ_RETRY_AFTER_MAX);
	assert_int_equal(vz_retry_after_s("Wed, 21 Oct 2026 07:28:30 GMT\r\n", now), 30);
	assert_int_equal(vz_retry_after_s("Wed, 21 Oct 2026 07:27:00 GMT", now), 0);
	assert_int_equal(vz_retry_after_s("soon", now), 0);
	assert_int_equal(vz_retry_after_s("5x", now), 0);
}

/* Each bad field keeps its row from being sent and says why, without
 * repeating the field. */
static void row_checks(void **state)
{
	static const struct {
		const char *bsn, *birth, *date, *ref, *why;
	} cases[] = {
		{"999979668", "1962-03-15", NULL, "r1", NULL},
		{" 999979668 ", "1962-03-15 ", "", NULL, NULL},
		{"99997966", "1962-03-15", NULL, NULL, "exactly 9 digits"},
		{"", "1962-03-15", NULL, NULL, "missing"},
		{"999979668", "1962-+3-15", NULL, NULL, "birth date"},
		{"999979668", "1962- 3-15", NULL, NULL, "birth date"},
		{"999979668", "1962-03-15", "2026-02-30", NULL, "check date"},
		{"999979668", "1962-03-15", NULL, "a\x1B[2Jb", "control characters"},
		{"999979668", "1962-03-15", NULL,
		 "123456789012345678901234567890123456789012345678901234567890123456789012345678901",
		 "longer than 80"},
	};
	vz_cov_row row;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&row, 0, sizeof(row));
		vz_cov_row_fill(&row, cases[i].bsn, cases[i].birth, cases[i].date, cases[i].ref,
				"2026-11-29");
		if (!cases[i].why) {
			assert_false(row.done);
			assert_string_equal(row.s.bsn, "999979668");
			assert_string_equal(row.s.birthdate, "1962-03-15");
			assert_string_equal(row.s.date, "2026-11-29");
			continue;
		}
		assert_true(row.done);
		assert_non_null(strstr(row.error, cases[i].why));
		assert_non_null(strstr(row.error, "not sent"));
		assert_null(strstr(row.error, "9999796"));
		assert_null(strchr(row.reference, '\x1B')); /* cleaned for the output */
	}
}

/* Text from the server is cleaned; a fault that quotes a BSN is masked; a
 * Volgnummer that is not a number matches nothing. */
static void parser_hostile_text(void **state)
{
	const char fault[] = "<Envelope><Body><Fault><faultcode>s:Server</faultcode><faultstring>"
			     "BSN 999979668 onbekend\xC2\x9B"
			     "2J</faultstring></Fault></Body>"
			     "</Envelope>";
	const char odd[] = "<Envelope><Body><ControleerResult><Resultaat>VerzoekAkkoord"
			   "</Resultaat><Zoekresultaten><Zoekresultaat><Volgnummer>3x</Volgnummer>"
			   "<Resultaat>Gevonden&#9;\xC2\x9B</Resultaat></Zoekresultaat>"
			   "</Zoekresultaten></ControleerResult></Body></Envelope>";
	vz_cov_result res[2];
	vz_cov_fault_kind fk;
	char detail[128], many[4096];
	size_t n = 0, used;

	assert_int_equal(vz_cov_parse(fault, strlen(fault), res, 2, &n, &fk, detail, 128),
			 VZ_COV_FAULT);
	assert_string_equal(detail, "BSN ######### onbekend 2J / s:Server");
	assert_int_equal(vz_cov_parse(odd, strlen(odd), res, 2, &n, &fk, detail, 128), VZ_COV_OK);
	assert_int_equal(n, 1);
	assert_int_equal(res[0].seq, 0);
	assert_string_equal(res[0].result, "Gevonden");
	vz_cov_result_clear(&res[0]);
	/* More results than the request had searches. */
	used = (size_t)snprintf(many, sizeof(many),
				"<Envelope><Body><ControleerResult><Resultaat>"
				"VerzoekAkkoord</Resultaat><Zoekresultaten>");
	for (int i = 1; i <= 3; i++)
		used += (size_t)snprintf(many + used, sizeof(many) - used,
					 "<Zoekresultaat><Volgnummer>%d</Volgnummer><Resultaat>"
					 "NietGevonden</Resultaat></Zoekresultaat>",
					 i);
	snprintf(many + used, sizeof(many) - used,
		 "</Zoekresultaten></ControleerResult></Body></Envelope>");
	assert_int_equal(vz_cov_parse(many, strlen(many), res, 2, &n, &fk, detail, 128),
			 VZ_COV_MALFORMED);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bsn_and_dates),
		cmocka_unit_test(builder_escaping),
		cmocka_unit_test(parser),
		cmocka_unit_test(faults_and_garbage),
		cmocka_unit_test(csv_reader),
		cmocka_unit_test(csv_quotes),
		cmocka_unit_test(csv_encodings),
		cmocka_unit_test(csv_long_line),
		cmocka_unit_test(csv_writer),
		cmocka_unit_test(csv_writer_formulas),
		cmocka_unit_test(text_checks),
		cmocka_unit_test(retry_after),
		cmocka_unit_test(row_checks),
		cmocka_unit_test(parser_hostile_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
