/* cmd_check.c - `vzp11 check`: the certificates on the token as a monitoring
 * plugin (Nagios, Icinga, Checkmk): one status line with perfdata, exit
 * 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Reads public objects; logs in only
 * when a PIN source is given, to see the private keys. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/x509v3.h>

#include "token/token.h"
#include "cli/cli.h"
#include "lifecycle/lifecycle.h"

#define WARN_DAYS    45
#define CRIT_DAYS    14
#define MAX_FINDINGS 8

typedef enum state {
	ST_OK = 0,
	ST_WARNING = 1,
	ST_CRITICAL = 2,
	ST_UNKNOWN = 3
} state;

static const char *const state_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

struct finding {
	state st;
	char text[320];
};

/* One certificate as check judged it. */
struct verdict {
	const tok_obj *cert, *key, *pub; /* key NULL: missing, or not looked for */
	X509 *x509;			 /* borrowed from the store */
	vz_cert_info info;
	STACK_OF(X509) *chain; /* borrowed pointers, owned stack */
	bool chain_complete;
	char chain_missing[512]; /* issuer not on the token */
	tok_flag id_match;	 /* CKA_ID is the certificate's key identifier */
	tok_flag type_match;	 /* key type and size agree with the certificate */
	state st;
	struct finding f[MAX_FINDINGS];
	size_t n_f;
};

struct check {
	long warn, crit;
	const char *label;
	bool logged_in;
	struct verdict *v;
	size_t n;
};

