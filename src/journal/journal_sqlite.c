/* journal_sqlite.c - the journal in one SQLite file, for one machine.
 * WAL mode and a busy timeout let several vzp11 processes share the file;
 * every read-then-write runs inside BEGIN IMMEDIATE so it is atomic. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "journal-int.h"

#define BUSY_TIMEOUT_MS 10000
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

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

/* One parameter of a statement: text (NULL binds NULL) or an integer. */
typedef struct sq_arg {
	const char *text;
	long long num;
	bool is_num;
} sq_arg;
#define SQ_TEXT(s)                                                                                 \
	{                                                                                          \
		.text = (s)                                                                        \
	}
#define SQ_INT(n)                                                                                  \
	{                                                                                          \
		.num = (n), .is_num = true                                                         \
	}

/* A statement with its parameters (?1 is args[0]) and what it does, for
 * the message when it fails. The args' texts outlive the statement. */
typedef struct sq_query {
	const char *sql;
	const sq_arg *args;
	size_t n_args;
	const char *what;
} sq_query;

/* Reads the row st stands on into ctx; VZ_OK to go on. */
typedef vz_rv (*sq_row_fn)(const vz_journal *j, sqlite3_stmt *st, void *ctx, vz_err *err);

/* One kind of row: its size, how it is read off a statement (out written
 * only on success), what frees what a row owns (NULL: nothing). */
typedef struct sq_row_type {
	size_t size;
	vz_rv (*read)(const vz_journal *j, sqlite3_stmt *st, void *out, vz_err *err);
	void (*clear)(void *row);
} sq_row_type;

static vz_rv sq_prepare(vz_journal *j, const sq_query *q, sqlite3_stmt **out, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	int idx;

	if (sqlite3_prepare_v2(j->conn, q->sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return sq_fail(j, "preparing a statement", err);
	}
	for (i = 0; i < q->n_args; i++) {
		idx = (int)i + 1;
		if (q->args[i].is_num)
			sqlite3_bind_int64(st, idx, q->args[i].num);
		else if (q->args[i].text)
			sqlite3_bind_text(st, idx, q->args[i].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, idx);
	}
	*out = st;
	return VZ_OK;
}

/* The one place a statement runs: prepared, bound, stepped until it is
 * done or max_rows rows went to row (NULL: a statement without rows),
 * finalized. A failed step fails as q->what, and *code (when given) gets
 * SQLite's extended code, for a caller that tells constraints apart. */
static vz_rv sq_run(vz_journal *j, const sq_query *q, sq_row_fn row, void *ctx, size_t max_rows,
		    int *code, vz_err *err)
{
	sqlite3_stmt *st = NULL;
	size_t rows = 0;
	vz_rv rv;
	int rc;

	if (code)
		*code = SQLITE_OK;
	rv = sq_prepare(j, q, &st, err);
	if (rv != VZ_OK)
		return rv;
	while (rows < max_rows) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			if (code)
				*code = sqlite3_extended_errcode(j->conn);
			rv = sq_fail(j, q->what, err);
			break;
		}
		rv = row ? row(j, st, ctx, err) : VZ_OK;
		if (rv != VZ_OK)
			break;
		rows++;
	}
	sqlite3_finalize(st);
	return rv;
}

/* A statement that returns no rows (INSERT, UPDATE, DELETE). */
static vz_rv sq_write(vz_journal *j, const sq_query *q, int *code, vz_err *err)
{
	return sq_run(j, q, NULL, NULL, SIZE_MAX, code, err);
}

/* The first row, read into a sq_first's out. */
typedef struct sq_first {
	const sq_row_type *type;
	void *out;
	bool found;
} sq_first;

static vz_rv keep_first(const vz_journal *j, sqlite3_stmt *st, void *ctx, vz_err *err)
{
	sq_first *first = ctx;
	vz_rv rv = first->type->read(j, st, first->out, err);

	first->found = rv == VZ_OK;
	return rv;
}

