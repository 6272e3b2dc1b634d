/* journal_sqlite.c - the journal in one SQLite file, for one machine.
 * WAL mode and a busy timeout let several vzp11 processes share the file;
 * every read-then-write runs inside BEGIN IMMEDIATE so it is atomic. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "journal-int.h"

#define BUSY_TIMEOUT_MS 10000

/* Two tables; the partial unique index (see live_index_sql) is the
 * duplicate rule. Booleans are 0/1 integers, times UTC text, states text. */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS declarations ("
	" traceer_id TEXT NOT NULL PRIMARY KEY,"
	" conversatie_id TEXT NOT NULL,"
	" sha256 TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" file TEXT NOT NULL,"
	" flow TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('sending', 'accepted', 'refused')),"
	" forced INTEGER NOT NULL CHECK (forced IN (0, 1)),"
	" http_status INTEGER NOT NULL,"
	" status TEXT NOT NULL,"
	" final INTEGER NOT NULL CHECK (final IN (0, 1)),"
	" meldingen TEXT,"
	" created_at TEXT NOT NULL,"
	" updated_at TEXT NOT NULL,"
	" refusal TEXT CHECK (refusal IS NULL OR refusal IN (" VZ_REFUSAL_SQL_LIST ")));"
	"CREATE TABLE IF NOT EXISTS retours ("
	" traceer_id TEXT NOT NULL PRIMARY KEY,"
	" file TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" sha256 TEXT NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('stored', 'confirmed')),"
	" stored_at TEXT NOT NULL,"
	" confirmed_at TEXT);";

/* A journal from before refusals were told apart gets the column (NULL in
 * its rows), and the duplicate rule its second form: content VECOZO
 * refused (422) counts as live too, so it is not sent again. */
static const char refusal_column_sql[] =
	"ALTER TABLE declarations ADD COLUMN"
	" refusal TEXT CHECK (refusal IS NULL OR refusal IN (" VZ_REFUSAL_SQL_LIST "))";
static const char live_index_sql[] =
	"CREATE UNIQUE INDEX IF NOT EXISTS declarations_live_sha256_v2 ON declarations (sha256)"
	" WHERE (state IN ('sending', 'accepted') OR refusal = 'content') AND forced = 0;"
	"DROP INDEX IF EXISTS declarations_live_sha256;";
#define LIVE "(state IN ('sending', 'accepted') OR refusal = 'content') AND forced = 0"

#define DECL_COLS                                                                                  \
	"traceer_id, conversatie_id, sha256, size, file, flow, state, forced, http_status, "       \
	"status, final, meldingen, created_at, updated_at, refusal"
#define RETOUR_COLS "traceer_id, file, size, sha256, state, stored_at, confirmed_at"

/* Fills err with what failed and SQLite's reason. */
static vz_rv sq_fail(const vz_journal *j, const char *what, vz_err *err)
{
	sqlite3 *db = j->conn;
	int code = sqlite3_extended_errcode(db);

	vz_err_set(err, "journal %s: %s: %s", j->where, what, sqlite3_errmsg(db));
	if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED)
		vz_err_hint(err, "another process kept the journal locked for %d s; try again",
			    BUSY_TIMEOUT_MS / 1000);
	else if ((code & 0xff) == SQLITE_READONLY || (code & 0xff) == SQLITE_CANTOPEN)
		vz_err_hint(err, "check that you may write the journal file and its directory");
	else if ((code & 0xff) == SQLITE_FULL)
		vz_err_hint(err, "free space on the journal's file system");
	else if ((code & 0xff) == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT)
		vz_err_hint(err, "this file is not a vzp11 journal; give the right path");
	return VZ_FAIL;
}

