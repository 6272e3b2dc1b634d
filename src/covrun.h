/* covrun.h - running COV searches over mutual TLS: batches of up to 20 per
 * request, parallel requests on kept-alive connections, bounded retries,
 * results handed back in input order with flat memory use. */
#ifndef VZP11_COVRUN_H
#define VZP11_COVRUN_H

#include <stdbool.h>
#include <stddef.h>

#include "cov.h"
#include "err.h"
#include "tls.h"

/* The shortest time between two re-connects to the token. */
#define VZ_COV_RECONNECT_MS 5000

typedef struct vz_cov_cfg {
	const char *endpoint;
	const char *cacert;   /* NULL: system store */
	const char *agb;      /* NULL: no Zorgaanbieder element */
	unsigned jobs;	      /* parallel requests (and connections) */
	unsigned per_request; /* searches per request, 1..20 */
	unsigned attempts;    /* tries per request, at least 1 */
	long connect_timeout_ms;
	long timeout_ms;     /* whole request */
	size_t max_response; /* bytes; a larger response is an error */
	long max_backoff_ms; /* upper bound of one wait between tries */
	long token_wait_ms;  /* how long a token that went away may take to come back */
} vz_cov_cfg;

/* One input row. The reader fills line, the raw fields (as given, cut to
 * size, cleaned of control characters) and either s (a search to send) or
 * error with done set (refused locally). */
typedef struct vz_cov_row {
	size_t line;
	char raw_bsn[40], raw_birthdate[40], raw_date[40];
	char reference[VZ_COV_REF_SIZE];
	vz_cov_search s;
	vz_cov_result r;
	char error[320]; /* empty when the check succeeded; never patient data */
	bool done;
} vz_cov_row;

/* 1: a row; 0: end of input; -1: cannot read on (err says why). */
typedef int (*vz_cov_next_fn)(void *ctx, vz_cov_row *row, vz_err *err);
/* Called once per row, in input order. */
typedef vz_rv (*vz_cov_emit_fn)(void *ctx, const vz_cov_row *row, vz_err *err);

typedef struct vz_cov_stats {
	size_t rows, failed;
	size_t requests; /* HTTP requests sent, retries included */
	size_t retries;
	size_t connections;   /* TLS connections set up (handshakes) */
	size_t reconnects;    /* times the token was re-opened after it went away */
	long long elapsed_ms; /* since the run started */
} vz_cov_stats;

/* progress, if not NULL, is called now and then with the running stats.
 * When handshakes fail because the token's key cannot sign, no request is
 * sent until the token is re-connected (vz_tls_reconnect(), at most once
 * per VZ_COV_RECONNECT_MS, never after a PIN failure); the requests in
 * flight go again without using up their tries. A token that stays away
 * longer than cfg->token_wait_ms, or whose key still fails after a
 * re-connect, fails the remaining rows with the reason; no row is lost. */
vz_rv vz_cov_run(const vz_cov_cfg *cfg, vz_tls *tls, vz_cov_next_fn next, vz_cov_emit_fn emit,
		 void (*progress)(void *ctx, const vz_cov_stats *st), void *ctx,
		 vz_cov_stats *stats, vz_err *err);

#endif
