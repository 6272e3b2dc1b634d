/* cmd_remove.c - `vzp11 remove LABEL`: delete a certificate and its keys. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "out.h"
#include "store.h"
#include "token.h"

static void remove_usage(FILE *f)
{
	fprintf(f, "Usage: vzp11 [GLOBAL OPTIONS] remove LABEL [--yes]\n"
		   "Delete the private key, public key and certificate with this label, and the\n"
		   "CA certificates no other certificate on the token uses.\n"
		   "  -y, --yes   do not ask; needed when there is no terminal\n");
}

/* Asks on the terminal; anything but y/yes is no. */
static bool confirm(const char *label, const char *token)
{
	char answer[16] = "";
	FILE *tty = fopen("/dev/tty", "r+");
	bool yes;

	if (!tty)
		return false;
	fprintf(tty,
		"Remove '%s' (key and certificate) from token '%s'? This cannot be undone. "
		"[y/N] ",
		label, token);
	fflush(tty);
	if (!fgets(answer, sizeof(answer), tty))
		answer[0] = '\0';
	fclose(tty);
	answer[strcspn(answer, "\r\n")] = '\0';
	yes = strcmp(answer, "y") == 0 || strcmp(answer, "Y") == 0 || strcmp(answer, "yes") == 0;
	return yes;
}

/* A CA certificate stays when an entry with another label chains to it. */
static bool ca_needed_elsewhere(const vz_store *st, const X509 *ca, const char *label)
{
	for (size_t i = 0; i < st->n_entries; i++) {
		const vz_entry *e = &st->entries[i];

		if (vz_obj_has_label(e->cert, label))
			continue;
		for (int j = 0; j < sk_X509_num(e->chain); j++)
			if (X509_cmp(sk_X509_value(e->chain, j), ca) == 0)
				return true;
	}
	return false;
}

static bool in_list(const unsigned long *hs, size_t n, unsigned long h)
{
	for (size_t i = 0; i < n; i++)
		if (hs[i] == h)
			return true;
	return false;
}

int cmd_remove(vz_global *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		VZ_GLOBAL_LONGOPTS, {"yes", no_argument, NULL, 'y'}, {NULL, 0, NULL, 0}};
	const char *label;
	bool yes = false;
	vz_token tk;
	vz_store *st = NULL;
	vz_err err = {0};
	tok_err te = {0};
	tok_txn *x = NULL;
	tok_rv r2;
	unsigned long cas[64];
	size_t n_ca = 0, n_key = 0, n_pub = 0, n_cert = 0;
	int ret = VZ_EXIT_FAIL;
	vz_rv r;
	int c;

	for (c = vz_next_opt(g, argc, argv, "vqy", longopts); c != -1;
	     c = vz_next_opt(g, argc, argv, "vqy", longopts)) {
		if (c == 'y') {
			yes = true;
			continue;
		}
		if (c == OPT_HELP) {
			remove_usage(stdout);
			return VZ_EXIT_OK;
		}
		return vz_usage("remove", "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (optind + 1 != argc)
		return vz_usage("remove",
				optind == argc ? "LABEL is missing" : "too many arguments");
	label = argv[optind];
	if (!yes && (!isatty(STDIN_FILENO) || access("/dev/tty", R_OK | W_OK) != 0)) {
		fprintf(stderr, "vzp11: removing needs a confirmation and there is no terminal to "
				"ask; nothing was removed\n"
				"vzp11: pass --yes to remove without asking\n");
		return VZ_EXIT_FAIL;
	}
	r = vz_token_open(g, true, true, &tk, &err);
	if (r == VZ_OK)
		r = vz_store_load(tk.s, &st, &err);
	if (r != VZ_OK) {
		vz_report(&err);
		goto out;
	}
	for (size_t i = 0; i < st->n_keys; i++)
		n_key += vz_obj_has_label(&st->keys[i], label);
	for (size_t i = 0; i < st->n_pubs; i++)
		n_pub += vz_obj_has_label(&st->pubs[i], label);
	for (size_t i = 0; i < st->n_certs; i++)
		n_cert += vz_obj_has_label(&st->certs[i], label) && !st->certs[i].authority;
	if (n_key + n_pub + n_cert == 0) {
		fprintf(stderr,
			"vzp11: nothing has the label '%s' on token '%s'; nothing was removed\n"
			"vzp11: see the labels with 'vzp11 list'\n",
			label, tok_token_info_of(tk.tok)->label);
		goto out;
	}
	for (size_t i = 0; i < st->n_entries; i++) {
		const vz_entry *e = &st->entries[i];

		if (!vz_obj_has_label(e->cert, label))
			continue;
		for (int j = 0; j < sk_X509_num(e->chain); j++) {
			const X509 *ca = sk_X509_value(e->chain, j);
			long idx = vz_store_find_cert(st, ca);

			if (idx < 0 || ca_needed_elsewhere(st, ca, label) ||
			    in_list(cas, n_ca, st->certs[idx].handle) || n_ca == 64)
				continue;
			cas[n_ca++] = st->certs[idx].handle;
		}
	}
	if (!yes && !confirm(label, tok_token_info_of(tk.tok)->label)) {
		fprintf(stderr, "vzp11: not confirmed; nothing was removed\n");
		goto out;
	}
	/* Public objects first: on a failure the transaction creates them again.
	 * The private key cannot be restored, so it goes last. */
	r2 = tok_txn_begin(tk.s, &x, &te);
	for (size_t i = 0; r2 == TOK_OK && i < n_ca; i++)
		r2 = tok_txn_destroy(x, cas[i], &te);
	for (size_t i = 0; r2 == TOK_OK && i < st->n_certs; i++)
		if (vz_obj_has_label(&st->certs[i], label) && !st->certs[i].authority)
			r2 = tok_txn_destroy(x, st->certs[i].handle, &te);
	for (size_t i = 0; r2 == TOK_OK && i < st->n_pubs; i++)
		if (vz_obj_has_label(&st->pubs[i], label))
			r2 = tok_txn_destroy(x, st->pubs[i].handle, &te);
	for (size_t i = 0; r2 == TOK_OK && i < st->n_keys; i++)
		if (vz_obj_has_label(&st->keys[i], label))
			r2 = tok_txn_destroy(x, st->keys[i].handle, &te);
	if (r2 != TOK_OK) {
		tok_err ae = {0};
		size_t used;

		vz_err_from_tok(&err, &te, r2);
		used = strlen(err.msg);
		if (!x || tok_txn_abort(x, &ae) == TOK_OK)
			snprintf(err.msg + used, sizeof(err.msg) - used, "; nothing was removed");
		else
			snprintf(err.msg + used, sizeof(err.msg) - used, "; %s", ae.msg);
		vz_report(&err);
		goto out;
	}
	tok_txn_commit(x);
	if (g->json) {
		vz_out_json(stdout, json_pack("{s:s, s:s, s:{s:I, s:I, s:I, s:I}}", "label", label,
					      "token", tok_token_info_of(tk.tok)->label, "removed",
					      "private_keys", (json_int_t)n_key, "public_keys",
					      (json_int_t)n_pub, "certificates", (json_int_t)n_cert,
					      "ca_certificates", (json_int_t)n_ca));
	} else {
		printf("Removed '%s' from token '%s': %zu private key(s), %zu public key(s), "
		       "%zu certificate(s), %zu CA certificate(s) no longer used.\n",
		       label, tok_token_info_of(tk.tok)->label, n_key, n_pub, n_cert, n_ca);
	}
	ret = VZ_EXIT_OK;
out:
	vz_store_free(st);
	vz_token_close(&tk);
	return ret;
}
