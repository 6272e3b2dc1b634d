/* billing.h - declarations through the Berichtenservice: the messages,
 * the REST calls, and what the billing commands share. */
#ifndef VZP11_BILLING_BILLING_H
#define VZP11_BILLING_BILLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "cli/cli.h"
#include "journal/journal.h"
#include "tls/tls.h"

/* ---- VECOZO's Berichtenservice (REST): the declaration's
 * metadata, and the readers of what the services answer (problem details,
 * message statuses, the list of return messages). No I/O here; every
 * reader takes untrusted bytes and never trusts a length or a field. */

#define VZ_BR_MAX_TO	  100 /* addressees per message, set by VECOZO */
#define VZ_BR_MAX_REF	  150 /* characters of referentieId */
#define VZ_BR_MAX_WORD	  60  /* characters of berichttype, berichtsubtype, actie */
#define VZ_BR_MAX_VERSION 999 /* of berichtversie and berichtsubversie */
/* Bytes for a word of VZ_BR_MAX_WORD characters of UTF-8, and its NUL. */
#define VZ_BR_WORD_SIZE	  (VZ_BR_MAX_WORD * 4 + 1)
#define VZ_BR_PATH_PUSH	  "/berichten/rest-push/v1/berichten"
#define VZ_BR_PATH_STATUS "/berichtstatus/rest-pull/v3/berichtstatussen"
#define VZ_BR_PATH_PULL	  "/berichten/rest-pull/v1/berichten"

/* The Berichtenservice base of an environment ("tst", "acc", "prd"), or
 * NULL. */
const char *vz_br_endpoint(const char *env);

/* A party: a role (Praktijk, Zorgverlener, Instelling, Zorgverzekeraar)
 * and its code (an 8-digit AGB code, or a 4-digit UZOVI code for
 * Zorgverzekeraar). */
typedef struct vz_br_party {
	char role[16];
	char code[9];
} vz_br_party;

/* The message flow: berichttype[/subtype]:version.subversion[:action].
 * As VECOZO's contract has them: the words 1 to 60 characters (subtype
 * optional: "" when absent), the numbers 0 to 999. */
typedef struct vz_br_flow {
	char type[VZ_BR_WORD_SIZE], subtype[VZ_BR_WORD_SIZE];
	unsigned version, subversion;
	char action[VZ_BR_WORD_SIZE]; /* default Indienen */
} vz_br_flow;

/* "ROLE:CODE". false with why set (a sentence without the value). */
bool vz_br_party_parse(const char *s, vz_br_party *out, const char **why);

/* "TYPE[/SUBTYPE]:VERSION.SUBVERSION[:ACTION]". A backslash takes the
 * next character as it is, so a word may hold '/', ':' or '\\'. Each word
 * is 1 to 60 characters of UTF-8 without control characters; anything else
 * the contract allows. why (untranslated, marked N_) says what is wrong. */
bool vz_br_flow_parse(const char *s, vz_br_flow *out, const char **why);

/* A referentieId as the contract takes it: 1 to 150 characters of UTF-8,
 * without control characters. */
bool vz_br_reference_ok(const char *s);

/* A new random UUID (version 4) from the CSPRNG, lower case. */
vz_rv vz_br_uuid(char out[37], vz_err *err);

/* The berichtMetadata JSON, malloc'ed. reference may be NULL. */
char *vz_br_metadata(const vz_br_party *from, const vz_br_party *to, size_t n_to,
		     const vz_br_flow *flow, const char *conversatie_id, const char *traceer_id,
		     const char *reference);

/* Problem details (RFC 7807) of a 4xx answer, as lines for a person:
 * "title: detail" and one "field: message" per entry of errors. Control
 * characters are cleaned. Returns the number of lines written into
 * lines[0..max) (each malloc'ed), 0 when the body is not problem details.
 * errors_json, if not NULL, gets the errors object as compact JSON
 * (malloc'ed) or NULL. */
size_t vz_br_problem(const char *body, size_t len, char **lines, size_t max, char **errors_json);

/* One melding of a status. */
typedef struct vz_br_melding {
	char *code, *omschrijving, *toelichting;
} vz_br_melding;

/* One status of a message, as the status service gives it. Strings are
 * NULL when absent. changed_at is berichtstatusGewijzigdOp in UTC,
 * YYYY-MM-DDTHH:MM:SSZ, when it could be read; else as it came (cleaned). */
typedef struct vz_br_status {
	char *traceer_id, *status, *changed_at;
	vz_br_melding *meldingen;
	size_t n_meldingen;
} vz_br_status;

void vz_br_status_clear(vz_br_status *s);

