/* billing.c - options and connections the billing commands share. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "billing/billing.h"
#include "cli/cli.h"

/* VZ_BILL_OPTS's texts. */
const char vz_bill_help_label[] = N_("certificate on the token (default: %s)");
const char vz_bill_help_env[] = N_("VECOZO environment (env VZP11_ENV)");
const char vz_bill_help_endpoint[] = N_("the Berichtenservice base itself, instead of --env");
const char vz_bill_help_cacert[] = N_("trust only the CA certificates in FILE for the server\n"
				      "(env VZP11_CACERT; default: the system store)");
const char vz_bill_help_retries[] = N_("extra tries after a transient failure, 0..10 (default 3)");
const char vz_bill_help_timeout[] =
	N_("limit for one request, or for a stalled transfer (default 30)");
const char vz_bill_help_ctimeout[] = N_("limit for connecting (default 10)");
const char vz_bill_help_journal[] = N_("the journal (env VZP11_JOURNAL): a SQLite file, or\n"
				       "postgresql://... when several machines bill");
const char vz_bill_bad_retries[] = N_("--retries takes a number from %ld to %ld");
const char vz_bill_bad_timeout[] = N_("--timeout takes seconds, %ld to %ld");
const char vz_bill_bad_ctimeout[] = N_("--connect-timeout takes seconds, %ld to %ld");

void vz_bill_defaults(vz_bill_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->label = VZ_DEFAULT_LABEL;
	o->retries = 3;
	o->timeout_s = 30;
	o->connect_timeout_s = 10;
}

int vz_bill_opt(vz_bill_opts *o, const vz_command *c, int id, const char *arg)
{
	switch (id) {
	case OPT_B_LABEL:
		o->label = arg;
		return 0;
	case OPT_B_ENV:
		o->env = arg;
		return 0;
	case OPT_B_ENDPOINT:
		o->endpoint = arg;
		return 0;
	case OPT_B_CACERT:
		o->cacert = arg;
		return 0;
	case OPT_B_RETRIES:
		return vz_opt_num(c, id, arg, &o->retries);
	case OPT_B_TIMEOUT:
		return vz_opt_num(c, id, arg, &o->timeout_s);
	case OPT_B_CTIMEOUT:
		return vz_opt_num(c, id, arg, &o->connect_timeout_s);
	default:
		return -1;
	}
}

int vz_bill_resolve(vz_bill_opts *o, const char *cmd)
{
	int r = vz_target(cmd, &o->env, &o->endpoint, vz_br_endpoint);
	size_t len = o->endpoint ? strlen(o->endpoint) : 0;

	if (r)
		return r;
	o->cacert = o->cacert ? o->cacert : vz_env("VZP11_CACERT");
	if (o->endpoint[len - 1] == '/')
		return vz_usage(cmd,
				"the endpoint is the Berichtenservice base without a '/' at the "
				"end, e.g. https://api.vecozo.nl/berichtenservice");
	return 0;
}

vz_rv vz_bill_connect(const vz_global *g, const vz_bill_opts *o, vz_tls **tls, vz_rest **rest,
		      vz_err *err)
{
	vz_rest_cfg cfg = {
		.base = o->endpoint,
		.cacert = o->cacert,
		.attempts = (unsigned)o->retries + 1,
		.connect_timeout_ms = o->connect_timeout_s * 1000,
		.timeout_ms = o->timeout_s * 1000,
		.max_backoff_ms = 10000,
	};

	*tls = NULL;
	*rest = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		vz_err_set(err, "cannot initialize libcurl");
		return VZ_FAIL;
	}
	if (vz_tls_open(g, o->label, tls, err) != VZ_OK) {
		curl_global_cleanup();
		return VZ_FAIL;
	}
	/* A key that signs otherwise than its token promised: said once. */
	if ((g->verbose || vz_tls_fell_back(*tls)) && vz_tls_note(*tls)[0])
		vz_note(g, "%s", vz_tls_note(*tls));
	if (vz_rest_new(&cfg, *tls, rest, err) != VZ_OK) {
		vz_bill_disconnect(*tls, NULL);
		*tls = NULL;
		return VZ_FAIL;
	}
	return VZ_OK;
}

void vz_bill_disconnect(vz_tls *tls, vz_rest *rest)
{
	vz_rest_free(rest);
	if (tls) {
		vz_tls_close(tls);
		curl_global_cleanup();
	}
}

void vz_bill_http_error(const vz_rest_answer *a, const char *what, vz_err *err)
{
	char *lines[4] = {0};
	size_t n = a->body ? vz_br_problem(a->body, a->len, lines, 4, NULL) : 0;

	if (a->http == 401)
		vz_err_set(err,
			   "VECOZO did not accept the certificate (Niet geauthenticeerd) for %s: "
			   "is it expired, not the system certificate, meant for another "
			   "environment, or is this computer's IP address not registered?",
			   what);
	else if (a->http == 403)
		vz_err_set(
			err,
			"the certificate lacks the right for %s (Niet geautoriseerd): ask VECOZO "
			"for the Berichtenservice right for this system certificate",
			what);
	else if (a->http == 404 && n == 0)
		vz_err_set(err, "HTTP 404 for %s: check the endpoint (the Berichtenservice base)",
			   what);
	else
		vz_err_set(err, "HTTP %ld for %s%s%.300s", a->http, what, n ? ": " : "",
			   n ? lines[0] : "");
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
}

void vz_bill_put_json(FILE *f, json_t *j)
{
	json_dumpf(j, f, JSON_COMPACT);
	fputc('\n', f);
	json_decref(j);
}
