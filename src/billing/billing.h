/* billing.h - what the billing commands share: their network options, the
 * connection to the Berichtenservice, and the journal. */
#ifndef VZP11_BILLING_H
#define VZP11_BILLING_H

#include <stdio.h>

#include <jansson.h>

#include "cli.h"
#include "journal.h"
#include "rest.h"
#include "tls.h"


enum {
	OPT_B_LABEL = 1100,
	OPT_B_ENV,
	OPT_B_ENDPOINT,
	OPT_B_CACERT,
	OPT_B_RETRIES,
	OPT_B_TIMEOUT,
	OPT_B_CTIMEOUT,
};

#define VZ_BILL_LONGOPTS                                                                           \
	{"label", required_argument, NULL, OPT_B_LABEL},                                           \
		{"env", required_argument, NULL, OPT_B_ENV},                                       \
		{"endpoint", required_argument, NULL, OPT_B_ENDPOINT},                             \
		{"cacert", required_argument, NULL, OPT_B_CACERT},                                 \
		{"retries", required_argument, NULL, OPT_B_RETRIES},                               \
		{"timeout", required_argument, NULL, OPT_B_TIMEOUT},                               \
	{                                                                                          \
		"connect-timeout", required_argument, NULL, OPT_B_CTIMEOUT                         \
	}

typedef struct vz_bill_opts {
	const char *label, *env, *endpoint, *cacert;
	long retries, timeout_s, connect_timeout_s;
} vz_bill_opts;

/* Defaults: the system label, 3 retries, 30 s, 10 s. */
void vz_bill_defaults(vz_bill_opts *o);

/* One option of VZ_BILL_LONGOPTS: 0 taken, -1 not one of them, or the
 * usage exit code. */
int vz_bill_opt(vz_bill_opts *o, const char *cmd, int c, const char *arg);

/* After the options: VZP11_ENV and VZP11_CACERT, and the endpoint from
 * --env or --endpoint (never both, wherever each came from). 0 or the
 * usage exit code. */
int vz_bill_resolve(vz_bill_opts *o, const char *cmd);

/* The help lines of the shared options. */
void vz_bill_usage(FILE *f);

/* The token's key and one kept-alive connection to the endpoint. The PIN
 * is asked once. */
vz_rv vz_bill_connect(const vz_global *g, const vz_bill_opts *o, vz_tls **tls, vz_rest **rest,
		      vz_err *err);
void vz_bill_disconnect(vz_tls *tls, vz_rest *rest);

/* A sentence for an answer that is not what the service should give:
 * 401/403 (certificate or right), 404 (endpoint), 5xx, or problem details. */
void vz_bill_http_error(const vz_rest_answer *a, const char *what, vz_err *err);

/* Compact JSON and a newline on f; frees j. */
void vz_bill_put_json(FILE *f, json_t *j);

#endif
