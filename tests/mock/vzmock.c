/* vzmock.c - a local stand-in for VECOZO's COV service (VZ801/802), for
 * tests, benchmarks and the demo. HTTPS on 127.0.0.1 with libmicrohttpd and
 * GnuTLS, so the client's OpenSSL TLS is checked by another TLS stack.
 *
 *   vzmock --cert SERVER.pem --key SERVER.key --ca CA.pem --population P.json
 *          --rights R.txt [--port N] [--port-file F] [--stats F] [--idle-exit S]
 *          [--synthetic] [--delay MS] [--fault MODE [--fault-every K]]
 *          [--oversize BYTES] [--tls-priority STRING]
 *
 * Client certificates are verified against CA.pem. R.txt holds lines
 * "SHA256-FINGERPRINT RIGHT..." (hex, any case, colons allowed); a verified
 * certificate that is not listed gets the "Niet geauthenticeerd" fault, one
 * without the right "cov" gets "Niet geautoriseerd".
 * Fault modes: 500, 503 (with Retry-After: 1), reset (connection closed
 * mid-body), malformed (broken XML), oversized (a body of --oversize bytes),
 * refuse-after:N (no response at all from the Nth request on). --fault-every K
 * gives each request a 1 in K chance of the fault (default: every request).
 * Stats (JSON: connections, requests, searches, faults) are written to the
 * stats file after every request and at exit (SIGTERM, SIGINT, idle).
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <microhttpd.h>

#define NS_SOAP	   "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_V1	   "http://schemas.vecozo.nl/VZ801802/v1"
#define NS_TYP	   NS_V1 "/types"
#define MAX_UPLOAD (1 << 20)

static struct {
	json_t *population;
	char rights[64][2][80]; /* fingerprint, rights */
	int n_rights;
	bool synthetic;
	long delay_ms;
	const char *fault;
	long fault_every;
	long refuse_after;
	long oversize;
	const char *stats_path;
} cfg = {.fault_every = 1, .oversize = 64L << 20};

static atomic_long n_connections, n_requests, n_searches, n_faults;
static atomic_long last_activity;
static volatile sig_atomic_t stop;

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "vzmock: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		die("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_stats(void)
{
	char tmp[4096];
	FILE *f;

	if (!cfg.stats_path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cfg.stats_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f,
		"{\"connections\": %ld, \"requests\": %ld, \"searches\": %ld, \"faults\": %ld}\n",
		atomic_load(&n_connections), atomic_load(&n_requests), atomic_load(&n_searches),
		atomic_load(&n_faults));
	fclose(f);
	rename(tmp, cfg.stats_path);
}

static void load_rights(const char *path)
{
	char *text = slurp(path), *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char fp[128] = "", rights[80] = "";
		size_t w = 0;

		if (line[0] == '#' || sscanf(line, "%127s %79[^\n]", fp, rights) < 1)
			continue;
		if (cfg.n_rights == 64)
			break;
		for (char *p = fp; *p && w + 1 < sizeof(cfg.rights[0][0]); p++)
			if (*p != ':')
				cfg.rights[cfg.n_rights][0][w++] = (char)tolower((unsigned char)*p);
		cfg.rights[cfg.n_rights][0][w] = '\0';
		snprintf(cfg.rights[cfg.n_rights][1], sizeof(cfg.rights[0][1]), "%s", rights);
		cfg.n_rights++;
	}
	free(text);
}

/* ---- client certificate ---- */

enum auth {
	AUTH_OK,
	AUTH_UNKNOWN,
	AUTH_NO_RIGHT
};

static enum auth check_client(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t s;
	const gnutls_datum_t *certs;
	unsigned int n = 0, status = 0;
	unsigned char fp[32];
	size_t fplen = sizeof(fp);
	char hex[65];

	if (!ci || !ci->tls_session)
		return AUTH_UNKNOWN;
	s = (gnutls_session_t)ci->tls_session;
	certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n == 0 || gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0)
		return AUTH_UNKNOWN;
	if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &certs[0], fp, &fplen) != 0)
		return AUTH_UNKNOWN;
	for (size_t i = 0; i < fplen; i++)
		snprintf(hex + i * 2, 3, "%02x", fp[i]);
	for (int i = 0; i < cfg.n_rights; i++)
		if (strcmp(cfg.rights[i][0], hex) == 0)
			return strstr(cfg.rights[i][1], "cov") ? AUTH_OK : AUTH_NO_RIGHT;
	return AUTH_UNKNOWN;
}

/* ---- COV logic ---- */

