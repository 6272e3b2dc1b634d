/* berichten.c - the Berichtenservice's JSON with jansson. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "billing/billing.h"
#include "cli/cli.h"

/* The one place the environments map to the Berichtenservice base. */
static const struct {
	const char *env;
	const char *url;
} endpoints[] = {
	{"tst", "https://tst-api.vecozo.nl/tst/berichtenservice"},
	{"acc", "https://tst-api.vecozo.nl/acc/berichtenservice"},
	{"prd", "https://api.vecozo.nl/berichtenservice"},
};

/* Statuses after which nothing changes [inferred from VECOZO.md]. */
static const char *const final_statuses[] = {
	"VerwerkingVoltooid", "AfgekeurdDoorDienst", "DeelberichtAanleveringAfgekeurd",
	"AanbiedenMislukt",   "BezorgingAfgebroken", "Bezorgd",
};

/* Final statuses that mean the message was not (all) taken. */
static const char *const failed_statuses[] = {
	"AfgekeurdDoorDienst",
	"DeelberichtAanleveringAfgekeurd",
	"AanbiedenMislukt",
	"BezorgingAfgebroken",
};

static const char *const roles[] = {"Praktijk", "Zorgverlener", "Instelling", "Zorgverzekeraar"};

const char *vz_br_endpoint(const char *env)
{
	for (size_t i = 0; env && i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
		if (strcmp(env, endpoints[i].env) == 0)
			return endpoints[i].url;
	return NULL;
}

bool vz_br_party_parse(const char *s, vz_br_party *out, const char **why)
{
	const char *colon = strchr(s, ':');
	size_t rl = colon ? (size_t)(colon - s) : 0;
	vz_br_party p = {0};
	bool known = false;

	if (!colon) {
		*why = "a party is ROLE:CODE, e.g. Praktijk:01234567 or Zorgverzekeraar:3311";
		return false;
	}
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		known |= strlen(roles[i]) == rl && strncmp(s, roles[i], rl) == 0;
	if (!known) {
		*why = "the role must be Praktijk, Zorgverlener, Instelling or Zorgverzekeraar";
		return false;
	}
	memcpy(p.role, s, rl);
	if (strcmp(p.role, "Zorgverzekeraar") == 0 ? !vz_digits(colon + 1, 4)
						   : !vz_digits(colon + 1, 8)) {
		*why = strcmp(p.role, "Zorgverzekeraar") == 0
			       ? "a Zorgverzekeraar is named by its 4-digit UZOVI code"
			       : "this role is named by its 8-digit AGB code";
		return false;
	}
	snprintf(p.code, sizeof(p.code), "%s", colon + 1);
	*out = p;
	return true;
}

/* One word of a flow, up to an unescaped character of stops or the end;
 * a backslash takes the next character as it is. *end is where it stopped.
 * false when it is empty, too long, not UTF-8 or holds a control character. */
static bool flow_word(const char *s, const char *stops, char *out, const char **end)
{
	size_t n = 0;

	for (; *s && !strchr(stops, *s); s++) {
		if (*s == '\\' && s[1])
			s++;
		if (n + 1 >= VZ_BR_WORD_SIZE)
			return false;
		out[n++] = *s;
	}
	out[n] = '\0';
	*end = s;
	return n > 0 && vz_text_printable(out, VZ_BR_MAX_WORD);
}

/* 1 to 3 digits up to stop, a number of 0..999. */
static bool flow_number(const char *s, char stop, unsigned *out, const char **end)
{
	unsigned v = 0;
	size_t n = 0;

	for (; isdigit((unsigned char)s[n]); n++)
		v = v * 10 + (unsigned)(s[n] - '0');
	if (n == 0 || n > 3 || s[n] != stop || v > VZ_BR_MAX_VERSION)
		return false;
	*out = v;
	*end = s + n;
	return true;
}

bool vz_br_flow_parse(const char *s, vz_br_flow *out, const char **why)
{
	static const char word_why[] =
		N_("a berichttype, berichtsubtype or action is 1 to 60 characters of UTF-8 "
		   "without control characters (write \\/, \\: or \\\\ for /, : or \\ in it)");
	static const char number_why[] =
		N_("the version and subversion are whole numbers from 0 to 999");
	vz_br_flow f = {0};
	const char *p = s, *colon;

	*why = N_("the flow is TYPE[/SUBTYPE]:VERSION.SUBVERSION[:ACTION], e.g. 303:3.1 or "
		  "303/ZH:3.1:Indienen");
	if (!flow_word(p, "/:", f.type, &p)) {
		*why = s[0] && s[0] != ':' ? word_why : *why;
		return false;
	}
	if (*p == '/' && !flow_word(p + 1, ":", f.subtype, &p)) {
		*why = word_why;
		return false;
	}
	if (*p != ':')
		return false;
	colon = strchr(p + 1, ':');
	if (!flow_number(p + 1, '.', &f.version, &p) ||
	    !flow_number(p + 1, colon ? ':' : '\0', &f.subversion, &p)) {
		/* more than 3 digits: say the range */
		if (strspn(p + 1, "0123456789") > 3)
			*why = number_why;
		return false;
	}
	if (*p == ':' && !flow_word(p + 1, "", f.action, &p)) {
		*why = word_why;
		return false;
	}
	if (!f.action[0])
		snprintf(f.action, sizeof(f.action), "Indienen");
	*out = f;
	return true;
}

bool vz_br_reference_ok(const char *s)
{
	return s[0] && vz_text_printable(s, VZ_BR_MAX_REF);
}

vz_rv vz_br_uuid(char out[37], vz_err *err)
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1) {
		vz_err_set(err, "the random number generator failed");
		return VZ_FAIL;
	}
	b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return VZ_OK;
}

