/* cmd_journal.c - `vzp11 journal`: what the journal holds. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "billing/billing.h"
#include "cli/cli.h"

static const char *const decl_states[] = {"sending", "accepted", "refused"};
/* Why a declaration was refused ([0]: not refused, or before vzp11 kept it). */
static const char *const refusals[] = {NULL,	      "content", "request",
				       "certificate", "right",	 "not-sent"};
static const char *const retour_states[] = {"stored", "confirmed"};

/* journal takes only the global options. */
static const vz_opt journal_table[] = {
	{0},
};

static int cmd_journal(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_journal = {
	.name = "journal",
	.run = cmd_journal,
	.usage = N_("journal"),
	.about = N_(
		"List the declarations and return files in the billing journal (--journal, env\n"
		"VZP11_JOURNAL) with their state. The journal holds no patient data.\n"
		"Declaration states: sending (the answer is not known yet), accepted, refused;\n"
		"a refused one says why: refused:content (422: VECOZO refused the content;\n"
		"declare does not send it again unless forced), refused:request (400 or another\n"
		"4xx: the request as sent), refused:certificate (401), refused:right (403: no\n"
		"Berichtenservice right), refused:not-sent (it never left this machine).\n"
		"Return files: stored, confirmed (VECOZO was told it arrived). A stored one\n"
		"whose confirmation VECOZO answered 404 and that it no longer lists was\n"
		"confirmed already; 'vzp11 retour --help' says how to close its entry.\n"),
	.opts = journal_table,
};

struct listing {
	const vz_global *g;
	json_t *decls, *retours;
	size_t unconfirmed; /* return files stored, not confirmed */
};

static vz_rv show_decl(void *ctx, const vz_decl *d, vz_err *err)
{
	struct listing *l = ctx;
	json_t *m = d->meldingen ? json_loads(d->meldingen, 0, NULL) : NULL;
	const char *why = refusals[d->refusal];
	char state[32];

	if (l->decls) {
		json_array_append_new(
			l->decls,
			json_pack(
				"{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s?, s:b, s:o, s:s?, s:b, s:o, "
				"s:s, s:s}",
				"traceer_id", d->traceer_id, "conversatie_id", d->conversatie_id,
				"file", d->file, "sha256", d->sha256, "size", (json_int_t)d->size,
				"flow", d->flow, "state", decl_states[d->state], "refusal", why,
				"forced", d->forced, "http_status",
				d->http_status ? json_integer(d->http_status) : json_null(),
				"status", d->status[0] ? d->status : NULL, "final", d->final,
				"meldingen", m ? m : json_null(), "created_at", d->created_at,
				"updated_at", d->updated_at));
		return VZ_OK;
	}
	json_decref(m);
	snprintf(state, sizeof(state), "%s%s%s", decl_states[d->state], why ? ":" : "",
		 why ? why : "");
	printf("%s  %-19s  %-20s  %s  %s  %s\n", d->created_at, state,
	       d->status[0] ? d->status : "-", d->traceer_id, d->file, d->forced ? "(forced)" : "");
	return VZ_OK;
}

static vz_rv show_retour(void *ctx, const vz_retour *r, vz_err *err)
{
	struct listing *l = ctx;

	l->unconfirmed += r->state == VZ_RETOUR_STORED;
	if (l->retours) {
		json_array_append_new(l->retours,
				      json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s?}",
						"traceer_id", r->traceer_id, "file", r->file,
						"size", (json_int_t)r->size, "sha256", r->sha256,
						"state", retour_states[r->state], "stored_at",
						r->stored_at, "confirmed_at",
						r->confirmed_at[0] ? r->confirmed_at : NULL));
		return VZ_OK;
	}
	printf(_("%s  %-9s  %s  %lld bytes  %s\n"), r->stored_at, retour_states[r->state],
	       r->traceer_id, r->size, r->file);
	return VZ_OK;
}

static int cmd_journal(vz_global *g, int argc, char **argv)
{
	struct listing l = {.g = g};
	vz_journal *j = NULL;
	vz_err err = {0};
	const char *arg;
	int o, ret = VZ_EXIT_FAIL;

	o = vz_opt_next(g, &vz_cmd_journal, argc, argv, &arg);
	if (o != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_journal, o, argv);
	if (optind < argc)
		return vz_usage("journal", "unexpected argument '%s'", argv[optind]);
	if (vz_journal_open(g->journal, &j, &err) != VZ_OK)
		goto out;
	if (g->json) {
		l.decls = json_array();
		l.retours = json_array();
	} else {
		printf(_("Declarations (%s):\n"), vz_journal_where(j));
	}
	if (vz_journal_decl_each(j, false, show_decl, &l, &err) != VZ_OK)
		goto out;
	if (!g->json)
		printf(_("Return files:\n"));
	if (vz_journal_retour_each(j, show_retour, &l, &err) != VZ_OK)
		goto out;
	if (l.unconfirmed)
		vz_note(g,
			"%zu return file(s) stored but not confirmed: 'vzp11 retour' tries again to "
			"confirm each one VECOZO still lists; one it no longer lists was confirmed "
			"already, and 'vzp11 retour --forget TRACEERID' closes its entry",
			l.unconfirmed);
	if (g->json)
		vz_bill_put_json(stdout, json_pack("{s:o, s:o}", "declarations", l.decls, "retours",
						   l.retours));
	l.decls = l.retours = NULL;
	ret = fflush(stdout) == 0 && !ferror(stdout) ? VZ_EXIT_OK : VZ_EXIT_FAIL;
	if (ret != VZ_EXIT_OK)
		vz_err_set(&err, "cannot write the output");
out:
	json_decref(l.decls);
	json_decref(l.retours);
	if (err.msg[0])
		vz_report(&err);
	vz_journal_close(j);
	return ret;
}