/* The first row of q into out: VZ_OK, VZ_NOT_FOUND when there is none
 * (err untouched), or VZ_FAIL. */
static vz_rv sq_get(vz_journal *j, const sq_query *q, const sq_row_type *type, void *out,
		    vz_err *err)
{
	sq_first first = {.type = type, .out = out};
	vz_rv rv = sq_run(j, q, keep_first, &first, 1, NULL, err);

	if (rv == VZ_OK && !first.found)
		rv = VZ_NOT_FOUND;
	return rv;
}

/* Rows read so far: n of them in rows, room for cap. */
typedef struct sq_rows {
	const sq_row_type *type;
	void *rows;
	size_t n, cap;
} sq_rows;

static vz_rv keep_all(const vz_journal *j, sqlite3_stmt *st, void *ctx, vz_err *err)
{
	sq_rows *all = ctx;
	void *grown;
	size_t cap;
	vz_rv rv;

	if (all->n == all->cap) {
		cap = all->cap ? all->cap * 2 : 16;
		grown = realloc(all->rows, cap * all->type->size);
		if (!grown) {
			vz_err_set(err, "out of memory reading the journal");
			return VZ_FAIL;
		}
		all->rows = grown;
		all->cap = cap;
	}
	rv = all->type->read(j, st, (char *)all->rows + all->n * all->type->size, err);
	if (rv == VZ_OK)
		all->n++;
	return rv;
}

/* Every row of q into all (free it with sq_rows_free, also on failure). */
static vz_rv sq_list(vz_journal *j, const sq_query *q, sq_rows *all, vz_err *err)
{
	return sq_run(j, q, keep_all, all, SIZE_MAX, NULL, err);
}

static void sq_rows_free(sq_rows *all)
{
	size_t i;

	for (i = 0; all->type->clear && i < all->n; i++)
		all->type->clear((char *)all->rows + i * all->type->size);
	free(all->rows);
}

static const char *col_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

/* Reads one row of DECL_COLS into a vz_decl; it owns meldingen then. */
static vz_rv read_decl(const vz_journal *j, sqlite3_stmt *st, void *out, vz_err *err)
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
	*(vz_decl *)out = d;
	return VZ_OK;
}

static void clear_decl(void *row)
{
	vz_decl_clear(row);
}

/* Reads one row of RETOUR_COLS into a vz_retour. */
static vz_rv read_retour(const vz_journal *j, sqlite3_stmt *st, void *out, vz_err *err)
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
	*(vz_retour *)out = r;
	return VZ_OK;
}

static const sq_row_type decl_row = {sizeof(vz_decl), read_decl, clear_decl};
static const sq_row_type retour_row = {sizeof(vz_retour), read_retour, NULL};

/* The live declaration of this content (sending, accepted, or refused for
 * its content; not forced). */
static vz_rv live_by_sha256(vz_journal *j, const char *sha256, vz_decl *out, vz_err *err)
{
	const sq_arg args[] = {SQ_TEXT(sha256)};
	const sq_query q = {"SELECT " DECL_COLS " FROM declarations WHERE sha256 = ?1 AND " LIVE
			    " ORDER BY created_at, rowid LIMIT 1",
			    args, ARRAY_SIZE(args), "reading the earlier declaration"};
	vz_rv rv = sq_get(j, &q, &decl_row, out, err);

	if (rv == VZ_NOT_FOUND) {
		vz_err_set(err,
			   "journal %s: the duplicate rule refused a declaration, but no"
			   " earlier one is there",
			   j->where);
		rv = VZ_FAIL;
	}
	return rv;
}

