/* vzmock.c - a local stand-in for VECOZO's COV service (VZ801/802) and its
 * Berichtenservice REST services (billing; berichten.c), for tests,
 * benchmarks and the demo. HTTPS on 127.0.0.1 only, with libmicrohttpd and
 * GnuTLS, so the client's OpenSSL TLS is checked by another TLS stack.
 *
 *   vzmock --cert SERVER.pem --key SERVER.key --ca CA.pem --population P.json
 *          --rights R.txt [--port N] [--port-file F] [--stats F] [--idle-exit S]
 *          [--synthetic] [--delay MS] [--fault MODE [--fault-every K]]
 *          [--oversize BYTES] [--tls-priority STRING]
 *          [--push-delay MS] [--push-stall MS] [--hold FILE]
 *          [--push-fault 503|reset [--push-fault-every K]]
 *          [--retour N:SIZE]... [--retour-file PATH]... [--retour-corrupt K]
 *          [--retour-fault 503|reset|delay [--retour-fault-every K]] [--wrap-list]
 *          [--retour-url TEMPLATE]... [--contract-log F]
 *          [--delete-fault] [--delete-unknown] [--status-history]
 *          [--status-clock UTC:STEP] [--record F]
 *
 * --hold FILE: the waits of --delay (COV) and --push-stall end as soon as
 * FILE exists (checked every 50 ms), so a test can hold a request for as
 * long as it needs and no longer: give a long wait as the bound.
 *
 * --port 0 (the default) takes a free port, written to --port-file; the
 * server stops after --idle-exit seconds without activity (default 300), or
 * on SIGTERM/SIGINT. Paths under /berichtenservice/ are the REST services
 * (below); every other request is COV, as it always was.
 *
 * Client certificates are verified against CA.pem. R.txt holds lines
 * "SHA256-FINGERPRINT RIGHT..." (hex, any case, colons allowed); a verified
 * certificate that is not listed gets the "Niet geauthenticeerd" fault, one
 * without the right "cov" gets "Niet geautoriseerd".
 *
 * The VZ801 contract (docs: VECOZO.md, COV) is enforced after authentication.
 * A request that breaks it gets HTTP 500 with a SOAP 1.1 Fault, faultcode
 * s:Client, faultstring "Ongeldig verzoek: REASON"; the reason is logged to
 * stderr and counted in "violations". Checked:
 *  - header SOAPAction: http://schemas.vecozo.nl/VZ801802/v1/Controleer (bare
 *    or in double quotes); Content-Type text/xml, optionally ; charset=utf-8;
 *  - well-formed XML without a DTD: s:Envelope (s = SOAP 1.1) holding an
 *    optional s:Header (content not checked) and s:Body, the Body exactly
 *    v1:Controleer / v1:request (v1 = http://schemas.vecozo.nl/VZ801802/v1);
 *  - request: mes:Zorgaanbieder? (typ:AGB-zorgverlenersoort, 2 digits, then
 *    typ:AGB-nummer, 6 digits), then mes:Zoekopdrachten holding only
 *    typ:Zoekopdracht (mes = v1/messages, typ = v1/types);
 *  - each Zoekopdracht, all typ, in this order, each at most once, nothing
 *    else: Volgnummer, Geboortedatum, Peildatum (required), Bsn,
 *    Verzekerdenummer, Postcode, ReferentieZorgaanbieder, Huisnummer,
 *    Huisnummertoevoeging (optional); Volgnummer a number from 1 to 32767 (the
 *    WSDL's 16-bit short, as a public client generated from it has it) and
 *    unique in the request;
 *  - values hold text only, without control characters (C0 including tab,
 *    CR and LF, DEL, C1). Between elements, whitespace, comments and
 *    processing instructions are fine; other text is not.
 * 0 searches are answered Resultaat GeenZoekopdrachten, more than 20
 * MeerDan20Zoekopdrachten (answers, not faults).
 *
 * Fault modes (--fault MODE; --fault-every K gives each request a 1 in K
 * chance, default every request; "faults" counts those applied):
 *  transport: 500 (HTML body), 503 (with Retry-After: 1), reset (connection
 *    closed mid-body), malformed (broken XML), oversized (a body of
 *    --oversize bytes), refuse-after:N (no response at all from the Nth
 *    request on), none;
 *  fault-escape: HTTP 500 SOAP Fault (s:Server) whose faultstring and detail
 *    carry terminal control sequences (see control-chars);
 *  fault-escape-raw: the same with raw ESC/BEL bytes (not well-formed XML);
 * answer modes, well-formed but wrong; applied (and counted) only when the
 * answer has what they change:
 *  swap-bsn: every Verzekerde's Bsn becomes another valid BSN (another
 *    person's from the population, else a synthetic one);
 *  swap-birthdate: every Verzekerde's Geboortedatum is one day later than
 *    the one asked;
 *  dup-seq: the last Zoekresultaat gets the first one's Volgnummer (needs 2
 *    results: one number twice, one missing);
 *  unknown-seq: the last Zoekresultaat gets a Volgnummer one above the
 *    highest in the request;
 *  drop-result: the first Zoekresultaat is left out;
 *  control-chars: faultstring and Melding of a fault, or every Achternaam1 and
 *    Pakketnaam, get appended U+009B "2J" (C1 CSI: ESC [ 2 J), U+009D
 *    "0;vzmock" U+009C (C1 OSC title ... ST: ESC ] 0 ; title BEL), a CR
 *    (&#13;) and "Vervalst". XML 1.0 cannot carry ESC or BEL, even as &#27;,
 *    so these are their 8-bit forms;
 *  control-chars-raw: the same fields with raw ESC [ 2 J, ESC ] 0 ; vzmock
 *    BEL and CR: what a broken server might send; not well-formed XML, a
 *    conforming parser refuses the whole answer.
 * Stats (JSON: connections, requests, searches, faults, violations,
 * max_volgnummer, and the REST counters below) are written to the stats file
 * after every request and at exit (SIGTERM, SIGINT, idle). "connections"
 * counts every connection; "requests", "searches" and "violations" count COV
 * only, "max_volgnummer" is the highest Volgnummer of a request that kept the
 * contract; "faults" counts the faults applied of COV and REST.
 * --record F appends a line per request that reaches the mock, written when
 * its body is complete: "METHOD PATH LENGTH SHA256-HEX" of the body as the
 * mock received it (COV; "too-big" for both past 1 MiB), or "METHOD PATH - -"
 * at the start of a REST request (berichten.c reads those bodies). Tests
 * compare what arrived with what was sent.
 *
 * Berichtenservice REST (base https://localhost:PORT/berichtenservice; docs:
 * VECOZO.md, "Billing"). The COV --fault and --delay do not apply here
 * (--delay only sets the length of --retour-fault delay).
 *  - Every call: the client certificate must verify against CA.pem and be
 *    listed in R.txt, else 401 "Niet geauthenticeerd"; it must have the right
 *    "billing" (a word of its rights), else 403 "Niet geautoriseerd". Errors
 *    are problem details, Content-Type application/problem+json:
 *    {"type":"about:blank","title","status","detail"}, 400 adding
 *    "errors":{"FIELD":["message", ...]}, 422 adding "code". Then: an unknown
 *    path under /berichtenservice/ gets 404, a known one with another method
 *    405 (with Allow). An error found from the headers is answered at once
 *    when the client sent Expect: 100-continue, else after reading the body.
 *  - POST {base}/berichten/rest-push/v1/berichten: multipart/form-data (else
 *    415), at most 600 MiB (a larger Content-Length gets 413 at once; a
 *    chunked body that grows larger has its connection dropped). Parts:
 *    berichtMetadata (JSON, Content-Type application/json with any parameters,
 *    or none; at most 1 MiB) and payload (a file name ending in ".txt",
 *    lowercase; Content-Type application/octet-stream), each exactly once;
 *    other parts are ignored. The payload is streamed through SHA-256 and
 *    counted; only its first 64 KiB is kept. The metadata must hold, as the
 *    published push v1 schema has it,
 *    routeringgegevens{afzender{rol, code}, geadresseerden[1 to 100 of {rol,
 *    code}], berichtstroom{berichttype (1 to 60 characters), berichtsubtype
 *    (optional, 1 to 60), berichtversie and berichtsubversie (0 to 999: a JSON
 *    integer or a string of digits), actie (1 to 60)}} and
 *    referentiegegevens{conversatieId and traceerId (UUIDs, any case),
 *    alsAntwoordOp (optional UUID), referentieId (optional, 1 to 150
 *    characters)}, optionally verwerkingscontext [1 to 100 of {sleutel (1 to
 *    100), waarde [1 to 100 texts of 1 to 250]}]; roles Praktijk,
 *    Zorgverlener, Instelling (AGB code: 8 digits) or Zorgverzekeraar (UZOVI
 *    code: 4 digits); required strings not empty; null counts as absent; a
 *    key the schema does not list is refused ("Onbekend veld."). Every problem found
 *    is one message under its JSON path (routeringgegevens.afzender.code,
 *    routeringgegevens.geadresseerden[0].rol, ...; "berichtMetadata",
 *    "payload" or "multipart" for the parts themselves) -> 400; so does a
 *    payload whose first 64 KiB hold ONGELDIG (two "payload" messages). Then 422
 *    "Bericht geweigerd": code BRS01 when the afzender code is 00000000,
 *    code BRS02 when the first 64 KiB of the payload hold WEIGEREN.
 *    Otherwise 204 No Content, the message recorded (traceerId,
 *    conversatieId, berichtstroom, SHA-256, size, file name, arrival time,
 *    whether the first 64 KiB hold AFKEUREN); a traceerId already recorded
 *    (any case) gets 204 again and is not recorded twice.
 *    --push-delay MS: record, then sleep MS before answering.
 *    --push-stall MS: stop reading each push's body for MS (or until the
 *    --hold file exists) once its first bytes are in, saying so on stderr
 *    (a slow upload: nothing is recorded until it is whole).
 *    --push-fault 503|reset, --push-fault-every K (every Kth push, counted
 *    from the start, so that a client's retry gets through when K > 1;
 *    default every push; decided once the body is read, before the checks):
 *    503 with Retry-After: 1, or the connection dropped without an answer;
 *    either way nothing is recorded.
 *  - GET {base}/berichtstatus/rest-pull/v3/berichtstatussen?traceerId=UUID or
 *    ?conversatieId=UUID (exactly one of them, else 400): 200, a JSON array
 *    (empty when unknown) of {"referentiegegevens":{conversatieId, traceerId},
 *    "berichtstroom" (as pushed, versions as integers), "berichtstatus",
 *    "berichtstatusGewijzigdOp", "berichtOntvangenOp"} and "meldingen" only
 *    when there are some. Times as the published examples write them: Dutch
 *    local time with its offset, the fraction in 100 ns units without
 *    trailing zeros (2025-11-24T16:58:44.0867+01:00). Each answer that holds
 *    a message moves it on: the 1st says Ontvangen, the 2nd WordtVerwerkt,
 *    later ones VerwerkingVoltooid; a payload with AFKEUREN: Ontvangen, then
 *    AfgekeurdDoorDienst with meldingen [{"code":"AF01","omschrijving":
 *    "Bestand afgekeurd","toelichting":"Regel 3: onbekende prestatiecode"}].
 *    GewijzigdOp is the time of the answer that changed it.
 *    --status-history: an entry for every status the message had so far,
 *    oldest first, instead of the last one only.
 *    --status-clock UTC:STEP (UTC as YYYY-MM-DDTHH:MM:SSZ): the times are not
 *    the real clock's: the message arrives at UTC and its k-th change is at
 *    UTC + k * STEP seconds, with fractions .5, none and .25 in turn.
 *  - Return messages: a queue made at start, in option order, from --retour
 *    N:SIZE (N messages of SIZE bytes, suffix K, M or G for KiB, MiB, GiB;
 *    pseudo-random bytes generated from a fixed seed and the message's index,
 *    never held in memory) and --retour-file PATH (one message, served from
 *    the file). Both repeatable, at most 10000 messages. Message i (1-based)
 *    has traceerId 7e7e0000-0000-4000-8000-<i as 12 hex digits>, conversatieId
 *    c0c00000-0000-4000-8000-<i>, ontvangenOp oldest first, one second apart.
 *    Their SHA-256 are computed in the background after the start; list
 *    requests wait for that.
 *    GET {base}/berichten/rest-pull/v1/berichten?limit=N (1 to 250, default
 *    250, else 400): 200, a JSON array (with --wrap-list {"berichten":[...]})
 *    of at most N messages not deleted, oldest first, each
 *    {"routeringgegevens":{"afzender":{"rol":"Zorgverzekeraar","code":"3311"},
 *    "geadresseerden":[{"rol":"Praktijk","code":"01234567"}],"berichtstroom":
 *    {"berichttype":"Retourinformatie","berichtversie":1,"berichtsubversie":0,
 *    "actie":"Retourneren"}},"referentiegegevens":{conversatieId, traceerId},
 *    "basisgegevens":{"ontvangenOp","payload":{"url":"https://HOST/
 *    berichtenservice/berichten/rest-pull/v1/berichten/ID/payload","grootte":
 *    SIZE,"checksum":{"algoritme":"SHA256","waarde":HEX}}}} (HOST: the Host
 *    the client asked for; ontvangenOp in the status service's time form).
 *    --retour-url TEMPLATE (repeatable: message k takes the k-th, in turn)
 *    sets the payload URL instead: %h the Host, %p the mock's port, %i the
 *    traceerId, %% a '%'. {base}/downloads/ID serves payloads too.
 *    GET {base}/berichten/rest-pull/v1/berichten/ID/payload (or
 *    {base}/downloads/ID): 200
 *    application/octet-stream, streamed; DELETE {base}/berichten/rest-pull/
 *    v1/berichten/ID: 202, the message leaves the queue. An unknown or
 *    deleted ID gets 404. With --delete-fault every DELETE answers 503 (a
 *    receipt that never gets through); with --delete-unknown every DELETE
 *    answers 404 without a body (the contract's "not found or not
 *    authorised"), and the message stays waiting.
 *    --retour-corrupt K: message K is always served with its middle byte
 *    inverted (its checksum stays that of the right content).
 *    --retour-fault 503|reset|delay, --retour-fault-every K (every Kth list
 *    or payload request, after the limit and ID checks): 503 with
 *    Retry-After: 1; reset: a list gets no answer, a payload gets its headers
 *    and the first half of its body, then the connection drops; delay: sleeps
 *    --delay MS (1000 when not given), then answers as usual.
 *  - --contract-log F appends one JSON line per REST exchange, written when
 *    the answer is given: {"method", "path", "query": {NAME: VALUE},
 *    "request": {"content_type", "body_size", "body_read" (false: answered
 *    before the body came), and for a push "parts": [{"name",
 *    "content_type", "filename", "size"}] and "metadata" (its JSON, or its
 *    text when it is not JSON)}, "status" (0: the connection was dropped
 *    without an answer), "response": {"content_type", "size", "json" (a
 *    JSON answer)} or null, "deviates": the options that made this answer
 *    leave the published contract on purpose (--wrap-list, --retour-url)}.
 *    tests/tools/contract-check holds it to tests/contract/.
 *  - Stats: "pushes" (every POST to the push path, whatever its answer),
 *    "accepted" (204s for new traceerIds), "repeats" (204s for known ones),
 *    "max_per_content" (the most distinct traceerIds accepted with one
 *    payload SHA-256), "status_queries" and "retour_lists" (GETs of the status
 *    and the list path, whatever the answer), "retour_downloads" (payloads
 *    answered 200, faulted ones included), "retour_deleted" (202s),
 *    "retour_waiting" (messages not deleted).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <microhttpd.h>

#include "berichten.h"

#define NS_SOAP	    "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_V1	    "http://schemas.vecozo.nl/VZ801802/v1"
#define NS_TYP	    NS_V1 "/types"
#define NS_MES	    NS_V1 "/messages"
#define SOAP_ACTION NS_V1 "/Controleer"
#define MAX_UPLOAD  (1 << 20)

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
	const char *record_path;
	const char *hold_path;
} cfg = {.fault_every = 1, .oversize = 64L << 20};

static atomic_long n_connections, n_requests, n_searches, n_faults, n_violations;
static atomic_long max_volgnummer; /* the highest Volgnummer a valid request held */
static atomic_long last_activity;
static volatile sig_atomic_t stop;