/* Runs SQL without parameters (schema, transaction control). */
static vz_rv sq_exec(vz_journal *j, const char *sql, const char *what, vz_err *err)
{
	if (sqlite3_exec(j->conn, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_fail(j, what, err);
	return VZ_OK;
}

/* Ends a failed transaction; its own failure changes nothing more. */
static void sq_rollback(vz_journal *j)
{
	sqlite3_exec(j->conn, "ROLLBACK", NULL, NULL, NULL);
}

static vz_rv sq_prepare(vz_journal *j, const char *sql, sqlite3_stmt **out, vz_err *err)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(j->conn, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return sq_fail(j, "preparing a statement", err);
	}
	*out = st;
	return VZ_OK;
}

static void bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	if (s)
		sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, idx);
}

static const char *col_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

/* Reads one row of DECL_COLS; *out owns meldingen on success. */
static vz_rv row_to_decl(const vz_journal *j, sqlite3_stmt *st, vz_decl *out, vz_err *err)
{
	vz_decl d = {0};
	const char *m = col_text(st, 11);

	if (!vz_journal_copy(d.traceer_id, sizeof(d.traceer_id), col_text(st, 0)) ||
	    !vz_journal_copy(d.conversatie_id, sizeof(d.conversatie_id), col_text(st, 1)) ||
	    !vz_journal_copy(d.sha256, sizeof(d.sha256), col_text(st, 2)) ||
	    !vz_journal_copy(d.file, sizeof(d.file), col_text(st, 4)) ||
	    !vz_journal_copy(d.flow, sizeof(d.flow), col_text(st, 5)) ||
	    !vz_decl_state_parse(col_text(st, 6), &d.state) ||
	    !vz_decl_refusal_parse(col_text(st, 14), &d.refusal) ||
	    !vz_journal_copy(d.status, sizeof(d.status), col_text(st, 9)) ||
	    !vz_journal_copy(d.created_at, sizeof(d.created_at), col_text(st, 12)) ||
	    !vz_journal_copy(d.updated_at, sizeof(d.updated_at), col_text(st, 13))) {
		vz_err_set(err, "journal %s: a declaration row does not fit vzp11's fields",
			   j->where);
		vz_err_hint(err, "the file was changed by something else than vzp11");
		return VZ_FAIL;
	}
	d.size = sqlite3_column_int64(st, 3);
	d.forced = sqlite3_column_int(st, 7) != 0;
	d.http_status = sqlite3_column_int(st, 8);
	d.final = sqlite3_column_int(st, 10) != 0;
	if (m) {
		d.meldingen = strdup(m);
		if (!d.meldingen) {
			vz_err_set(err, "out of memory reading the journal");
			return VZ_FAIL;
		}
	}
	*out = d;
	return VZ_OK;
}

static vz_rv row_to_retour(const vz_journal *j, sqlite3_stmt *st, vz_retour *out, vz_err *err)
{
	vz_retour r = {0};

	if (!vz_journal_copy(r.traceer_id, sizeof(r.traceer_id), col_text(st, 0)) ||
	    !vz_journal_copy(r.file, sizeof(r.file), col_text(st, 1)) ||
	    !vz_journal_copy(r.sha256, sizeof(r.sha256), col_text(st, 3)) ||
	    !vz_retour_state_parse(col_text(st, 4), &r.state) ||
	    !vz_journal_copy(r.stored_at, sizeof(r.stored_at), col_text(st, 5)) ||
	    !vz_journal_copy(r.confirmed_at, sizeof(r.confirmed_at), col_text(st, 6))) {
		vz_err_set(err, "journal %s: a return-file row does not fit vzp11's fields",
			   j->where);
		vz_err_hint(err, "the file was changed by something else than vzp11");
		return VZ_FAIL;
	}
	r.size = sqlite3_column_int64(st, 2);
	*out = r;
	return VZ_OK;
}

/* The live declaration of this content (sending, accepted, or refused for
 * its content; not forced). */
