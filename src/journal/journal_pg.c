/* journal_pg.c - the journal in PostgreSQL, for several machines billing.
 * Every statement is one round trip with bound parameters; the unique
 * indexes decide races between hosts (SQLSTATE 23505). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "journal-int.h"

#define SQLSTATE_UNIQUE "23505"
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

/* The tables, in the schema @S@ stands for (created there by name: the
 * session's search_path starts with pg_catalog, where nothing may be made). */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS @S@.declarations ("
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
	"CREATE TABLE IF NOT EXISTS @S@.retours ("
	" seq bigint GENERATED ALWAYS AS IDENTITY,"
	" traceer_id text PRIMARY KEY,"
	" file text NOT NULL,"
	" size bigint NOT NULL,"
	" sha256 text NOT NULL,"
	" state text NOT NULL CHECK (state IN ('stored', 'confirmed')),"
	" stored_at text NOT NULL,"
	" confirmed_at text);"
	/* a journal from before refusals were told apart */
	"ALTER TABLE @S@.declarations ADD COLUMN IF NOT EXISTS"
	" refusal text CHECK (refusal IS NULL OR refusal IN (" VZ_REFUSAL_SQL_LIST "));"
	"CREATE UNIQUE INDEX IF NOT EXISTS " LIVE_SHA256_INDEX " ON @S@.declarations (sha256)"
	" WHERE " LIVE ";"
	"DROP INDEX IF EXISTS @S@.declarations_live_sha256;";

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

/* Reads row i of a result into out (written only on success). */
typedef vz_rv (*pg_read_fn)(const vz_journal *j, const PGresult *res, int i, void *out,
			    vz_err *err);

/* Reads row i of DECL_COLS into a vz_decl; it owns meldingen then. */
static vz_rv read_decl(const vz_journal *j, const PGresult *res, int i, void *out, vz_err *err)
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
	*(vz_decl *)out = d;
	return VZ_OK;
}

/* Reads row i of RETOUR_COLS into a vz_retour. */
static vz_rv read_retour(const vz_journal *j, const PGresult *res, int i, void *out, vz_err *err)
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
	*(vz_retour *)out = r;
	return VZ_OK;
}

/* Runs a query and reads its first row into out: VZ_OK, VZ_NOT_FOUND when
 * it has none (err untouched), or VZ_FAIL. */
static vz_rv pg_get(vz_journal *j, const char *what, const char *sql, int n,
		    const char *const *vals, pg_read_fn read, void *out, vz_err *err)
{
	PGresult *res = NULL;
	vz_rv rv = pg_exec(j, what, sql, n, vals, &res, NULL, err);

	if (rv == VZ_OK)
		rv = PQntuples(res) == 0 ? VZ_NOT_FOUND : read(j, res, 0, out, err);
	PQclear(res);
	return rv;
}

/* An UPDATE or DELETE (doing what) of the row with the traceer id in
 * vals[0]: VZ_NOT_FOUND, saying there is no such row, when it changed
 * nothing; why as for pg_exec. */
static vz_rv pg_change_one(vz_journal *j, const char *what, const char *row, const char *sql, int n,
			   const char *const *vals, pg_why *why, vz_err *err)
{
	PGresult *res = NULL;
	vz_rv rv = pg_exec(j, what, sql, n, vals, &res, why, err);

	if (rv == VZ_OK && strcmp(PQcmdTuples(res), "0") == 0)
		rv = vz_journal_no_row(j, row, vals[0], err);
	PQclear(res);
	return rv;
}

static const char *pg_bool(bool b)
{
	return b ? "true" : "false";
}

/* The live declaration of this content: VZ_OK, or VZ_NOT_FOUND when
 * it left the live states since the insert failed. */
