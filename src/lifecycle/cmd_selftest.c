/* cmd_selftest.c - `vzp11 selftest`: every link from the module to a COV
 * handshake, one line each with pass or fail and, on fail, the fix. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "token/token.h"
#include "cli/cli.h"
#include "cov/cov.h"
#include "tls/tls.h"
#include "lifecycle/lifecycle.h"

#define MIN_DAYS  14 /* check's default CRITICAL threshold */
#define MAX_STEPS 16
/* A person the mock (tests/mock/population.json) and VECOZO's test
 * environment know; any answer, or a fault, shows the handshake worked. */
#define PROBE_BSN	"999979668"
#define PROBE_BIRTHDATE "1962-03-15"

typedef enum result {
	R_PASS = 0,
	R_FAIL,
	R_SKIP
} result;

static const char *const result_names[] = {"pass", "fail", "skip"};

struct step {
	char name[32];
	result r;
	char detail[400];
	char fix[400];
};

struct selftest {
	const char *label, *env, *endpoint, *cacert;
	struct step s[MAX_STEPS];
	size_t n;
	bool failed;
	/* the PIN, read once from its source and handed on to the provider */
	const char *pin_source;
	vz_secret pin;
	bool pin_read;
	vz_err pin_err;
	vz_rv pin_rv;
};

static struct step *step(struct selftest *t, const char *name, result r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static struct step *step(struct selftest *t, const char *name, result r, const char *fmt, ...)
{
	static struct step spare;
	struct step *s = t->n < MAX_STEPS ? &t->s[t->n++] : &spare;
	va_list ap;

	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->r = r;
	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof(s->detail), _(fmt), ap);
	va_end(ap);
	t->failed |= r == R_FAIL;
	return s;
}

static void fix(struct step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fix(struct step *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->fix, sizeof(s->fix), _(fmt), ap);
	va_end(ap);
}

/* A failed step from a token-layer error: its message and its hint. */
static void fail_tok(struct selftest *t, const char *name, const tok_err *te, const char *dflt)
{
	struct step *s = step(t, name, R_FAIL, "%s", te->msg[0] ? te->msg : "failed");

	fix(s, "%s", te->hint[0] ? te->hint : dflt);
}

static void fail_vz(struct selftest *t, const char *name, const vz_err *e, const char *dflt)
{
	struct step *s = step(t, name, R_FAIL, "%s", e->msg[0] ? e->msg : "failed");

	fix(s, "%s", e->hint[0] ? e->hint : dflt);
}

/* Called by the token layer when it needs the PIN: read once, kept for the
 * provider's login (handed on through a pipe), wiped at the end. */
static tok_rv read_pin(void *ctx, char *buf, size_t size, size_t *len)
{
	struct selftest *t = ctx;

	if (!t->pin_read) {
		t->pin_rv = vz_secret_read(t->pin_source, _("token PIN"), &t->pin, &t->pin_err);
		if (t->pin_rv != VZ_OK)
			return TOK_NO_PIN;
		t->pin_read = true;
	}
	if (t->pin.len >= size)
		return TOK_NO_PIN;
	memcpy(buf, t->pin.buf, t->pin.len);
	*len = t->pin.len;
	return TOK_OK;
}

/* ---- the token, through pkcs11/ ---- */

static const vz_entry *find_entry(struct selftest *t, const vz_store *st)
{
	size_t n;
	const vz_entry *found = vz_store_resolve(st, t->label, &n);
	struct step *s;

	if (found) {
		step(t, "certificate", R_PASS, "'%s': %s, serial %s", t->label, found->info.subject,
		     found->info.serial);
		return found;
	}
	s = step(t, "certificate", R_FAIL,
		 "%zu certificates with a private key have the label '%s'", n, t->label);
	fix(s, n ? "remove the extra ones ('vzp11 list', 'vzp11 remove')"
		 : "import the system certificate with 'vzp11 import', or name another with "
		   "--label (see 'vzp11 list')");
	return NULL;
}

static const char *yn(tok_flag f)
{
	return f == TOK_FLAG_YES ? "yes" : f == TOK_FLAG_NO ? "no" : "unknown";
}

