/* cov.h - COV, the insurance check (VZ801/802): the SOAP messages, the
 * CSV input, rows in and out, and the run that sends them. */
#ifndef VZP11_COV_COV_H
#define VZP11_COV_COV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "cli/cli.h"
#include "tls/tls.h"

/* ---- VECOZO COV (VZ801/VZ802 "Controleer"): local checks, the SOAP
 * request, and the response parser. No I/O here. */

#define VZ_COV_MAX_SEARCHES 20			     /* per request, set by VECOZO */
#define VZ_COV_REF_MAX	    80			     /* characters of a reference */
#define VZ_COV_REF_SIZE	    (4 * VZ_COV_REF_MAX + 1) /* bytes, UTF-8 */
#define VZ_COV_SOAP_ACTION  "http://schemas.vecozo.nl/VZ801802/v1/Controleer"

/* Endpoint of an environment ("tst", "acc", "prd"), or NULL. */
const char *vz_cov_endpoint(const char *env);

/* One search: a person by BSN and birth date on a reference date. */
typedef struct vz_cov_search {
	unsigned long seq;		 /* Volgnummer: 1..20 within its request */
	char bsn[10];			 /* nine digits */
	char birthdate[11];		 /* YYYY-MM-DD */
	char date[11];			 /* Peildatum, YYYY-MM-DD */
	char reference[VZ_COV_REF_SIZE]; /* ReferentieZorgaanbieder, may be empty */
} vz_cov_search;

typedef struct vz_cov_insurance {
	char *status; /* Actief, Inactief, NietGeautoriseerdVoorZorgverzekeraar */
	char *uzovi, *insured_number, *kind, *package_code, *package_name;
	char *label_code, *label_name, *start, *end;
} vz_cov_insurance;

/* What VECOZO said about one search. Strings are NULL when absent. */
typedef struct vz_cov_result {
	unsigned long seq;
	char *result;	 /* Zoekresultaat: Gevonden, NietGevonden, ... */
	char *reference; /* echoed */
	bool has_person;
	char *person_result, *initials, *prefix, *surname, *birthdate, *gender, *bsn;
	bool deceased;
	vz_cov_insurance *ins;
	size_t n_ins;
} vz_cov_result;

void vz_cov_result_clear(vz_cov_result *r);

/* Exactly nine digits that pass the eleven-test (weights 9..2 and -1 on
 * the last digit, sum divisible by 11); copied to out. */
bool vz_bsn_valid(const char *in, char out[10]);

/* A real calendar date written exactly YYYY-MM-DD (digits only), years
 * 1870 to 2200. */
bool vz_date_valid(const char *s);

/* Splits an 8-digit AGB code into its kind (2 digits) and number (6). */
bool vz_agb_valid(const char *agb);

/* The SOAP 1.1 envelope for n searches (1..VZ_COV_MAX_SEARCHES), elements in
 * the order of the VZ801 schema; agb may be NULL. Each search's seq must
 * fit the WSDL's 16-bit Volgnummer (the engine numbers them 1..n). *out is
 * malloc'ed. */
vz_rv vz_cov_build(const vz_cov_search *s, size_t n, const char *agb, char **out, size_t *len,
		   vz_err *err);

typedef enum vz_cov_status {
	VZ_COV_OK = 0,		/* VerzoekAkkoord; results filled */
	VZ_COV_REQUEST_REFUSED, /* GeenZoekopdrachten / MeerDan20Zoekopdrachten */
	VZ_COV_FAULT,		/* a SOAP fault */
	VZ_COV_MALFORMED,	/* not a response we can read */
} vz_cov_status;

typedef enum vz_cov_fault_kind {
	VZ_FAULT_OTHER = 0,
	VZ_FAULT_NOT_AUTHENTICATED, /* "Niet geauthenticeerd" */
	VZ_FAULT_NOT_AUTHORIZED,    /* "Niet geautoriseerd" */
} vz_cov_fault_kind;

/* Parses a VZ802 response or SOAP fault, matching on local names only.
 * Results are written to results[0..*n_results), in response order; more
 * than max is VZ_COV_MALFORMED. The caller matches them by seq (0 when the
 * Volgnummer is not a number). Every string is cleaned of control
 * characters. detail gets the request-level Resultaat or the fault text,
 * with runs of 8 or more digits masked. */