static vz_rv live_by_sha256(vz_journal *j, const char *sha256, vz_decl *out, vz_err *err)
{
	const char *vals[] = {sha256};

	return pg_get(j, "reading the earlier declaration",
		      "SELECT " DECL_COLS " FROM declarations WHERE sha256 = $1 AND " LIVE
		      " ORDER BY created_at, seq LIMIT 1",
		      1, vals, read_decl, out, err);
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
	rv = pg_change_one(j, "updating a declaration", "declaration",
			   "UPDATE declarations SET state = $2, http_status = $3, status = $4,"
			   " final = $5, meldingen = $6, updated_at = $7, refusal = $8"
			   " WHERE traceer_id = $1",
			   8, vals, &why, err);
	if (rv == VZ_FAIL && strcmp(why.sqlstate, SQLSTATE_UNIQUE) == 0) {
		vz_err_set(err,
			   "journal %s: declaration %s cannot become %s: the same content"
			   " is already sending or accepted (or refused for its content)",
			   j->where, d->traceer_id, vals[1]);
		vz_err_hint(err, "look at the earlier declaration of this file first");
	}
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
	vz_rv rv;

	rv = pg_get(j, "reading a declaration",
		    "SELECT " DECL_COLS " FROM declarations WHERE traceer_id = $1", 1, vals,
		    read_decl, out, err);
	if (rv == VZ_NOT_FOUND)
		vz_journal_no_row(j, "declaration", traceer_id, err);
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
		rv = read_decl(j, res, i, &d, err);
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
	vz_rv rv;

	rv = pg_get(j, "reading a return file",
		    "SELECT " RETOUR_COLS " FROM retours WHERE traceer_id = $1", 1, vals,
		    read_retour, out, err);
	if (rv == VZ_NOT_FOUND)
		vz_journal_no_row(j, "return file", traceer_id, err);
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
	const char *vals[] = {traceer_id, now};

	vz_journal_now(now);
	/* a second confirmation keeps the first time */
	return pg_change_one(j, "confirming a return file", "return file",
			     "UPDATE retours SET state = 'confirmed',"
			     " confirmed_at = COALESCE(confirmed_at, $2) WHERE traceer_id = $1",
			     2, vals, NULL, err);
}

static vz_rv pg_retour_forget(vz_journal *j, const char *traceer_id, vz_err *err)
{
	const char *vals[] = {traceer_id};

	return pg_change_one(j, "forgetting a return file", "stored, unconfirmed return file",
			     "DELETE FROM retours WHERE traceer_id = $1 AND state = 'stored'", 1,
			     vals, NULL, err);
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
		rv = read_retour(j, res, i, &r, err);
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
	.retour_forget = pg_retour_forget,
	.retour_get = pg_retour_get,
	.retour_each = pg_retour_each,
};

/* Refuses to make new tables in schema when the journal's may be
 * elsewhere: a table declarations in another schema, while the connection
 * string did not name one (then vzp11 used to find its tables through
 * the search_path, which is also how another user's tables could pass for
 * them). VZ_OK: nothing else there. */
static vz_rv tables_elsewhere(vz_journal *j, const char *schema, vz_err *err)
{
	const char *vals[] = {schema};
	PGresult *res = NULL;
	vz_rv rv;

	rv = pg_exec(j, "looking for the tables",
		     "SELECT string_agg(quote_ident(n.nspname), ', ' ORDER BY n.nspname)"
		     " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		     " WHERE c.relname = 'declarations' AND c.relkind IN ('r', 'p')"
		     " AND n.nspname <> $1",
		     1, vals, &res, NULL, err);
	if (rv == VZ_OK && !PQgetisnull(res, 0, 0)) {
		vz_err_set(err,
			   "journal %s: no journal tables in schema %s, but a table declarations "
			   "is in schema %s; vzp11 creates none beside it",
			   j->where, schema, PQgetvalue(res, 0, 0));
		vz_err_hint(err,
			    "if that is the journal, name its schema in the URI "
			    "(options=-csearch_path%%3DSCHEMA); to start a new journal in %s, name "
			    "that one",
			    schema);
		rv = VZ_FAIL;
	}
	PQclear(res);
	return rv;
}

/* schema_sql with @S@ the schema's quoted name; malloc'ed, NULL when out
 * of memory. */
static char *schema_ddl(vz_journal *j, const char *schema)
{
	char *q = PQescapeIdentifier(j->conn, schema, strlen(schema)), *out;
	size_t n = 0, qlen, used = 0;
	const char *p, *at;

	if (!q)
		return NULL;
	qlen = strlen(q);
	for (p = strstr(schema_sql, "@S@"); p; p = strstr(p + 3, "@S@"))
		n++;
	out = malloc(sizeof(schema_sql) + n * qlen);
	for (p = schema_sql; out; p = at + 3) {
		at = strstr(p, "@S@");
		if (!at) {
			memcpy(out + used, p, strlen(p) + 1);
			break;
		}
		memcpy(out + used, p, (size_t)(at - p));
		used += (size_t)(at - p);
		memcpy(out + used, q, qlen);
		used += qlen;
	}
	PQfreemem(q);
	return out;
}

