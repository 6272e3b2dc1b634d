/* journal_pg.c - the journal in PostgreSQL, for several machines billing.
 * Every statement is one round trip with bound parameters; the unique
 * indexes decide races between hosts (SQLSTATE 23505). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "journal-int.h"

#define SQLSTATE_UNIQUE	  "23505"
/* The duplicate rule: content sending, accepted or refused for its content
 * (422), not forced. Its first form (no refusals) is dropped. */
#define LIVE_SHA256_INDEX "declarations_live_sha256_v2"
#define LIVE		  "(state IN ('sending', 'accepted') OR refusal = 'content') AND forced = false"
/* Serializes schema creation between clients (CREATE ... IF NOT EXISTS
 * alone can still collide in the catalog); an arbitrary fixed key. */
#define SCHEMA_LOCK_KEY "7620110011"
/* An earlier row can leave the live states between our failed insert and
 * our read of it; then the insert is simply tried again. */
#define BEGIN_ATTEMPTS 5

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS declarations ("
	" seq bigint GENERATED ALWAYS AS IDENTITY,"
	" traceer_id text PRIMARY KEY,"
	" conversatie_id text NOT NULL,"
	" sha256 text NOT NULL,"
	" size bigint NOT NULL,"
	" file text NOT NULL,"
	" flow text NOT NULL,"
	" state text NOT NULL CHECK (state IN ('sending', 'accepted', 'refused')),"
	" forced boolean NOT NULL,"
	" http_status integer NOT NULL,"
	" status text NOT NULL,"
	" final boolean NOT NULL,"
	" meldingen text,"
	" created_at text NOT NULL,"
	" updated_at text NOT NULL,"
	" refusal text CHECK (refusal IS NULL OR refusal IN (" VZ_REFUSAL_SQL_LIST ")));"
	"CREATE TABLE IF NOT EXISTS retours ("
	" seq bigint GENERATED ALWAYS AS IDENTITY,"
	" traceer_id text PRIMARY KEY,"
	" file text NOT NULL,"
	" size bigint NOT NULL,"
	" sha256 text NOT NULL,"
	" state text NOT NULL CHECK (state IN ('stored', 'confirmed')),"
	" stored_at text NOT NULL,"
	" confirmed_at text);"
	/* a journal from before refusals were told apart */
	"ALTER TABLE declarations ADD COLUMN IF NOT EXISTS"
	" refusal text CHECK (refusal IS NULL OR refusal IN (" VZ_REFUSAL_SQL_LIST "));"
	"CREATE UNIQUE INDEX IF NOT EXISTS " LIVE_SHA256_INDEX " ON declarations (sha256)"
	" WHERE " LIVE ";"
	"DROP INDEX IF EXISTS declarations_live_sha256;";

#define DECL_COLS                                                                                  \
	"traceer_id, conversatie_id, sha256, size, file, flow, state, forced, http_status, "       \
	"status, final, meldingen, created_at, updated_at, refusal"
#define RETOUR_COLS "traceer_id, file, size, sha256, state, stored_at, confirmed_at"

/* Why a statement failed, for the callers that decide on it. */
typedef struct pg_why {
	char sqlstate[6];
	char constraint[64];
} pg_why;

/* libpq prints notices to stderr by default; library code never prints. */
static void ignore_notice(void *arg, const char *message)
{
}

/* Copies libpq's message without its trailing newline. */
static void set_pg_msg(vz_err *err, const vz_journal *j, const char *what, const char *msg)
{
	size_t len = msg ? strlen(msg) : 0;

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	vz_err_set(err, "journal %s: %s: %.*s", j->where, what, (int)len, msg ? msg : "");
}

/* Runs one statement with text parameters. VZ_OK with *out holding the
 * result; otherwise err (and why, when given) say what went wrong. */
static vz_rv pg_exec(vz_journal *j, const char *what, const char *sql, int n,
		     const char *const *vals, PGresult **out, pg_why *why, vz_err *err)
{
	PGconn *c = j->conn;
	PGresult *res = NULL;
	ExecStatusType st;
	const char *field;
	vz_rv rv = VZ_FAIL;

	/* a server restart or a dropped link: one fresh connection */
	if (PQstatus(c) != CONNECTION_OK)
		PQreset(c);
	res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		*out = res;
		res = NULL;
		rv = VZ_OK;
		goto out;
	}
	set_pg_msg(err, j, what, res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	if (PQstatus(c) != CONNECTION_OK)
		vz_err_hint(err, "the connection to the database was lost; check the server and"
				 " try again");
	if (why) {
		memset(why, 0, sizeof(*why));
		field = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		vz_journal_copy(why->sqlstate, sizeof(why->sqlstate), field);
		field = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
		vz_journal_copy(why->constraint, sizeof(why->constraint), field);
	}
out:
	PQclear(res);
	return rv;
}

/* Runs a statement whose result nobody needs. */
static vz_rv pg_do(vz_journal *j, const char *what, const char *sql, int n, const char *const *vals,
		   pg_why *why, vz_err *err)
{
	PGresult *res = NULL;
	vz_rv rv = pg_exec(j, what, sql, n, vals, &res, why, err);

	PQclear(res);
	return rv;
}

static bool parse_ll(const char *s, long long *out)
{
	char *end;

	if (!s || !*s)
		return false;
	*out = strtoll(s, &end, 10);
	return *end == '\0';
}

static bool parse_int(const char *s, int *out)
{
	long long v;

	if (!parse_ll(s, &v) || v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = (int)v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "t") != 0 && strcmp(s, "f") != 0)
		return false;
	*out = s[0] == 't';
	return true;
}