static vz_rv live_by_sha256(vz_journal *j, const char *sha256, vz_decl *out, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	vz_rv rv;
	int rc;

	rv = sq_prepare(j,
			"SELECT " DECL_COLS " FROM declarations WHERE sha256 = ?1 AND " LIVE
			" ORDER BY created_at, rowid LIMIT 1",
			&st, err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, sha256);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rv = row_to_decl(j, st, out, err);
	} else if (rc == SQLITE_DONE) {
		vz_err_set(err,
			   "journal %s: the duplicate rule refused a declaration, but no"
			   " earlier one is there",
			   j->where);
		rv = VZ_FAIL;
	} else {
		rv = sq_fail(j, "reading the earlier declaration", err);
	}
out:
	sqlite3_finalize(st);
	return rv;
}

/* Binds the INSERT of sq_decl_begin; d and now outlive the statement. */
static void bind_new_decl(sqlite3_stmt *st, const vz_decl *d, const char *now)
{
	bind_text(st, 1, d->traceer_id);
	bind_text(st, 2, d->conversatie_id);
	bind_text(st, 3, d->sha256);
	sqlite3_bind_int64(st, 4, d->size);
	bind_text(st, 5, d->file);
	bind_text(st, 6, d->flow);
	sqlite3_bind_int(st, 7, d->forced ? 1 : 0);
	sqlite3_bind_int(st, 8, d->http_status);
	bind_text(st, 9, d->status);
	sqlite3_bind_int(st, 10, d->final ? 1 : 0);
	bind_text(st, 11, d->meldingen);
	bind_text(st, 12, now);
}

static vz_rv sq_decl_begin(vz_journal *j, const vz_decl *d, vz_decl *earlier, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[VZ_TIME_LEN + 1];
	bool in_txn = false;
	vz_decl found = {0};
	vz_rv rv;
	int rc;

	vz_journal_now(now);
	/* IMMEDIATE: the insert and, on a conflict, the read of the earlier row
	 * see one state of the file */
	rv = sq_exec(j, "BEGIN IMMEDIATE", "starting a transaction", err);
	if (rv != VZ_OK)
		goto out;
	in_txn = true;
	rv = sq_prepare(
		j,
		"INSERT INTO declarations (" DECL_COLS ") VALUES"
		" (?1, ?2, ?3, ?4, ?5, ?6, 'sending', ?7, ?8, ?9, ?10, ?11, ?12, ?12, NULL)",
		&st, err);
	if (rv != VZ_OK)
		goto out;
	bind_new_decl(st, d, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rv = sq_exec(j, "COMMIT", "recording the declaration", err);
		if (rv == VZ_OK)
			in_txn = false;
		goto out;
	}
	if (sqlite3_extended_errcode(j->conn) == SQLITE_CONSTRAINT_PRIMARYKEY) {
		vz_err_set(err, "journal %s: traceer id %s is already recorded", j->where,
			   d->traceer_id);
		vz_err_hint(err, "every declaration needs a fresh traceer id");
		rv = VZ_FAIL;
		goto out;
	}
	if (sqlite3_extended_errcode(j->conn) != SQLITE_CONSTRAINT_UNIQUE) {
		rv = sq_fail(j, "recording the declaration", err);
		goto out;
	}
	rv = live_by_sha256(j, d->sha256, &found, err);
	if (rv != VZ_OK)
		goto out;
	if (earlier)
		*earlier = found;
	else
		vz_decl_clear(&found);
	rv = VZ_DUPLICATE;
out:
	sqlite3_finalize(st);
	if (in_txn)
		sq_rollback(j);
	return rv;
}