/* Creates the tables unless they are all there; under an advisory lock
 * so two clients starting on an empty database do not collide. Tables
 * that exist need no CREATE right on the schema. The session's
 * search_path is pinned to pg_catalog and schema (pg_open), so
 * every name below is found there and nowhere else. */
static vz_rv create_schema(vz_journal *j, const char *schema, bool named, vz_err *err)
{
	PGresult *res = NULL;
	char *ddl = NULL;
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
		     " AND to_regclass('" LIVE_SHA256_INDEX "') IS NOT NULL,"
		     " to_regclass('declarations') IS NOT NULL",
		     0, NULL, &res, NULL, err);
	if (rv != VZ_OK)
		goto out;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		if (!named && strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
			rv = tables_elsewhere(j, schema, err);
			if (rv != VZ_OK)
				goto out;
		}
		/* PQexec: several statements, no parameters */
		PQclear(res);
		res = NULL;
		ddl = schema_ddl(j, schema);
		if (!ddl) {
			vz_err_set(err, "out of memory opening the journal");
			rv = VZ_FAIL;
			goto out;
		}
		res = PQexec(j->conn, ddl);
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
	free(ddl);
	if (rv != VZ_OK)
		PQclear(PQexec(j->conn, "ROLLBACK"));
	return rv;
}

/* The value of search_path in libpq's options (-c search_path=..., -csearch_path=...
 * or --search_path=..., also with '-' for '_'; a backslash escapes the next
 * character), the last one given; false when there is none. */
static bool options_search_path(const char *options, char *out, size_t size)
{
	char tok[1024];
	bool found = false, want_c = false;
	const char *p = options;

	while (p && *p) {
		size_t n = 0;
		const char *kv;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		for (; *p && *p != ' ' && *p != '\t'; p++) {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 < sizeof(tok))
				tok[n++] = *p;
		}
		tok[n] = '\0';
		kv = want_c				    ? tok
		     : strncmp(tok, "--", 2) == 0	    ? tok + 2
		     : strncmp(tok, "-c", 2) == 0 && tok[2] ? tok + 2
							    : NULL;
		want_c = strcmp(tok, "-c") == 0;
		if (kv && (strncmp(kv, "search_path=", 12) == 0 ||
			   strncmp(kv, "search-path=", 12) == 0)) {
			snprintf(out, size, "%s", kv + 12);
			found = true;
		}
	}
	return found;
}

/* The first schema of a search_path value that names one: "$user",
 * pg_catalog and pg_temp are passed over, quoted or not (the first could
 * name a schema someone else made); unquoted names fold to lower case.
 * false when none is left. */