/* Reads row i of DECL_COLS; *out owns meldingen on success. */
static vz_rv row_to_decl(const vz_journal *j, const PGresult *res, int i, vz_decl *out, vz_err *err)
{
	vz_decl d = {0};

	if (!vz_journal_copy(d.traceer_id, sizeof(d.traceer_id), PQgetvalue(res, i, 0)) ||
	    !vz_journal_copy(d.conversatie_id, sizeof(d.conversatie_id), PQgetvalue(res, i, 1)) ||
	    !vz_journal_copy(d.sha256, sizeof(d.sha256), PQgetvalue(res, i, 2)) ||
	    !parse_ll(PQgetvalue(res, i, 3), &d.size) ||
	    !vz_journal_copy(d.file, sizeof(d.file), PQgetvalue(res, i, 4)) ||
	    !vz_journal_copy(d.flow, sizeof(d.flow), PQgetvalue(res, i, 5)) ||
	    !vz_decl_state_parse(PQgetvalue(res, i, 6), &d.state) ||
	    !vz_decl_refusal_parse(PQgetisnull(res, i, 14) ? NULL : PQgetvalue(res, i, 14),
				   &d.refusal) ||
	    !parse_bool(PQgetvalue(res, i, 7), &d.forced) ||
	    !parse_int(PQgetvalue(res, i, 8), &d.http_status) ||
	    !vz_journal_copy(d.status, sizeof(d.status), PQgetvalue(res, i, 9)) ||
	    !parse_bool(PQgetvalue(res, i, 10), &d.final) ||
	    !vz_journal_copy(d.created_at, sizeof(d.created_at), PQgetvalue(res, i, 12)) ||
	    !vz_journal_copy(d.updated_at, sizeof(d.updated_at), PQgetvalue(res, i, 13))) {
		vz_err_set(err, "journal %s: a declaration row does not fit vzp11's fields",
			   j->where);
		vz_err_hint(err, "the tables were changed by something else than vzp11");
		return VZ_FAIL;
	}
	if (!PQgetisnull(res, i, 11)) {
		d.meldingen = strdup(PQgetvalue(res, i, 11));
		if (!d.meldingen) {
			vz_err_set(err, "out of memory reading the journal");
			return VZ_FAIL;
		}
	}
	*out = d;
	return VZ_OK;
}