static bool bsn_ok(const char *b)
{
	long sum = 0;

	if (strlen(b) != 9)
		return false;
	for (int i = 0; i < 9; i++) {
		if (!isdigit((unsigned char)b[i]))
			return false;
		sum += (long)(b[i] - '0') * (i < 8 ? 9 - i : -1);
	}
	return sum % 11 == 0;
}

static bool is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr find(xmlNodePtr n, const char *name)
{
	if (!n)
		return NULL;
	if (is(n, name))
		return n;
	for (xmlNodePtr c = n->children; c; c = c->next) {
		xmlNodePtr f = find(c, name);

		if (f)
			return f;
	}
	return NULL;
}

/* Text of a child element, "" when absent (caller frees with xmlFree). */
static char *get(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n->children; c; c = c->next)
		if (is(c, name))
			return (char *)xmlNodeGetContent(c);
	return NULL;
}

static json_t *lookup(const char *bsn)
{
	size_t i;
	json_t *p;

	json_array_foreach(cfg.population, i,
			   p) if (strcmp(json_string_value(json_object_get(p, "bsn")), bsn) ==
				  0) return json_incref(p);
	return NULL;
}

/* A made-up insured person for any valid BSN (benchmarks). */
static json_t *synthesize(const char *bsn, const char *birth)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:[{s:s, s:s, s:s, s:s, s:s, s:s, "
			 "s:s, s:s, s:n}]}",
			 "bsn", bsn, "birthdate", birth, "initials", "A.", "prefix", "van",
			 "surname", "Synthetisch", "gender", "Onbekend", "deceased", 0,
			 "insurances", "uzovi", "9999", "insured_number", bsn, "kind", "Basis",
			 "package_code", "B01", "package_name", "Basispakket", "label_code", "L01",
			 "label_name", "Mockverzekeraar", "start", "2000-01-01", "end");
}

static const char *js(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));

	return v ? v : NULL;
}

static xmlNodePtr add(xmlNodePtr p, xmlNsPtr ns, const char *name, const char *text)
{
	return xmlNewTextChild(p, ns, BAD_CAST name, text ? BAD_CAST text : NULL);
}

static void today_minus_years(char *out, int years)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_year -= years;
	strftime(out, 11, "%Y-%m-%d", &tm);
}

static bool active_on(json_t *ins, const char *date)
{
	const char *start = js(ins, "start"), *end = js(ins, "end");

	return start && strcmp(start, date) <= 0 && (!end || strcmp(date, end) <= 0);
}

/* One Zoekresultaat for one Zoekopdracht. */
static void answer(xmlNodePtr list, xmlNsPtr t, xmlNodePtr q)
{
	char *seq = get(q, "Volgnummer"), *birth = get(q, "Geboortedatum");
	char *date = get(q, "Peildatum"), *bsn = get(q, "Bsn"), *vnr = get(q, "Verzekerdenummer");
	char *pc = get(q, "Postcode"), *ref = get(q, "ReferentieZorgaanbieder");
	xmlNodePtr r = add(list, t, "Zoekresultaat", NULL), v, ins_list;
	char now[11], old[11];
	const char *result;
	json_t *p = NULL;
	int paths = (bsn != NULL) + (vnr != NULL) + (pc != NULL);
	size_t i, active = 0, basis_active = 0;
	json_t *ins;

	today_minus_years(now, 0);
	today_minus_years(old, 2);
	add(r, t, "Volgnummer", seq ? seq : "0");
	if (ref)
		add(r, t, "ReferentieZorgaanbieder", ref);
	if (paths == 0)
		result = "GeenGeldigZoekpad";
	else if (paths > 1)
		result = "MeerdereZoekpadenOpgegeven";
	else if (!bsn)
		result = "NietGevonden";
	else if (!bsn_ok(bsn))
		result = "BsnVoldoetNietAanElfProef";
	else if (date && strcmp(date, old) <= 0)
		result = "Peildatum2JaarOfOuder";
	else if (!(p = lookup(bsn)) && !(cfg.synthetic && birth && (p = synthesize(bsn, birth))))
		result = "BsnOnbekend";
	else if (js(p, "result"))
		result = js(p, "result");
	else if (!birth || strcmp(birth, js(p, "birthdate")) != 0)
		result = "CombinatieBsnGeboortedatumOnbekend";
	else
		result = date && strcmp(date, now) > 0 ? "GevondenPeildatumInToekomst" : "Gevonden";
	add(r, t, "Resultaat", result);
	if (p && strncmp(result, "Gevonden", 8) == 0) {
		v = add(r, t, "Verzekerde", NULL);
		json_array_foreach(json_object_get(p, "insurances"), i, ins)
		{
			if (active_on(ins, date ? date : now)) {
				active++;
				basis_active +=
					js(ins, "kind") && strcmp(js(ins, "kind"), "Basis") == 0;
			}
		}
		add(v, t, "Resultaat",
		    basis_active > 1 ? "DubbeleActieveVerzekeringenGevonden"
		    : active	     ? "ActieveVerzekeringen"
				     : "InactieveVerzekeringen");
		add(v, t, "Geboortedatum", js(p, "birthdate"));
		add(v, t, "Geslacht", js(p, "gender"));
		add(v, t, "Overleden",
		    json_is_true(json_object_get(p, "deceased")) ? "true" : "false");
		add(v, t, "Bsn", js(p, "bsn"));
		add(v, t, "Voorletters", js(p, "initials"));
		if (js(p, "prefix"))
			add(v, t, "Voorvoegsel1", js(p, "prefix"));
		add(v, t, "Achternaam1", js(p, "surname"));
		ins_list = add(v, t, "Verzekeringen", NULL);
		json_array_foreach(json_object_get(p, "insurances"), i, ins)
		{
			xmlNodePtr e = add(ins_list, t, "Verzekering", NULL);

			add(e, t, "Resultaat",
			    active_on(ins, date ? date : now) ? "Actief" : "Inactief");
			add(e, t, "UZOVI", js(ins, "uzovi"));
			add(e, t, "Verzekerdenummer", js(ins, "insured_number"));
			add(e, t, "SoortVerzekering", js(ins, "kind"));
			add(e, t, "Pakketcode", js(ins, "package_code"));
			add(e, t, "Pakketnaam", js(ins, "package_name"));
			add(e, t, "Labelcode", js(ins, "label_code"));
			add(e, t, "Labelnaam", js(ins, "label_name"));
			add(e, t, "Ingangsdatum", js(ins, "start"));
			if (js(ins, "end"))
				add(e, t, "Einddatum", js(ins, "end"));
		}
	}
	json_decref(p);
	xmlFree(seq);
	xmlFree(birth);
	xmlFree(date);
	xmlFree(bsn);
	xmlFree(vnr);
	xmlFree(pc);
	xmlFree(ref);
}