static void key_attributes(struct selftest *t, const vz_entry *e)
{
	const tok_obj *k = e->key;
	bool ok = k->sensitive == TOK_FLAG_YES && k->extractable == TOK_FLAG_NO &&
		  k->value_readable == TOK_FLAG_NO;
	struct step *s;

	s = step(t, "key attributes", ok ? R_PASS : R_FAIL,
		 "sensitive=%s extractable=%s value-readable=%s; %s", yn(k->sensitive),
		 yn(k->extractable), yn(k->value_readable),
		 k->arrival == TOK_ARRIVAL_GENERATED ? "generated on the token"
		 : k->arrival == TOK_ARRIVAL_CREATED || k->arrival == TOK_ARRIVAL_UNWRAPPED
			 ? "imported: the key was outside the token once, delete every .pfx copy"
			 : "origin unknown");
	if (!ok)
		fix(s, "%s",
		    k->unclear[0] ? k->unclear
				  : "re-import the .pfx with 'vzp11 import --replace': it "
				    "writes the key sensitive and not extractable");
}

/* Complete (up to a self-signed root on the token) and valid now, for TLS
 * client authentication. */
static void chain_valid(struct selftest *t, const vz_entry *e)
{
	int n = sk_X509_num(e->chain);
	X509 *top = n > 0 ? sk_X509_value(e->chain, n - 1) : e->x509;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	char name[512];
	struct step *s;

	if (X509_check_issued(top, top) != X509_V_OK) {
		vz_name_string(X509_get_issuer_name(top), name, sizeof(name));
		s = step(t, "chain", R_FAIL, "incomplete: '%s' is not on the token", name);
		fix(s, "import the .pfx with its chain (the issuing and root CA certificates)");
		return;
	}
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	untrusted = sk_X509_new_null();
	for (int i = 0; untrusted && i + 1 < n; i++)
		sk_X509_push(untrusted, sk_X509_value(e->chain, i));
	if (!store || !ctx || !untrusted || X509_STORE_add_cert(store, top) != 1 ||
	    X509_STORE_CTX_init(ctx, store, e->x509, untrusted) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		step(t, "chain", R_FAIL, "cannot verify the chain: out of memory");
		goto out;
	}
	if (X509_verify_cert(ctx) == 1) {
		vz_name_string(X509_get_subject_name(top), name, sizeof(name));
		step(t, "chain", R_PASS,
		     "complete and valid now for client authentication (%d CA "
		     "certificates, root '%s')",
		     n, name);
	} else {
		int depth = X509_STORE_CTX_get_error_depth(ctx);
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);

		name[0] = '\0';
		if (bad)
			vz_name_string(X509_get_subject_name(bad), name, sizeof(name));
		s = step(t, "chain", R_FAIL, "not valid now: %s (at '%s', depth %d)",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)), name, depth);
		fix(s, "import a certificate whose chain is valid now (renew at VECOZO if it "
		       "expired)");
	}
out:
	ERR_clear_error();
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
}

static void days_left(struct selftest *t, const vz_entry *e)
{
	const vz_cert_info *i = &e->info;
	struct step *s;

	if (!i->expired && !i->not_yet_valid && i->days_left >= MIN_DAYS) {
		step(t, "validity", R_PASS, "%ld days left (until %s)", i->days_left, i->not_after);
		return;
	}
	s = step(t, "validity", R_FAIL, "%s (valid %s to %s)",
		 i->expired	    ? "expired"
		 : i->not_yet_valid ? "not valid yet"
				    : "fewer than 14 days left",
		 i->not_before, i->not_after);
	fix(s, "renew the system certificate at VECOZO and import it with 'vzp11 import "
	       "--replace'");
}

/* Module, token, PIN and what the token holds. Leaves the module finalized
 * (the provider loads it next). false when the key cannot be tried. */
