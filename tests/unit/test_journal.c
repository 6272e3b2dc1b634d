/* Unit tests: the billing journal. Every case that touches a journal runs
 * on a fresh SQLite file, and again on PostgreSQL when VZP11_TEST_PG holds
 * a postgresql:// URI (each case in a fresh schema there); without it the
 * PostgreSQL cases are skipped. */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "journal/journal.h"
#include "journal-int.h"

#define PG_SCHEMA "vzp11_test"

typedef struct fx {
	bool pg;
	char dir[64];	   /* SQLite: the temp directory */
	char spec[4096];   /* what vz_journal_open got */
	char pg_uri[4096]; /* PostgreSQL: VZP11_TEST_PG as given */
	vz_journal *j;
} fx;

static const char SHA_A[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char SHA_B[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static const char *tid(int n)
{
	static char ids[8][VZ_UUID_LEN + 1];

	snprintf(ids[n], sizeof(ids[n]), "00000000-0000-4000-8000-%012d", n);
	return ids[n];
}

static void make_decl(vz_decl *d, int n, const char *sha)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->traceer_id, sizeof(d->traceer_id), "%s", tid(n));
	snprintf(d->conversatie_id, sizeof(d->conversatie_id), "11111111-2222-4333-8444-%012d", n);
	snprintf(d->sha256, sizeof(d->sha256), "%s", sha);
	d->size = 1000 + n;
	snprintf(d->file, sizeof(d->file), "declaratie-%d.asc", n);
	snprintf(d->flow, sizeof(d->flow), "AW319:1.0:declareren");
	d->state = VZ_DECL_ACCEPTED; /* begin must record SENDING whatever this says */
}

static void make_retour(vz_retour *r, int n, const char *file)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->traceer_id, sizeof(r->traceer_id), "%s", tid(n));
	snprintf(r->file, sizeof(r->file), "%s", file);
	r->size = 2000 + n;
	snprintf(r->sha256, sizeof(r->sha256), "%s", SHA_B);
}

/* YYYY-MM-DDTHH:MM:SSZ, and close to now. */
static void assert_time(const char *t)
{
	char now[VZ_TIME_LEN + 1];
	size_t i;

	assert_int_equal(strlen(t), VZ_TIME_LEN);
	for (i = 0; i < VZ_TIME_LEN; i++) {
		if (i == 4 || i == 7)
			assert_int_equal(t[i], '-');
		else if (i == 10)
			assert_int_equal(t[i], 'T');
		else if (i == 13 || i == 16)
			assert_int_equal(t[i], ':');
		else if (i == 19)
			assert_int_equal(t[i], 'Z');
		else
			assert_true(t[i] >= '0' && t[i] <= '9');
	}
	vz_journal_now(now);
	assert_int_equal(strncmp(t, now, 13), 0); /* same hour, give or take a boundary */
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	remove(path);
	return 0;
}

static int setup_sqlite(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	vz_err err = {0};

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vzp11-journal-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->spec, sizeof(f->spec), "%s/journal.db", f->dir);
	if (vz_journal_open(f->spec, &f->j, &err) != VZ_OK)
		fail_msg("open %s: %s (%s)", f->spec, err.msg, err.hint);
	*state = f;
	return 0;
}