static xmlDocPtr envelope(xmlNodePtr *body, xmlNsPtr *soap)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr env = xmlNewNode(NULL, BAD_CAST "Envelope");

	xmlDocSetRootElement(doc, env);
	*soap = xmlNewNs(env, BAD_CAST NS_SOAP, BAD_CAST "s");
	xmlSetNs(env, *soap);
	*body = add(env, *soap, "Body", NULL);
	return doc;
}

static char *dump(xmlDocPtr doc, size_t *len)
{
	xmlChar *x = NULL;
	int n = 0;
	char *s;

	xmlDocDumpMemoryEnc(doc, &x, &n, "UTF-8");
	xmlFreeDoc(doc);
	s = malloc((size_t)n + 1);
	memcpy(s, x, (size_t)n + 1);
	xmlFree(x);
	*len = (size_t)n;
	return s;
}

static char *soap_fault(const char *code, const char *text, size_t *len)
{
	xmlNsPtr soap;
	xmlNodePtr body, f;
	xmlDocPtr doc = envelope(&body, &soap);

	f = add(body, soap, "Fault", NULL);
	add(f, NULL, "faultcode", code);
	add(f, NULL, "faultstring", text);
	add(add(f, NULL, "detail", NULL), NULL, "Melding", text);
	return dump(doc, len);
}

static char *controleer(const char *req, size_t req_len, size_t *len, int *status)
{
	xmlDocPtr in = xmlReadMemory(req, (int)req_len, "req.xml", NULL,
				     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr root = in ? xmlDocGetRootElement(in) : NULL;
	xmlNodePtr list = find(root, "Zoekopdrachten"), body, res, out;
	xmlNsPtr soap, v1, t;
	xmlDocPtr doc;
	size_t n = 0;

	if (!list) {
		xmlFreeDoc(in);
		*status = 500;
		return soap_fault("s:Client", "Ongeldig verzoek", len);
	}
	for (xmlNodePtr q = list->children; q; q = q->next)
		n += is(q, "Zoekopdracht");
	atomic_fetch_add(&n_searches, (long)n);
	doc = envelope(&body, &soap);
	v1 = xmlNewNs(xmlDocGetRootElement(doc), BAD_CAST NS_V1, BAD_CAST "a");
	t = xmlNewNs(xmlDocGetRootElement(doc), BAD_CAST NS_TYP, BAD_CAST "b");
	res = add(add(body, v1, "ControleerResponse", NULL), v1, "ControleerResult", NULL);
	add(res, t, "Resultaat",
	    n == 0   ? "GeenZoekopdrachten"
	    : n > 20 ? "MeerDan20Zoekopdrachten"
		     : "VerzoekAkkoord");
	if (n > 0 && n <= 20) {
		out = add(res, t, "Zoekresultaten", NULL);
		for (xmlNodePtr q = list->children; q; q = q->next)
			if (is(q, "Zoekopdracht"))
				answer(out, t, q);
	}
	xmlFreeDoc(in);
	*status = 200;
	return dump(doc, len);
}

/* ---- HTTP ---- */

struct upload {
	char *buf;
	size_t len;
	bool too_big;
};

struct partial {
	char *body;
	size_t len, sent, limit;
};

static ssize_t partial_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct partial *p = cls;
	size_t n;

	if (p->sent >= p->limit)
		return MHD_CONTENT_READER_END_WITH_ERROR; /* drops the connection */
	n = p->limit - p->sent < max ? p->limit - p->sent : max;
	memcpy(buf, p->body + p->sent, n);
	p->sent += n;
	return (ssize_t)n;
}