static vz_rv sq_decl_begin(vz_journal *j, const vz_decl *d, vz_decl *earlier, vz_err *err)
{
	char now[VZ_TIME_LEN + 1];
	const sq_arg args[] = {
		SQ_TEXT(d->traceer_id), SQ_TEXT(d->conversatie_id), SQ_TEXT(d->sha256),
		SQ_INT(d->size),	SQ_TEXT(d->file),	    SQ_TEXT(d->flow),
		SQ_INT(d->forced),	SQ_INT(d->http_status),	    SQ_TEXT(d->status),
		SQ_INT(d->final),	SQ_TEXT(d->meldingen),	    SQ_TEXT(now),
	};
	const sq_query q = {
		"INSERT INTO declarations (" DECL_COLS ") VALUES"
		" (?1, ?2, ?3, ?4, ?5, ?6, 'sending', ?7, ?8, ?9, ?10, ?11, ?12, ?12, NULL)",
		args, ARRAY_SIZE(args), "recording the declaration"};
	vz_decl found = {0};
	int code;
	vz_rv rv;

	vz_journal_now(now);
	/* IMMEDIATE: the insert and, on a conflict, the read of the earlier row
	 * see one state of the file */
	rv = sq_exec(j, "BEGIN IMMEDIATE", "starting a transaction", err);
	if (rv != VZ_OK)
		return rv;
	rv = sq_write(j, &q, &code, err);
	if (rv == VZ_OK) {
		rv = sq_exec(j, "COMMIT", "recording the declaration", err);
		if (rv == VZ_OK)
			return VZ_OK;
	} else if (code == SQLITE_CONSTRAINT_PRIMARYKEY) {
		vz_err_set(err, "journal %s: traceer id %s is already recorded", j->where,
			   d->traceer_id);
		vz_err_hint(err, "every declaration needs a fresh traceer id");
	} else if (code == SQLITE_CONSTRAINT_UNIQUE) {
		rv = live_by_sha256(j, d->sha256, &found, err);
		if (rv == VZ_OK) {
			if (earlier)
				*earlier = found;
			else
				vz_decl_clear(&found);
			rv = VZ_DUPLICATE;
		}
	}
	sq_rollback(j);
	return rv;
}

/* An UPDATE or DELETE of the row with this traceer_id: VZ_NOT_FOUND when
 * it changed nothing (what names the row for the message); *code as for
 * sq_write. */
static vz_rv sq_change_one(vz_journal *j, const sq_query *q, const char *what,
			   const char *traceer_id, int *code, vz_err *err)
{
	vz_rv rv = sq_write(j, q, code, err);

	if (rv == VZ_OK && sqlite3_changes(j->conn) == 0)
		rv = vz_journal_no_row(j, what, traceer_id, err);
	return rv;
}

static vz_rv sq_decl_update(vz_journal *j, const vz_decl *d, vz_err *err)
{
	char now[VZ_TIME_LEN + 1];
	const sq_arg args[] = {
		SQ_TEXT(d->traceer_id), SQ_TEXT(vz_decl_state_text(d->state)),
		SQ_INT(d->http_status), SQ_TEXT(d->status),
		SQ_INT(d->final),	SQ_TEXT(d->meldingen),
		SQ_TEXT(now),		SQ_TEXT(vz_decl_refusal_text(d->refusal)),
	};
	const sq_query q = {"UPDATE declarations SET state = ?2, http_status = ?3, status = ?4,"
			    " final = ?5, meldingen = ?6, updated_at = ?7, refusal = ?8"
			    " WHERE traceer_id = ?1",
			    args, ARRAY_SIZE(args), "updating a declaration"};
	int code;
	vz_rv rv;

	vz_journal_now(now);
	rv = sq_change_one(j, &q, "declaration", d->traceer_id, &code, err);
	if (rv == VZ_FAIL && code == SQLITE_CONSTRAINT_UNIQUE) {
		vz_err_set(err,
			   "journal %s: declaration %s cannot become %s: the same content"
			   " is already sending or accepted (or refused for its content)",
			   j->where, d->traceer_id, vz_decl_state_text(d->state));
		vz_err_hint(err, "look at the earlier declaration of this file first");
	}
	return rv;
}