/* Runs SQL on the test database directly (to reset or inspect it). */
static PGresult *pg_direct(const char *uri, const char *sql, const char *param)
{
	PGconn *c = PQconnectdb(uri);
	PGresult *res;

	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", uri, PQerrorMessage(c));
	res = PQexecParams(c, sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	PQfinish(c);
	return res;
}

static int setup_pg(void **state)
{
	const char *uri = getenv("VZP11_TEST_PG");
	fx *f = calloc(1, sizeof(*f));
	PGconn *c;
	vz_err err = {0};

	assert_non_null(f);
	f->pg = true;
	*state = f;
	if (!uri || !*uri)
		return 0; /* the case skips itself */
	snprintf(f->pg_uri, sizeof(f->pg_uri), "%s", uri);
	c = PQconnectdb(uri);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect %s: %s", uri, PQerrorMessage(c));
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	PQclear(PQexec(c, "DROP SCHEMA IF EXISTS " PG_SCHEMA " CASCADE"));
	PQclear(PQexec(c, "CREATE SCHEMA " PG_SCHEMA));
	PQfinish(c);
	snprintf(f->spec, sizeof(f->spec), "%s%coptions=-csearch_path%%3D" PG_SCHEMA, uri,
		 strchr(uri, '?') ? '&' : '?');
	if (vz_journal_open(f->spec, &f->j, &err) != VZ_OK)
		fail_msg("open %s: %s (%s)", f->spec, err.msg, err.hint);
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	vz_journal_close(f->j);
	if (!f->pg && f->dir[0])
		nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static fx *get_fx(void **state)
{
	fx *f = *state;

	if (!f->j)
		skip(); /* PostgreSQL without VZP11_TEST_PG */
	return f;
}

static void begin_records_sending(void **state)
{
	fx *f = get_fx(state);
	vz_decl d, got = {0}, earlier;
	vz_err err = {0};

	make_decl(&d, 1, SHA_A);
	memset(&earlier, 0x5a, sizeof(earlier));
	assert_int_equal(vz_journal_decl_begin(f->j, &d, &earlier, &err), VZ_OK);
	assert_int_equal((unsigned char)earlier.traceer_id[0], 0x5a); /* untouched on OK */
	assert_int_equal(vz_journal_decl_get(f->j, d.traceer_id, &got, &err), VZ_OK);
	assert_string_equal(got.traceer_id, d.traceer_id);
	assert_string_equal(got.conversatie_id, d.conversatie_id);
	assert_string_equal(got.sha256, SHA_A);
	assert_int_equal(got.size, 1001);
	assert_string_equal(got.file, "declaratie-1.asc");
	assert_string_equal(got.flow, "AW319:1.0:declareren");
	assert_int_equal(got.state, VZ_DECL_SENDING);
	assert_false(got.forced);
	assert_null(got.meldingen);
	assert_time(got.created_at);
	assert_string_equal(got.updated_at, got.created_at);
	vz_decl_clear(&got);
	assert_int_equal(got.traceer_id[0], 0);
}

static void begin_duplicate_names_earlier(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, b, earlier = {0}, got = {0};
	vz_err err = {0};

	make_decl(&a, 1, SHA_A);
	make_decl(&b, 2, SHA_A);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, &earlier, &err), VZ_DUPLICATE);
	assert_string_equal(earlier.traceer_id, a.traceer_id);
	assert_string_equal(earlier.file, a.file);
	assert_int_equal(earlier.state, VZ_DECL_SENDING);
	vz_decl_clear(&earlier);
	/* nothing was written for b */
	assert_int_equal(vz_journal_decl_get(f->j, b.traceer_id, &got, &err), VZ_NOT_FOUND);

	/* accepted still blocks; NULL earlier is allowed */
	a.state = VZ_DECL_ACCEPTED;
	a.http_status = 204;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, NULL, &err), VZ_DUPLICATE);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, &earlier, &err), VZ_DUPLICATE);
	assert_string_equal(earlier.traceer_id, a.traceer_id);
	assert_int_equal(earlier.state, VZ_DECL_ACCEPTED);
	vz_decl_clear(&earlier);

	/* refused frees the content for a new declaration */
	a.state = VZ_DECL_REFUSED;
	a.http_status = 422;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, &earlier, &err), VZ_OK);

	/* other content is not a duplicate */
	make_decl(&a, 3, SHA_B);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, &earlier, &err), VZ_OK);
}

static void forced_is_exempt(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, b, c, earlier = {0}, got = {0};
	vz_err err = {0};

	make_decl(&a, 1, SHA_A);
	make_decl(&b, 2, SHA_A);
	make_decl(&c, 3, SHA_A);
	b.forced = true;
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, &earlier, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_get(f->j, b.traceer_id, &got, &err), VZ_OK);
	assert_true(got.forced);
	vz_decl_clear(&got);
	/* a forced copy never counts as the earlier one */
	assert_int_equal(vz_journal_decl_begin(f->j, &c, &earlier, &err), VZ_DUPLICATE);
	assert_string_equal(earlier.traceer_id, a.traceer_id);
	vz_decl_clear(&earlier);
	a.state = VZ_DECL_REFUSED;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &c, &earlier, &err), VZ_OK);
}

/* Content VECOZO refused (422) stays live: not declared again without
 * --force. Other refusals (400, 401, 403, not sent) free it. */
static void refused_content_stays_live(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, b, c, earlier = {0}, got = {0};
	vz_err err = {0};

	make_decl(&a, 1, SHA_A);
	make_decl(&b, 2, SHA_A);
	make_decl(&c, 3, SHA_A);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	a.state = VZ_DECL_REFUSED;
	a.refusal = VZ_REFUSAL_CONTENT;
	a.http_status = 422;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_get(f->j, a.traceer_id, &got, &err), VZ_OK);
	assert_int_equal(got.refusal, VZ_REFUSAL_CONTENT);
	vz_decl_clear(&got);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, &earlier, &err), VZ_DUPLICATE);
	assert_string_equal(earlier.traceer_id, a.traceer_id);
	assert_int_equal(earlier.state, VZ_DECL_REFUSED);
	assert_int_equal(earlier.refusal, VZ_REFUSAL_CONTENT);
	vz_decl_clear(&earlier);
	b.forced = true; /* --force */
	assert_int_equal(vz_journal_decl_begin(f->j, &b, NULL, &err), VZ_OK);
	/* the other kinds free the content */
	for (int k = VZ_REFUSAL_REQUEST; k <= VZ_REFUSAL_NOT_SENT; k++) {
		make_decl(&a, 4, SHA_B);
		snprintf(a.traceer_id, sizeof(a.traceer_id),
			 "00000000-0000-4000-8000-1000000000%02d", k);
		assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
		a.state = VZ_DECL_REFUSED;
		a.refusal = (vz_decl_refusal)k;
		assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
		assert_int_equal(vz_journal_decl_get(f->j, a.traceer_id, &got, &err), VZ_OK);
		assert_int_equal(got.refusal, k);
		vz_decl_clear(&got);
	}
	make_decl(&c, 5, SHA_B);
	assert_int_equal(vz_journal_decl_begin(f->j, &c, NULL, &err), VZ_OK);
	/* a refusal goes only with REFUSED */
	c.state = VZ_DECL_ACCEPTED;
	c.refusal = VZ_REFUSAL_RIGHT;
	assert_int_equal(vz_journal_decl_update(f->j, &c, &err), VZ_FAIL);
	c.state = VZ_DECL_REFUSED;
	c.refusal = (vz_decl_refusal)9;
	assert_int_equal(vz_journal_decl_update(f->j, &c, &err), VZ_FAIL);
}