static void partial_free(void *cls)
{
	struct partial *p = cls;

	free(p->body);
	free(p);
}

static ssize_t big_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char chunk[] =
		"<b:Opvulling>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</b:Opvulling>\n";
	size_t n = 0;

	if (pos >= (uint64_t)cfg.oversize)
		return MHD_CONTENT_READER_END_OF_STREAM;
	while (n + sizeof(chunk) - 1 <= max && pos + n < (uint64_t)cfg.oversize) {
		memcpy(buf + n, chunk, sizeof(chunk) - 1);
		n += sizeof(chunk) - 1;
	}
	if (n == 0) {
		memset(buf, ' ', max);
		n = max;
	}
	return (ssize_t)n;
}

static enum MHD_Result send_body(struct MHD_Connection *c, int status, char *body, size_t len,
				 const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", "text/xml; charset=utf-8");
	if (retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Each request has a 1 in K chance: a fixed every-Kth pattern would hit the
 * same request again when retries arrive in lockstep. */
static bool fault_now(long req_no)
{
	static _Thread_local unsigned int seed;

	if (!seed)
		seed = (unsigned int)req_no * 2654435761u ^ (unsigned int)time(NULL);
	if (!cfg.fault || strcmp(cfg.fault, "none") == 0 || cfg.fault_every <= 0 ||
	    rand_r(&seed) % cfg.fault_every != 0)
		return false;
	atomic_fetch_add(&n_faults, 1);
	return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *data_size, void **con_cls)
{
	struct upload *u = *con_cls;
	long req_no;
	size_t len = 0;
	int status = 200;
	char *body;
	enum auth a;

	if (!u) {
		u = calloc(1, sizeof(*u));
		*con_cls = u;
		return u ? MHD_YES : MHD_NO;
	}
	if (*data_size) {
		if (u->len + *data_size > MAX_UPLOAD) {
			u->too_big = true;
		} else {
			char *g = realloc(u->buf, u->len + *data_size + 1);

			if (!g)
				return MHD_NO;
			u->buf = g;
			memcpy(u->buf + u->len, data, *data_size);
			u->len += *data_size;
		}
		*data_size = 0;
		return MHD_YES;
	}
	atomic_store(&last_activity, (long)time(NULL));
	req_no = atomic_fetch_add(&n_requests, 1) + 1;
	if (cfg.refuse_after > 0 && req_no >= cfg.refuse_after) {
		atomic_fetch_add(&n_faults, 1);
		write_stats();
		return MHD_NO; /* closes the connection without an answer */
	}
	if (cfg.delay_ms > 0)
		usleep((useconds_t)cfg.delay_ms * 1000);
	if (strcmp(method, "POST") != 0 || u->too_big) {
		write_stats();
		return send_body(c, 405, strdup("only POST"), 9, NULL);
	}
	a = check_client(c);
	if (a == AUTH_UNKNOWN)
		body = soap_fault("s:Client", "Niet geauthenticeerd", &len), status = 500;
	else if (a == AUTH_NO_RIGHT)
		body = soap_fault("s:Client", "Niet geautoriseerd", &len), status = 500;
	else
		body = controleer(u->buf ? u->buf : "", u->len, &len, &status);
	if (fault_now(req_no)) {
		const char *f = cfg.fault;

		if (strcmp(f, "500") == 0) {
			free(body);
			write_stats();
			return send_body(c, 500, strdup("<html>Internal error</html>"), 27, NULL);
		}
		if (strcmp(f, "503") == 0) {
			free(body);
			write_stats();
			return send_body(c, 503, strdup("busy"), 4, "1");
		}
		if (strcmp(f, "malformed") == 0) {
			len = len / 2;
			body[len] = '\0';
		} else if (strcmp(f, "reset") == 0) {
			struct partial *p = calloc(1, sizeof(*p));
			struct MHD_Response *r;
			enum MHD_Result ret;

			p->body = body;
			p->len = len;
			p->limit = len / 2;
			r = MHD_create_response_from_callback(len, 4096, partial_reader, p,
							      partial_free);
			MHD_add_response_header(r, "Content-Type", "text/xml; charset=utf-8");
			ret = MHD_queue_response(c, 200, r);
			MHD_destroy_response(r);
			write_stats();
			return ret;
		} else if (strcmp(f, "oversized") == 0) {
			struct MHD_Response *r = MHD_create_response_from_callback(
				(uint64_t)cfg.oversize, 65536, big_reader, NULL, NULL);
			enum MHD_Result ret;

			free(body);
			MHD_add_response_header(r, "Content-Type", "text/xml; charset=utf-8");
			ret = MHD_queue_response(c, 200, r);
			MHD_destroy_response(r);
			write_stats();
			return ret;
		}
	}
	write_stats();
	return send_body(c, status, body, len, NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct upload *u = *con_cls;

	if (u) {
		free(u->buf);
		free(u);
		*con_cls = NULL;
	}
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context,
		   enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&n_connections, 1);
}

static void on_signal(int sig)
{
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL, *ca = NULL, *pop = NULL, *rights = NULL;
	const char *port_file = NULL, *priority = NULL;
	long port = 0, idle_exit = 300;
	struct sockaddr_in addr;
	struct MHD_Daemon *d;
	char *certpem, *keypem, *capem, *poptext;
	json_error_t jerr;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

#define OPT(name) (strcmp(a, name) == 0 && v && ++i)
		if (OPT("--cert"))
			cert = v;
		else if (OPT("--key"))
			key = v;
		else if (OPT("--ca"))
			ca = v;
		else if (OPT("--population"))
			pop = v;
		else if (OPT("--rights"))
			rights = v;
		else if (OPT("--port"))
			port = atol(v);
		else if (OPT("--port-file"))
			port_file = v;
		else if (OPT("--stats"))
			cfg.stats_path = v;
		else if (OPT("--idle-exit"))
			idle_exit = atol(v);
		else if (OPT("--delay"))
			cfg.delay_ms = atol(v);
		else if (OPT("--fault"))
			cfg.fault = v;
		else if (OPT("--fault-every"))
			cfg.fault_every = atol(v);
		else if (OPT("--oversize"))
			cfg.oversize = atol(v);
		else if (OPT("--tls-priority"))
			priority = v;
		else if (strcmp(a, "--synthetic") == 0)
			cfg.synthetic = true;
		else
			die("unknown or incomplete option %s", a);
#undef OPT
	}
	if (!cert || !key || !ca || !pop || !rights)
		die("%s", "--cert, --key, --ca, --population and --rights are required");
	if (cfg.fault && strncmp(cfg.fault, "refuse-after:", 13) == 0) {
		cfg.refuse_after = atol(cfg.fault + 13);
		cfg.fault = NULL;
	}
	certpem = slurp(cert);
	keypem = slurp(key);
	capem = slurp(ca);
	poptext = slurp(pop);
	cfg.population = json_loads(poptext, 0, &jerr);
	if (!json_is_array(cfg.population))
		die("population file %s is not a JSON array", pop);
	free(poptext);
	load_rights(rights);

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
				     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
			     0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, &addr,
			     MHD_OPTION_HTTPS_MEM_CERT, certpem, MHD_OPTION_HTTPS_MEM_KEY, keypem,
			     MHD_OPTION_HTTPS_MEM_TRUST, capem, MHD_OPTION_HTTPS_PRIORITIES,
			     priority ? priority : "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1",
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			     MHD_OPTION_NOTIFY_CONNECTION, notify, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
	if (!d)
		die("%s", "cannot start the HTTPS server on 127.0.0.1");
	port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (port_file) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (!f)
			die("cannot write %s", port_file);
		fprintf(f, "%ld\n", port);
		fclose(f);
		rename(tmp, port_file);
	}
	atomic_store(&last_activity, (long)time(NULL));
	write_stats();
	while (!stop && time(NULL) - atomic_load(&last_activity) < idle_exit)
		usleep(100 * 1000);
	MHD_stop_daemon(d);
	write_stats();
	json_decref(cfg.population);
	free(certpem);
	free(keypem);
	free(capem);
	return 0;
}