static _Noreturn void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "vzmock: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

void mock_die(const char *fmt, const char *arg)
{
	die(fmt, arg);
}

void mock_touch(void)
{
	atomic_store(&last_activity, (long)time(NULL));
}

void mock_count_fault(void)
{
	atomic_fetch_add(&n_faults, 1);
}

long mock_delay_ms(void)
{
	return cfg.delay_ms;
}

void mock_wait(long ms)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long left;

		if (cfg.hold_path && access(cfg.hold_path, F_OK) == 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0)
			return;
		usleep((useconds_t)(left < 50 ? left : 50) * 1000);
	}
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
	static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
	char tmp[4096];
	FILE *f;

	if (!cfg.stats_path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cfg.stats_path);
	pthread_mutex_lock(&stats_lock); /* one writer of the .tmp file at a time */
	f = fopen(tmp, "w");
	if (f) {
		fprintf(f,
			"{\"connections\": %ld, \"requests\": %ld, \"searches\": %ld, "
			"\"faults\": %ld, \"violations\": %ld, \"max_volgnummer\": %ld",
			atomic_load(&n_connections), atomic_load(&n_requests),
			atomic_load(&n_searches), atomic_load(&n_faults),
			atomic_load(&n_violations), atomic_load(&max_volgnummer));
		berichten_stats(f);
		fprintf(f, "}\n");
		fclose(f);
		rename(tmp, cfg.stats_path);
	}
	pthread_mutex_unlock(&stats_lock);
}