static bool token_steps(const vz_global *g, struct selftest *t)
{
	const char *module, *module_args;
	tok_lib *lib = NULL;
	tok_token *tok = NULL;
	tok_session *ses = NULL;
	vz_store *st = NULL;
	const vz_entry *e;
	tok_err te = {0};
	vz_err err = {0};
	bool ok = false;
	tok_rv r;

	if (vz_config_module(g, &module, &module_args, &err) != VZ_OK) {
		fail_vz(t, "module", &err, "give --module with --module-args");
		goto out;
	}
	r = tok_lib_open(module, module_args, &lib, &te);
	if (r != TOK_OK) {
		fail_tok(t, "module", &te,
			 "install the module, or name it with --module or "
			 "VZP11_MODULE");
		goto out;
	}
	step(t, "module", R_PASS, "%s loaded", module ? module : "p11-kit's modules");
	r = tok_lib_select(lib, g->token, &tok, &te);
	if (r != TOK_OK) {
		fail_tok(t, "token", &te,
			 "connect the token, or name it with --token or VZP11_TOKEN");
		goto out;
	}
	step(t, "token", R_PASS, "'%s' (%s %s, serial %s)", tok_token_info_of(tok)->label,
	     tok_token_info_of(tok)->manufacturer, tok_token_info_of(tok)->model,
	     tok_token_info_of(tok)->serial);
	r = tok_session_open(tok, false, read_pin, t, &ses, &te);
	if (r == TOK_NO_PIN && t->pin_rv != VZ_OK) {
		fail_vz(t, "pin", &t->pin_err,
			"give the PIN with --pin-source env:VAR or file:PATH");
		goto out;
	}
	if (r != TOK_OK) {
		fail_tok(t, "pin", &te, "check the PIN source; vzp11 never retries a rejected PIN");
		goto out;
	}
	step(t, "pin", R_PASS, "%s", t->pin_read ? "accepted" : "the token needs no login");
	if (vz_store_load(ses, &st, &err) != VZ_OK) {
		fail_vz(t, "certificate", &err, "see 'vzp11 list'");
		goto out;
	}
	e = find_entry(t, st);
	if (!e)
		goto out;
	key_attributes(t, e);
	chain_valid(t, e);
	days_left(t, e);
	ok = true;
out:
	vz_store_free(st);
	tok_session_close(ses);
	tok_lib_close(lib);
	return ok;
}

/* ---- the key through pkcs11-provider ---- */

/* A signature scheme TLS 1.2 and 1.3 sign handshakes with. */
struct scheme {
	const char *name, *md;
	bool pss;
};

static const struct scheme rsa_schemes[] = {{"rsa_pkcs1_sha256", "SHA256", false},
					    {"rsa_pss_rsae_sha256", "SHA256", true}},
			   p256_schemes[] = {{"ecdsa_secp256r1_sha256", "SHA256", false}},
			   p384_schemes[] = {{"ecdsa_secp384r1_sha384", "SHA384", false}};

/* What the TLS layer decided about RSA-PSS when it tried the key (tried):
 * the token's mechanism list, and a signature in each scheme. When it
 * could not decide, the signature steps say what fails. */
static void pss_step(struct selftest *t, vz_tls *tls, bool tried, bool is_rsa)
{
	if (tried && is_rsa && vz_tls_rsa_scheme(tls) == VZ_TLS_SIG_PSS)
		step(t, "pss", R_PASS,
		     "the token offers RSA-PSS and signed with it: TLS 1.3 when the server offers "
		     "it");
	else if (tried && is_rsa && vz_tls_fell_back(tls))
		step(t, "pss", R_PASS, "%s", vz_tls_note(tls));
	else if (tried && is_rsa)
		step(t, "pss", R_PASS,
		     "the token offers no RSA-PSS: TLS 1.2 with PKCS#1 v1.5 signatures will be used "
		     "(TLS 1.3 needs RSA-PSS)");
}

/* A scheme TLS will not sign with for this key, as the TLS layer found:
 * a skipped step, and true. */
static bool scheme_unused(struct selftest *t, vz_tls *tls, const struct scheme *sc,
			  const char *name)
{
	if (sc->pss && vz_tls_rsa_scheme(tls) == VZ_TLS_SIG_PKCS1_UNLISTED) {
		step(t, name, R_SKIP, "not used: the token offers no RSA-PSS");
		return true;
	}
	if (sc->pss && vz_tls_rsa_scheme(tls) == VZ_TLS_SIG_PKCS1_FALLBACK) {
		step(t, name, R_SKIP,
		     "not used: the token did not sign RSA-PSS with this key (see pss)");
		return true;
	}
	if (!sc->pss && vz_tls_rsa_scheme(tls) == VZ_TLS_SIG_PSS_ONLY) {
		step(t, name, R_SKIP,
		     "not used: this signature did not verify when the key was loaded, "
		     "RSA-PSS did (see pss): the key matches the certificate");
		return true;
	}
	return false;
}

/* A random challenge signed on the token in one scheme and verified with
 * the certificate's public key pub; a failure names the likely cause: the
 * token's signing, or a key that is not the certificate's. */
