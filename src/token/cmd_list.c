/* cmd_list.c - `vzp11 list`: every certificate that has a key on the token. */
#include <stdio.h>

#include <jansson.h>

#include "cli/cli.h"
#include "token/token.h"

/* Certificates (not a CA's) the token shows without a login. */
static void list_public(const vz_global *g, const vz_store *st)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < st->n_certs; i++) {
		vz_cert_info info;
		vz_err ignored = {0};
		const char *label = st->certs[i].label ? st->certs[i].label : "";

		if (st->certs[i].authority || !st->x509s[i] ||
		    vz_cert_info_get(st->x509s[i], &info, &ignored) != VZ_OK)
			continue;
		if (g->json)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I}", "label", label,
							     "subject", info.subject, "not_after",
							     info.not_after, "days_left",
							     (json_int_t)info.days_left));
		else
			printf("%-20s %s  %s %.10s\n", label, info.subject, _("expires"),
			       info.not_after);
	}
	if (g->json)
		vz_out_json(stdout, arr);
	else
		json_decref(arr);
}

enum {
	O_PUBLIC = 1
};

static const vz_opt list_opts[] = {
	VZ_OPT("public", O_PUBLIC, NULL,
	       N_("only the certificates the token shows without a login (not a CA's):\n"
		  "label, subject and expiry; never asks for or sends a PIN, whatever\n"
		  "the PIN source (what shell completion uses)")),
	{0},
};

static int cmd_list(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_list = {
	.name = "list",
	.run = cmd_list,
	.synopsis = "list",
	.usage = N_("list [--public]"),
	.about =
		N_("List every certificate that has a private key on the token: label, subject,\n"
		   "expiry date, days left and key type; expired ones are marked. --json gives an\n"
		   "array of objects (see README).\n"),
	.opts = list_opts,
};

static int cmd_list(vz_global *g, int argc, char **argv)
{
	bool only_public = false;
	vz_token tk;
	vz_store *st = NULL;
	vz_err err = {0};
	const char *arg;
	vz_rv r;
	int o;

	while ((o = vz_opt_next(g, &vz_cmd_list, argc, argv, &arg)) > 0)
		if (o == O_PUBLIC)
			only_public = true;
	if (o != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_list, o, argv);
	if (optind < argc)
		return vz_usage("list", "unexpected argument '%s'", argv[optind]);
	r = vz_token_open(g, false, !only_public, &tk, &err);
	if (r == VZ_OK)
		r = vz_store_load(tk.s, &st, &err);
	if (r != VZ_OK) {
		vz_report(&err);
		vz_token_close(&tk);
		return vz_exit_code(r == VZ_USAGE ? VZ_USAGE : VZ_FAIL);
	}
	if (only_public) {
		list_public(g, st);
	} else if (g->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < st->n_entries; i++)
			json_array_append_new(arr, vz_out_entry_json(tk.tok, &st->entries[i]));
		vz_out_json(stdout, arr);
	} else if (st->n_entries == 0) {
		vz_note(g, "no certificate with a key on token '%s'; add one with 'vzp11 import'",
			tok_token_info_of(tk.tok)->label);
	} else {
		for (size_t i = 0; i < st->n_entries; i++)
			vz_out_entry_line(stdout, &st->entries[i]);
	}
	r = vz_out_flush(stdout, &err);
	if (r != VZ_OK)
		vz_report(&err);
	vz_store_free(st);
	vz_token_close(&tk);
	return vz_exit_code(r);
}