static void finding(struct verdict *v, state st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void finding(struct verdict *v, state st, const char *fmt, ...)
{
	va_list ap;

	if (v->n_f == MAX_FINDINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(v->f[v->n_f].text, sizeof(v->f[v->n_f].text), _(fmt), ap);
	va_end(ap);
	v->f[v->n_f].st = st;
	v->n_f++;
	if (st > v->st)
		v->st = st;
}

/* Text from the token on the plugin's line: no line ends, no '|' (the
 * perfdata separator). */
static void clean(const char *in, char *out, size_t size)
{
	size_t i = 0;

	for (; in && *in && i + 1 < size; in++)
		out[i++] = (unsigned char)*in < 0x20 || *in == 0x7f || *in == '|' ? '_' : *in;
	out[i] = '\0';
}

static const char *label_of(const struct verdict *v)
{
	return v->cert->label ? v->cert->label : "";
}

static bool same_id(const tok_obj *a, const tok_obj *b)
{
	return a->id_len > 0 && a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

static const tok_obj *by_id(const tok_obj *objs, size_t n, const tok_obj *cert)
{
	for (size_t i = 0; i < n; i++)
		if (same_id(&objs[i], cert))
			return &objs[i];
	return NULL;
}

static void judge_validity(const struct check *c, struct verdict *v)
{
	char until[11];

	snprintf(until, sizeof(until), "%.10s", v->info.not_after);
	if (v->info.not_yet_valid)
		finding(v, ST_CRITICAL, "not valid before %s", v->info.not_before);
	else if (v->info.expired)
		finding(v, ST_CRITICAL, "expired on %s: import the renewed certificate", until);
	else if (v->info.days_left < c->crit)
		finding(v, ST_CRITICAL, "%ld days left (expires %s): renew at VECOZO now",
			v->info.days_left, until);
	else if (v->info.days_left < c->warn)
		finding(v, ST_WARNING, "%ld days left (expires %s): renew at VECOZO",
			v->info.days_left, until);
	else
		finding(v, ST_OK, "%ld days left (expires %s)", v->info.days_left, until);
}

static const char *flag_word(tok_flag f)
{
	return f == TOK_FLAG_YES ? "true" : f == TOK_FLAG_NO ? "false" : "unknown";
}

/* The private key's protection as the token reports it. */
static void judge_key(const struct check *c, struct verdict *v)
{
	const tok_obj *k = v->key;

	if (!c->logged_in) {
		finding(v, ST_OK,
			"key not checked: private keys are visible only after login; give a PIN "
			"source (--pin-source or VZP11_PIN_SOURCE)");
		return;
	}
	if (!k) {
		finding(v, ST_CRITICAL,
			"no private key on the token for this certificate: import "
			"the .pfx again");
		return;
	}
	if (k->sensitive == TOK_FLAG_NO || k->extractable == TOK_FLAG_YES ||
	    k->value_readable == TOK_FLAG_YES) {
		finding(v, ST_CRITICAL,
			"the key can leave the token (sensitive=%s extractable=%s value readable=%s): "
			"re-import it with 'vzp11 import --replace'",
			flag_word(k->sensitive), flag_word(k->extractable),
			flag_word(k->value_readable));
	} else if (k->sensitive != TOK_FLAG_YES || k->extractable != TOK_FLAG_NO ||
		   k->value_readable != TOK_FLAG_NO) {
		finding(v, ST_WARNING,
			"the token gave no clear answer about the key's protection (%s)",
			k->unclear[0] ? k->unclear : "sensitive, extractable or value");
	} else {
		finding(v, ST_OK, "key sensitive and not extractable");
	}
	if (k->never_extractable == TOK_FLAG_NO || k->always_sensitive == TOK_FLAG_NO)
		finding(v, ST_OK,
			"key was outside the token once (imported: never-extractable=%s "
			"always-sensitive=%s); delete every .pfx copy",
			flag_word(k->never_extractable), flag_word(k->always_sensitive));
}

/* What public attributes can tell: the CKA_ID import derives from the
 * certificate, and the key's type and size. A swapped key of the same type
 * and size is only caught by selftest's signature. */
static void judge_match(const struct check *c, struct verdict *v)
{
	const tok_obj *k = v->key ? v->key : v->pub;
	EVP_PKEY *pk = X509_get0_pubkey(v->x509);
	unsigned char id[20];
	vz_err err = {0};
	int base;

	if (!k)
		return;
	v->id_match = TOK_FLAG_UNKNOWN;
	if (vz_cert_key_id(v->x509, id, &err) == VZ_OK)
		v->id_match = k->id_len == sizeof(id) && memcmp(k->id, id, sizeof(id)) == 0
				      ? TOK_FLAG_YES
				      : TOK_FLAG_NO;
	base = pk ? EVP_PKEY_get_base_id(pk) : 0;
	v->type_match = TOK_FLAG_YES;
	if ((base == EVP_PKEY_RSA) != (k->key_type == TOK_KEY_RSA) ||
	    (base == EVP_PKEY_EC) != (k->key_type == TOK_KEY_EC) ||
	    (k->key_type == TOK_KEY_RSA && k->bits && (int)k->bits != EVP_PKEY_get_bits(pk)))
		v->type_match = TOK_FLAG_NO;
	if (v->type_match == TOK_FLAG_NO)
		finding(v, ST_CRITICAL,
			"the %s key does not match the certificate (%s-%d): the certificate or key "
			"was replaced",
			v->key ? "private" : "public", v->info.key_type, v->info.key_bits);
	else if (v->id_match != TOK_FLAG_YES)
		finding(v, ST_WARNING,
			"the key's CKA_ID is not the certificate's key identifier: it may belong to "
			"another certificate; run 'vzp11 selftest --label %s'",
			label_of(v));
	else if (c->logged_in)
		finding(v, ST_OK, "key and certificate agree (identifier, type and size)");
}

/* Complete means it reaches a self-signed certificate on the token. */
static void judge_chain(const struct check *c, struct verdict *v)
{
	int n = sk_X509_num(v->chain);
	X509 *top = n > 0 ? sk_X509_value(v->chain, n - 1) : v->x509;

	v->chain_complete = X509_check_issued(top, top) == X509_V_OK;
	if (!v->chain_complete) {
		vz_name_string(X509_get_issuer_name(top), v->chain_missing,
			       sizeof(v->chain_missing));
		finding(v, n == 0 ? ST_CRITICAL : ST_WARNING,
			"chain incomplete: '%s' is not on the token; import the .pfx with its chain",
			v->chain_missing);
	}
	for (int i = 0; i < n; i++) {
		X509 *ca = sk_X509_value(v->chain, i);
		vz_cert_info ci;
		vz_err err = {0};

		if (vz_cert_info_get(ca, &ci, &err) != VZ_OK)
			continue;
		if (ci.expired || ci.not_yet_valid)
			finding(v, ST_CRITICAL, "CA certificate '%s' is %s", ci.subject,
				ci.expired ? "expired" : "not yet valid");
		else if (ci.days_left < c->warn && ci.days_left < v->info.days_left)
			finding(v, ci.days_left < c->crit ? ST_CRITICAL : ST_WARNING,
				"CA certificate '%s' expires in %ld days", ci.subject,
				ci.days_left);
	}
	if (v->chain_complete)
		finding(v, ST_OK, "chain complete on the token (%d CA certificates)", n);
}

/* The certificates to check: those with a private key (after login) or a
 * public key object (vzp11 writes both), or every one with the label. */
static bool wanted(const struct check *c, const vz_store *st, size_t i)
{
	const tok_obj *o = &st->certs[i];

	if (o->authority || !st->x509s[i])
		return false;
	if (c->label)
		return vz_obj_has_label(o, c->label);
	return by_id(st->keys, st->n_keys, o) || by_id(st->pubs, st->n_pubs, o);
}

static vz_rv judge_all(struct check *c, const vz_store *st, vz_err *err)
{
	c->v = calloc(st->n_certs + 1, sizeof(*c->v));
	if (!c->v) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	for (size_t i = 0; i < st->n_certs; i++) {
		struct verdict *v = &c->v[c->n];

		if (!wanted(c, st, i))
			continue;
		v->cert = &st->certs[i];
		v->x509 = st->x509s[i];
		v->key = by_id(st->keys, st->n_keys, v->cert);
		v->pub = by_id(st->pubs, st->n_pubs, v->cert);
		if (vz_cert_info_get(v->x509, &v->info, err) != VZ_OK)
			return VZ_FAIL;
		v->chain = vz_cert_chain(v->x509, st->pool, NULL);
		if (!v->chain) {
			vz_err_set(err, "out of memory");
			return VZ_FAIL;
		}
		c->n++;
		judge_validity(c, v);
		judge_key(c, v);
		judge_match(c, v);
		judge_chain(c, v);
	}
	return VZ_OK;
}

static void free_verdicts(struct check *c)
{
	for (size_t i = 0; c->v && i < c->n; i++)
		sk_X509_free(c->v[i].chain);
	free(c->v);
	c->v = NULL;
}

static state overall(const struct check *c)
{
	state s = c->n == 0 ? ST_CRITICAL : ST_OK;

	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].st > s)
			s = c->v[i].st;
	return s;
}

/* The first finding with the certificate's own state: its headline. */
static const char *headline(const struct verdict *v)
{
	for (size_t i = 0; i < v->n_f; i++)
		if (v->f[i].st == v->st)
			return v->f[i].text;
	return "";
}

static void none_text(const struct check *c, const char *token, char *buf, size_t size)
{
	char t[64], l[64];

	clean(token, t, sizeof(t));
	clean(c->label, l, sizeof(l));
	if (c->label)
		snprintf(buf, size, _("no certificate with the label '%s' on token '%s'"), l, t);
	else
		snprintf(buf, size, _("no certificate with a key on token '%s'%s"), t,
			 c->logged_in ? ""
				      : " (without login; give a PIN source if the token keeps "
					"certificates private)");
}

/* 'days_left'=N;WARN:;CRIT: — thresholds in range form: alert below. */
static void perfdata(FILE *f, const struct check *c)
{
	for (size_t i = 0; i < c->n; i++) {
		char name[80];

		clean(label_of(&c->v[i]), name, sizeof(name));
		for (char *p = name; *p; p++)
			if (*p == '\'' || *p == '=')
				*p = '_';
		fprintf(f, "%s'days_left%s%s'=%ld;%ld:;%ld:", i ? " " : "", c->n > 1 ? "_" : "",
			c->n > 1 ? name : "", c->v[i].info.days_left, c->warn, c->crit);
	}
}

static void print_text(FILE *f, const struct check *c, state s, const char *token)
{
	char buf[256];

	fprintf(f, "VZP11 %s - ", state_names[s]);
	if (c->n == 0) {
		none_text(c, token, buf, sizeof(buf));
		fputs(buf, f);
	}
	/* Certificates in trouble first, so the headline shows them. */
	for (int pass = 0, first = 1; pass < 2; pass++) {
		for (size_t i = 0; i < c->n; i++) {
			const struct verdict *v = &c->v[i];

			if ((pass == 0) != (v->st != ST_OK))
				continue;
			clean(label_of(v), buf, sizeof(buf));
			fprintf(f, "%s%s: %s", first ? "" : "; ", buf, headline(v));
			first = 0;
		}
	}
	if (c->n > 0 && !c->logged_in)
		fputs(_(" (keys not checked: no PIN source)"), f);
	if (c->n > 0) {
		fputs(" | ", f);
		perfdata(f, c);
	}
	fputc('\n', f);
	for (size_t i = 0; i < c->n; i++) {
		clean(label_of(&c->v[i]), buf, sizeof(buf));
		for (size_t j = 0; j < c->v[i].n_f; j++)
			fprintf(f, "%s: [%s] %s\n", buf, state_names[c->v[i].f[j].st],
				c->v[i].f[j].text);
	}
}

static json_t *flag_json(tok_flag f)
{
	return f == TOK_FLAG_UNKNOWN ? json_null() : json_boolean(f == TOK_FLAG_YES);
}

static json_t *key_json(const struct check *c, const struct verdict *v)
{
	const tok_obj *k = v->key;

	if (!c->logged_in)
		return json_pack("{s:n, s:s}", "present", "checked", "no: no PIN source, no login");
	if (!k)
		return json_pack("{s:b}", "present", 0);
	return json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:s?}", "present", 1, "sensitive",
			 flag_json(k->sensitive), "extractable", flag_json(k->extractable),
			 "value_readable", flag_json(k->value_readable), "always_sensitive",
			 flag_json(k->always_sensitive), "never_extractable",
			 flag_json(k->never_extractable), "origin",
			 k->never_extractable == TOK_FLAG_YES  ? "generated on the token"
			 : k->never_extractable == TOK_FLAG_NO ? "was outside the token (imported)"
							       : NULL);
}

