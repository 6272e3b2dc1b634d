/* journal-int.h - private to src/journal/: the backend table behind
 * journal.h and the helpers the face and both backends share. Calls go
 * one way: journal.c picks a backend from its table (vz_journal_backend),
 * the backends call only journal_rows.c and journal_where.c, and those
 * two call neither. */
#ifndef VZP11_JOURNAL_INT_H
#define VZP11_JOURNAL_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "journal.h"

/* One backend. Every entry gets inputs that journal.c has already checked
 * (lengths, hash form, enum ranges) and follows journal.h's contract for
 * its public twin; out-params are written only on the documented results. */
typedef struct vz_journal_ops {
	void (*close)(vz_journal *j);
	vz_rv (*decl_begin)(vz_journal *j, const vz_decl *d, vz_decl *earlier, vz_err *err);
	vz_rv (*decl_update)(vz_journal *j, const vz_decl *d, vz_err *err);
	vz_rv (*decl_touch)(vz_journal *j, const char *traceer_id, vz_err *err);
	vz_rv (*decl_get)(vz_journal *j, const char *traceer_id, vz_decl *out, vz_err *err);
	vz_rv (*decl_each)(vz_journal *j, bool only_open, vz_decl_fn fn, void *ctx, vz_err *err);
	vz_rv (*retour_stored)(vz_journal *j, const vz_retour *r, vz_retour *earlier, vz_err *err);
	vz_rv (*retour_confirmed)(vz_journal *j, const char *traceer_id, vz_err *err);
	vz_rv (*retour_forget)(vz_journal *j, const char *traceer_id, vz_err *err);
	vz_rv (*retour_get)(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err);
	vz_rv (*retour_each)(vz_journal *j, vz_retour_fn fn, void *ctx, vz_err *err);
} vz_journal_ops;

/* The refusal texts, as the schema's CHECK lists them. */
#define VZ_REFUSAL_SQL_LIST "'content', 'request', 'certificate', 'right', 'not-sent'"

/* Room for a path or a URI with its password taken out. */
#define VZ_JOURNAL_WHERE_MAX 4352

struct vz_journal {
	const vz_journal_ops *ops;
	void *conn; /* sqlite3 * or PGconn *, owned by the backend */
	char where[VZ_JOURNAL_WHERE_MAX];
};

/* A backend, as journal.c's table holds it. */
typedef struct vz_journal_backend {
	/* Whether spec (NULL and "" included) is this backend's to open. */
	bool (*claims)(const char *spec);
	/* Fills j->conn and j->where, or leaves j untouched and fills err. */
	vz_rv (*open)(const char *spec, vz_journal *j, vz_err *err);
	/* What journal.c sets j->ops to once open succeeded. */
	const vz_journal_ops *ops;
} vz_journal_backend;

/* journal_sqlite.c: a path, or NULL/"" for the default file. */
extern const vz_journal_backend vz_journal_sqlite;
/* journal_pg.c: postgresql:// and postgres:// URIs. */
extern const vz_journal_backend vz_journal_pg;

/* journal_where.c */

/* The default SQLite file (see journal.h). */
vz_rv vz_journal_default_path(char *buf, size_t cap, vz_err *err);

/* A URI with any password (user:password@ or password=...) removed. */
void vz_journal_redact_uri(const char *uri, char *out, size_t cap);

/* journal_rows.c */

/* Now, UTC, as YYYY-MM-DDTHH:MM:SSZ. */
void vz_journal_now(char out[VZ_TIME_LEN + 1]);

/* The text stored for a state, and back; false for unknown text. */
const char *vz_decl_state_text(vz_decl_state s);
bool vz_decl_state_parse(const char *text, vz_decl_state *out);
/* The text stored for a refusal (NULL for NONE), and back (NULL: NONE). */
const char *vz_decl_refusal_text(vz_decl_refusal r);
bool vz_decl_refusal_parse(const char *text, vz_decl_refusal *out);
/* Whether r is one of vz_decl_refusal's values (NONE included). */
bool vz_decl_refusal_known(vz_decl_refusal r);
const char *vz_retour_state_text(vz_retour_state s);
bool vz_retour_state_parse(const char *text, vz_retour_state *out);

/* Copies text (NULL counts as "") into a fixed field; false when it does
 * not fit, which for a row read back means the row is not ours. */
bool vz_journal_copy(char *dst, size_t cap, const char *text);

/* Says that j has no <what> ("declaration", ...) with this traceer id;
 * returns VZ_NOT_FOUND. */
vz_rv vz_journal_no_row(const vz_journal *j, const char *what, const char *traceer_id, vz_err *err);

#endif