static vz_rv row_to_retour(const vz_journal *j, const PGresult *res, int i, vz_retour *out,
			   vz_err *err)
{
	vz_retour r = {0};

	if (!vz_journal_copy(r.traceer_id, sizeof(r.traceer_id), PQgetvalue(res, i, 0)) ||
	    !vz_journal_copy(r.file, sizeof(r.file), PQgetvalue(res, i, 1)) ||
	    !parse_ll(PQgetvalue(res, i, 2), &r.size) ||
	    !vz_journal_copy(r.sha256, sizeof(r.sha256), PQgetvalue(res, i, 3)) ||
	    !vz_retour_state_parse(PQgetvalue(res, i, 4), &r.state) ||
	    !vz_journal_copy(r.stored_at, sizeof(r.stored_at), PQgetvalue(res, i, 5)) ||
	    !vz_journal_copy(r.confirmed_at, sizeof(r.confirmed_at), PQgetvalue(res, i, 6))) {
		vz_err_set(err, "journal %s: a return-file row does not fit vzp11's fields",
			   j->where);
		vz_err_hint(err, "the tables were changed by something else than vzp11");
		return VZ_FAIL;
	}
	*out = r;
	return VZ_OK;
}

static const char *pg_bool(bool b)
{
	return b ? "true" : "false";
}

/* The live declaration of this content: VZ_OK, or VZ_NOT_FOUND when it
 * left the live states since the insert failed. */
static vz_rv live_by_sha256(vz_journal *j, const char *sha256, vz_decl *out, vz_err *err)
{
	const char *vals[] = {sha256};
	PGresult *res = NULL;
	vz_rv rv;

	rv = pg_exec(j, "reading the earlier declaration",
		     "SELECT " DECL_COLS " FROM declarations WHERE sha256 = $1 AND " LIVE
		     " ORDER BY created_at, seq LIMIT 1",
		     1, vals, &res, NULL, err);
	if (rv != VZ_OK)
		goto out;
	if (PQntuples(res) == 0)
		rv = VZ_NOT_FOUND;
	else
		rv = row_to_decl(j, res, 0, out, err);
out:
	PQclear(res);
	return rv;
}

static vz_rv pg_decl_begin(vz_journal *j, const vz_decl *d, vz_decl *earlier, vz_err *err)
{
	char size[24], http[16], now[VZ_TIME_LEN + 1];
	const char *vals[12];
	vz_decl found = {0};
	pg_why why;
	vz_rv rv = VZ_FAIL;
	int attempt;

	vz_journal_now(now);
	snprintf(size, sizeof(size), "%lld", d->size);
	snprintf(http, sizeof(http), "%d", d->http_status);
	vals[0] = d->traceer_id;
	vals[1] = d->conversatie_id;
	vals[2] = d->sha256;
	vals[3] = size;
	vals[4] = d->file;
	vals[5] = d->flow;
	vals[6] = pg_bool(d->forced);
	vals[7] = http;
	vals[8] = d->status;
	vals[9] = pg_bool(d->final);
	vals[10] = d->meldingen;
	vals[11] = now;
	for (attempt = 0; attempt < BEGIN_ATTEMPTS; attempt++) {
		rv = pg_do(j, "recording the declaration",
			   "INSERT INTO declarations (" DECL_COLS ") VALUES"
			   " ($1, $2, $3, $4, $5, $6, 'sending', $7, $8, $9, $10, $11, $12, $12,"
			   " NULL)",
			   12, vals, &why, err);
		if (rv == VZ_OK)
			return VZ_OK;
		if (strcmp(why.sqlstate, SQLSTATE_UNIQUE) != 0)
			return VZ_FAIL;
		if (strcmp(why.constraint, LIVE_SHA256_INDEX) != 0) {
			vz_err_set(err, "journal %s: traceer id %s is already recorded", j->where,
				   d->traceer_id);
			vz_err_hint(err, "every declaration needs a fresh traceer id");
			return VZ_FAIL;
		}
		rv = live_by_sha256(j, d->sha256, &found, err);
		if (rv == VZ_OK)
			break;
		if (rv != VZ_NOT_FOUND)
			return rv;
	}
	if (rv != VZ_OK) {
		vz_err_set(err,
			   "journal %s: the duplicate rule kept refusing a declaration whose"
			   " earlier twin kept changing",
			   j->where);
		vz_err_hint(err, "try again");
		return VZ_FAIL;
	}
	if (earlier)
		*earlier = found;
	else
		vz_decl_clear(&found);
	return VZ_DUPLICATE;
}