static json_t *verdict_json(const struct check *c, const struct verdict *v)
{
	json_t *problems = json_array(), *chain = json_array();

	for (size_t i = 0; i < v->n_f; i++)
		if (v->f[i].st != ST_OK)
			json_array_append_new(problems, json_pack("{s:s, s:s}", "status",
								  state_names[v->f[i].st], "text",
								  v->f[i].text));
	for (int i = 0; i < sk_X509_num(v->chain); i++) {
		char name[512];

		vz_name_string(X509_get_subject_name(sk_X509_value(v->chain, i)), name,
			       sizeof(name));
		json_array_append_new(chain, json_string(name));
	}
	return json_pack("{s:s?, s:s, s:s, s:s, s:s, s:I, s:s, s:o, s:o, s:{s:o, s:o}, "
			 "s:{s:b, s:o, s:s?}}",
			 "label", v->cert->label, "status", state_names[v->st], "subject",
			 v->info.subject, "serial", v->info.serial, "not_after", v->info.not_after,
			 "days_left", (json_int_t)v->info.days_left, "fingerprint_sha256",
			 v->info.fingerprint, "problems", problems, "key", key_json(c, v), "match",
			 "key_id", flag_json(v->id_match), "type_and_size",
			 flag_json(v->type_match), "chain", "complete", v->chain_complete,
			 "certificates", chain, "missing",
			 v->chain_complete ? NULL : v->chain_missing);
}

