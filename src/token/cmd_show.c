/* cmd_show.c - `vzp11 show LABEL`: one certificate in full. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "token/token.h"

/* show takes only the global options. */
static const vz_opt show_opts[] = {
	{0},
};

static int cmd_show(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_show = {
	.name = "show",
	.run = cmd_show,
	.usage = N_("show LABEL"),
	.about = N_(
		"Show the certificate with this label in full: subject, issuer, serial,\n"
		"validity, kind, the key's attributes as read from the token, URIs and chain.\n"),
	.opts = show_opts,
};

static int cmd_show(vz_global *g, int argc, char **argv)
{
	const char *label, *arg;
	vz_token tk;
	vz_store *st = NULL;
	vz_err err = {0};
	const vz_entry *one;
	size_t shown = 0, tied, others = 0;
	int ret = VZ_EXIT_OK;
	vz_rv r;
	int o;

	/* show has no options of its own: the first result ends the parsing */
	o = vz_opt_next(g, &vz_cmd_show, argc, argv, &arg);
	if (o != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_show, o, argv);
	if (optind + 1 != argc)
		return vz_usage("show",
				optind == argc ? _("LABEL is missing") : _("too many arguments"));
	label = argv[optind];
	r = vz_token_open(g, false, true, &tk, &err);
	if (r == VZ_OK)
		r = vz_store_load(tk.s, &st, &err);
	if (r != VZ_OK) {
		vz_report(&err);
		vz_token_close(&tk);
		return vz_exit_code(r == VZ_USAGE ? VZ_USAGE : VZ_FAIL);
	}
	/* The one the label names (while a rotation is half-way, two
	 * certificates carry it: see vz_store_resolve); all when it is
	 * ambiguous. */
	one = vz_store_resolve(st, label, &tied);
	for (size_t i = 0; i < st->n_entries; i++) {
		const vz_entry *e = &st->entries[i];

		if (!vz_obj_has_label(e->cert, label) || (one && e != one)) {
			others += one && vz_obj_has_label(e->cert, label);
			continue;
		}
		if (g->json)
			vz_out_json(stdout, vz_out_entry_json(tk.tok, e));
		else
			vz_out_entry_full(stdout, tk.tok, e);
		shown++;
	}
	if (others)
		vz_note(g,
			"another certificate carries the label '%s' too: a rotation is half-way; "
			"'vzp11 rotate' with --finish, --rollback or the new file completes it",
			label);
	if (shown == 0) {
		fprintf(stderr,
			_("vzp11: no certificate with a key has the label '%s' on token '%s'\n"),
			label, tok_token_info_of(tk.tok)->label);
		fprintf(stderr, _("vzp11: see the labels with 'vzp11 list'\n"));
		ret = VZ_EXIT_FAIL;
	} else if (vz_out_flush(stdout, &err) != VZ_OK) {
		vz_report(&err);
		ret = VZ_EXIT_FAIL;
	}
	vz_store_free(st);
	vz_token_close(&tk);
	return ret;
}