static vz_rv sq_decl_update(vz_journal *j, const vz_decl *d, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[VZ_TIME_LEN + 1];
	vz_rv rv;

	vz_journal_now(now);
	rv = sq_prepare(j,
			"UPDATE declarations SET state = ?2, http_status = ?3, status = ?4,"
			" final = ?5, meldingen = ?6, updated_at = ?7, refusal = ?8"
			" WHERE traceer_id = ?1",
			&st, err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, d->traceer_id);
	bind_text(st, 2, vz_decl_state_text(d->state));
	sqlite3_bind_int(st, 3, d->http_status);
	bind_text(st, 4, d->status);
	sqlite3_bind_int(st, 5, d->final ? 1 : 0);
	bind_text(st, 6, d->meldingen);
	bind_text(st, 7, now);
	bind_text(st, 8, vz_decl_refusal_text(d->refusal));
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(j->conn) == SQLITE_CONSTRAINT_UNIQUE) {
			vz_err_set(err,
				   "journal %s: declaration %s cannot become %s: the same content"
				   " is already sending or accepted (or refused for its content)",
				   j->where, d->traceer_id, vz_decl_state_text(d->state));
			vz_err_hint(err, "look at the earlier declaration of this file first");
			rv = VZ_FAIL;
		} else {
			rv = sq_fail(j, "updating a declaration", err);
		}
		goto out;
	}
	if (sqlite3_changes(j->conn) == 0) {
		vz_err_set(err, "journal %s: no declaration with traceer id %s", j->where,
			   d->traceer_id);
		rv = VZ_NOT_FOUND;
	}
out:
	sqlite3_finalize(st);
	return rv;
}

static vz_rv sq_decl_touch(vz_journal *j, const char *traceer_id, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[VZ_TIME_LEN + 1];
	vz_rv rv;

	vz_journal_now(now);
	rv = sq_prepare(j,
			"UPDATE declarations SET updated_at = ?2"
			" WHERE traceer_id = ?1 AND state = 'sending'",
			&st, err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, traceer_id);
	bind_text(st, 2, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = sq_fail(j, "marking a declaration as still sending", err);
out:
	sqlite3_finalize(st);
	return rv;
}

static vz_rv sq_decl_get(vz_journal *j, const char *traceer_id, vz_decl *out, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	vz_rv rv;
	int rc;

	rv = sq_prepare(j, "SELECT " DECL_COLS " FROM declarations WHERE traceer_id = ?1", &st,
			err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, traceer_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rv = row_to_decl(j, st, out, err);
	} else if (rc == SQLITE_DONE) {
		vz_err_set(err, "journal %s: no declaration with traceer id %s", j->where,
			   traceer_id);
		rv = VZ_NOT_FOUND;
	} else {
		rv = sq_fail(j, "reading a declaration", err);
	}
out:
	sqlite3_finalize(st);
	return rv;
}

/* Reads every row first and calls fn after the statement is finished, so
 * fn may write to the journal without meeting our open read snapshot. */
static vz_rv sq_decl_each(vz_journal *j, bool only_open, vz_decl_fn fn, void *ctx, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	vz_decl *rows = NULL, *grown;
	size_t n = 0, cap = 0, i;
	vz_rv rv;
	int rc;

	rv = sq_prepare(j,
			only_open ? "SELECT " DECL_COLS " FROM declarations WHERE state = 'sending'"
				    " OR (state = 'accepted' AND final = 0)"
				    " ORDER BY created_at, rowid"
				  : "SELECT " DECL_COLS " FROM declarations"
				    " ORDER BY created_at, rowid",
			&st, err);
	if (rv != VZ_OK)
		goto out;
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			rv = sq_fail(j, "reading declarations", err);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(rows, cap * sizeof(*rows));
			if (!grown) {
				vz_err_set(err, "out of memory reading the journal");
				rv = VZ_FAIL;
				goto out;
			}
			rows = grown;
		}
		rv = row_to_decl(j, st, &rows[n], err);
		if (rv != VZ_OK)
			goto out;
		n++;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (i = 0; i < n && rv == VZ_OK; i++)
		rv = fn(ctx, &rows[i], err);
out:
	sqlite3_finalize(st);
	for (i = 0; i < n; i++)
		vz_decl_clear(&rows[i]);
	free(rows);
	return rv;
}

static vz_rv retour_by_id(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	vz_rv rv;
	int rc;

	rv = sq_prepare(j, "SELECT " RETOUR_COLS " FROM retours WHERE traceer_id = ?1", &st, err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, traceer_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rv = row_to_retour(j, st, out, err);
	} else if (rc == SQLITE_DONE) {
		vz_err_set(err, "journal %s: no return file with traceer id %s", j->where,
			   traceer_id);
		rv = VZ_NOT_FOUND;
	} else {
		rv = sq_fail(j, "reading a return file", err);
	}
out:
	sqlite3_finalize(st);
	return rv;
}

