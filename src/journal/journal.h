/* journal.h - the billing journal: what was declared and what came back,
 * so that a declaration is sent exactly once and a return file is stored
 * before its receipt is confirmed. Two backends behind this one interface:
 * SQLite (one machine) and PostgreSQL (several machines billing). A unique
 * constraint decides every race; nothing here is check-then-insert.
 * The journal holds no patient data: file names, hashes, sizes, VECOZO's
 * identifiers, states and meldingen. */
#ifndef VZP11_JOURNAL_H
#define VZP11_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"

typedef struct vz_journal vz_journal;

#define VZ_UUID_LEN   36 /* 8-4-4-4-12 hex, lower case */
#define VZ_SHA256_HEX 64 /* lower case */
#define VZ_TIME_LEN   20 /* YYYY-MM-DDTHH:MM:SSZ, UTC */

/* A declaration's life in the journal. */
typedef enum vz_decl_state {
	VZ_DECL_SENDING = 0, /* recorded, the answer not (yet) known */
	VZ_DECL_ACCEPTED,    /* VECOZO said 204, or its status service knows it */
	VZ_DECL_REFUSED,     /* not taken; why is in its vz_decl_refusal */
} vz_decl_state;

/* Why a declaration was REFUSED. Only CONTENT keeps the same content from
 * being sent again (without --force); the others can be put right. */
typedef enum vz_decl_refusal {
	VZ_REFUSAL_NONE = 0,	/* not refused, or refused before vzp11 told these apart */
	VZ_REFUSAL_CONTENT,	/* 422: VECOZO refused it; do not send it again as it is */
	VZ_REFUSAL_REQUEST,	/* 400 or another 4xx: the request as sent was not taken */
	VZ_REFUSAL_CERTIFICATE, /* 401: the certificate was not accepted */
	VZ_REFUSAL_RIGHT,	/* 403: the certificate lacks the Berichtenservice right */
	VZ_REFUSAL_NOT_SENT,	/* the request never left this machine */
} vz_decl_refusal;

typedef struct vz_decl {
	char traceer_id[VZ_UUID_LEN + 1];
	char conversatie_id[VZ_UUID_LEN + 1];
	char sha256[VZ_SHA256_HEX + 1];
	long long size;
	char file[256];	 /* the file's base name */
	char flow[1024]; /* berichttype[/subtype]:version.subversion:action, as given */
	vz_decl_state state;
	vz_decl_refusal refusal; /* with REFUSED; NONE otherwise */
	bool forced;		 /* sent with --force: exempt from the duplicate rule */
	int http_status;	 /* of the last answer, 0 when none */
	char status[48];	 /* VECOZO's last berichtstatus word, "" when none asked */
	bool final;		 /* that status is final (set by the caller) */
	char *meldingen;	 /* JSON array text of the last meldingen, or NULL; owned */
	char created_at[VZ_TIME_LEN + 1];
	char updated_at[VZ_TIME_LEN + 1];
} vz_decl;

/* Frees what a vz_decl owns (meldingen) and zeroes it. */
void vz_decl_clear(vz_decl *d);

/* A return file (retourinformatie) fetched from VECOZO. */
typedef enum vz_retour_state {
	VZ_RETOUR_STORED = 0, /* safely on disk; receipt not yet confirmed */
	VZ_RETOUR_CONFIRMED,  /* VECOZO was told (DELETE answered) */
} vz_retour_state;

typedef struct vz_retour {
	char traceer_id[VZ_UUID_LEN + 1];
	char file[4096]; /* the path it was stored under */
	long long size;
	char sha256[VZ_SHA256_HEX + 1];
	vz_retour_state state;
	char stored_at[VZ_TIME_LEN + 1];
	char confirmed_at[VZ_TIME_LEN + 1]; /* "" until confirmed */
} vz_retour;