static void begin_same_traceer_id_fails(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, b, earlier = {0};
	vz_err err = {0};

	make_decl(&a, 1, SHA_A);
	make_decl(&b, 1, SHA_B);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, &earlier, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "already recorded"));
	assert_int_equal(earlier.traceer_id[0], 0);
}

static void bad_input_refused(void **state)
{
	fx *f = get_fx(state);
	vz_decl a;
	vz_retour r;
	vz_err err = {0};

	make_decl(&a, 1, "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "sha256"));
	make_decl(&a, 1, "abc");
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_FAIL);
	make_decl(&a, 1, SHA_A);
	a.traceer_id[0] = '\0';
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_FAIL);
	make_decl(&a, 1, SHA_A);
	a.state = (vz_decl_state)7;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_FAIL);
	make_retour(&r, 1, "");
	assert_int_equal(vz_journal_retour_stored(f->j, &r, NULL, &err), VZ_FAIL);
}

static void update_and_get(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, got = {0};
	vz_err err = {0};
	char melding[] = "[{\"code\":\"0001\",\"omschrijving\":\"it's \\\"fine\\\"\"}]";

	make_decl(&a, 1, SHA_A);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	a.state = VZ_DECL_ACCEPTED;
	a.http_status = 204;
	snprintf(a.status, sizeof(a.status), "Ontvangen");
	a.final = true;
	a.meldingen = melding;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_get(f->j, a.traceer_id, &got, &err), VZ_OK);
	assert_int_equal(got.state, VZ_DECL_ACCEPTED);
	assert_int_equal(got.http_status, 204);
	assert_string_equal(got.status, "Ontvangen");
	assert_true(got.final);
	assert_non_null(got.meldingen);
	assert_string_equal(got.meldingen, melding);
	assert_time(got.updated_at);
	assert_string_equal(got.file, a.file); /* not touched by update */
	vz_decl_clear(&got);

	a.meldingen = NULL;
	a.final = false;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_get(f->j, a.traceer_id, &got, &err), VZ_OK);
	assert_null(got.meldingen);
	assert_false(got.final);
	vz_decl_clear(&got);

	make_decl(&a, 5, SHA_B);
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_NOT_FOUND);
	assert_non_null(strstr(err.msg, a.traceer_id));
}

static void update_into_live_duplicate_fails(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, b, got = {0};
	vz_err err = {0};

	make_decl(&a, 1, SHA_A);
	make_decl(&b, 2, SHA_A);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	a.state = VZ_DECL_REFUSED;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, NULL, &err), VZ_OK);
	/* a cannot come back to life while b is live */
	a.state = VZ_DECL_ACCEPTED;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "already sending or accepted"));
	assert_int_equal(vz_journal_decl_get(f->j, a.traceer_id, &got, &err), VZ_OK);
	assert_int_equal(got.state, VZ_DECL_REFUSED);
	vz_decl_clear(&got);
}

static void get_missing(void **state)
{
	fx *f = get_fx(state);
	vz_decl got;
	vz_retour r;
	vz_err err = {0};

	memset(&got, 0x5a, sizeof(got));
	memset(&r, 0x5a, sizeof(r));
	assert_int_equal(vz_journal_decl_get(f->j, tid(7), &got, &err), VZ_NOT_FOUND);
	assert_int_equal((unsigned char)got.traceer_id[0], 0x5a);
	assert_int_equal(vz_journal_retour_get(f->j, tid(7), &r, &err), VZ_NOT_FOUND);
	assert_int_equal((unsigned char)r.traceer_id[0], 0x5a);
}

typedef struct walk {
	vz_journal *j;
	char seen[8][VZ_UUID_LEN + 1];
	size_t n;
	size_t stop_after; /* 0: never */
	bool refuse_each;  /* write to the journal from inside the walk */
} walk;

static vz_rv walk_decl(void *ctx, const vz_decl *d, vz_err *err)
{
	walk *w = ctx;
	vz_decl upd;

	assert_true(w->n < 8);
	snprintf(w->seen[w->n++], VZ_UUID_LEN + 1, "%s", d->traceer_id);
	if (w->refuse_each) {
		upd = *d;
		upd.state = VZ_DECL_REFUSED;
		upd.meldingen = NULL;
		if (vz_journal_decl_update(w->j, &upd, err) != VZ_OK)
			return VZ_FAIL;
	}
	if (w->stop_after && w->n == w->stop_after) {
		vz_err_set(err, "stopped");
		return VZ_USAGE;
	}
	return VZ_OK;
}