bool vz_br_uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

static json_t *party_json(const vz_br_party *p)
{
	return json_pack("{s:s, s:s}", "rol", p->role, "code", p->code);
}

char *vz_br_metadata(const vz_br_party *from, const vz_br_party *to, size_t n_to,
		     const vz_br_flow *flow, const char *conversatie_id, const char *traceer_id,
		     const char *reference)
{
	json_t *tos = json_array(), *stroom, *ref, *meta;
	char *out;

	for (size_t i = 0; tos && i < n_to; i++)
		json_array_append_new(tos, party_json(&to[i]));
	stroom = json_pack("{s:s, s:i, s:i, s:s}", "berichttype", flow->type, "berichtversie",
			   (json_int_t)flow->version, "berichtsubversie",
			   (json_int_t)flow->subversion, "actie", flow->action);
	if (stroom && flow->subtype[0])
		json_object_set_new(stroom, "berichtsubtype", json_string(flow->subtype));
	ref = json_pack("{s:s, s:s}", "conversatieId", conversatie_id, "traceerId", traceer_id);
	if (ref && reference)
		json_object_set_new(ref, "referentieId", json_string(reference));
	meta = json_pack("{s:{s:o, s:o, s:o}, s:o}", "routeringgegevens", "afzender",
			 party_json(from), "geadresseerden", tos, "berichtstroom", stroom,
			 "referentiegegevens", ref);
	out = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
	json_decref(meta);
	return out;
}

/* A clean copy of a JSON string member, or NULL. */
static char *member(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	char *s = v ? strdup(v) : NULL;

	if (s)
		vz_text_clean(s);
	return s;
}

static json_t *load(const char *body, size_t len)
{
	return json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
}

static size_t add_line(char **lines, size_t n, size_t max, const char *a, const char *b)
{
	char *l;

	if (n >= max || asprintf(&l, "%s%s%s", a, b && *b ? ": " : "", b ? b : "") < 0)
		return n;
	vz_text_clean(l);
	lines[n] = l;
	return n + 1;
}

size_t vz_br_problem(const char *body, size_t len, char **lines, size_t max, char **errors_json)
{
	json_t *j = load(body, len), *errs, *msgs, *m;
	const char *field, *title, *detail;
	size_t n = 0, i;

	if (errors_json)
		*errors_json = NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		return 0;
	}
	title = json_string_value(json_object_get(j, "title"));
	detail = json_string_value(json_object_get(j, "detail"));
	if (title || detail)
		n = add_line(lines, n, max, title ? title : "", detail);
	errs = json_object_get(j, "errors");
	json_object_foreach(errs, field, msgs)
	{
		if (json_is_string(msgs))
			n = add_line(lines, n, max, field, json_string_value(msgs));
		json_array_foreach(msgs, i, m)
		{
			const char *text = json_string_value(m);

			n = add_line(lines, n, max, field, text ? text : "");
		}
	}
	if (errors_json && json_is_object(errs))
		*errors_json = json_dumps(errs, JSON_COMPACT);
	json_decref(j);
	return n;
}