static vz_rv sq_decl_touch(vz_journal *j, const char *traceer_id, vz_err *err)
{
	char now[VZ_TIME_LEN + 1];
	const sq_arg args[] = {SQ_TEXT(traceer_id), SQ_TEXT(now)};
	const sq_query q = {"UPDATE declarations SET updated_at = ?2"
			    " WHERE traceer_id = ?1 AND state = 'sending'",
			    args, ARRAY_SIZE(args), "marking a declaration as still sending"};

	vz_journal_now(now);
	return sq_write(j, &q, NULL, err);
}

static vz_rv sq_decl_get(vz_journal *j, const char *traceer_id, vz_decl *out, vz_err *err)
{
	const sq_arg args[] = {SQ_TEXT(traceer_id)};
	const sq_query q = {"SELECT " DECL_COLS " FROM declarations WHERE traceer_id = ?1", args,
			    ARRAY_SIZE(args), "reading a declaration"};
	vz_rv rv = sq_get(j, &q, &decl_row, out, err);

	if (rv == VZ_NOT_FOUND)
		vz_journal_no_row(j, "declaration", traceer_id, err);
	return rv;
}

/* Reads every row first and calls fn after the statement is finished, so
 * fn may write to the journal without meeting our open read snapshot. */
static vz_rv sq_decl_each(vz_journal *j, bool only_open, vz_decl_fn fn, void *ctx, vz_err *err)
{
	const sq_query q = {
		only_open ? "SELECT " DECL_COLS " FROM declarations"
			    " WHERE state = 'sending' OR (state = 'accepted' AND final = 0)"
			    " ORDER BY created_at, rowid"
			  : "SELECT " DECL_COLS " FROM declarations"
			    " ORDER BY created_at, rowid",
		NULL, 0, "reading declarations"};
	sq_rows all = {.type = &decl_row};
	const vz_decl *rows;
	size_t i;
	vz_rv rv;

	rv = sq_list(j, &q, &all, err);
	rows = all.rows;
	for (i = 0; i < all.n && rv == VZ_OK; i++)
		rv = fn(ctx, &rows[i], err);
	sq_rows_free(&all);
	return rv;
}

static vz_rv retour_by_id(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err)
{
	const sq_arg args[] = {SQ_TEXT(traceer_id)};
	const sq_query q = {"SELECT " RETOUR_COLS " FROM retours WHERE traceer_id = ?1", args,
			    ARRAY_SIZE(args), "reading a return file"};
	vz_rv rv = sq_get(j, &q, &retour_row, out, err);

	if (rv == VZ_NOT_FOUND)
		vz_journal_no_row(j, "return file", traceer_id, err);
	return rv;
}

static vz_rv sq_retour_stored(vz_journal *j, const vz_retour *r, vz_retour *earlier, vz_err *err)
{
	char now[VZ_TIME_LEN + 1];
	const sq_arg args[] = {SQ_TEXT(r->traceer_id), SQ_TEXT(r->file), SQ_INT(r->size),
			       SQ_TEXT(r->sha256), SQ_TEXT(now)};
	const sq_query q = {"INSERT INTO retours (" RETOUR_COLS ") VALUES"
			    " (?1, ?2, ?3, ?4, 'stored', ?5, NULL)",
			    args, ARRAY_SIZE(args), "recording the return file"};
	vz_retour found;
	int code;
	vz_rv rv;

	vz_journal_now(now);
	rv = sq_exec(j, "BEGIN IMMEDIATE", "starting a transaction", err);
	if (rv != VZ_OK)
		return rv;
	rv = sq_write(j, &q, &code, err);
	if (rv == VZ_OK) {
		rv = sq_exec(j, "COMMIT", "recording the return file", err);
		if (rv == VZ_OK)
			return VZ_OK;
	} else if (code == SQLITE_CONSTRAINT_PRIMARYKEY) {
		rv = retour_by_id(j, r->traceer_id, &found, err);
		if (rv == VZ_NOT_FOUND)
			rv = VZ_FAIL; /* the conflict said it is there */
		if (rv == VZ_OK) {
			if (earlier)
				*earlier = found;
			rv = VZ_DUPLICATE;
		}
	}
	sq_rollback(j);
	return rv;
}

