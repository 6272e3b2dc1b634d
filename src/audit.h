/* audit.h - the audit trail: every change vzp11 makes to a token is one
 * syslog record (facility authpriv, priority notice, ident "vzp11" with the
 * PID) whose whole message is one JSON object on one line. */
#ifndef VZP11_AUDIT_H
#define VZP11_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cert.h"
#include "store.h"
#include "tok.h"
#include "token.h"

/* Version of the record's layout, its first key ("audit"); raised when a key
 * changes meaning or goes away (added keys keep it). */
#define VZ_AUDIT_FORMAT 1

/* One change to a token. Every field but action may be left empty (NULL,
 * 0, TOK_ARRIVAL_UNKNOWN): its key is then null in the record. Nothing in
 * it may be a secret or patient data; labels, names and error messages are
 * fine. Nothing is kept after the call. */
typedef struct vz_audit_rec {
	const char *action; /* "import", "replace", "remove", "import-ca", "remove-ca",
			       "rotate-import", "rotate-activate", ... */
	bool failed;	    /* the change was tried and did not happen (rolled back) */
	const char *label;  /* the label acted on */
	const char *old_label, *new_label; /* a relabel (rotate): before and after */
	const vz_cert_info *cert;	   /* the certificate concerned; NULL: a key alone */
	const unsigned char *id;	   /* CKA_ID of its objects */
	size_t id_len;
	tok_arrival arrival;	      /* how its key reached the token */
	const vz_cert_info *previous; /* the certificate it took the place of (replace) */
	const char *detail;	      /* a short fact for the reader ("key kept") */
	const char *error;	      /* why it failed (failed only) */
} vz_audit_rec;

/* The record as JSON, with the token (label, serial, manufacturer, model;
 * token NULL: null), the acting user (real uid and its name from the
 * password database, never the environment) and the time (UTC); caller
 * frees. Every key is always there, in this order: audit, time, action,
 * result ("ok" or "failed"), label, old_label, new_label, certificate
 * {subject, issuer, serial, not_before, not_after, fingerprint_sha256}, id
 * (hex), arrived, previous {subject, serial, fingerprint_sha256}, token
 * {label, serial, manufacturer, model}, user {uid, name}, detail, error.
 * A string that is not valid UTF-8 has each of its non-ASCII bytes
 * written as '?'. NULL only when out of memory. */
json_t *vz_audit_json(const tok_token_info *token, const vz_audit_rec *rec);

/* Sends the record to syslog: openlog("vzp11", LOG_PID | LOG_NDELAY,
 * LOG_AUTHPRIV), one LOG_NOTICE message (JSON, compact, ASCII only),
 * closelog(). Never fails the caller: a missing syslog daemon loses the
 * record silently (syslog(3) cannot report it). Not for a process that keeps
 * its own syslog identity open (the gateway): closelog() ends it. */
void vz_audit(const vz_token *tk, const vz_audit_rec *rec);

/* A record of action on an entry of the token (read back after the change,
 * or before a removal): its label, certificate, CKA_ID and how its key
 * arrived. The caller may fill in more fields, then calls vz_audit(); e
 * must outlive that call. */
vz_audit_rec vz_audit_rec_of(const char *action, const vz_entry *e);

#endif