static vz_rv pg_decl_update(vz_journal *j, const vz_decl *d, vz_err *err)
{
	char http[16], now[VZ_TIME_LEN + 1];
	const char *vals[8];
	PGresult *res = NULL;
	pg_why why;
	vz_rv rv;

	vz_journal_now(now);
	snprintf(http, sizeof(http), "%d", d->http_status);
	vals[0] = d->traceer_id;
	vals[1] = vz_decl_state_text(d->state);
	vals[2] = http;
	vals[3] = d->status;
	vals[4] = pg_bool(d->final);
	vals[5] = d->meldingen;
	vals[6] = now;
	vals[7] = vz_decl_refusal_text(d->refusal);
	rv = pg_exec(j, "updating a declaration",
		     "UPDATE declarations SET state = $2, http_status = $3, status = $4,"
		     " final = $5, meldingen = $6, updated_at = $7, refusal = $8"
		     " WHERE traceer_id = $1",
		     8, vals, &res, &why, err);
	if (rv != VZ_OK) {
		if (strcmp(why.sqlstate, SQLSTATE_UNIQUE) == 0) {
			vz_err_set(err,
				   "journal %s: declaration %s cannot become %s: the same content"
				   " is already sending or accepted (or refused for its content)",
				   j->where, d->traceer_id, vals[1]);
			vz_err_hint(err, "look at the earlier declaration of this file first");
		}
		goto out;
	}
	if (strcmp(PQcmdTuples(res), "0") == 0) {
		vz_err_set(err, "journal %s: no declaration with traceer id %s", j->where,
			   d->traceer_id);
		rv = VZ_NOT_FOUND;
	}
out:
	PQclear(res);
	return rv;
}

static vz_rv pg_decl_touch(vz_journal *j, const char *traceer_id, vz_err *err)
{
	char now[VZ_TIME_LEN + 1];
	const char *vals[2];

	vz_journal_now(now);
	vals[0] = traceer_id;
	vals[1] = now;
	return pg_do(j, "marking a declaration as still sending",
		     "UPDATE declarations SET updated_at = $2"
		     " WHERE traceer_id = $1 AND state = 'sending'",
		     2, vals, NULL, err);
}

static vz_rv pg_decl_get(vz_journal *j, const char *traceer_id, vz_decl *out, vz_err *err)
{
	const char *vals[] = {traceer_id};
	PGresult *res = NULL;
	vz_rv rv;

	rv = pg_exec(j, "reading a declaration",
		     "SELECT " DECL_COLS " FROM declarations WHERE traceer_id = $1", 1, vals, &res,
		     NULL, err);
	if (rv != VZ_OK)
		goto out;
	if (PQntuples(res) == 0) {
		vz_err_set(err, "journal %s: no declaration with traceer id %s", j->where,
			   traceer_id);
		rv = VZ_NOT_FOUND;
		goto out;
	}
	rv = row_to_decl(j, res, 0, out, err);
out:
	PQclear(res);
	return rv;
}