static vz_rv sq_retour_stored(vz_journal *j, const vz_retour *r, vz_retour *earlier, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[VZ_TIME_LEN + 1];
	bool in_txn = false;
	vz_retour found;
	vz_rv rv;

	vz_journal_now(now);
	rv = sq_exec(j, "BEGIN IMMEDIATE", "starting a transaction", err);
	if (rv != VZ_OK)
		goto out;
	in_txn = true;
	rv = sq_prepare(j,
			"INSERT INTO retours (" RETOUR_COLS ") VALUES"
			" (?1, ?2, ?3, ?4, 'stored', ?5, NULL)",
			&st, err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, r->traceer_id);
	bind_text(st, 2, r->file);
	sqlite3_bind_int64(st, 3, r->size);
	bind_text(st, 4, r->sha256);
	bind_text(st, 5, now);
	if (sqlite3_step(st) == SQLITE_DONE) {
		rv = sq_exec(j, "COMMIT", "recording the return file", err);
		if (rv == VZ_OK)
			in_txn = false;
		goto out;
	}
	if (sqlite3_extended_errcode(j->conn) != SQLITE_CONSTRAINT_PRIMARYKEY) {
		rv = sq_fail(j, "recording the return file", err);
		goto out;
	}
	rv = retour_by_id(j, r->traceer_id, &found, err);
	if (rv == VZ_NOT_FOUND)
		rv = VZ_FAIL; /* the conflict said it is there */
	if (rv != VZ_OK)
		goto out;
	if (earlier)
		*earlier = found;
	rv = VZ_DUPLICATE;
out:
	sqlite3_finalize(st);
	if (in_txn)
		sq_rollback(j);
	return rv;
}

static vz_rv sq_retour_confirmed(vz_journal *j, const char *traceer_id, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	char now[VZ_TIME_LEN + 1];
	vz_rv rv;

	vz_journal_now(now);
	/* a second confirmation keeps the first time */
	rv = sq_prepare(j,
			"UPDATE retours SET state = 'confirmed',"
			" confirmed_at = COALESCE(confirmed_at, ?2) WHERE traceer_id = ?1",
			&st, err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, traceer_id);
	bind_text(st, 2, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rv = sq_fail(j, "confirming a return file", err);
		goto out;
	}
	if (sqlite3_changes(j->conn) == 0) {
		vz_err_set(err, "journal %s: no return file with traceer id %s", j->where,
			   traceer_id);
		rv = VZ_NOT_FOUND;
	}
out:
	sqlite3_finalize(st);
	return rv;
}

static vz_rv sq_retour_forget(vz_journal *j, const char *traceer_id, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	vz_rv rv;

	rv = sq_prepare(j, "DELETE FROM retours WHERE traceer_id = ?1 AND state = 'stored'", &st,
			err);
	if (rv != VZ_OK)
		goto out;
	bind_text(st, 1, traceer_id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rv = sq_fail(j, "forgetting a return file", err);
		goto out;
	}
	if (sqlite3_changes(j->conn) == 0) {
		vz_err_set(err, "journal %s: no stored, unconfirmed return file with traceer id %s",
			   j->where, traceer_id);
		rv = VZ_NOT_FOUND;
	}
out:
	sqlite3_finalize(st);
	return rv;
}

static vz_rv sq_retour_get(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err)
{
	return retour_by_id(j, traceer_id, out, err);
}