void mock_write_stats(void)
{
	write_stats();
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

/* Per connection: the rights of its client certificate, once looked up. */
struct conn_rights {
	bool known;
	const char *rights;
};

static const char *lookup_rights(struct MHD_Connection *c);

/* The client certificate is verified and looked up once per connection,
 * as a real server does in its handshake, not once per request. */
const char *mock_rights(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_rights *cr = ci ? ci->socket_context : NULL;

	if (!cr)
		return lookup_rights(c);
	if (!cr->known) {
		cr->rights = lookup_rights(c);
		cr->known = true;
	}
	return cr->rights;
}

static const char *lookup_rights(struct MHD_Connection *c)
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
		return NULL;
	s = (gnutls_session_t)ci->tls_session;
	certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n == 0 || gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0)
		return NULL;
	if (gnutls_fingerprint(GNUTLS_DIG_SHA256, &certs[0], fp, &fplen) != 0)
		return NULL;
	for (size_t i = 0; i < fplen; i++)
		snprintf(hex + i * 2, 3, "%02x", fp[i]);
	for (int i = 0; i < cfg.n_rights; i++)
		if (strcmp(cfg.rights[i][0], hex) == 0)
			return cfg.rights[i][1];
	return NULL;
}

static enum auth check_client(struct MHD_Connection *c)
{
	const char *rights = mock_rights(c);