static void each_oldest_first(void **state)
{
	fx *f = get_fx(state);
	static const char *shas[4] = {
		"1111111111111111111111111111111111111111111111111111111111111111",
		"2222222222222222222222222222222222222222222222222222222222222222",
		"3333333333333333333333333333333333333333333333333333333333333333",
		"4444444444444444444444444444444444444444444444444444444444444444",
	};
	vz_decl d;
	walk w = {.j = f->j};
	vz_err err = {0};
	int i;

	/* inserted in the order 4, 2, 3, 1: the walk must follow insertion */
	for (i = 0; i < 4; i++) {
		int n = (int[]){4, 2, 3, 1}[i];

		make_decl(&d, n, shas[n - 1]);
		assert_int_equal(vz_journal_decl_begin(f->j, &d, NULL, &err), VZ_OK);
	}
	/* 4 stays sending; 2 accepted and final; 3 accepted, not final; 1 refused */
	make_decl(&d, 2, shas[1]);
	d.state = VZ_DECL_ACCEPTED;
	d.final = true;
	assert_int_equal(vz_journal_decl_update(f->j, &d, &err), VZ_OK);
	make_decl(&d, 3, shas[2]);
	d.state = VZ_DECL_ACCEPTED;
	assert_int_equal(vz_journal_decl_update(f->j, &d, &err), VZ_OK);
	make_decl(&d, 1, shas[0]);
	d.state = VZ_DECL_REFUSED;
	assert_int_equal(vz_journal_decl_update(f->j, &d, &err), VZ_OK);

	assert_int_equal(vz_journal_decl_each(f->j, false, walk_decl, &w, &err), VZ_OK);
	assert_int_equal(w.n, 4);
	assert_string_equal(w.seen[0], tid(4));
	assert_string_equal(w.seen[1], tid(2));
	assert_string_equal(w.seen[2], tid(3));
	assert_string_equal(w.seen[3], tid(1));

	memset(&w, 0, sizeof(w));
	w.j = f->j;
	assert_int_equal(vz_journal_decl_each(f->j, true, walk_decl, &w, &err), VZ_OK);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.seen[0], tid(4));
	assert_string_equal(w.seen[1], tid(3));

	/* fn's result stops the walk and comes back */
	memset(&w, 0, sizeof(w));
	w.stop_after = 1;
	assert_int_equal(vz_journal_decl_each(f->j, false, walk_decl, &w, &err), VZ_USAGE);
	assert_int_equal(w.n, 1);
	assert_string_equal(err.msg, "stopped");

	/* fn may write to the journal during the walk */
	memset(&w, 0, sizeof(w));
	w.j = f->j;
	w.refuse_each = true;
	assert_int_equal(vz_journal_decl_each(f->j, true, walk_decl, &w, &err), VZ_OK);
	assert_int_equal(w.n, 2);
	memset(&w, 0, sizeof(w));
	assert_int_equal(vz_journal_decl_each(f->j, true, walk_decl, &w, &err), VZ_OK);
	assert_int_equal(w.n, 0);
}

/* Runs one UPDATE with one text parameter ($1) on the test journal,
 * behind the journal's back. */