/* Opens (and creates, with its schema) the journal.
 * spec NULL or "": the default SQLite file, $XDG_STATE_HOME/vzp11/journal.db
 * (~/.local/state/vzp11/journal.db), or /var/lib/vzp11/journal.db for root;
 * "postgresql://..." or "postgres://...": PostgreSQL through libpq;
 * anything else: the path of a SQLite file.
 * A new SQLite file (and its directory) is created mode 0600 (0700); WAL
 * mode and a busy timeout let several processes share it. */
vz_rv vz_journal_open(const char *spec, vz_journal **out, vz_err *err);
void vz_journal_close(vz_journal *j);

/* Where the journal is, for messages (a PostgreSQL URI without password). */
const char *vz_journal_where(const vz_journal *j);

/* Records d as SENDING before it is sent (created_at/updated_at set here).
 * VZ_OK: recorded. VZ_DUPLICATE: content with the same sha256 is already
 * SENDING, ACCEPTED, or REFUSED for its content (VZ_REFUSAL_CONTENT), and
 * not forced; *earlier gets that row and nothing is written. With
 * d->forced the duplicate rule does not apply. Two callers racing with the
 * same sha256, in one process or on two hosts: exactly one gets VZ_OK. */
vz_rv vz_journal_decl_begin(vz_journal *j, const vz_decl *d, vz_decl *earlier, vz_err *err);

/* Updates the declaration with this traceer_id: state, refusal,
 * http_status, status, final and meldingen (copied; NULL clears) from d;
 * updated_at set here. VZ_NOT_FOUND when there is no such row. */
vz_rv vz_journal_decl_update(vz_journal *j, const vz_decl *d, vz_err *err);

/* A run still sending it says so: updated_at of the declaration with this
 * traceer_id becomes now, when it is SENDING (nothing else changes). Other
 * runs take a SENDING row whose updated_at is recent for one in progress.
 * VZ_OK also when the row has left SENDING meanwhile. */
vz_rv vz_journal_decl_touch(vz_journal *j, const char *traceer_id, vz_err *err);

/* The declaration with this traceer_id. VZ_OK or VZ_NOT_FOUND. */
vz_rv vz_journal_decl_get(vz_journal *j, const char *traceer_id, vz_decl *out, vz_err *err);

/* Calls fn for each declaration, oldest first; only_open: only those that
 * are SENDING, or ACCEPTED and not final. fn's vz_decl is valid during the
 * call only. A non-VZ_OK result from fn stops the walk and is returned. */
typedef vz_rv (*vz_decl_fn)(void *ctx, const vz_decl *d, vz_err *err);
vz_rv vz_journal_decl_each(vz_journal *j, bool only_open, vz_decl_fn fn, void *ctx, vz_err *err);

/* Records a return file as STORED (stored_at set here). VZ_OK: recorded.
 * VZ_DUPLICATE: a row with this traceer_id exists already; *earlier gets
 * it and nothing is written. */
vz_rv vz_journal_retour_stored(vz_journal *j, const vz_retour *r, vz_retour *earlier, vz_err *err);

/* Marks the return file CONFIRMED (confirmed_at set here). VZ_NOT_FOUND
 * when there is no such row. */
vz_rv vz_journal_retour_confirmed(vz_journal *j, const char *traceer_id, vz_err *err);

/* Forgets a return file that is STORED, never CONFIRMED: its row goes, the
 * file on disk is not touched. For a message whose confirmation VECOZO
 * answered 404 and that it no longer lists (confirmed already), which no
 * run would close. VZ_OK: the row is gone. VZ_NOT_FOUND: no STORED row with
 * this traceer_id (none at all, or a CONFIRMED one, which stays). */
vz_rv vz_journal_retour_forget(vz_journal *j, const char *traceer_id, vz_err *err);

/* The return file with this traceer_id. VZ_OK or VZ_NOT_FOUND. */
vz_rv vz_journal_retour_get(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err);

/* Calls fn for each return file, oldest first. */
typedef vz_rv (*vz_retour_fn)(void *ctx, const vz_retour *r, vz_err *err);
vz_rv vz_journal_retour_each(vz_journal *j, vz_retour_fn fn, void *ctx, vz_err *err);

#endif