void vz_br_status_clear(vz_br_status *s)
{
	free(s->traceer_id);
	free(s->status);
	free(s->changed_at);
	for (size_t i = 0; i < s->n_meldingen; i++) {
		free(s->meldingen[i].code);
		free(s->meldingen[i].omschrijving);
		free(s->meldingen[i].toelichting);
	}
	free(s->meldingen);
	memset(s, 0, sizeof(*s));
}

/* The first array in j: j itself, or the first array member of an object. */
static json_t *first_array(json_t *j)
{
	const char *k;
	json_t *v;

	if (json_is_array(j))
		return j;
	json_object_foreach(j, k, v) if (json_is_array(v)) return v;
	return NULL;
}

static void read_status(const json_t *e, vz_br_status *s)
{
	const json_t *ms = json_object_get(e, "meldingen");
	size_t n = json_is_array(ms) ? json_array_size(ms) : 0, i;
	json_t *m;

	s->traceer_id = member(json_object_get(e, "referentiegegevens"), "traceerId");
	s->status = member(e, "berichtstatus");
	s->changed_at = member(e, "berichtstatusGewijzigdOp");
	s->meldingen = n ? calloc(n, sizeof(*s->meldingen)) : NULL;
	json_array_foreach(ms, i, m)
	{
		if (!s->meldingen)
			break;
		s->meldingen[s->n_meldingen].code = member(m, "code");
		s->meldingen[s->n_meldingen].omschrijving = member(m, "omschrijving");
		s->meldingen[s->n_meldingen].toelichting = member(m, "toelichting");
		s->n_meldingen++;
	}
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

/* n digits at *p as a number; *p moves past them. */
static bool fixed_digits(const char **p, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + (unsigned)((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect_char(const char **p, const char *any)
{
	if (!**p || !strchr(any, **p))
		return false;
	(*p)++;
	return true;
}

bool vz_br_time_parse(const char *text, vz_br_instant *out)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = text;
	unsigned y, mo, d, h, mi, se, oh = 0, om = 0;
	long ns = 0, scale = 100000000;
	int sign = 0;
	vz_br_instant t;

	if (!fixed_digits(&p, 4, &y) || !expect_char(&p, "-") || !fixed_digits(&p, 2, &mo) ||
	    !expect_char(&p, "-") || !fixed_digits(&p, 2, &d) || !expect_char(&p, "Tt ") ||
	    !fixed_digits(&p, 2, &h) || !expect_char(&p, ":") || !fixed_digits(&p, 2, &mi) ||
	    !expect_char(&p, ":") || !fixed_digits(&p, 2, &se))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return false;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return false;
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			ns += scale * (*p - '0'); /* digits past nanoseconds add 0 */
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!fixed_digits(&p, 2, &oh) || !expect_char(&p, ":") ||
		    !fixed_digits(&p, 2, &om) || oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (*p)
		return false;
	t.s = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
	      sign * (long long)(oh * 3600 + om * 60);
	t.ns = ns;
	*out = t;
	return true;
}

int vz_br_instant_cmp(const vz_br_instant *a, const vz_br_instant *b)
{
	if (a->s != b->s)
		return a->s < b->s ? -1 : 1;
	return a->ns < b->ns ? -1 : a->ns > b->ns;
}

/* changed_at in UTC to the second, when it is a time. */
static void normalize_time(vz_br_status *s, const vz_br_instant *t)
{
	time_t secs = (time_t)t->s;
	struct tm tm;
	char buf[32];

	if (gmtime_r(&secs, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		char *copy = strdup(buf);

		if (copy) {
			free(s->changed_at);
			s->changed_at = copy;
		}
	}
}

vz_rv vz_br_status_parse(const char *body, size_t len, const char *traceer_id, vz_br_status *out,
			 vz_err *err)
{
	json_t *j = load(body, len), *list = first_array(j), *e;
	vz_br_status best = {0};
	vz_br_instant best_t = {0};
	bool best_timed = false, timed;
	size_t i;

	if (!list && !json_is_object(j)) {
		json_decref(j);
		vz_err_set(err, "the status service's answer is not JSON");
		return VZ_FAIL;
	}
	json_array_foreach(list, i, e)
	{
		vz_br_status s = {0};
		vz_br_instant t = {0};
		const char *tid = json_string_value(
			json_object_get(json_object_get(e, "referentiegegevens"), "traceerId"));
		const char *when =
			json_string_value(json_object_get(e, "berichtstatusGewijzigdOp"));

		if (!tid || strcasecmp(tid, traceer_id) != 0)
			continue;
		read_status(e, &s);
		timed = when && vz_br_time_parse(when, &t);
		if (!s.status ||
		    (best.status && best_timed && (!timed || vz_br_instant_cmp(&t, &best_t) < 0))) {
			vz_br_status_clear(&s);
			continue;
		}
		if (timed)
			normalize_time(&s, &t);
		vz_br_status_clear(&best);
		best = s;
		best_t = t;
		best_timed = timed;
	}
	json_decref(j);
	if (!best.status)
		return VZ_NOT_FOUND;
	*out = best;
	return VZ_OK;
}

bool vz_br_status_final(const char *status)
{
	for (size_t i = 0; status && i < sizeof(final_statuses) / sizeof(final_statuses[0]); i++)
		if (strcmp(status, final_statuses[i]) == 0)
			return true;
	return false;
}

bool vz_br_status_failed(const char *status)
{
	for (size_t i = 0; status && i < sizeof(failed_statuses) / sizeof(failed_statuses[0]); i++)
		if (strcmp(status, failed_statuses[i]) == 0)
			return true;
	return false;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *vz_br_meldingen_json(const vz_br_status *s)
{
	json_t *a = json_array();
	char *out;

	for (size_t i = 0; a && i < s->n_meldingen; i++)
		json_array_append_new(
			a, json_pack("{s:o, s:o, s:o}", "code", str_or_null(s->meldingen[i].code),
				     "omschrijving", str_or_null(s->meldingen[i].omschrijving),
				     "toelichting", str_or_null(s->meldingen[i].toelichting)));
	out = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return out;
}

/* One pull entry, or false when a field is missing or malformed. */
static bool read_retour(const json_t *e, vz_br_retour *r)
{
	const json_t *p = json_object_get(json_object_get(e, "basisgegevens"), "payload");
	const json_t *sum = json_object_get(p, "checksum");
	const char *tid = json_string_value(
		json_object_get(json_object_get(e, "referentiegegevens"), "traceerId"));
	const char *alg = json_string_value(json_object_get(sum, "algoritme"));
	const char *val = json_string_value(json_object_get(sum, "waarde"));
	const json_t *size = json_object_get(p, "grootte"), *url = json_object_get(p, "url");

	if (!tid || !vz_br_uuid_valid(tid) || !alg || strcasecmp(alg, "SHA256") != 0 || !val ||
	    strlen(val) != 64 || !json_is_integer(size) || json_integer_value(size) < 0)
		return false;
	if (url && !json_is_null(url) &&
	    (!json_is_string(url) || json_string_length(url) >= sizeof(r->url) ||
	     strlen(json_string_value(url)) != json_string_length(url)))
		return false; /* not a string, too long, or with a NUL */
	snprintf(r->url, sizeof(r->url), "%s", json_is_string(url) ? json_string_value(url) : "");
	for (size_t i = 0; i < 64; i++) {
		if (!isxdigit((unsigned char)val[i]))
			return false;
		r->sha256[i] = (char)tolower((unsigned char)val[i]);
	}
	r->sha256[64] = '\0';
	for (size_t i = 0; i <= 36; i++)
		r->traceer_id[i] = (char)tolower((unsigned char)tid[i]);
	r->size = (long long)json_integer_value(size);
	return true;
}

vz_rv vz_br_pull_parse(const char *body, size_t len, vz_br_retour **out, size_t *n, size_t *bad,
		       vz_err *err)
{
	json_t *j = load(body, len), *list = first_array(j), *e;
	vz_br_retour *r = NULL;
	size_t i, got = 0, skipped = 0;

	if (!list && !json_is_object(j)) {
		json_decref(j);
		vz_err_set(err, "the list of return messages is not JSON");
		return VZ_FAIL;
	}
	if (list && json_array_size(list)) {
		r = calloc(json_array_size(list), sizeof(*r));
		if (!r) {
			json_decref(j);
			vz_err_set(err, "out of memory");
			return VZ_FAIL;
		}
	}
	json_array_foreach(list, i, e)
	{
		if (read_retour(e, &r[got]))
			got++;
		else
			skipped++;
	}
	json_decref(j);
	*out = r;
	*n = got;
	*bad = skipped;
	return VZ_OK;
}