static vz_rv sq_retour_confirmed(vz_journal *j, const char *traceer_id, vz_err *err)
{
	char now[VZ_TIME_LEN + 1];
	const sq_arg args[] = {SQ_TEXT(traceer_id), SQ_TEXT(now)};
	/* a second confirmation keeps the first time */
	const sq_query q = {"UPDATE retours SET state = 'confirmed',"
			    " confirmed_at = COALESCE(confirmed_at, ?2) WHERE traceer_id = ?1",
			    args, ARRAY_SIZE(args), "confirming a return file"};

	vz_journal_now(now);
	return sq_change_one(j, &q, "return file", traceer_id, NULL, err);
}

static vz_rv sq_retour_forget(vz_journal *j, const char *traceer_id, vz_err *err)
{
	const sq_arg args[] = {SQ_TEXT(traceer_id)};
	const sq_query q = {"DELETE FROM retours WHERE traceer_id = ?1 AND state = 'stored'", args,
			    ARRAY_SIZE(args), "forgetting a return file"};

	return sq_change_one(j, &q, "stored, unconfirmed return file", traceer_id, NULL, err);
}

static vz_rv sq_retour_get(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err)
{
	return retour_by_id(j, traceer_id, out, err);
}

static vz_rv sq_retour_each(vz_journal *j, vz_retour_fn fn, void *ctx, vz_err *err)
{
	const sq_query q = {"SELECT " RETOUR_COLS " FROM retours ORDER BY stored_at, rowid", NULL,
			    0, "reading return files"};
	sq_rows all = {.type = &retour_row};
	const vz_retour *rows;
	size_t i;
	vz_rv rv;

	rv = sq_list(j, &q, &all, err);
	rows = all.rows;
	for (i = 0; i < all.n && rv == VZ_OK; i++)
		rv = fn(ctx, &rows[i], err);
	sq_rows_free(&all);
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

/* Reads the first column of a row as a short word (WORD_MAX bytes). */
#define WORD_MAX 16
static vz_rv read_word(const vz_journal *j, sqlite3_stmt *st, void *out, vz_err *err)
{
	const char *w = col_text(st, 0);

	snprintf(out, WORD_MAX, "%s", w ? w : "");
	return VZ_OK;
}

static const sq_row_type word_row = {WORD_MAX, read_word, NULL};

/* The journal mode, lower case, into mode; false when it cannot be read
 * (the database is busy). */
static bool journal_mode(vz_journal *j, const char *sql, char mode[WORD_MAX])
{
	const sq_query q = {sql, NULL, 0, "reading the journal mode"};

	return sq_get(j, &q, &word_row, mode, NULL) == VZ_OK;
}

/* WAL lets readers and one writer work at once; FULL syncs each commit,
 * because a lost "sending" row could mean a declaration sent twice.
 * Switching a new file to WAL needs it to itself, and SQLite may answer
 * BUSY at once (no busy handler) while another process creates the
 * schema: look whether someone else switched it, else try again, until
 * the busy timeout. */
static vz_rv configure(vz_journal *j, vz_err *err)
{
	char mode[WORD_MAX] = "";
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
	const sq_query q = {
		"SELECT 1 FROM pragma_table_info('declarations') WHERE name = 'refusal'", NULL, 0,
		"looking for the column refusal"};
	char one[WORD_MAX];

	return sq_get(j, &q, &word_row, one, NULL) == VZ_OK;
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