static vz_rv pg_decl_each(vz_journal *j, bool only_open, vz_decl_fn fn, void *ctx, vz_err *err)
{
	PGresult *res = NULL;
	vz_decl d;
	vz_rv rv;
	int i;

	rv = pg_exec(j, "reading declarations",
		     only_open ? "SELECT " DECL_COLS " FROM declarations WHERE state = 'sending'"
				 " OR (state = 'accepted' AND final = false)"
				 " ORDER BY created_at, seq"
			       : "SELECT " DECL_COLS " FROM declarations ORDER BY created_at, seq",
		     0, NULL, &res, NULL, err);
	for (i = 0; rv == VZ_OK && i < PQntuples(res); i++) {
		rv = row_to_decl(j, res, i, &d, err);
		if (rv != VZ_OK)
			break;
		rv = fn(ctx, &d, err);
		vz_decl_clear(&d);
	}
	PQclear(res);
	return rv;
}

static vz_rv retour_by_id(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err)
{
	const char *vals[] = {traceer_id};
	PGresult *res = NULL;
	vz_rv rv;

	rv = pg_exec(j, "reading a return file",
		     "SELECT " RETOUR_COLS " FROM retours WHERE traceer_id = $1", 1, vals, &res,
		     NULL, err);
	if (rv != VZ_OK)
		goto out;
	if (PQntuples(res) == 0) {
		vz_err_set(err, "journal %s: no return file with traceer id %s", j->where,
			   traceer_id);
		rv = VZ_NOT_FOUND;
		goto out;
	}
	rv = row_to_retour(j, res, 0, out, err);
out:
	PQclear(res);
	return rv;
}

static vz_rv pg_retour_stored(vz_journal *j, const vz_retour *r, vz_retour *earlier, vz_err *err)
{
	char size[24], now[VZ_TIME_LEN + 1];
	const char *vals[5];
	vz_retour found;
	pg_why why;
	vz_rv rv;

	vz_journal_now(now);
	snprintf(size, sizeof(size), "%lld", r->size);
	vals[0] = r->traceer_id;
	vals[1] = r->file;
	vals[2] = size;
	vals[3] = r->sha256;
	vals[4] = now;
	rv = pg_do(j, "recording the return file",
		   "INSERT INTO retours (" RETOUR_COLS ") VALUES"
		   " ($1, $2, $3, $4, 'stored', $5, NULL)",
		   5, vals, &why, err);
	if (rv == VZ_OK || strcmp(why.sqlstate, SQLSTATE_UNIQUE) != 0)
		return rv;
	rv = retour_by_id(j, r->traceer_id, &found, err);
	if (rv == VZ_NOT_FOUND)
		rv = VZ_FAIL; /* the conflict said it is there */
	if (rv != VZ_OK)
		return rv;
	if (earlier)
		*earlier = found;
	return VZ_DUPLICATE;
}

static vz_rv pg_retour_confirmed(vz_journal *j, const char *traceer_id, vz_err *err)
{
	char now[VZ_TIME_LEN + 1];
	const char *vals[2];
	PGresult *res = NULL;
	vz_rv rv;

	vz_journal_now(now);
	vals[0] = traceer_id;
	vals[1] = now;
	/* a second confirmation keeps the first time */
	rv = pg_exec(j, "confirming a return file",
		     "UPDATE retours SET state = 'confirmed',"
		     " confirmed_at = COALESCE(confirmed_at, $2) WHERE traceer_id = $1",
		     2, vals, &res, NULL, err);
	if (rv == VZ_OK && strcmp(PQcmdTuples(res), "0") == 0) {
		vz_err_set(err, "journal %s: no return file with traceer id %s", j->where,
			   traceer_id);
		rv = VZ_NOT_FOUND;
	}
	PQclear(res);
	return rv;
}

static vz_rv pg_retour_get(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err)
{
	return retour_by_id(j, traceer_id, out, err);
}