static void sign_step(struct selftest *t, vz_tls *tls, EVP_PKEY *pub, const struct scheme *sc,
		      const char *name)
{
	char why[256];
	struct step *s;
	int v = pub ? vz_tls_try_sign(vz_tls_key(tls), pub, sc->md, sc->pss, why, sizeof(why)) : -1;

	if (v == 1) {
		step(t, name, R_PASS,
		     "a random challenge signed on the token verifies with "
		     "the certificate's public key");
	} else if (v == 0 && vz_tls_key_matches(tls) == 1) {
		s = step(t, name, R_FAIL,
			 "the token's signature does not verify with the certificate, "
			 "though the key is the certificate's: the token signs this "
			 "scheme wrongly");
		fix(s, "TLS cannot use this scheme with this token; use a token that "
		       "signs it correctly");
	} else if (v == 0 && vz_tls_key_matches(tls) < 0) {
		s = step(t, name, R_FAIL,
			 "the token's signature does not verify with the certificate: "
			 "the key is not the certificate's, or the token signs wrongly");
		fix(s,
		    "if the key under label '%s' belongs to another certificate, import "
		    "the .pfx again with 'vzp11 import --replace'; else use a token that "
		    "signs this scheme correctly",
		    t->label);
	} else if (v == 0) {
		s = step(t, name, R_FAIL,
			 "the token's signature does not verify with the "
			 "certificate: key and certificate do not match");
		fix(s,
		    "import the .pfx again with 'vzp11 import --replace' (the key "
		    "under label '%s' belongs to another certificate)",
		    t->label);
	} else if (sc->pss) {
		s = step(t, name, R_FAIL,
			 "the token offers RSA-PSS but did not sign with it for this key (%s): "
			 "TLS 1.3 handshakes will fail",
			 why);
		fix(s, "allow CKM_RSA_PKCS_PSS and CKM_SHA256_RSA_PKCS_PSS for the key (re-import "
		       "it with 'vzp11 import --replace')");
	} else {
		s = step(t, name, R_FAIL, "the token cannot sign with the key (%s)", why);
		fix(s, "check the key's mechanisms with 'vzp11 show %s'", t->label);
	}
}

/* The schemes TLS 1.2 and 1.3 sign handshakes with for this key; tried:
 * the TLS layer tried the key and decided how it signs. */
static void signatures(struct selftest *t, vz_tls *tls, bool tried)
{
	EVP_PKEY *pub = X509_get0_pubkey(vz_tls_cert(tls));
	bool is_rsa = pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA;
	const struct scheme *sc = p256_schemes;
	size_t n = is_rsa ? 2 : 1;
	char name[48];

	if (is_rsa)
		sc = rsa_schemes;
	else if (pub && EVP_PKEY_get_bits(pub) > 256)
		sc = p384_schemes;
	pss_step(t, tls, tried, is_rsa);
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "sign %s", sc[i].name);
		if (!scheme_unused(t, tls, &sc[i], name))
			sign_step(t, tls, pub, &sc[i], name);
	}
}

/* ---- a COV check over mutual TLS ---- */

struct probe {
	vz_cov_one one; /* first: vz_cov_next_one() reads it */
	char result[64];
	char error[sizeof(((vz_cov_row *)0)->error)];
};

static vz_rv probe_emit(void *ctx, const vz_cov_row *row, vz_err *err)
{
	struct probe *p = ctx;

	snprintf(p->result, sizeof(p->result), "%s", row->r.result ? row->r.result : "");
	snprintf(p->error, sizeof(p->error), "%s", row->error);
	return VZ_OK;
}

/* True when the error is libcurl's: the connection or handshake failed,
 * not an answer from the server. */
static bool transport_error(const char *error)
{
	for (int c = 1; c < CURL_LAST; c++)
		if (strstr(error, vz_http_curl_reason((CURLcode)c)))
			return true;
	return false;
}