static vz_rv sq_retour_each(vz_journal *j, vz_retour_fn fn, void *ctx, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	vz_retour *rows = NULL, *grown;
	size_t n = 0, cap = 0, i;
	vz_rv rv;
	int rc;

	rv = sq_prepare(j, "SELECT " RETOUR_COLS " FROM retours ORDER BY stored_at, rowid", &st,
			err);
	if (rv != VZ_OK)
		goto out;
	for (;;) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			rv = sq_fail(j, "reading return files", err);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(rows, cap * sizeof(*rows));
			if (!grown) {
				vz_err_set(err, "out of memory reading the journal");
				rv = VZ_FAIL;
				goto out;
			}
			rows = grown;
		}
		rv = row_to_retour(j, st, &rows[n], err);
		if (rv != VZ_OK)
			goto out;
		n++;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (i = 0; i < n && rv == VZ_OK; i++)
		rv = fn(ctx, &rows[i], err);
out:
	sqlite3_finalize(st);
	free(rows);
	return rv;
}

static void sq_close(vz_journal *j)
{
	/* v2: statements are all finalized by now; never fails with BUSY */
	sqlite3_close_v2(j->conn);
	j->conn = NULL;
}

static const vz_journal_ops sqlite_ops = {
	.close = sq_close,
	.decl_begin = sq_decl_begin,
	.decl_update = sq_decl_update,
	.decl_touch = sq_decl_touch,
	.decl_get = sq_decl_get,
	.decl_each = sq_decl_each,
	.retour_stored = sq_retour_stored,
	.retour_confirmed = sq_retour_confirmed,
	.retour_forget = sq_retour_forget,
	.retour_get = sq_retour_get,
	.retour_each = sq_retour_each,
};

/* Creates the missing directories above path, each 0700. */
static vz_rv make_parents(const char *path, vz_err *err)
{
	char dir[VZ_JOURNAL_WHERE_MAX];
	char *slash;

	if (!vz_journal_copy(dir, sizeof(dir), path)) {
		vz_err_set(err, "the journal path is too long");
		return VZ_FAIL;
	}
	for (slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			vz_err_set(err, "cannot create the journal's directory %s: %s", dir,
				   strerror(errno));
			vz_err_hint(err, "create it (mode 0700) or give another journal path");
			return VZ_FAIL;
		}
		*slash = '/';
	}
	return VZ_OK;
}

/* Creates the file 0600 when it is missing, and refuses one that others
 * may read or write: it tells what was declared when, by whom. */
static vz_rv check_file(const char *path, vz_err *err)
{
	struct stat sb;
	vz_rv rv = VZ_FAIL;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		vz_err_set(err, "cannot open the journal %s: %s", path, strerror(errno));
		vz_err_hint(err, "check the path and that you may write there");
		return VZ_FAIL;
	}
	if (fstat(fd, &sb) != 0) {
		vz_err_set(err, "cannot inspect the journal %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		vz_err_set(err, "the journal %s is not a regular file", path);
		vz_err_hint(err, "give the path of a journal file");
		goto out;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		vz_err_set(err, "refusing the journal %s: others may read or write it (mode %04o)",
			   path, (unsigned)(sb.st_mode & 07777));
		vz_err_hint(err, "chmod 600 %s", path);
		goto out;
	}
	rv = VZ_OK;
out:
	/* closed before SQLite locks the file: closing any descriptor of a
	 * file drops every POSIX lock the process holds on it */
	close(fd);
	return rv;
}

/* The journal mode, lower case, into mode; false when it cannot be read
 * (the database is busy). */