/* A moment in time: seconds since 1970 (UTC) and nanoseconds. */
typedef struct vz_br_instant {
	long long s;
	long ns;
} vz_br_instant;

/* An RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS, an optional fraction of any
 * length, then Z or an offset such as +01:00), as an instant. */
bool vz_br_time_parse(const char *text, vz_br_instant *out);

/* <0, 0, >0 as a is before, at, after b. */
int vz_br_instant_cmp(const vz_br_instant *a, const vz_br_instant *b);

/* Reads the status service's answer (a JSON array, or an object holding
 * one) and keeps the newest entry for traceer_id in *out: the latest
 * berichtstatusGewijzigdOp as an instant (VECOZO writes local time with
 * its offset, and fractions of varying length, so the text does not sort),
 * an entry whose time cannot be read losing to one whose can, and of two
 * at one instant the later in the list. VZ_OK: found; VZ_NOT_FOUND: the
 * service does not know it; VZ_FAIL: not readable. */
vz_rv vz_br_status_parse(const char *body, size_t len, const char *traceer_id, vz_br_status *out,
			 vz_err *err);

/* A status word after which nothing changes any more. */
bool vz_br_status_final(const char *status);

/* A final status that means the message was refused or not delivered. */
bool vz_br_status_failed(const char *status);

/* The meldingen as a compact JSON array (malloc'ed), for the journal. */
char *vz_br_meldingen_json(const vz_br_status *s);

/* One waiting return message from the pull list. */
typedef struct vz_br_retour {
	char traceer_id[37];
	long long size;
	char sha256[65]; /* lower case hex */
	char url[2048];	 /* basisgegevens.payload.url as it came; "" when absent */
} vz_br_retour;

/* Reads the pull list (a bare JSON array, or an object with one array
 * member). Entries without a valid traceerId (a UUID), a size >= 0 or a
 * SHA256 checksum of 64 hex digits, or with a payload URL that is not a
 * string of at most 2047 bytes, are counted in *bad and left out.
 * *out is malloc'ed (free it), *n its length. */
vz_rv vz_br_pull_parse(const char *body, size_t len, vz_br_retour **out, size_t *n, size_t *bad,
		       vz_err *err);

/* A UUID written 8-4-4-4-12 in hex. */
bool vz_br_uuid_valid(const char *s);

/* ---- requests to the Berichtenservice over mutual TLS with the token
 * key: one kept-alive connection per client, bounded retries of what is
 * safe to repeat, answers bounded in size, payloads streamed both ways. */

typedef struct vz_rest vz_rest;

typedef struct vz_rest_cfg {
	const char *base;   /* https://.../berichtenservice, no trailing slash */
	const char *cacert; /* NULL: the system store */
	unsigned attempts;  /* tries per request, at least 1 */
	long connect_timeout_ms;
	long timeout_ms;     /* a request without a payload; payloads get no limit */
	long max_backoff_ms; /* upper bound of one wait between tries */
} vz_rest_cfg;

/* What a request came to. body holds an answer of at most 4 MiB (NUL
 * terminated), not a streamed payload. */
typedef struct vz_rest_answer {
	long http;  /* 0 when no answer came */
	char *body; /* malloc'ed, or NULL */
	size_t len;
	unsigned attempts; /* tries made */
	bool maybe_sent;   /* the request may have reached the server */
} vz_rest_answer;

void vz_rest_answer_clear(vz_rest_answer *a);

vz_rv vz_rest_new(const vz_rest_cfg *cfg, vz_tls *tls, vz_rest **out, vz_err *err);
void vz_rest_free(vz_rest *r);

/* Called about once a second (VZ_REST_BEAT_S) while a push is under way:
 * connecting, uploading, waiting for the answer, and before each wait
 * between tries. */
#define VZ_REST_BEAT_S 1
typedef void (*vz_rest_beat)(void *ctx);

/* POSTs multipart/form-data to base+path: a part berichtMetadata (JSON)
 * and a part payload read from fd (size bytes, sent as
 * application/octet-stream under file_name). Retried on connection errors
 * and 429/502/503/504 (the caller makes that safe: same traceerId). beat
 * (may be NULL) gets beat_ctx while it runs. VZ_OK when any HTTP answer
 * came (a->http says which); VZ_FAIL when none did. */
vz_rv vz_rest_push(vz_rest *r, const char *path, const char *meta_json, int fd, long long size,
		   const char *file_name, vz_rest_beat beat, void *beat_ctx, vz_rest_answer *a,
		   vz_err *err);

/* GET base+path (with its query). */
vz_rv vz_rest_get(vz_rest *r, const char *path, vz_rest_answer *a, vz_err *err);

/* A sink takes a 200 answer's body as it arrives; false aborts. */
typedef bool (*vz_rest_sink)(void *ctx, const void *p, size_t n);

