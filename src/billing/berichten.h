/* berichten.h - VECOZO's Berichtenservice (REST): the declaration's
 * metadata, and the readers of what the services answer (problem details,
 * message statuses, the list of return messages). No I/O here; every
 * reader takes untrusted bytes and never trusts a length or a field. */
#ifndef VZP11_BERICHTEN_H
#define VZP11_BERICHTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

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

#endif