static bool journal_mode(vz_journal *j, const char *sql, char mode[16])
{
	sqlite3_stmt *st = NULL;
	const char *m;
	bool ok = false;

	if (sqlite3_prepare_v2(j->conn, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		m = (const char *)sqlite3_column_text(st, 0);
		snprintf(mode, 16, "%s", m ? m : "");
		ok = true;
	}
	sqlite3_finalize(st);
	return ok;
}

/* WAL lets readers and one writer work at once; FULL syncs each commit,
 * because a lost "sending" row could mean a declaration sent twice.
 * Switching a new file to WAL needs it to itself, and SQLite may answer
 * BUSY at once (no busy handler) while another process creates the
 * schema: look whether someone else switched it, else try again, until
 * the busy timeout. */
static vz_rv configure(vz_journal *j, vz_err *err)
{
	char mode[16] = "";
	int waited = 0;

	sqlite3_extended_result_codes(j->conn, 1);
	sqlite3_busy_timeout(j->conn, BUSY_TIMEOUT_MS);
	while (!(journal_mode(j, "PRAGMA journal_mode", mode) && strcmp(mode, "wal") == 0) &&
	       !journal_mode(j, "PRAGMA journal_mode = WAL", mode)) {
		if (waited >= BUSY_TIMEOUT_MS)
			return sq_fail(j, "switching to WAL mode", err);
		sqlite3_sleep(50);
		waited += 50;
	}
	if (strcmp(mode, "wal") != 0) {
		vz_err_set(err, "journal %s: SQLite kept journal mode %s instead of WAL", j->where,
			   mode[0] ? mode : "(none)");
		vz_err_hint(err, "keep the journal on a local file system");
		return VZ_FAIL;
	}
	return sq_exec(j, "PRAGMA synchronous = FULL", "setting synchronous = FULL", err);
}

/* Whether declarations has the column refusal (false also on an error,
 * which the ALTER TABLE after it then reports). */
static bool has_refusal_column(vz_journal *j)
{
	sqlite3_stmt *st = NULL;
	bool found = false;

	if (sqlite3_prepare_v2(j->conn,
			       "SELECT 1 FROM pragma_table_info('declarations')"
			       " WHERE name = 'refusal'",
			       -1, &st, NULL) == SQLITE_OK)
		found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

static vz_rv create_schema(vz_journal *j, vz_err *err)
{
	vz_rv rv;

	rv = sq_exec(j, "BEGIN IMMEDIATE", "starting a transaction", err);
	if (rv != VZ_OK)
		return rv;
	rv = sq_exec(j, schema_sql, "creating the tables", err);
	if (rv == VZ_OK && !has_refusal_column(j))
		rv = sq_exec(j, refusal_column_sql, "adding the column refusal", err);
	if (rv == VZ_OK)
		rv = sq_exec(j, live_index_sql, "creating the duplicate rule", err);
	if (rv == VZ_OK)
		rv = sq_exec(j, "COMMIT", "creating the tables", err);
	if (rv != VZ_OK)
		sq_rollback(j);
	return rv;
}

/* Opens (and creates, with its schema) the journal file at path. */
static vz_rv open_file(const char *path, vz_journal *j, vz_err *err)
{
	vz_journal tmp = {0};
	sqlite3 *db = NULL;
	vz_rv rv;

	if (!vz_journal_copy(tmp.where, sizeof(tmp.where), path)) {
		vz_err_set(err, "the journal path is too long");
		return VZ_FAIL;
	}
	rv = make_parents(path, err);
	if (rv != VZ_OK)
		goto out;
	rv = check_file(path, err);
	if (rv != VZ_OK)
		goto out;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
	    SQLITE_OK) {
		vz_err_set(err, "cannot open the journal %s: %s", path,
			   db ? sqlite3_errmsg(db) : "out of memory");
		rv = VZ_FAIL;
		goto out;
	}
	tmp.conn = db;
	rv = configure(&tmp, err);
	if (rv == VZ_OK)
		rv = create_schema(&tmp, err);
	if (rv != VZ_OK)
		goto out;
	*j = tmp;
	db = NULL;
out:
	sqlite3_close_v2(db);
	return rv;
}

/* Anything that is not another backend's is a path; NULL or "" the
 * default file. */
static bool sq_claims(const char *spec)
{
	return true;
}

static vz_rv sq_open(const char *spec, vz_journal *j, vz_err *err)
{
	char path[VZ_JOURNAL_WHERE_MAX];

	if (spec && spec[0])
		return open_file(spec, j, err);
	if (vz_journal_default_path(path, sizeof(path), err) != VZ_OK)
		return VZ_FAIL;
	return open_file(path, j, err);
}

const vz_journal_backend vz_journal_sqlite = {
	.claims = sq_claims,
	.open = sq_open,
	.ops = &sqlite_ops,
};