	if (!rights)
		return AUTH_UNKNOWN;
	return strstr(rights, "cov") ? AUTH_OK : AUTH_NO_RIGHT;
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

/* ---- the VZ801 contract ---- */

#define WHY_MAX 160

static bool refuse(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, WHY_MAX, fmt, ap);
	va_end(ap);
	return false;
}

static bool in_ns(const xmlNode *n, const char *ns)
{
	return n->ns && n->ns->href && strcmp((const char *)n->ns->href, ns) == 0;
}

/* Whitespace, comments and processing instructions may sit between elements. */
static bool filler(const xmlNode *n)
{
	if (n->type == XML_COMMENT_NODE || n->type == XML_PI_NODE)
		return true;
	if (n->type != XML_TEXT_NODE && n->type != XML_CDATA_SECTION_NODE)
		return false;
	for (const xmlChar *p = n->content; p && *p; p++)
		if (!strchr(" \t\r\n", *p))
			return false;
	return true;
}

struct slot {
	const char *name, *ns;
	bool required;
};

/* The element children of parent against a sequence of slots, each at most
 * once; found[i] gets the element for slot i, or NULL. */
static bool check_seq(const xmlNode *parent, const struct slot *s, size_t ns, xmlNodePtr *found,
		      char *why)
{
	const char *pname = (const char *)parent->name;
	size_t next = 0; /* the first slot still open */

	for (size_t i = 0; i < ns; i++)
		found[i] = NULL;
	for (xmlNodePtr c = parent->children; c; c = c->next) {
		const char *name = (const char *)c->name;
		size_t k = 0;

		if (c->type != XML_ELEMENT_NODE) {
			if (!filler(c))
				return refuse(why, "unexpected text in %s", pname);
			continue;
		}
		while (k < ns && strcmp(name, s[k].name) != 0)
			k++;
		if (k == ns)
			return refuse(why, "unknown element %.60s in %s", name, pname);
		if (!in_ns(c, s[k].ns))
			return refuse(why, "wrong namespace for %s", name);
		if (found[k])
			return refuse(why, "element %s more than once", name);
		if (k < next)
			return refuse(why, "element %s out of order", name);
		for (size_t j = next; j < k; j++) {
			if (!s[j].required)
				continue;
			for (xmlNodePtr l = c->next; l; l = l->next)
				if (is(l, s[j].name))
					return refuse(why, "element %s out of order", name);
			return refuse(why, "element %s missing in %s", s[j].name, pname);
		}
		found[k] = c;
		next = k + 1;
	}
	for (size_t j = next; j < ns; j++)
		if (s[j].required)
			return refuse(why, "element %s missing in %s", s[j].name, pname);
	return true;
}