static vz_rv pg_retour_each(vz_journal *j, vz_retour_fn fn, void *ctx, vz_err *err)
{
	PGresult *res = NULL;
	vz_retour r;
	vz_rv rv;
	int i;

	rv = pg_exec(j, "reading return files",
		     "SELECT " RETOUR_COLS " FROM retours ORDER BY stored_at, seq", 0, NULL, &res,
		     NULL, err);
	for (i = 0; rv == VZ_OK && i < PQntuples(res); i++) {
		rv = row_to_retour(j, res, i, &r, err);
		if (rv == VZ_OK)
			rv = fn(ctx, &r, err);
	}
	PQclear(res);
	return rv;
}

static void pg_close(vz_journal *j)
{
	PQfinish(j->conn);
	j->conn = NULL;
}

static const vz_journal_ops pg_ops = {
	.close = pg_close,
	.decl_begin = pg_decl_begin,
	.decl_update = pg_decl_update,
	.decl_touch = pg_decl_touch,
	.decl_get = pg_decl_get,
	.decl_each = pg_decl_each,
	.retour_stored = pg_retour_stored,
	.retour_confirmed = pg_retour_confirmed,
	.retour_get = pg_retour_get,
	.retour_each = pg_retour_each,
};

/* Creates the tables unless they are all there; under an advisory lock
 * so two clients starting on an empty database do not collide. Tables
 * that exist need no CREATE right on the schema. */
static vz_rv create_schema(vz_journal *j, vz_err *err)
{
	PGresult *res = NULL;
	vz_rv rv;

	rv = pg_do(j, "starting a transaction", "BEGIN", 0, NULL, NULL, err);
	if (rv != VZ_OK)
		return rv;
	rv = pg_do(j, "locking the schema", "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")", 0,
		   NULL, NULL, err);
	if (rv != VZ_OK)
		goto out;
	rv = pg_exec(j, "looking for the tables",
		     "SELECT to_regclass('declarations') IS NOT NULL"
		     " AND to_regclass('retours') IS NOT NULL"
		     " AND to_regclass('" LIVE_SHA256_INDEX "') IS NOT NULL",
		     0, NULL, &res, NULL, err);
	if (rv != VZ_OK)
		goto out;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		/* PQexec: several statements, no parameters */
		PQclear(res);
		res = PQexec(j->conn, schema_sql);
		if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
			set_pg_msg(err, j, "creating the tables",
				   res ? PQresultErrorMessage(res) : PQerrorMessage(j->conn));
			vz_err_hint(err, "let the database owner create the tables, or grant"
					 " this user CREATE on the schema");
			rv = VZ_FAIL;
			goto out;
		}
	}
	rv = pg_do(j, "creating the tables", "COMMIT", 0, NULL, NULL, err);
out:
	PQclear(res);
	if (rv != VZ_OK)
		PQclear(PQexec(j->conn, "ROLLBACK"));
	return rv;
}

vz_rv vz_journal_pg_open(const char *uri, vz_journal *j, vz_err *err)
{
	vz_journal tmp = {.ops = &pg_ops};
	PGconn *c;
	vz_rv rv = VZ_FAIL;

	vz_journal_redact_uri(uri, tmp.where, sizeof(tmp.where));
	c = PQconnectdb(uri);
	if (!c) {
		vz_err_set(err, "out of memory connecting to the journal %s", tmp.where);
		return VZ_FAIL;
	}
	PQsetNoticeProcessor(c, ignore_notice, NULL);
	tmp.conn = c;
	if (PQstatus(c) != CONNECTION_OK) {
		set_pg_msg(err, &tmp, "cannot connect", PQerrorMessage(c));
		vz_err_hint(err, "check that the server runs and the URI's host, port, user and"
				 " database are right");
		goto out;
	}
	rv = create_schema(&tmp, err);
	if (rv != VZ_OK)
		goto out;
	*j = tmp;
	c = NULL;
out:
	PQfinish(c);
	return rv;
}