static void cov_probe(struct selftest *t, vz_tls *tls)
{
	vz_cov_cfg cfg = {.endpoint = t->endpoint,
			  .cacert = t->cacert,
			  .jobs = 1,
			  .per_request = 1,
			  .attempts = 1,
			  .connect_timeout_ms = 10000,
			  .timeout_ms = 30000,
			  .max_response = 1 << 20,
			  .max_backoff_ms = 1000};
	struct probe p = {0};
	vz_cov_stats st = {0};
	vz_err err = {0};
	char today[11];
	time_t now = time(NULL);
	struct tm tm;
	struct step *s;

	localtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	vz_cov_row_fill(&p.one.row, PROBE_BSN, PROBE_BIRTHDATE, NULL, "vzp11 selftest", today);
	p.one.row.line = 1;
	if (vz_cov_run(&cfg, tls, vz_cov_next_one, probe_emit, NULL, &p, &st, &err) != VZ_OK) {
		fail_vz(t, "cov handshake", &err, "see the message");
		return;
	}
	if (!p.error[0]) {
		step(t, "cov handshake", R_PASS,
		     "handshake with %s completed; VECOZO answered a COV check (Zoekresultaat %s)",
		     t->endpoint, p.result[0] ? p.result : "none");
	} else if (!transport_error(p.error)) {
		step(t, "cov handshake", R_PASS,
		     "handshake with %s completed; the answer was not a result: %s", t->endpoint,
		     p.error);
	} else {
		s = step(t, "cov handshake", R_FAIL, "no handshake with %s: %s", t->endpoint,
			 p.error);
		fix(s, "check the endpoint, --cacert, the network and that VECOZO knows this "
		       "certificate and this computer's IP address");
	}
}

/* The provider's half: the key loads, signs, and does a COV handshake. */
static void provider_steps(const vz_global *g, struct selftest *t)
{
	vz_global g2 = *g;
	vz_tls *tls = NULL;
	vz_err err = {0};
	char src[32];
	int fd = t->pin_read ? vz_secret_pipe(&t->pin, src, sizeof(src)) : -1;

	if (fd >= 0)
		g2.pin_source = src;
	if (vz_tls_open_untried(&g2, t->label, &tls, &err) != VZ_OK) {
		fail_vz(t, "provider", &err, "install pkcs11-provider");
		goto out;
	}
	step(t, "provider", R_PASS, "the key loads through pkcs11-provider");
	/* A key that cannot sign is shown by the signature steps, one each. */
	signatures(t, tls, vz_tls_try_key(tls, &err) == VZ_OK);
	if (!t->endpoint)
		step(t, "cov handshake", R_SKIP, "no --env, --endpoint or VZP11_ENV given");
	else
		cov_probe(t, tls);
out:
	if (fd >= 0)
		close(fd);
	vz_tls_close(tls);
}

/* ---- output ---- */

static void print_text(const struct selftest *t)
{
	size_t failed = 0;

	for (size_t i = 0; i < t->n; i++) {
		const struct step *s = &t->s[i];

		printf("%-4s  %-27s %s\n",
		       s->r == R_PASS	? "ok"
		       : s->r == R_FAIL ? "FAIL"
					: "skip",
		       s->name, s->detail);
		if (s->r == R_FAIL && s->fix[0])
			printf(_("      %-27s fix: %s\n"), "", s->fix);
		failed += s->r == R_FAIL;
	}
	if (failed)
		printf(_("selftest: %zu of %zu checks failed\n"), failed, t->n);
	else
		printf(_("selftest: all checks passed\n"));
}

static json_t *checks_json(const struct selftest *t)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < t->n; i++) {
		const struct step *s = &t->s[i];

		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?}", "name", s->name,
						     "status", result_names[s->r], "detail",
						     s->detail, "fix", s->fix[0] ? s->fix : NULL));
	}
	return arr;
}

static void print_json(const struct selftest *t)
{
	vz_out_json(stdout, json_pack("{s:s, s:b, s:o}", "label", t->label, "passed", !t->failed,
				      "checks", checks_json(t)));
}

/* Every check, the PIN read at most once; t->failed tells the verdict. */
static void run_all(const vz_global *g, struct selftest *t)
{
	t->pin_source = g->pin_source;
	if (token_steps(g, t))
		provider_steps(g, t);
	vz_secret_wipe(&t->pin);
}

bool vz_selftest(const vz_global *g, const char *label, const char *endpoint, const char *cacert,
		 json_t **checks)
{
	struct selftest t = {.label = label, .endpoint = endpoint, .cacert = cacert};

	run_all(g, &t);
	if (checks)
		*checks = checks_json(&t);
	else
		print_text(&t);
	return !t.failed;
}

enum {
	O_LABEL = 1,
	O_ENV,
	O_ENDPOINT,
	O_CACERT
};