/* A value: text only, no control characters (C0, DEL, C1 as UTF-8). */
static bool check_value(const xmlNode *e, char *why)
{
	const char *name = (const char *)e->name;
	xmlChar *t;
	bool ok = true;

	for (xmlNodePtr c = e->children; c; c = c->next)
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE &&
		    c->type != XML_COMMENT_NODE)
			return refuse(why, "element %s holds more than text", name);
	t = xmlNodeGetContent(e);
	for (const unsigned char *p = t; p && *p && ok; p++)
		ok = *p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f);
	xmlFree(t);
	return ok || refuse(why, "control character in %s", name);
}

/* A value of min to max digits, spaces around allowed; its number in *num. */
static bool check_digits(const xmlNode *e, size_t min, size_t max, unsigned long long *num,
			 char *why)
{
	xmlChar *t = xmlNodeGetContent(e);
	const char *p = t ? (const char *)t : "";
	size_t n;
	bool ok;

	p += strspn(p, " ");
	n = strspn(p, "0123456789");
	ok = n >= min && n <= max && p[n + strspn(p + n, " ")] == '\0';
	if (ok && num)
		*num = strtoull(p, NULL, 10);
	xmlFree(t);
	if (ok)
		return true;
	if (min == max)
		return refuse(why, "%s is not %zu digits", (const char *)e->name, min);
	return refuse(why, "%s is not a number of %zu to %zu digits", (const char *)e->name, min,
		      max);
}

static int cmp_ull(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;

	return x < y ? -1 : x > y;
}

static bool check_search(const xmlNode *q, unsigned long long *seq, char *why)
{
	static const struct slot s[] = {
		{"Volgnummer", NS_TYP, true},
		{"Geboortedatum", NS_TYP, true},
		{"Peildatum", NS_TYP, true},
		{"Bsn", NS_TYP, false},
		{"Verzekerdenummer", NS_TYP, false},
		{"Postcode", NS_TYP, false},
		{"ReferentieZorgaanbieder", NS_TYP, false},
		{"Huisnummer", NS_TYP, false},
		{"Huisnummertoevoeging", NS_TYP, false},
	};
	xmlNodePtr f[sizeof(s) / sizeof(s[0])];

	if (!check_seq(q, s, sizeof(s) / sizeof(s[0]), f, why))
		return false;
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (f[i] && !check_value(f[i], why))
			return false;
	if (!check_digits(f[0], 1, 18, seq, why))
		return false;
	if (*seq < 1 || *seq > 32767)
		return refuse(why, "Volgnummer %llu is outside 1..32767 (a 16-bit short)", *seq);
	return true;
}

/* The HTTP headers of a SOAP 1.1 call. */
static bool check_headers(struct MHD_Connection *c, char *why)
{
	const char *action = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "SOAPAction");
	const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	size_t n = strlen(SOAP_ACTION), len;
	bool ok;

	if (action) {
		action += strspn(action, " \t");
		len = strlen(action);
		while (len > 0 && (action[len - 1] == ' ' || action[len - 1] == '\t'))
			len--;
		if (len == n + 2 && action[0] == '"' && action[len - 1] == '"')
			action++, len -= 2;
	}
	if (!action || len != n || strncmp(action, SOAP_ACTION, n) != 0)
		return refuse(why, "SOAPAction missing or wrong");
	ok = type != NULL;
	if (ok) {
		type += strspn(type, " \t");
		ok = strncasecmp(type, "text/xml", 8) == 0;
		type += 8;
	}
	while (ok) {
		type += strspn(type, " \t");
		if (*type == '\0')
			break;
		ok = *type++ == ';';
		type += strspn(type, " \t");
		if (ok && strncasecmp(type, "charset=\"utf-8\"", 15) == 0)
			type += 15;
		else if (ok && strncasecmp(type, "charset=utf-8", 13) == 0)
			type += 13;
		else
			ok = false;
	}
	return ok || refuse(why, "Content-Type not text/xml (charset=utf-8 allowed)");
}