/* The absolute URL of url (absolute, or relative to the base) when it is
 * on the base: the same scheme, host and port, no user name or password;
 * the client certificate goes to no other place. VZ_OK with out (size
 * bytes) filled; VZ_FAIL with err saying where it points instead. */
vz_rv vz_rest_on_base(const vz_rest *r, const char *url, char *out, size_t size, vz_err *err);

/* GETs an absolute URL that vz_rest_on_base gave, handing a 200 answer's
 * body to sink as it arrives (other answers land in a->body). restart is
 * called before every try after the first, so the sink can start over. */
vz_rv vz_rest_download_url(vz_rest *r, const char *url, vz_rest_sink sink,
			   void (*restart)(void *ctx), void *ctx, vz_rest_answer *a, vz_err *err);

/* DELETE base+path. */
vz_rv vz_rest_delete(vz_rest *r, const char *path, vz_rest_answer *a, vz_err *err);

/* TLS connections made so far. */
size_t vz_rest_connections(const vz_rest *r);

/* ---- what the billing commands share: their network options, the
 * connection to the Berichtenservice, and the journal. */

enum {
	OPT_B_LABEL = 1100,
	OPT_B_ENV,
	OPT_B_ENDPOINT,
	OPT_B_CACERT,
	OPT_B_RETRIES,
	OPT_B_TIMEOUT,
	OPT_B_CTIMEOUT,
};

/* The shared options' --help texts and range messages; in billing.c,
 * where xgettext finds them (it reads no headers). */
extern const char vz_bill_help_label[], vz_bill_help_env[], vz_bill_help_endpoint[],
	vz_bill_help_cacert[], vz_bill_help_retries[], vz_bill_help_timeout[],
	vz_bill_help_ctimeout[], vz_bill_help_journal[], vz_bill_bad_retries[],
	vz_bill_bad_timeout[], vz_bill_bad_ctimeout[];

/* The options of every command that talks to the Berichtenservice, at the
 * end of its own table, with their configuration keys (label, env and
 * cacert before any section, endpoint and the numbers in [billing]).
 * --journal is the global option, shown here because these commands
 * write the journal. */
/* clang-format off */
#define VZ_BILL_OPTS                                                                               \
	{"label", OPT_B_LABEL, "LABEL", vz_bill_help_label, VZ_AS_LABEL},                          \
	{"env", OPT_B_ENV, "tst|acc|prd", vz_bill_help_env, VZ_AS_ENV},                            \
	{"endpoint", OPT_B_ENDPOINT, "URL", vz_bill_help_endpoint,                                 \
	 VZ_KEY_HTTPS, "billing", NULL, 0, 0, NULL, NULL},                                         \
	{"cacert", OPT_B_CACERT, "FILE", vz_bill_help_cacert, VZ_AS_CACERT},                       \
	{"retries", OPT_B_RETRIES, "N", vz_bill_help_retries,                                      \
	 VZ_KEY_NUM, "billing", NULL, 0, 10, "3", vz_bill_bad_retries},                            \
	{"timeout", OPT_B_TIMEOUT, "SECONDS", vz_bill_help_timeout,                                \
	 VZ_KEY_NUM, "billing", NULL, 1, 600, "30", vz_bill_bad_timeout},                          \
	{"connect-timeout", OPT_B_CTIMEOUT, "SECONDS", vz_bill_help_ctimeout,                      \
	 VZ_KEY_NUM, "billing", NULL, 1, 120, "10", vz_bill_bad_ctimeout},                         \
	VZ_OPT("journal", OPT_JOURNAL, "PATH|URI", vz_bill_help_journal)
/* clang-format on */

typedef struct vz_bill_opts {
	const char *label, *env, *endpoint, *cacert;
	long retries, timeout_s, connect_timeout_s;
} vz_bill_opts;

/* Defaults: the system label, 3 retries, 30 s, 10 s (VZ_BILL_OPTS's). */
void vz_bill_defaults(vz_bill_opts *o);

/* One option of VZ_BILL_OPTS into o, the numbers in the ranges of c's
 * table: 0 taken, -1 not one of them, or the usage exit code. */
int vz_bill_opt(vz_bill_opts *o, const vz_command *c, int id, const char *arg);

/* After the options: VZP11_ENV and VZP11_CACERT, and the endpoint from
 * --env or --endpoint (never both, wherever each came from). 0 or the
 * usage exit code. */
int vz_bill_resolve(vz_bill_opts *o, const char *cmd);

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

extern const vz_command vz_cmd_declare;
extern const vz_command vz_cmd_declare_status;
extern const vz_command vz_cmd_retour;
extern const vz_command vz_cmd_journal;

#endif