static void print_json(FILE *f, const struct check *c, state s, const char *token,
		       const char *reason)
{
	json_t *arr = json_array();
	char buf[256] = "";

	for (size_t i = 0; i < c->n; i++)
		json_array_append_new(arr, verdict_json(c, &c->v[i]));
	if (!reason && c->n == 0)
		none_text(c, token, buf, sizeof(buf));
	vz_out_json(f, json_pack("{s:s, s:i, s:s?, s:I, s:I, s:b, s:o}", "status", state_names[s],
				 "exit", (int)s, "reason",
				 reason	  ? reason
				 : buf[0] ? buf
					  : NULL,
				 "warn_days", (json_int_t)c->warn, "crit_days", (json_int_t)c->crit,
				 "logged_in", c->logged_in, "certificates", arr));
}

/* Module, token or PIN trouble: the plugin cannot say anything. */
static int unknown(const vz_global *g, const struct check *c, const vz_err *err)
{
	char msg[sizeof(err->msg)];

	clean(err->msg[0] ? err->msg : "the token could not be read", msg, sizeof(msg));
	if (g->json) {
		print_json(stdout, c, ST_UNKNOWN, NULL, msg);
	} else {
		printf("VZP11 UNKNOWN - %s\n", msg);
		if (err->hint[0])
			printf("%s\n", err->hint);
	}
	fflush(stdout);
	return ST_UNKNOWN;
}

/* A usage error is UNKNOWN for a monitoring system, not exit 2 (CRITICAL). */
static int usage_unknown(const char *msg)
{
	printf("VZP11 UNKNOWN - %s\n", msg);
	fprintf(stderr, _("vzp11: %s\nTry 'vzp11 check --help'.\n"), msg);
	return ST_UNKNOWN;
}

enum {
	O_LABEL = 1,
	O_WARN,
	O_CRIT
};