/* The SOAP body of a VZ801 request; *list gets its Zoekopdrachten. */
static bool check_request(xmlDocPtr in, xmlNodePtr *list, size_t *n, char *why)
{
	static const struct slot env_s[] = {{"Header", NS_SOAP, false}, {"Body", NS_SOAP, true}};
	static const struct slot body_s[] = {{"Controleer", NS_V1, true}};
	static const struct slot ctl_s[] = {{"request", NS_V1, true}};
	static const struct slot req_s[] = {{"Zorgaanbieder", NS_MES, false},
					    {"Zoekopdrachten", NS_MES, true}};
	static const struct slot agb_s[] = {{"AGB-zorgverlenersoort", NS_TYP, true},
					    {"AGB-nummer", NS_TYP, true}};
	xmlNodePtr root = in ? xmlDocGetRootElement(in) : NULL, f[2], req;
	unsigned long long *seqs;
	size_t cap = 0;
	bool ok = true;

	if (!root)
		return refuse(why, "not well-formed XML");
	if (in->intSubset)
		return refuse(why, "a DTD is not allowed in SOAP");
	if (!is(root, "Envelope"))
		return refuse(why, "root element %.60s is not Envelope", (const char *)root->name);
	if (!in_ns(root, NS_SOAP))
		return refuse(why, "wrong namespace for Envelope (SOAP 1.1 expected)");
	if (!check_seq(root, env_s, 2, f, why) || !check_seq(f[1], body_s, 1, f, why) ||
	    !check_seq(f[0], ctl_s, 1, f, why))
		return false;
	req = f[0];
	if (!check_seq(req, req_s, 2, f, why))
		return false;
	*list = f[1];
	if (f[0]) {
		xmlNodePtr agb = f[0];

		if (!check_seq(agb, agb_s, 2, f, why) || !check_value(f[0], why) ||
		    !check_value(f[1], why) || !check_digits(f[0], 2, 2, NULL, why) ||
		    !check_digits(f[1], 6, 6, NULL, why))
			return false;
	}
	*n = 0;
	for (xmlNodePtr c = (*list)->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE) {
			if (!filler(c))
				return refuse(why, "unexpected text in Zoekopdrachten");
			continue;
		}
		if (!is(c, "Zoekopdracht"))
			return refuse(why, "unknown element %.60s in Zoekopdrachten",
				      (const char *)c->name);
		if (!in_ns(c, NS_TYP))
			return refuse(why, "wrong namespace for Zoekopdracht");
		cap++;
	}
	seqs = calloc(cap + 1, sizeof(*seqs));
	if (!seqs)
		return refuse(why, "out of memory");
	for (xmlNodePtr c = (*list)->children; c && ok; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			ok = check_search(c, &seqs[(*n)++], why);
	if (ok) {
		qsort(seqs, *n, sizeof(*seqs), cmp_ull);
		for (size_t i = 1; i < *n && ok; i++)
			if (seqs[i] == seqs[i - 1])
				ok = refuse(why, "Volgnummer %llu is not unique", seqs[i]);
	}
	for (long top = atomic_load(&max_volgnummer);
	     ok && *n && (long)seqs[*n - 1] > top &&
	     !atomic_compare_exchange_weak(&max_volgnummer, &top, (long)seqs[*n - 1]);)
		;
	free(seqs);
	return ok;
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

/* An unqualified child (SOAP 1.1 Fault parts); xmlNewTextChild would put it
 * in the parent's namespace. */
static xmlNodePtr add_bare(xmlNodePtr p, const char *name, const char *text)
{
	xmlNodePtr e = xmlNewDocNode(p->doc, NULL, BAD_CAST name, NULL);

	xmlAddChild(p, e);
	if (text)
		xmlNodeAddContent(e, BAD_CAST text);
	return e;
}

static xmlDocPtr fault_doc(const char *code, const char *text)
{
	xmlNsPtr soap;
	xmlNodePtr body, f;
	xmlDocPtr doc = envelope(&body, &soap);

	f = add(body, soap, "Fault", NULL);
	add_bare(f, "faultcode", code);
	add_bare(f, "faultstring", text);
	add_bare(add_bare(f, "detail", NULL), "Melding", text);
	return doc;
}

static xmlDocPtr controleer(struct MHD_Connection *c, const char *req, size_t req_len, long req_no,
			    int *status)
{
	xmlDocPtr in = xmlReadMemory(req, (int)req_len, "req.xml", NULL,
				     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr list = NULL, body, res, out;
	xmlNsPtr soap, v1, t;
	xmlDocPtr doc;
	char why[WHY_MAX], text[WHY_MAX + 32];
	size_t n = 0;

	if (!check_headers(c, why) || !check_request(in, &list, &n, why)) {
		xmlFreeDoc(in);
		atomic_fetch_add(&n_violations, 1);
		fprintf(stderr, "vzmock: request %ld refused: %s\n", req_no, why);
		snprintf(text, sizeof(text), "Ongeldig verzoek: %s", why);
		*status = 500;
		return fault_doc("s:Client", text);
	}
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
	return doc;
}

/* ---- wrong answers (fault modes) ---- */

static const char *const answer_modes[] = {"swap-bsn",	       "swap-birthdate", "dup-seq",
					   "unknown-seq",      "drop-result",	 "control-chars",
					   "control-chars-raw"};
static const char *const other_modes[] = {
	"none",	     "500",	  "503",	  "reset",
	"malformed", "oversized", "fault-escape", "fault-escape-raw"};

static bool answer_mode(const char *m)
{
	for (size_t i = 0; i < sizeof(answer_modes) / sizeof(answer_modes[0]); i++)
		if (strcmp(m, answer_modes[i]) == 0)
			return true;
	return false;
}

static bool known_mode(const char *m)
{
	for (size_t i = 0; i < sizeof(other_modes) / sizeof(other_modes[0]); i++)
		if (strcmp(m, other_modes[i]) == 0)
			return true;
	return answer_mode(m);
}

/* Terminal control sequences: clear screen, set the window title, carriage
 * return. XML 1.0 cannot carry ESC or BEL, so the well-formed kind uses the
 * C1 forms CSI (U+009B) and OSC (U+009D) ... ST (U+009C). */
#define ESCAPES_C1  "\302\2332J\302\2350;vzmock\302\234\rVervalst" /* octal: UTF-8 */
#define ESCAPES_RAW "\x1b[2J\x1b]0;vzmock\x07\rVervalst"

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* Every element with this local name under n, in document order (at most max). */
static size_t collect(xmlNodePtr n, const char *name, xmlNodePtr *out, size_t max, size_t k)
{
	for (; n; n = n->next) {
		if (is(n, name) && k < max)
			out[k++] = n;
		if (n->type == XML_ELEMENT_NODE)
			k = collect(n->children, name, out, max, k);
	}
	return k;
}

static void set_text(xmlNodePtr e, const char *text)
{
	xmlNodeSetContent(e, NULL);
	xmlNodeAddContent(e, BAD_CAST text);
}

/* Another valid BSN: another person's from the population, else synthetic. */
static void other_bsn(const char *bsn, char out[10])
{
	unsigned long stem = 0;
	size_t i;
	json_t *p;

	json_array_foreach(cfg.population, i, p)
	{
		const char *b = js(p, "bsn");

		if (b && bsn_ok(b) && strcmp(b, bsn) != 0) {
			snprintf(out, 10, "%s", b);
			return;
		}
	}
	for (i = 0; i < 8 && isdigit((unsigned char)bsn[i]); i++)
		stem = stem * 10 + (unsigned long)(bsn[i] - '0');
	for (;;) {
		long sum = 0;

		stem = (stem + 1) % 100000000UL;
		snprintf(out, 10, "%08lu", stem);
		for (i = 0; i < 8; i++)
			sum += (long)(out[i] - '0') * (long)(9 - i);
		if (sum % 11 > 9)
			continue;
		out[8] = (char)('0' + sum % 11);
		out[9] = '\0';
		if (bsn_ok(out) && strcmp(out, bsn) != 0 && strcmp(out, "000000000") != 0)
			return;
	}
}

static void next_day(const char *date, char out[11])
{
	struct tm tm = {0};
	int y, m, d;
	time_t t;

	if (!date || sscanf(date, "%4d-%2d-%2d", &y, &m, &d) != 3) {
		snprintf(out, 11, "1900-01-01");
		return;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d + 1;
	tm.tm_hour = 12;
	t = timegm(&tm);
	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Makes a well-formed answer wrong the way mode says; false when the answer
 * has nothing that mode changes. */
static bool mutate(xmlDocPtr doc, const char *mode)
{
	xmlNodePtr root = xmlDocGetRootElement(doc), e[4096];
	size_t n = 0;

	if (strncmp(mode, "control-chars", 13) == 0) {
		const char *esc = strcmp(mode, "control-chars") == 0 ? ESCAPES_C1 : ESCAPES_RAW;
		const char *fields[] = {"faultstring", "Melding", "Achternaam1", "Pakketnaam"};

		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			size_t k = collect(root, fields[f], e, sizeof(e) / sizeof(e[0]), 0);

			for (size_t i = 0; i < k; i++)
				xmlNodeAddContent(e[i], BAD_CAST esc);
			n += k;
		}
		return n > 0;
	}
	if (strncmp(mode, "swap-", 5) == 0) {
		n = collect(root, "Verzekerde", e, sizeof(e) / sizeof(e[0]), 0);
		for (size_t i = 0; i < n; i++) {
			xmlNodePtr f = child(e[i], strcmp(mode, "swap-bsn") == 0 ? "Bsn"
										 : "Geboortedatum");
			xmlChar *old = f ? xmlNodeGetContent(f) : NULL;
			char out[11];

			if (!f)
				continue;
			if (strcmp(mode, "swap-bsn") == 0)
				other_bsn(old ? (const char *)old : "", out);
			else
				next_day((const char *)old, out);
			set_text(f, out);
			xmlFree(old);
		}
		return n > 0;
	}
	n = collect(root, "Zoekresultaat", e, sizeof(e) / sizeof(e[0]), 0);
	if (strcmp(mode, "drop-result") == 0 && n > 0) {
		xmlUnlinkNode(e[0]);
		xmlFreeNode(e[0]);
		return true;
	}
	if (strcmp(mode, "dup-seq") == 0 && n > 1) {
		xmlChar *first = xmlNodeGetContent(child(e[0], "Volgnummer"));

		set_text(child(e[n - 1], "Volgnummer"), (const char *)first);
		xmlFree(first);
		return true;
	}
	if (strcmp(mode, "unknown-seq") == 0 && n > 0) {
		unsigned long long max = 0;
		char num[24];

		for (size_t i = 0; i < n; i++) {
			xmlChar *s = xmlNodeGetContent(child(e[i], "Volgnummer"));
			unsigned long long v = s ? strtoull((const char *)s, NULL, 10) : 0;

			max = v > max ? v : max;
			xmlFree(s);
		}
		snprintf(num, sizeof(num), "%llu", max + 1);
		set_text(child(e[n - 1], "Volgnummer"), num);
		return true;
	}
	return false;
}

/* ---- HTTP ---- */

struct upload {
	bool rest; /* false; the state of a REST request starts with true */
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
 * same request again when retries arrive in lockstep. The caller counts the
 * fault once it is applied. */
static bool fault_now(long req_no)
{
	static _Thread_local unsigned int seed;

	if (!seed)
		seed = (unsigned int)req_no * 2654435761u ^ (unsigned int)time(NULL);
	if (!cfg.fault || strcmp(cfg.fault, "none") == 0 || cfg.fault_every <= 0 ||
	    rand_r(&seed) % cfg.fault_every != 0)
		return false;
	return true;
}

/* One --record line; u NULL: a REST request, whose body berichten.c reads. */
static void record(const char *method, const char *url, const struct upload *u)
{
	static pthread_mutex_t record_lock = PTHREAD_MUTEX_INITIALIZER;
	unsigned char md[32];
	char hex[65] = "-", size[32] = "-";
	FILE *f;

	if (!cfg.record_path)
		return;
	if (u && u->too_big) {
		strcpy(size, "too-big");
		strcpy(hex, "too-big");
	} else if (u) {
		if (gnutls_hash_fast(GNUTLS_DIG_SHA256, u->buf ? u->buf : "", u->len, md) != 0)
			die("%s", "cannot hash a request body for --record");
		for (size_t i = 0; i < sizeof(md); i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		snprintf(size, sizeof(size), "%zu", u->len);
	}
	pthread_mutex_lock(&record_lock);
	f = fopen(cfg.record_path, "a");
	if (!f)
		die("cannot append to %s", cfg.record_path);
	fprintf(f, "%s %s %s %s\n", method, url, size, hex);
	fclose(f);
	pthread_mutex_unlock(&record_lock);
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
	const char *mode = NULL;
	xmlDocPtr doc;
	enum auth a;

	if (berichten_path(url)) {
		if (!u)
			record(method, url, NULL);
		return berichten_handle(c, url, method, data, data_size, con_cls);
	}
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
	record(method, url, u);
	req_no = atomic_fetch_add(&n_requests, 1) + 1;
	if (cfg.refuse_after > 0 && req_no >= cfg.refuse_after) {
		atomic_fetch_add(&n_faults, 1);
		write_stats();
		return MHD_NO; /* closes the connection without an answer */
	}
	if (cfg.delay_ms > 0)
		mock_wait(cfg.delay_ms);
	if (strcmp(method, "POST") != 0 || u->too_big) {
		write_stats();
		return send_body(c, 405, strdup("only POST"), 9, NULL);
	}
	if (fault_now(req_no))
		mode = cfg.fault;
	a = check_client(c);
	if (a == AUTH_UNKNOWN)
		doc = fault_doc("s:Client", "Niet geauthenticeerd"), status = 500;
	else if (a == AUTH_NO_RIGHT)
		doc = fault_doc("s:Client", "Niet geautoriseerd"), status = 500;
	else
		doc = controleer(c, u->buf ? u->buf : "", u->len, req_no, &status);
	if (mode && answer_mode(mode)) {
		if (mutate(doc, mode))
			atomic_fetch_add(&n_faults, 1);
		mode = NULL;
	}
	body = dump(doc, &len);
	if (mode) {
		const char *f = mode;

		atomic_fetch_add(&n_faults, 1);
		if (strncmp(f, "fault-escape", 12) == 0) {
			char text[128];

			free(body);
			snprintf(text, sizeof(text), "Interne fout%s",
				 strcmp(f, "fault-escape") == 0 ? ESCAPES_C1 : ESCAPES_RAW);
			body = dump(fault_doc("s:Server", text), &len);
			write_stats();
			return send_body(c, 500, body, len, NULL);
		}
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

	if (u && u->rest) {
		berichten_completed(u);
		*con_cls = NULL;
	} else if (u) {
		free(u->buf);
		free(u);
		*con_cls = NULL;
	}
}

static void notify(void *cls, struct MHD_Connection *c, void **socket_context,
		   enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct conn_rights));
		atomic_fetch_add(&n_connections, 1);
		write_stats(); /* a connection without a request counts too */
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
	}
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
		int k;

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
		else if (OPT("--record"))
			cfg.record_path = v;
		else if (OPT("--hold"))
			cfg.hold_path = v;
		else if (OPT("--tls-priority"))
			priority = v;
		else if (strcmp(a, "--synthetic") == 0)
			cfg.synthetic = true;
		else if ((k = berichten_option(a, v)) > 0)
			i += k - 1;
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
	if (cfg.fault && !known_mode(cfg.fault))
		die("unknown fault mode %s", cfg.fault);
	certpem = slurp(cert);
	keypem = slurp(key);
	capem = slurp(ca);
	poptext = slurp(pop);
	cfg.population = json_loads(poptext, 0, &jerr);
	if (!json_is_array(cfg.population))
		die("population file %s is not a JSON array", pop);
	free(poptext);
	load_rights(rights);
	berichten_init();

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
	berichten_stop();
	MHD_stop_daemon(d);
	write_stats();
	berichten_free();
	json_decref(cfg.population);
	free(certpem);
	free(keypem);
	free(capem);
	return 0;
}