static const vz_opt selftest_opts[] = {
	{"label", O_LABEL, "LABEL", N_("certificate on the token (default: %s)"), VZ_AS_LABEL},
	{"env", O_ENV, "tst|acc|prd",
	 N_("VECOZO environment for the COV handshake (env VZP11_ENV)"), VZ_AS_ENV},
	{"endpoint", O_ENDPOINT, "URL", N_("the COV endpoint itself, instead of --env"),
	 VZ_AS_COV_ENDPOINT},
	{"cacert", O_CACERT, "FILE",
	 N_("trust only the CA certificates in FILE for the server\n"
	    "(env VZP11_CACERT; default: the system store)"),
	 VZ_AS_CACERT},
	{0},
};

static int cmd_selftest(vz_global *g, int argc, char **argv);

/* The about text names MIN_DAYS. */
const vz_command vz_cmd_selftest = {
	.name = "selftest",
	.run = cmd_selftest,
	.synopsis = "selftest [--label LABEL] [--env tst|acc|prd | --endpoint URL] [--cacert FILE]",
	.usage = N_("selftest [--label LABEL]\n"
		    "                                     [--env tst|acc|prd | --endpoint URL] "
		    "[--cacert FILE]"),
	.about = N_(
		"Check everything a COV or billing call needs, one line per check with pass or\n"
		"fail and, on fail, what to do: the module loads, the token is there, the PIN is\n"
		"accepted (read once, never retried), the key is sensitive and not extractable,\n"
		"the chain is complete and valid now, at least 14 days are left, the key loads\n"
		"through pkcs11-provider and signs a random challenge that the certificate's\n"
		"public key verifies, in each scheme TLS may use (RSA: PKCS#1 v1.5 and PSS with\n"
		"SHA-256; EC: ECDSA), and with an endpoint a real COV check over mutual TLS.\n"),
	.opts = selftest_opts,
	.notes = N_(
		"Without --env, --endpoint or VZP11_ENV the COV handshake is skipped. It passes\n"
		"when the TLS handshake completes; the line names VECOZO's answer (a Zoekresultaat\n"
		"or the fault, such as Niet geauthenticeerd).\n"
		"--json prints one object: {label, passed, checks: [{name, status, detail, fix}]}.\n"
		"Exit: 0 every check passed (skipped ones aside), 1 a check failed, 2 usage error.\n"),
};

/* -1 after --help, 0 when the options are good, else the exit code. */
static int parse(vz_global *g, int argc, char **argv, struct selftest *t)
{
	vz_err err = {0};
	const char *arg;
	int o;

	while ((o = vz_opt_next(g, &vz_cmd_selftest, argc, argv, &arg)) > 0) {
		if (o == O_LABEL)
			t->label = arg;
		else if (o == O_ENV)
			t->env = arg;
		else if (o == O_ENDPOINT)
			t->endpoint = arg;
		else
			t->cacert = arg;
	}
	if (o == VZ_OPT_HELP)
		return -1;
	if (o != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_selftest, o, argv);
	if (optind < argc)
		return vz_usage("selftest", "unexpected argument '%s'", argv[optind]);
	if (g->pin_source && vz_secret_check_source(g->pin_source, &err) != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_USAGE;
	}
	t->cacert = t->cacert ? t->cacert : vz_env("VZP11_CACERT");
	/* The handshake is optional here: only when a target is named. */
	if (!t->env && !t->endpoint && !vz_env("VZP11_ENV"))
		return 0;
	return vz_target("selftest", &t->env, &t->endpoint, vz_cov_endpoint);
}

static int cmd_selftest(vz_global *g, int argc, char **argv)
{
	struct selftest t = {.label = VZ_DEFAULT_LABEL};
	int ret;

	ret = parse(g, argc, argv, &t);
	if (ret != 0)
		return ret == -1 ? VZ_EXIT_OK : ret;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, _("vzp11: cannot initialize libcurl\n"));
		return VZ_EXIT_FAIL;
	}
	run_all(g, &t);
	if (g->json)
		print_json(&t);
	else
		print_text(&t);
	ret = t.failed ? VZ_EXIT_FAIL : VZ_EXIT_OK;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, _("vzp11: cannot write the output\n"));
		ret = VZ_EXIT_FAIL;
	}
	curl_global_cleanup();
	return ret;
}