vz_cov_status vz_cov_parse(const char *body, size_t len, vz_cov_result *results, size_t max,
			   size_t *n_results, vz_cov_fault_kind *fault, char *detail,
			   size_t detail_size);

/* ---- streaming CSV as spreadsheets write it: ',' or ';', quotes,
 * CRLF, a UTF-8 byte order mark, Windows-1252 text. One record in memory
 * at a time. */

#define VZ_CSV_MAX_RECORD 65536 /* bytes of one line */

typedef struct vz_csv vz_csv;

vz_csv *vz_csv_new(FILE *in);
void vz_csv_free(vz_csv *c);

/* Reads the next record. A record is one line: a quoted field cannot span
 * lines, so no line can swallow the next. Only a quote at the start of a
 * field opens quoting; a quote elsewhere is text (O"Brien). Lines with
 * nothing but spaces, tabs and separators are skipped.
 * 1: fields in *fields (UTF-8, valid until the next call);
 * 0: end of input;
 * 2: a malformed line (unclosed quote, text after a closing quote, too
 *    long, a NUL byte, neither UTF-8 nor Windows-1252): no fields, *n is 0,
 *    vz_csv_problem() says what is wrong;
 * -1: read error. */
int vz_csv_read(vz_csv *c, char ***fields, size_t *n, vz_err *err);

/* What is wrong with the line vz_csv_read() answered 2 for. */
const char *vz_csv_problem(const vz_csv *c);

/* Line number of the last record (1 is the file's first line). */
size_t vz_csv_line(const vz_csv *c);

/* The separator, guessed from the first record: ';' when it has more
 * semicolons than commas, ',' otherwise. */
char vz_csv_sep(const vz_csv *c);

/* Bytes consumed so far, for progress. */
long vz_csv_offset(const vz_csv *c);

/* Lines that were not UTF-8 and were read as Windows-1252. */
size_t vz_csv_converted(const vz_csv *c);

/* Writes one record, quoting fields that need it. NULL fields are empty; a
 * field starting with = + - @, a tab or a CR (a formula to a spreadsheet)
 * gets a leading apostrophe. */
void vz_csv_write(FILE *f, char sep, const char *const *fields, size_t n);

/* ---- running COV searches over mutual TLS: batches of up to 20 per
 * request, parallel requests on kept-alive connections, bounded retries,
 * results handed back in input order with flat memory use. */

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

/* The key half of --endpoint's entry in the commands that send COV
 * checks (cov, selftest, rotate): key endpoint of section [cov]. */
#define VZ_AS_COV_ENDPOINT VZ_KEY_HTTPS, "cov", NULL, 0, 0, NULL, NULL

/* One row to run, for a caller with a single person: vz_cov_next_one() is
 * the next function of a ctx that starts with a vz_cov_one (the emit
 * function may find more of its own after it). */
typedef struct vz_cov_one {
	vz_cov_row row;
	bool given;
} vz_cov_one;
int vz_cov_next_one(void *ctx, vz_cov_row *row, vz_err *err);

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

/* ---- turning what a user gave (options, a CSV line) into a COV
 * search, strictly: a field that is not exactly right keeps the row from
 * being sent, and says why without repeating the field. */

/* The fields of one row, NULL when absent; date NULL or empty means
 * default_date (YYYY-MM-DD). Fills row's raw fields and either row->s or
 * row->error with row->done set. Spaces around a field are ignored. */
void vz_cov_row_fill(vz_cov_row *row, const char *bsn, const char *birthdate, const char *date,
		     const char *reference, const char *default_date);

/* A line that could not be read into fields: the row says which line and
 * what is wrong (problem), and is never sent. */
void vz_cov_row_malformed(vz_cov_row *row, size_t line, const char *problem);

/* ---- rendering COV rows for people and programs. */

/* The object of README's `cov --json`; with_line adds "line" (batches).
 * Caller owns the result. */
json_t *vz_cov_row_json(const vz_cov_row *row, bool with_line);

/* The batch CSV: a header line, then one line per row. */
void vz_cov_csv_header(FILE *f, char sep);
void vz_cov_row_csv(FILE *f, char sep, const vz_cov_row *row);

/* The person and insurances for a terminal. */
void vz_cov_row_text(FILE *f, const vz_cov_row *row);

extern const vz_command vz_cmd_cov;

#endif