static void set_column(const fx *f, const char *sql, const char *value)
{
	if (f->pg) {
		PQclear(pg_direct(f->spec, sql, value));
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;

		assert_int_equal(sqlite3_open_v2(f->spec, &db, SQLITE_OPEN_READWRITE, NULL),
				 SQLITE_OK);
		sqlite3_busy_timeout(db, 10000);
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
		sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

/* A run still sending refreshes updated_at; only while it is SENDING. */
static void touch_while_sending(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, b, got = {0};
	vz_err err = {0};

	make_decl(&a, 1, SHA_A);
	make_decl(&b, 2, SHA_B);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_begin(f->j, &b, NULL, &err), VZ_OK);
	b.state = VZ_DECL_ACCEPTED;
	assert_int_equal(vz_journal_decl_update(f->j, &b, &err), VZ_OK);
	set_column(f, "UPDATE declarations SET updated_at = $1", "2020-01-01T00:00:00Z");
	assert_int_equal(vz_journal_decl_touch(f->j, a.traceer_id, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_touch(f->j, b.traceer_id, &err), VZ_OK);
	assert_int_equal(vz_journal_decl_get(f->j, a.traceer_id, &got, &err), VZ_OK);
	assert_time(got.updated_at);
	assert_int_equal(got.state, VZ_DECL_SENDING);
	vz_decl_clear(&got);
	assert_int_equal(vz_journal_decl_get(f->j, b.traceer_id, &got, &err), VZ_OK);
	assert_string_equal(got.updated_at, "2020-01-01T00:00:00Z");
	vz_decl_clear(&got);
	assert_int_equal(vz_journal_decl_touch(f->j, "", &err), VZ_FAIL);
}

static void retour_stored_confirmed(void **state)
{
	fx *f = get_fx(state);
	vz_retour r, again, earlier, got;
	char first_confirmed[VZ_TIME_LEN + 1];
	vz_err err = {0};

	make_retour(&r, 1, "/srv/retour/ret-1.asc");
	memset(&earlier, 0x5a, sizeof(earlier));
	assert_int_equal(vz_journal_retour_stored(f->j, &r, &earlier, &err), VZ_OK);
	assert_int_equal((unsigned char)earlier.traceer_id[0], 0x5a);
	assert_int_equal(vz_journal_retour_get(f->j, r.traceer_id, &got, &err), VZ_OK);
	assert_string_equal(got.traceer_id, r.traceer_id);
	assert_string_equal(got.file, "/srv/retour/ret-1.asc");
	assert_int_equal(got.size, 2001);
	assert_string_equal(got.sha256, SHA_B);
	assert_int_equal(got.state, VZ_RETOUR_STORED);
	assert_time(got.stored_at);
	assert_string_equal(got.confirmed_at, "");

	/* the same traceer id again: refused, the first row given back */
	make_retour(&again, 1, "/srv/retour/other.asc");
	assert_int_equal(vz_journal_retour_stored(f->j, &again, &earlier, &err), VZ_DUPLICATE);
	assert_string_equal(earlier.file, "/srv/retour/ret-1.asc");
	assert_int_equal(earlier.state, VZ_RETOUR_STORED);
	assert_int_equal(vz_journal_retour_stored(f->j, &again, NULL, &err), VZ_DUPLICATE);
	assert_int_equal(vz_journal_retour_get(f->j, r.traceer_id, &got, &err), VZ_OK);
	assert_string_equal(got.file, "/srv/retour/ret-1.asc");

	assert_int_equal(vz_journal_retour_confirmed(f->j, r.traceer_id, &err), VZ_OK);
	assert_int_equal(vz_journal_retour_get(f->j, r.traceer_id, &got, &err), VZ_OK);
	assert_int_equal(got.state, VZ_RETOUR_CONFIRMED);
	assert_time(got.confirmed_at);
	/* confirming twice is harmless and keeps the first time (moved into
	 * the past here, so a second stamp would show within the same second) */
	snprintf(first_confirmed, sizeof(first_confirmed), "2001-02-03T04:05:06Z");
	set_column(f, "UPDATE retours SET confirmed_at = $1", first_confirmed);
	assert_int_equal(vz_journal_retour_confirmed(f->j, r.traceer_id, &err), VZ_OK);
	assert_int_equal(vz_journal_retour_get(f->j, r.traceer_id, &got, &err), VZ_OK);
	assert_string_equal(got.confirmed_at, first_confirmed);

	assert_int_equal(vz_journal_retour_confirmed(f->j, tid(6), &err), VZ_NOT_FOUND);
	assert_non_null(strstr(err.msg, tid(6)));
}

/* Forgetting takes a stored, unconfirmed row away, and nothing else. */
static void retour_forget_stored_only(void **state)
{
	fx *f = get_fx(state);
	vz_retour r, got;
	vz_err err = {0};

	make_retour(&r, 1, "/r/1");
	assert_int_equal(vz_journal_retour_stored(f->j, &r, NULL, &err), VZ_OK);
	make_retour(&r, 2, "/r/2");
	assert_int_equal(vz_journal_retour_stored(f->j, &r, NULL, &err), VZ_OK);
	assert_int_equal(vz_journal_retour_confirmed(f->j, tid(2), &err), VZ_OK);

	assert_int_equal(vz_journal_retour_forget(f->j, tid(1), &err), VZ_OK);
	assert_int_equal(vz_journal_retour_get(f->j, tid(1), &got, &err), VZ_NOT_FOUND);
	/* a confirmed one stays, and so does its state */
	assert_int_equal(vz_journal_retour_forget(f->j, tid(2), &err), VZ_NOT_FOUND);
	assert_non_null(strstr(err.msg, tid(2)));
	assert_int_equal(vz_journal_retour_get(f->j, tid(2), &got, &err), VZ_OK);
	assert_int_equal(got.state, VZ_RETOUR_CONFIRMED);
	assert_int_equal(vz_journal_retour_forget(f->j, tid(1), &err), VZ_NOT_FOUND);
	assert_int_equal(vz_journal_retour_forget(f->j, tid(6), &err), VZ_NOT_FOUND);
	assert_int_equal(vz_journal_retour_forget(f->j, "", &err), VZ_FAIL);
	/* stored again after it was forgotten: a new row */
	make_retour(&r, 1, "/r/1");
	assert_int_equal(vz_journal_retour_stored(f->j, &r, NULL, &err), VZ_OK);
}

typedef struct rwalk {
	char seen[8][VZ_UUID_LEN + 1];
	int state[8];
	size_t n;
	size_t stop_after;
} rwalk;

static vz_rv walk_retour(void *ctx, const vz_retour *r, vz_err *err)
{
	rwalk *w = ctx;

	assert_true(w->n < 8);
	w->state[w->n] = (int)r->state;
	snprintf(w->seen[w->n++], VZ_UUID_LEN + 1, "%s", r->traceer_id);
	return w->stop_after && w->n == w->stop_after ? VZ_FAIL : VZ_OK;
}

static void retour_each_oldest_first(void **state)
{
	fx *f = get_fx(state);
	vz_retour r;
	rwalk w = {0};
	vz_err err = {0};

	make_retour(&r, 3, "/r/3");
	assert_int_equal(vz_journal_retour_stored(f->j, &r, NULL, &err), VZ_OK);
	make_retour(&r, 1, "/r/1");
	assert_int_equal(vz_journal_retour_stored(f->j, &r, NULL, &err), VZ_OK);
	make_retour(&r, 2, "/r/2");
	assert_int_equal(vz_journal_retour_stored(f->j, &r, NULL, &err), VZ_OK);
	assert_int_equal(vz_journal_retour_confirmed(f->j, tid(1), &err), VZ_OK);
	assert_int_equal(vz_journal_retour_each(f->j, walk_retour, &w, &err), VZ_OK);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.seen[0], tid(3));
	assert_string_equal(w.seen[1], tid(1));
	assert_string_equal(w.seen[2], tid(2));
	assert_int_equal(w.state[0], VZ_RETOUR_STORED);
	assert_int_equal(w.state[1], VZ_RETOUR_CONFIRMED);
	memset(&w, 0, sizeof(w));
	w.stop_after = 2;
	assert_int_equal(vz_journal_retour_each(f->j, walk_retour, &w, &err), VZ_FAIL);
	assert_int_equal(w.n, 2);
}

/* The columns of a table, sorted, comma-separated ("seq" left out). */
static void columns(const fx *f, const char *table, char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	if (f->pg) {
		PGresult *res =
			pg_direct(f->pg_uri,
				  "SELECT column_name FROM information_schema.columns"
				  " WHERE table_schema = '" PG_SCHEMA "' AND table_name = $1"
				  " AND column_name <> 'seq' ORDER BY column_name",
				  table);
		int i;

		for (i = 0; i < PQntuples(res); i++)
			used += snprintf(out + used, cap - used, "%s%s", i ? "," : "",
					 PQgetvalue(res, i, 0));
		PQclear(res);
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		int i = 0;

		assert_int_equal(sqlite3_open_v2(f->spec, &db, SQLITE_OPEN_READONLY, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db,
						    "SELECT name FROM pragma_table_info(?1)"
						    " ORDER BY name",
						    -1, &st, NULL),
				 SQLITE_OK);
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW)
			used += snprintf(out + used, cap - used, "%s%s", i++ ? "," : "",
					 (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

static void tables(const fx *f, char *out, size_t cap)
{
	size_t used = 0;
	int i;

	out[0] = '\0';
	if (f->pg) {
		PGresult *res = pg_direct(f->pg_uri,
					  "SELECT table_name FROM information_schema.tables"
					  " WHERE table_schema = $1 ORDER BY table_name",
					  PG_SCHEMA);

		for (i = 0; i < PQntuples(res); i++)
			used += snprintf(out + used, cap - used, "%s%s", i ? "," : "",
					 PQgetvalue(res, i, 0));
		PQclear(res);
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;

		assert_int_equal(sqlite3_open_v2(f->spec, &db, SQLITE_OPEN_READONLY, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db,
						    "SELECT name FROM sqlite_schema WHERE type ="
						    " 'table' ORDER BY name",
						    -1, &st, NULL),
				 SQLITE_OK);
		for (i = 0; sqlite3_step(st) == SQLITE_ROW; i++)
			used += snprintf(out + used, cap - used, "%s%s", i ? "," : "",
					 (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
}

/* Exactly these columns: a new one (a BSN, a name, a birth date) must be a
 * deliberate change to this list, never a quiet addition. */
static void no_patient_data(void **state)
{
	fx *f = get_fx(state);
	char got[1024];

	tables(f, got, sizeof(got));
	assert_string_equal(got, "declarations,retours");
	columns(f, "declarations", got, sizeof(got));
	assert_string_equal(got,
			    "conversatie_id,created_at,file,final,flow,forced,http_status,"
			    "meldingen,refusal,sha256,size,state,status,traceer_id,updated_at");
	columns(f, "retours", got, sizeof(got));
	assert_string_equal(got, "confirmed_at,file,sha256,size,state,stored_at,traceer_id");
}

/* Runs SQL text with several statements on the test database. */
static void sql_script(const fx *f, const char *sql)
{
	if (f->pg) {
		PGconn *c = PQconnectdb(f->spec);
		PGresult *res;

		if (PQstatus(c) != CONNECTION_OK)
			fail_msg("connect: %s", PQerrorMessage(c));
		res = PQexec(c, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(res));
		PQclear(res);
		PQfinish(c);
	} else {
		sqlite3 *db = NULL;

		assert_int_equal(sqlite3_open_v2(f->spec, &db, SQLITE_OPEN_READWRITE, NULL),
				 SQLITE_OK);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			fail_msg("%s: %s", sql, sqlite3_errmsg(db));
		sqlite3_close(db);
	}
}

/* The declarations table and duplicate rule of journals from before
 * refusals were told apart, as vzp11 created them, with the same content
 * refused twice (that version sent 422 content again). */
static const char old_sqlite_schema[] =
	"DROP TABLE declarations;"
	"CREATE TABLE declarations (traceer_id TEXT NOT NULL PRIMARY KEY, conversatie_id TEXT NOT"
	" NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, file TEXT NOT NULL, flow TEXT NOT"
	" NULL, state TEXT NOT NULL CHECK (state IN ('sending', 'accepted', 'refused')), forced"
	" INTEGER NOT NULL CHECK (forced IN (0, 1)), http_status INTEGER NOT NULL, status TEXT"
	" NOT NULL, final INTEGER NOT NULL CHECK (final IN (0, 1)), meldingen TEXT, created_at"
	" TEXT NOT NULL, updated_at TEXT NOT NULL);"
	"CREATE UNIQUE INDEX declarations_live_sha256 ON declarations (sha256)"
	" WHERE state IN ('sending', 'accepted') AND forced = 0;";
static const char old_pg_schema[] =
	"DROP TABLE declarations;"
	"CREATE TABLE declarations (seq bigint GENERATED ALWAYS AS IDENTITY, traceer_id text"
	" PRIMARY KEY, conversatie_id text NOT NULL, sha256 text NOT NULL, size bigint NOT NULL,"
	" file text NOT NULL, flow text NOT NULL, state text NOT NULL CHECK (state IN ('sending',"
	" 'accepted', 'refused')), forced boolean NOT NULL, http_status integer NOT NULL, status"
	" text NOT NULL, final boolean NOT NULL, meldingen text, created_at text NOT NULL,"
	" updated_at text NOT NULL);"
	"CREATE UNIQUE INDEX declarations_live_sha256 ON declarations (sha256)"
	" WHERE state IN ('sending', 'accepted') AND forced = false;";
static const char old_rows[] =
	"INSERT INTO declarations (traceer_id, conversatie_id, sha256, size, file, flow, state,"
	" forced, http_status, status, final, meldingen, created_at, updated_at) VALUES"
	" ('00000000-0000-4000-8000-000000000011', 'c', '"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 'a.txt', '303:3.1', 'refused', %s, 422, '', %s,"
	" NULL, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'),"
	" ('00000000-0000-4000-8000-000000000012', 'c', '"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 'a.txt', '303:3.1', 'refused', %s, 422, '', %s,"
	" NULL, '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z');";

static void migrates_old_journal(void **state)
{
	fx *f = get_fx(state);
	vz_decl a, b, earlier = {0};
	vz_err err = {0};
	char rows[2048], got[1024];
	const char *no = f->pg ? "false" : "0";

	vz_journal_close(f->j);
	f->j = NULL;
	sql_script(f, f->pg ? old_pg_schema : old_sqlite_schema);
	snprintf(rows, sizeof(rows), old_rows, no, no, no, no);
	sql_script(f, rows);
	if (vz_journal_open(f->spec, &f->j, &err) != VZ_OK)
		fail_msg("open an old journal: %s (%s)", err.msg, err.hint);
	columns(f, "declarations", got, sizeof(got));
	assert_non_null(strstr(got, ",refusal,"));
	/* the old refusals (refusal NULL: not told apart) free the content */
	make_decl(&a, 1, SHA_A);
	make_decl(&b, 2, SHA_A);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	a.state = VZ_DECL_REFUSED;
	a.refusal = VZ_REFUSAL_CONTENT;
	assert_int_equal(vz_journal_decl_update(f->j, &a, &err), VZ_OK);
	/* and the new rule holds */
	assert_int_equal(vz_journal_decl_begin(f->j, &b, &earlier, &err), VZ_DUPLICATE);
	assert_string_equal(earlier.traceer_id, a.traceer_id);
	vz_decl_clear(&earlier);
}

static void where_hides_password(void **state)
{
	fx *f = get_fx(state);
	char spec[4200];
	vz_journal *j = NULL;
	vz_err err = {0};

	if (!f->pg) {
		assert_string_equal(vz_journal_where(f->j), f->spec);
		return;
	}
	assert_null(strstr(vz_journal_where(f->j), "password"));
	/* trust authentication ignores the password, so this connects */
	snprintf(spec, sizeof(spec), "%s&password=pg-secret-777", f->spec);
	if (vz_journal_open(spec, &j, &err) != VZ_OK)
		fail_msg("open: %s", err.msg);
	assert_null(strstr(vz_journal_where(j), "pg-secret-777"));
	assert_non_null(strstr(vz_journal_where(j), "search_path"));
	vz_journal_close(j);
}

/* Opening an existing journal again (a second process) keeps its rows. */
static void reopen_keeps_rows(void **state)
{
	fx *f = get_fx(state);
	vz_journal *j2 = NULL;
	vz_decl a, earlier = {0};
	vz_err err = {0};

	make_decl(&a, 1, SHA_A);
	assert_int_equal(vz_journal_decl_begin(f->j, &a, NULL, &err), VZ_OK);
	assert_int_equal(vz_journal_open(f->spec, &j2, &err), VZ_OK);
	make_decl(&a, 2, SHA_A);
	assert_int_equal(vz_journal_decl_begin(j2, &a, &earlier, &err), VZ_DUPLICATE);
	assert_string_equal(earlier.traceer_id, tid(1));
	vz_decl_clear(&earlier);
	vz_journal_close(j2);
}

static void sqlite_new_file_private(void **state)
{
	fx *f = get_fx(state);
	char path[256], wal[300];
	vz_journal *j = NULL;
	vz_decl a;
	struct stat sb;
	vz_err err = {0};
	mode_t old = umask(0); /* so only the journal's own modes count */

	snprintf(path, sizeof(path), "%s/state/vzp11/journal.db", f->dir);
	assert_int_equal(vz_journal_open(path, &j, &err), VZ_OK);
	umask(old);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	snprintf(wal, sizeof(wal), "%s/state/vzp11", f->dir);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	snprintf(wal, sizeof(wal), "%s/state", f->dir);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	make_decl(&a, 1, SHA_A);
	assert_int_equal(vz_journal_decl_begin(j, &a, NULL, &err), VZ_OK);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(stat(wal, &sb), 0); /* WAL mode is on */
	assert_int_equal(sb.st_mode & 077, 0);
	vz_journal_close(j);
}

static void sqlite_refuses_readable_file(void **state)
{
	fx *f = get_fx(state);
	static const mode_t modes[] = {0644, 0640, 0602};
	char path[256];
	vz_journal *j = NULL;
	vz_err err = {0};
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "%s/shared.db", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		memset(&err, 0, sizeof(err));
		assert_int_equal(vz_journal_open(path, &j, &err), VZ_FAIL);
		assert_null(j);
		assert_non_null(strstr(err.msg, path));
		assert_non_null(strstr(err.msg, "others may read or write"));
		assert_non_null(strstr(err.hint, "chmod 600"));
	}
	/* the advice works: the same (empty) file at 0600 is a fine new journal */
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(vz_journal_open(path, &j, &err), VZ_OK);
	vz_journal_close(j);
}

static void sqlite_refuses_non_journal(void **state)
{
	fx *f = get_fx(state);
	char path[256];
	vz_journal *j = NULL;
	vz_err err = {0};
	int fd;

	snprintf(path, sizeof(path), "%s/not-a-db", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "this is not SQLite, not at all, not even close....\n", 51), 51);
	close(fd);
	assert_int_equal(vz_journal_open(path, &j, &err), VZ_FAIL);
	assert_null(j);
	assert_non_null(strstr(err.msg, path));
	assert_true(err.hint[0] != '\0');
	assert_int_equal(vz_journal_open(f->dir, &j, &err), VZ_FAIL); /* a directory */
}

static void default_path(void **state)
{
	char path[4096];
	vz_err err = {0};
	char *old_xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;

	if (geteuid() == 0) {
		setenv("XDG_STATE_HOME", "/tmp/xdg-ignored-for-root", 1);
		assert_int_equal(vz_journal_default_path(path, sizeof(path), &err), VZ_OK);
		assert_string_equal(path, "/var/lib/vzp11/journal.db");
	} else {
		setenv("XDG_STATE_HOME", "/tmp/xdg-state", 1);
		assert_int_equal(vz_journal_default_path(path, sizeof(path), &err), VZ_OK);
		assert_string_equal(path, "/tmp/xdg-state/vzp11/journal.db");
		setenv("XDG_STATE_HOME", "relative/ignored", 1);
		setenv("HOME", "/home/test-user", 1);
		assert_int_equal(vz_journal_default_path(path, sizeof(path), &err), VZ_OK);
		assert_string_equal(path, "/home/test-user/.local/state/vzp11/journal.db");
	}
	if (old_xdg)
		setenv("XDG_STATE_HOME", old_xdg, 1);
	else
		unsetenv("XDG_STATE_HOME");
	free(old_xdg);
}

static void redact_uri(void **state)
{
	static const char *const cases[][2] = {
		{"postgresql://billing:s3cret@db.example:5432/vzp11",
		 "postgresql://billing@db.example:5432/vzp11"},
		{"postgres://billing:p%40ss@db/vzp11?sslmode=require",
		 "postgres://billing@db/vzp11?sslmode=require"},
		{"postgresql:///vzp11?host=/run/pg&password=s3cret&user=vzp11",
		 "postgresql:///vzp11?host=/run/pg&user=vzp11"},
		{"postgresql:///vzp11?password=s3cret", "postgresql:///vzp11"},
		{"postgresql://u:a:b@c@h/db?password=x&passwordy=1",
		 "postgresql://u@h/db?passwordy=1"},
		{"postgresql://h/db", "postgresql://h/db"},
		{"postgresql://user@h/db", "postgresql://user@h/db"},
	};
	char out[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vz_journal_redact_uri(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
	}
	vz_journal_redact_uri(cases[0][0], out, 12); /* truncates, stays terminated */
	assert_string_equal(out, "postgresql:");
}

/* Needs no server: the connection fails, the message must not carry the
 * password. */
static void pg_connect_failure(void **state)
{
	vz_journal *j = NULL;
	vz_err err = {0};

	assert_int_equal(vz_journal_open("postgresql://vz:hunter2@/nodb?host=/nonexistent-vzp11"
					 "&port=1&password=hunter3",
					 &j, &err),
			 VZ_FAIL);
	assert_null(j);
	assert_non_null(strstr(err.msg, "cannot connect"));
	assert_non_null(strstr(err.msg, "postgresql://vz@/nodb"));
	assert_null(strstr(err.msg, "hunter"));
	assert_null(strstr(err.hint, "hunter"));
	assert_true(err.hint[0] != '\0');
}

#define BOTH(fn)                                                                                   \
	{"sqlite/" #fn, fn, setup_sqlite, teardown, NULL},                                         \
	{                                                                                          \
		"postgresql/" #fn, fn, setup_pg, teardown, NULL                                    \
	}
#define SQLITE(fn)                                                                                 \
	{                                                                                          \
		"sqlite/" #fn, fn, setup_sqlite, teardown, NULL                                    \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(begin_records_sending),
		BOTH(begin_duplicate_names_earlier),
		BOTH(forced_is_exempt),
		BOTH(refused_content_stays_live),
		BOTH(begin_same_traceer_id_fails),
		BOTH(bad_input_refused),
		BOTH(update_and_get),
		BOTH(update_into_live_duplicate_fails),
		BOTH(get_missing),
		BOTH(touch_while_sending),
		BOTH(each_oldest_first),
		BOTH(retour_stored_confirmed),
		BOTH(retour_each_oldest_first),
		BOTH(retour_forget_stored_only),
		BOTH(no_patient_data),
		BOTH(where_hides_password),
		BOTH(reopen_keeps_rows),
		BOTH(migrates_old_journal),
		SQLITE(sqlite_new_file_private),
		SQLITE(sqlite_refuses_readable_file),
		SQLITE(sqlite_refuses_non_journal),
		cmocka_unit_test(default_path),
		cmocka_unit_test(redact_uri),
		cmocka_unit_test(pg_connect_failure),
	};

	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
