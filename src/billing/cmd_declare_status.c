/* cmd_declare_status.c - `vzp11 declare-status`: what VECOZO says about a
 * declaration (or every open one in the journal), recorded in the
 * journal; --watch until it is final. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "billing/billing.h"
#include "cli/cli.h"

/* One declaration being followed. */
struct item {
	char tid[VZ_UUID_LEN + 1];
	vz_br_status st;
	bool known, final;
};

struct status_run {
	struct item *items;
	size_t n, cap;
};

static vz_rv add_item(struct status_run *s, const char *tid)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 8;
		struct item *g = realloc(s->items, ncap * sizeof(*g));

		if (!g)
			return VZ_FAIL;
		s->items = g;
		s->cap = ncap;
	}
	memset(&s->items[s->n], 0, sizeof(s->items[0]));
	snprintf(s->items[s->n].tid, sizeof(s->items[0].tid), "%s", tid);
	s->n++;
	return VZ_OK;
}

static vz_rv collect_open(void *ctx, const vz_decl *d, vz_err *err)
{
	if (add_item(ctx, d->traceer_id) != VZ_OK) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* Asks once about it, and records a known status in the journal. */
static vz_rv ask(vz_rest *rest, vz_journal *j, struct item *it, vz_err *err)
{
	char path[256];
	vz_rest_answer a = {0};
	vz_br_status st = {0};
	vz_decl d = {0};
	vz_rv r;

	snprintf(path, sizeof(path), VZ_BR_PATH_STATUS "?traceerId=%s", it->tid);
	r = vz_rest_get(rest, path, &a, err);
	if (r == VZ_OK && a.http != 200 && a.http != 404) {
		vz_bill_http_error(&a, "the status service", err);
		r = VZ_FAIL;
	}
	if (r == VZ_OK)
		r = a.http == 404
			    ? VZ_NOT_FOUND
			    : vz_br_status_parse(a.body ? a.body : "", a.len, it->tid, &st, err);
	vz_rest_answer_clear(&a);
	if (r == VZ_NOT_FOUND)
		return VZ_OK;
	if (r != VZ_OK)
		return r;
	vz_br_status_clear(&it->st);
	it->st = st;
	it->known = true;
	it->final = vz_br_status_final(st.status);
	r = vz_journal_decl_get(j, it->tid, &d, err);
	if (r == VZ_NOT_FOUND)
		return VZ_OK; /* sent by other software: nothing to record */
	if (r == VZ_OK) {
		free(d.meldingen);
		d.meldingen = vz_br_meldingen_json(&st);
		d.state = VZ_DECL_ACCEPTED;
		snprintf(d.status, sizeof(d.status), "%s", st.status);
		d.final = it->final;
		r = vz_journal_decl_update(j, &d, err);
	}
	vz_decl_clear(&d);
	return r;
}

static void print_items(const vz_global *g, const struct status_run *s)
{
	json_t *arr = g->json ? json_array() : NULL;

	for (size_t i = 0; i < s->n; i++) {
		const struct item *it = &s->items[i];
		const vz_br_status *st = &it->st;

		if (arr) {
			json_t *ms = json_array();

			for (size_t k = 0; k < st->n_meldingen; k++)
				json_array_append_new(
					ms, json_pack("{s:s?, s:s?, s:s?}", "code",
						      st->meldingen[k].code, "omschrijving",
						      st->meldingen[k].omschrijving, "toelichting",
						      st->meldingen[k].toelichting));
			json_array_append_new(arr,
					      json_pack("{s:s, s:s?, s:s?, s:o}", "traceer_id",
							it->tid, "status", st->status, "changed_at",
							st->changed_at, "meldingen", ms));
			continue;
		}
		if (!it->known) {
			printf(_("%s  not known to VECOZO (yet)\n"), it->tid);
			continue;
		}
		printf("%s  %s  %s\n", it->tid, st->status, st->changed_at ? st->changed_at : "");
		for (size_t k = 0; k < st->n_meldingen; k++)
			printf("  %s: %s%s%s\n",
			       st->meldingen[k].code ? st->meldingen[k].code : "?",
			       st->meldingen[k].omschrijving ? st->meldingen[k].omschrijving : "",
			       st->meldingen[k].toelichting ? " - " : "",
			       st->meldingen[k].toelichting ? st->meldingen[k].toelichting : "");
	}
	if (arr)
		vz_bill_put_json(stdout, arr);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

enum {
	O_OPEN = 1,
	O_WATCH
};

static const vz_opt status_table[] = {
	VZ_OPT("open", O_OPEN, NULL,
	       N_("every declaration the journal holds that is not final\n"
		  "(the default without TRACEER-ID)")),
	VZ_OPT("watch", O_WATCH, NULL,
	       N_("ask again, waiting longer each time (up to a minute),\n"
		  "until every status is final")),
	VZ_BILL_OPTS,
	{0},
};

static int cmd_declare_status(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_declare_status = {
	.name = "declare-status",
	.run = cmd_declare_status,
	.synopsis = "declare-status [TRACEER-ID | --open] [--watch]",
	.usage = N_("declare-status [TRACEER-ID | --open] [--watch]\n"
		    "                 [OPTIONS]"),
	.about = N_(
		"Ask VECOZO's status service about a declaration (its traceerId), or about every\n"
		"declaration in the journal whose status is not final yet, and record the answer.\n"),
	.opts = status_table,
	.notes = N_(
		"Statuses are VECOZO's own words (Ontvangen, WordtVerwerkt, VerwerkingVoltooid,\n"
		"AfgekeurdDoorDienst, ...). Exit: 0 every declaration asked about is known to\n"
		"VECOZO and none was refused, 1 otherwise, 2 usage error.\n"),
};

/* -1 after --help, 0 when the options are good, else the exit code. */
static int parse_args(vz_global *g, int argc, char **argv, vz_bill_opts *b, bool *open_all,
		      bool *watch, const char **tid)
{
	const char *arg;
	int id, r;

	while ((id = vz_opt_next(g, &vz_cmd_declare_status, argc, argv, &arg)) > 0) {
		r = vz_bill_opt(b, &vz_cmd_declare_status, id, arg);
		if (r > 0)
			return r;
		if (id == O_OPEN)
			*open_all = true;
		else if (id == O_WATCH)
			*watch = true;
	}
	if (id == VZ_OPT_HELP)
		return -1;
	if (id != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_declare_status, id, argv);
	if (optind + 1 < argc)
		return vz_usage("declare-status", "give one traceerId, or --open");
	*tid = optind < argc ? argv[optind] : NULL;
	if (*tid && *open_all)
		return vz_usage("declare-status", "give a traceerId or --open, not both");
	if (*tid && !vz_br_uuid_valid(*tid))
		return vz_usage("declare-status", "a traceerId is a UUID (8-4-4-4-12 hex digits)");
	return vz_bill_resolve(b, "declare-status");
}

static int cmd_declare_status(vz_global *g, int argc, char **argv)
{
	struct status_run s = {0};
	vz_bill_opts b;
	vz_journal *j = NULL;
	vz_rest *rest = NULL;
	vz_tls *tls = NULL;
	vz_err err = {0};
	const char *tid = NULL;
	bool open_all = false, watch = false, all_final;
	long wait_ms = 1000;
	int ret;

	vz_bill_defaults(&b);
	ret = parse_args(g, argc, argv, &b, &open_all, &watch, &tid);
	if (ret == -1)
		return VZ_EXIT_OK;
	if (ret != 0)
		return ret;
	ret = VZ_EXIT_FAIL;
	if (vz_journal_open(g->journal, &j, &err) != VZ_OK)
		goto out;
	if (tid ? add_item(&s, tid) != VZ_OK
		: vz_journal_decl_each(j, true, collect_open, &s, &err) != VZ_OK) {
		if (!err.msg[0])
			vz_err_set(&err, "out of memory");
		goto out;
	}
	if (s.n == 0) {
		vz_note(g, "the journal (%s) holds no declaration whose status is open",
			vz_journal_where(j));
		if (g->json)
			puts("[]");
		ret = VZ_EXIT_OK;
		goto out;
	}
	if (vz_bill_connect(g, &b, &tls, &rest, &err) != VZ_OK)
		goto out;
	for (;;) {
		all_final = true;
		for (size_t i = 0; i < s.n; i++) {
			if (s.items[i].final)
				continue;
			if (ask(rest, j, &s.items[i], &err) != VZ_OK)
				goto out;
			all_final &= s.items[i].final;
		}
		if (!watch || all_final)
			break;
		vz_note(g, "not final yet; asking again in %ld s", wait_ms / 1000);
		sleep_ms(wait_ms);
		wait_ms = wait_ms * 2 > 60000 ? 60000 : wait_ms * 2;
	}
	print_items(g, &s);
	ret = VZ_EXIT_OK;
	for (size_t i = 0; i < s.n; i++)
		if (!s.items[i].known || vz_br_status_failed(s.items[i].st.status))
			ret = VZ_EXIT_FAIL;
out:
	if (err.msg[0])
		vz_report(&err);
	for (size_t i = 0; i < s.n; i++)
		vz_br_status_clear(&s.items[i].st);
	free(s.items);
	vz_bill_disconnect(tls, rest);
	vz_journal_close(j);
	return ret;
}
