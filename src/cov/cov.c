/* cov.c - building VZ801 requests and reading VZ802 responses with libxml2;
 * user data never becomes XML text by pasting. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "cov/cov.h"
#include "cli/cli.h"

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_V1	"http://schemas.vecozo.nl/VZ801802/v1"
#define NS_MES	NS_V1 "/messages"
#define NS_TYP	NS_V1 "/types"

/* The one place the environments map to endpoints (SOAP 1.1 gateway). */
static const struct {
	const char *env;
	const char *url;
} endpoints[] = {
	{"tst", "https://tst-api.vecozo.nl/tst/cov/vz801802/v1/soap11"},
	{"acc", "https://tst-api.vecozo.nl/acc/cov/vz801802/v1/soap11"},
	{"prd", "https://api.vecozo.nl/cov/vz801802/v1/soap11"},
};

const char *vz_cov_endpoint(const char *env)
{
	for (size_t i = 0; env && i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
		if (strcmp(env, endpoints[i].env) == 0)
			return endpoints[i].url;
	return NULL;
}

bool vz_bsn_valid(const char *in, char out[10])
{
	long sum = 0;

	if (!vz_digits(in, 9) || strcmp(in, "000000000") == 0)
		return false;
	for (int i = 0; i < 8; i++)
		sum += (long)(in[i] - '0') * (9 - i);
	sum -= in[8] - '0';
	if (sum % 11 != 0)
		return false;
	memcpy(out, in, 10);
	return true;
}

static int number(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

bool vz_date_valid(const char *s)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (size_t i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	y = number(s, 4);
	m = number(s + 5, 2);
	d = number(s + 8, 2);
	if (y < 1870 || y > 2200 || m < 1 || m > 12 || d < 1)
		return false;
	if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return d <= 29;
	return d <= days[m - 1];
}

bool vz_agb_valid(const char *agb)
{
	return vz_digits(agb, 8);
}

/* Adds an element; a failure (out of memory) clears *ok and the rest of the
 * document is still built harmlessly, then thrown away. */
static xmlNodePtr add(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text, bool *ok)
{
	xmlNodePtr n =
		parent ? xmlNewTextChild(parent, ns, BAD_CAST name, text ? BAD_CAST text : NULL)
		       : NULL;

	*ok &= n != NULL;
	return n;
}

/* The one place a date is written into the request: VZ801 dates go as
 * YYYY-MM-DD [inferred: no public source shows the schema type], which is
 * also how a vz_cov_search holds them; another wire form changes here. */
static void add_date(xmlNodePtr q, xmlNsPtr typ, const char *name, const char *ymd, bool *ok)
{
	char text[11];

	snprintf(text, sizeof(text), "%.10s", ymd);
	add(q, typ, name, text, ok);
}

static void add_search(xmlNodePtr list, xmlNsPtr typ, const vz_cov_search *s, bool *ok)
{
	xmlNodePtr q = add(list, typ, "Zoekopdracht", NULL, ok);
	char num[24];

	snprintf(num, sizeof(num), "%lu", s->seq);
	add(q, typ, "Volgnummer", num, ok);
	add_date(q, typ, "Geboortedatum", s->birthdate, ok);
	add_date(q, typ, "Peildatum", s->date, ok);
	add(q, typ, "Bsn", s->bsn, ok);
	if (s->reference[0])
		add(q, typ, "ReferentieZorgaanbieder", s->reference, ok);
}

vz_rv vz_cov_build(const vz_cov_search *s, size_t n, const char *agb, char **out, size_t *len,
		   vz_err *err)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr env, body, req, zoek;
	xmlNsPtr soap, v1, mes, typ;
	xmlChar *xml = NULL;
	int size = 0;
	bool ok = true;

	if (n == 0 || n > VZ_COV_MAX_SEARCHES || !doc) {
		xmlFreeDoc(doc);
		vz_err_set(err, "a COV request holds 1 to %d searches", VZ_COV_MAX_SEARCHES);
		return VZ_FAIL;
	}
	env = xmlNewNode(NULL, BAD_CAST "Envelope");
	if (env)
		xmlDocSetRootElement(doc, env);
	soap = env ? xmlNewNs(env, BAD_CAST NS_SOAP, BAD_CAST "soapenv") : NULL;
	v1 = env ? xmlNewNs(env, BAD_CAST NS_V1, BAD_CAST "v1") : NULL;
	mes = env ? xmlNewNs(env, BAD_CAST NS_MES, BAD_CAST "mes") : NULL;
	typ = env ? xmlNewNs(env, BAD_CAST NS_TYP, BAD_CAST "typ") : NULL;
	ok = soap && v1 && mes && typ;
	xmlSetNs(env, soap);
	add(env, soap, "Header", NULL, &ok);
	body = add(env, soap, "Body", NULL, &ok);
	req = add(add(body, v1, "Controleer", NULL, &ok), v1, "request", NULL, &ok);
	if (agb) {
		char kind[3], number[7];

		snprintf(kind, sizeof(kind), "%.2s", agb);
		snprintf(number, sizeof(number), "%.6s", agb + 2);
		zoek = add(req, mes, "Zorgaanbieder", NULL, &ok);
		add(zoek, typ, "AGB-zorgverlenersoort", kind, &ok);
		add(zoek, typ, "AGB-nummer", number, &ok);
	}
	zoek = add(req, mes, "Zoekopdrachten", NULL, &ok);
	for (size_t i = 0; i < n; i++)
		add_search(zoek, typ, &s[i], &ok);
	if (ok)
		xmlDocDumpMemoryEnc(doc, &xml, &size, "UTF-8");
	xmlFreeDoc(doc);
	if (!xml || size <= 0) {
		xmlFree(xml);
		vz_err_set(err, "cannot build the COV request (out of memory)");
		return VZ_FAIL;
	}
	*out = malloc((size_t)size + 1);
	if (!*out) {
		xmlFree(xml);
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	memcpy(*out, xml, (size_t)size + 1);
	*len = (size_t)size;
	xmlFree(xml);
	return VZ_OK;
}

void vz_cov_result_clear(vz_cov_result *r)
{
	char **strs[] = {&r->result,  &r->reference, &r->person_result, &r->initials, &r->prefix,
			 &r->surname, &r->birthdate, &r->gender,	&r->bsn};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	for (size_t i = 0; i < r->n_ins; i++) {
		vz_cov_insurance *v = &r->ins[i];
		char *f[] = {v->status,	      v->uzovi,	       v->insured_number, v->kind,
			     v->package_code, v->package_name, v->label_code,	  v->label_name,
			     v->start,	      v->end};

		for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
			free(f[j]);
	}
	free(r->ins);
	memset(r, 0, sizeof(*r));
}

static bool is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* First element child with this local name, whatever its namespace. */
static xmlNodePtr child(const xmlNode *n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* Depth-first search for an element by local name, bounded in depth. */
static xmlNodePtr find(xmlNodePtr n, const char *name, int depth)
{
	if (!n || depth > 12)
		return NULL;
	if (is(n, name))
		return n;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		xmlNodePtr f = find(c, name, depth + 1);

		if (f)
			return f;
	}
	return NULL;
}

/* Text of a child element, malloc'ed, cleaned of control characters (it
 * goes to terminals and logs) and trimmed; NULL when absent or empty. */
static char *text(const xmlNode *n, const char *name)
{
	xmlNodePtr c = child(n, name);
	xmlChar *t;
	char *s, *b;
	size_t len;

	if (!c)
		return NULL;
	t = xmlNodeGetContent(c);
	s = t ? strdup((const char *)t) : NULL;
	xmlFree(t);
	if (!s)
		return NULL;
	vz_text_clean(s);
	for (b = s; *b == ' '; b++)
		;
	len = strlen(b);
	while (len > 0 && b[len - 1] == ' ')
		len--;
	memmove(s, b, len);
	s[len] = '\0';
	if (len == 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void parse_person(xmlNodePtr v, vz_cov_result *r)
{
	char *dead = text(v, "Overleden");
	xmlNodePtr list = child(v, "Verzekeringen");
	size_t n = 0;

	r->has_person = true;
	r->person_result = text(v, "Resultaat");
	r->initials = text(v, "Voorletters");
	r->prefix = text(v, "Voorvoegsel1");
	r->surname = text(v, "Achternaam1");
	r->birthdate = text(v, "Geboortedatum");
	r->gender = text(v, "Geslacht");
	r->bsn = text(v, "Bsn");
	r->deceased = dead && strcmp(dead, "true") == 0;
	free(dead);
	for (xmlNodePtr c = list ? list->children : NULL; c; c = c->next)
		n += is(c, "Verzekering");
	if (n == 0)
		return;
	r->ins = calloc(n, sizeof(*r->ins));
	if (!r->ins)
		return;
	for (xmlNodePtr c = list->children; c; c = c->next) {
		vz_cov_insurance *i;

		if (!is(c, "Verzekering"))
			continue;
		i = &r->ins[r->n_ins++];
		i->status = text(c, "Resultaat");
		i->uzovi = text(c, "UZOVI");
		i->insured_number = text(c, "Verzekerdenummer");
		i->kind = text(c, "SoortVerzekering");
		i->package_code = text(c, "Pakketcode");
		i->package_name = text(c, "Pakketnaam");
		i->label_code = text(c, "Labelcode");
		i->label_name = text(c, "Labelnaam");
		i->start = text(c, "Ingangsdatum");
		i->end = text(c, "Einddatum");
	}
}

/* A fault text may quote the request back: runs of 8 or more digits (a BSN,
 * an insured number) are masked before it can reach a message. */
static void mask_numbers(char *s)
{
	size_t run = 0;

	for (size_t i = 0;; i++) {
		if (isdigit((unsigned char)s[i])) {
			run++;
			continue;
		}
		if (run >= 8)
			memset(s + i - run, '#', run);
		run = 0;
		if (!s[i])
			break;
	}
}

/* A Volgnummer: digits only, else 0, which no search carries. */
static unsigned long seq_number(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 9)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return strtoul(s, NULL, 10);
}

static vz_cov_fault_kind fault_kind(const char *s)
{
	char lower[256];
	size_t i;

	for (i = 0; s && s[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)s[i]);
	lower[i] = '\0';
	if (strstr(lower, "niet geauthenticeerd") || strstr(lower, "not authenticated"))
		return VZ_FAULT_NOT_AUTHENTICATED;
	if (strstr(lower, "niet geautoriseerd") || strstr(lower, "not authorized"))
		return VZ_FAULT_NOT_AUTHORIZED;
	return VZ_FAULT_OTHER;
}

/* A SOAP fault: what kind it is, and its text with numbers masked. */
static void read_fault(xmlNodePtr f, vz_cov_fault_kind *fault, char *detail, size_t detail_size)
{
	char *code = text(f, "faultcode");
	char *msg = text(f, "faultstring");
	char *det = NULL;
	xmlNodePtr d = child(f, "detail");

	if (d) {
		xmlChar *t = xmlNodeGetContent(d);

		det = t ? strdup((const char *)t) : NULL;
		xmlFree(t);
	}
	*fault = fault_kind(msg);
	if (*fault == VZ_FAULT_OTHER)
		*fault = fault_kind(det);
	snprintf(detail, detail_size, "%s%s%s", msg ? msg : "SOAP fault", code ? " / " : "",
		 code ? code : "");
	mask_numbers(detail);
	free(code);
	free(msg);
	free(det);
}

/* Each Zoekresultaat of res into results; VZ_COV_MALFORMED, none kept and
 * the reason in detail, when there are more than max. */
static vz_cov_status read_results(xmlNodePtr res, vz_cov_result *results, size_t max,
				  size_t *n_results, char *detail, size_t detail_size)
{
	xmlNodePtr list = child(res, "Zoekresultaten");

	for (xmlNodePtr c = list ? list->children : NULL; c; c = c->next) {
		vz_cov_result *r;
		char *seq;
		xmlNodePtr v;

		if (!is(c, "Zoekresultaat"))
			continue;
		if (*n_results == max) {
			for (size_t i = 0; i < max; i++)
				vz_cov_result_clear(&results[i]);
			*n_results = 0;
			snprintf(detail, detail_size,
				 _("the response holds more results than searches"));
			return VZ_COV_MALFORMED;
		}
		r = &results[*n_results];
		memset(r, 0, sizeof(*r));
		seq = text(c, "Volgnummer");
		r->seq = seq_number(seq);
		free(seq);
		r->result = text(c, "Resultaat");
		r->reference = text(c, "ReferentieZorgaanbieder");
		v = child(c, "Verzekerde");
		if (v)
			parse_person(v, r);
		(*n_results)++;
	}
	return VZ_COV_OK;
}

vz_cov_status vz_cov_parse(const char *body, size_t len, vz_cov_result *results, size_t max,
			   size_t *n_results, vz_cov_fault_kind *fault, char *detail,
			   size_t detail_size)
{
	xmlDocPtr doc;
	xmlNodePtr root, b, f, res;
	vz_cov_status st = VZ_COV_MALFORMED;
	char *top = NULL;

	*n_results = 0;
	*fault = VZ_FAULT_OTHER;
	detail[0] = '\0';
	if (len > (size_t)INT32_MAX)
		return VZ_COV_MALFORMED;
	/* No network, no entity expansion, no DTD: the response is untrusted. */
	doc = xmlReadMemory(body, (int)len, "response.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	/* SOAP forbids a DTD; one here could only be an entity bomb. */
	root = doc && !doc->intSubset ? xmlDocGetRootElement(doc) : NULL;
	b = is(root, "Envelope") ? child(root, "Body") : NULL;
	if (!b) {
		snprintf(detail, detail_size, _("the response is not a SOAP envelope"));
		goto out;
	}
	f = child(b, "Fault");
	if (f) {
		read_fault(f, fault, detail, detail_size);
		st = VZ_COV_FAULT;
		goto out;
	}
	res = find(b, "ControleerResult", 0);
	top = res ? text(res, "Resultaat") : NULL;
	if (!top) {
		snprintf(detail, detail_size, _("the response has no ControleerResult/Resultaat"));
		goto out;
	}
	snprintf(detail, detail_size, "%s", top);
	if (strcmp(top, "VerzoekAkkoord") != 0) {
		st = VZ_COV_REQUEST_REFUSED;
		goto out;
	}
	st = read_results(res, results, max, n_results, detail, detail_size);
out:
	free(top);
	xmlFreeDoc(doc);
	return st;
}
