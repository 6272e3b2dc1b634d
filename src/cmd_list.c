/* cmd_list.c - `vzp11 list`: every certificate that has a key on the token. */
#include <stdio.h>

#include "cli.h"
#include "out.h"
#include "store.h"
#include "token.h"
#include "i18n.h"

static void list_usage(FILE *f)
{
	fprintf(f,
		_("Usage: vzp11 [GLOBAL OPTIONS] list\n"
		  "List every certificate that has a private key on the token: label, subject,\n"
		  "expiry date, days left and key type; expired ones are marked. --json gives an\n"
		  "array of objects (see README).\n"));
}

int cmd_list(vz_global *g, int argc, char **argv)
{
	static const struct option longopts[] = {VZ_GLOBAL_LONGOPTS, {NULL, 0, NULL, 0}};
	vz_token tk;
	vz_store *st = NULL;
	vz_err err = {0};
	vz_rv r;
	int c;

	for (c = vz_next_opt(g, argc, argv, "vq", longopts); c != -1;
	     c = vz_next_opt(g, argc, argv, "vq", longopts)) {
		if (c == OPT_HELP) {
			list_usage(stdout);
			return VZ_EXIT_OK;
		}
		return vz_usage("list", "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return vz_usage("list", "unexpected argument '%s'", argv[optind]);
	r = vz_token_open(g, false, true, &tk, &err);
	if (r == VZ_OK)
		r = vz_store_load(tk.s, &st, &err);
	if (r != VZ_OK) {
		vz_report(&err);
		vz_token_close(&tk);
		return vz_exit_code(r == VZ_USAGE ? VZ_USAGE : VZ_FAIL);
	}
	if (g->json) {
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