static const vz_opt check_opts[] = {
	VZ_OPT("label", O_LABEL, "LABEL",
	       N_("check only this certificate (default: every certificate with\na key)")),
	{"warn-days", O_WARN, "N", N_("WARNING when fewer than N days are left (default 45)"),
	 VZ_KEY_NUM, "check", NULL, 0, 100000, "45",
	 N_("--warn-days takes a number of days, %ld to %ld")},
	{"crit-days", O_CRIT, "N", N_("CRITICAL when fewer than N days are left (default 14)"),
	 VZ_KEY_NUM, "check", NULL, 0, 100000, "14",
	 N_("--crit-days takes a number of days, %ld to %ld")},
	{0},
};

static int cmd_check(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_check = {
	.name = "check",
	.run = cmd_check,
	.usage = N_("check [--label LABEL] [--warn-days N] [--crit-days N]"),
	.about = N_("Monitoring plugin (Nagios, Icinga, Checkmk) for the certificates on the token:\n"
		    "one line 'VZP11 OK|WARNING|CRITICAL|UNKNOWN - ...' with perfdata\n"
		    "'days_left'=N;WARN:;CRIT: per certificate, then one line per finding.\n"),
	.opts = check_opts,
	.notes = N_("CRITICAL: expired or not yet valid, fewer than --crit-days left, private key\n"
		    "missing, key readable or extractable, key type or size not the certificate's,\n"
		    "issuing CA certificate missing from the token or expired, no certificate at all.\n"
		    "WARNING: fewer than --warn-days left, key identifier not the certificate's, a\n"
		    "protection attribute without a clear answer, a higher CA certificate missing.\n"
		    "An imported key is never 'never extractable' (it was outside the token once);\n"
		    "that is reported, not alarmed. UNKNOWN: module, token, PIN or options wrong.\n"
		    "Without a PIN source (--pin-source or VZP11_PIN_SOURCE) check does not log in and\n"
		    "cannot see private keys: it checks certificates that have a public key object and\n"
		    "says the key was not checked. The PIN is read once and never retried.\n"
		    "--json prints one object with the details per certificate instead.\n"
		    "Exit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"),
};

/* -1 after --help, 0 when the options are good, else the exit code. */
static int parse(vz_global *g, int argc, char **argv, struct check *c)
{
	const vz_opt *opt;
	const char *arg;
	char msg[160];
	int o;

	while ((o = vz_opt_next(g, &vz_cmd_check, argc, argv, &arg)) > 0) {
		if (o == O_LABEL) {
			c->label = arg;
			continue;
		}
		opt = vz_opt_find(&vz_cmd_check, o);
		if (!vz_parse_long(arg, opt->lo, opt->hi, o == O_WARN ? &c->warn : &c->crit)) {
			snprintf(msg, sizeof(msg), _(opt->bad), opt->lo, opt->hi);
			return usage_unknown(msg);
		}
	}
	if (o == VZ_OPT_HELP)
		return -1;
	if (o == VZ_OPT_BAD) {
		snprintf(msg, sizeof(msg), _("unknown or incomplete option '%.100s'"),
			 argv[optind - 1]);
		return usage_unknown(msg);
	}
	if (optind < argc) {
		snprintf(msg, sizeof(msg), _("unexpected argument '%.100s'"), argv[optind]);
		return usage_unknown(msg);
	}
	if (c->crit > c->warn)
		return usage_unknown("--crit-days must not be more than --warn-days");
	return 0;
}

static int cmd_check(vz_global *g, int argc, char **argv)
{
	struct check c = {.warn = WARN_DAYS, .crit = CRIT_DAYS};
	vz_token tk = {0};
	vz_store *st = NULL;
	vz_err err = {0};
	state s;
	int ret;

	ret = parse(g, argc, argv, &c);
	if (ret != 0)
		return ret == -1 ? VZ_EXIT_OK : ret;
	/* Unattended runs have no terminal: log in only when told how. */
	c.logged_in = g->pin_source != NULL;
	if (vz_token_open(g, false, c.logged_in, &tk, &err) != VZ_OK ||
	    vz_store_load(tk.s, &st, &err) != VZ_OK || judge_all(&c, st, &err) != VZ_OK) {
		free_verdicts(&c);
		ret = unknown(g, &c, &err);
		goto out;
	}
	s = overall(&c);
	if (g->json)
		print_json(stdout, &c, s, tok_token_info_of(tk.tok)->label, NULL);
	else
		print_text(stdout, &c, s, tok_token_info_of(tk.tok)->label);
	ret = (int)s;
	if (vz_out_flush(stdout, &err) != VZ_OK) {
		vz_report(&err);
		ret = ST_UNKNOWN;
	}
	free_verdicts(&c);
out:
	vz_store_free(st);
	vz_token_close(&tk);
	return ret;
}