static bool first_schema(const char *path, char *out, size_t size)
{
	const char *p = path;

	while (*p) {
		size_t n = 0;

		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p == '"') {
			for (p++; *p; p++) {
				if (*p == '"' && p[1] != '"') {
					p++;
					break;
				}
				p += *p == '"'; /* "" is one quote */
				if (n + 1 < size)
					out[n++] = *p;
			}
		} else {
			for (; *p && *p != ','; p++)
				if (n + 1 < size)
					out[n++] = (char)tolower((unsigned char)*p);
			while (n > 0 && out[n - 1] == ' ')
				n--;
		}
		out[n] = '\0';
		if (n && strcmp(out, "$user") != 0 && strcmp(out, "pg_catalog") != 0 &&
		    strncmp(out, "pg_temp", 7) != 0)
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* A host of the connection that is reached over TCP and is not this
 * machine (localhost, 127.0.0.0/8, ::1). */
static bool remote_host(const char *hosts)
{
	char h[256];
	const char *p = hosts;

	while (p && *p) {
		size_t n = strcspn(p, ",");

		snprintf(h, sizeof(h), "%.*s", (int)n, p);
		p += n + (p[n] == ',');
		if (!h[0] || h[0] == '/' || h[0] == '@')
			continue; /* a Unix socket */
		if (strcasecmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
		    strcmp(h, "::1") == 0)
			continue;
		return true;
	}
	return false;
}

/* How vzp11 connects, beyond what the URI says: the search_path pinned to
 * pg_catalog and the journal's schema (in options, so it holds after a
 * reconnection too), and sslmode=verify-full for a host on the network
 * when neither the URI nor PGSSLMODE says otherwise, nor a service
 * (service= or PGSERVICE): libpq reads a service's sslmode from
 * pg_service.conf only for what the connection's parameters leave out, so
 * vzp11 would override it, and the service decides instead. */
struct pg_how {
	char schema[128];
	bool named;	    /* the URI's options named the schema */
	char options[2048]; /* the URI's options and the pinned search_path */
	bool verify_full;
};

static vz_rv pg_how(const char *uri, struct pg_how *how, vz_err *err)
{
	char *msg = NULL, path[1024], quoted[300];
	PQconninfoOption *opts = PQconninfoParse(uri, &msg);
	const char *options = NULL, *sslmode = NULL, *host = NULL, *hostaddr = NULL;
	const char *service = NULL;
	size_t n = 0;

	if (!opts) {
		vz_err_set(err, "the journal's URI cannot be read: %s",
			   msg ? msg : "out of memory");
		PQfreemem(msg);
		return VZ_FAIL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "options") == 0)
			options = o->val;
		else if (strcmp(o->keyword, "sslmode") == 0)
			sslmode = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "service") == 0)
			service = o->val;
	}
	memset(how, 0, sizeof(*how));
	how->named = options && options_search_path(options, path, sizeof(path)) &&
		     first_schema(path, how->schema, sizeof(how->schema));
	if (!how->named)
		snprintf(how->schema, sizeof(how->schema), "public");
	/* "schema" with " doubled; then spaces and backslashes escaped for libpq */
	quoted[n++] = '"';
	for (const char *c = how->schema; *c && n + 3 < sizeof(quoted); c++) {
		if (*c == '"')
			quoted[n++] = '"';
		if (*c == ' ' || *c == '\\')
			quoted[n++] = '\\';
		quoted[n++] = *c;
	}
	quoted[n++] = '"';
	quoted[n] = '\0';
	snprintf(how->options, sizeof(how->options), "%s%s-c search_path=pg_catalog,%s",
		 options ? options : "", options ? " " : "", quoted);
	/* what the URI leaves out, libpq takes from its environment */
	host = host && *host ? host : getenv("PGHOST");
	hostaddr = hostaddr && *hostaddr ? hostaddr : getenv("PGHOSTADDR");
	service = service && *service ? service : getenv("PGSERVICE");
	how->verify_full = !sslmode && !getenv("PGSSLMODE") && !(service && *service) &&
			   (remote_host(host) || (!(host && *host) && remote_host(hostaddr)));
	PQconninfoFree(opts);
	return VZ_OK;
}

static vz_rv pg_open(const char *uri, vz_journal *j, vz_err *err)
{
	vz_journal tmp = {0};
	const char *keys[] = {"dbname", "options", "sslmode", NULL};
	const char *vals[] = {uri, NULL, "verify-full", NULL};
	struct pg_how how;
	PGconn *c;
	vz_rv rv = VZ_FAIL;

	vz_journal_redact_uri(uri, tmp.where, sizeof(tmp.where));
	if (pg_how(uri, &how, err) != VZ_OK)
		return VZ_FAIL;
	vals[1] = how.options;
	if (!how.verify_full)
		keys[2] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (!c) {
		vz_err_set(err, "out of memory connecting to the journal %s", tmp.where);
		return VZ_FAIL;
	}
	PQsetNoticeProcessor(c, ignore_notice, NULL);
	tmp.conn = c;
	if (PQstatus(c) != CONNECTION_OK) {
		set_pg_msg(err, &tmp, "cannot connect", PQerrorMessage(c));
		if (how.verify_full)
			vz_err_hint(
				err,
				"the database is on another host, so vzp11 connects with "
				"sslmode=verify-full (TLS, and the server's certificate checked "
				"against its name): give the CA with sslrootcert=, or another "
				"sslmode in the URI");
		else
			vz_err_hint(err, "check that the server runs and the URI's host, port, "
					 "user and database are right");
		goto out;
	}
	rv = create_schema(&tmp, how.schema, how.named, err);
	if (rv != VZ_OK)
		goto out;
	*j = tmp;
	c = NULL;
out:
	PQfinish(c);
	return rv;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool pg_claims(const char *spec)
{
	return spec && (starts_with(spec, "postgresql://") || starts_with(spec, "postgres://"));
}

const vz_journal_backend vz_journal_pg = {
	.claims = pg_claims,
	.open = pg_open,
	.ops = &pg_ops,
};
