/* cmd_remove.c - `vzp11 remove LABEL`: delete a certificate and its keys. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "token/token.h"
#include "cli/cli.h"

/* Asks on the terminal; anything but y/yes (or the translation's word for
 * them, j/ja in Dutch) is no. */
static bool confirm(const char *label, const char *token)
{
	char answer[16] = "";
	FILE *tty = fopen("/dev/tty", "r+");
	bool yes;

	if (!tty)
		return false;
	fprintf(tty,
		_("Remove '%s' (key and certificate) from token '%s'? This cannot be undone. "
		  "[y/N] "),
		label, token);
	fflush(tty);
	if (!fgets(answer, sizeof(answer), tty))
		answer[0] = '\0';
	fclose(tty);
	answer[strcspn(answer, "\r\n")] = '\0';
	/* TRANSLATORS: the short and long answer "yes" to the [y/N] question. */
	yes = strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0 ||
	      strcasecmp(answer, _("y")) == 0 || strcasecmp(answer, _("yes")) == 0;
	return yes;
}

/* What one remove deletes. CA certificates are indexes into st->certs. */
struct plan {
	size_t n_key, n_pub, n_cert;
	size_t cas[64];
	size_t n_ca;
};

static bool leaving(const vz_store *st, size_t i, const char *label)
{
	return vz_obj_has_label(&st->certs[i], label) && !st->certs[i].authority;
}

static bool planned(const struct plan *p, size_t idx)
{
	for (size_t i = 0; i < p->n_ca; i++)
		if (p->cas[i] == idx)
			return true;
	return false;
}

/* Adds the CA certificates on the token that certificate i chains to. */
static vz_rv add_chain(const vz_store *st, size_t i, struct plan *p, vz_err *err)
{
	STACK_OF(X509) *chain = vz_cert_chain(st->x509s[i], st->pool, NULL);

	if (!chain) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	for (int j = 0; j < sk_X509_num(chain); j++) {
		long idx = vz_store_find_cert(st, sk_X509_value(chain, j));

		if (idx >= 0 && (size_t)idx != i && !planned(p, (size_t)idx) &&
		    p->n_ca < sizeof(p->cas) / sizeof(p->cas[0]))
			p->cas[p->n_ca++] = (size_t)idx;
	}
	sk_X509_free(chain);
	return VZ_OK;
}

/* Drops from the plan every CA certificate that a certificate staying on
 * the token chains to; returns true when it dropped one. */
static bool keep_used_cas(const vz_store *st, const char *label, struct plan *p)
{
	bool dropped = false;

	for (size_t i = 0; i < st->n_certs; i++) {
		STACK_OF(X509) *chain;

		if (!st->x509s[i] || leaving(st, i, label) || planned(p, i))
			continue;
		chain = vz_cert_chain(st->x509s[i], st->pool, NULL);
		for (int j = 0; chain && j < sk_X509_num(chain); j++) {
			long idx = vz_store_find_cert(st, sk_X509_value(chain, j));

			for (size_t k = 0; idx >= 0 && k < p->n_ca; k++) {
				if (p->cas[k] == (size_t)idx) {
					p->cas[k] = p->cas[--p->n_ca];
					dropped = true;
					break;
				}
			}
		}
		sk_X509_free(chain);
	}
	return dropped;
}

/* Counts the label's objects and picks the CA certificates that only they
 * use: a CA certificate stays while any certificate that stays on the
 * token (with a key or without, a CA certificate too) chains to it. */
static vz_rv make_plan(const vz_store *st, const char *label, struct plan *p, vz_err *err)
{
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < st->n_keys; i++)
		p->n_key += vz_obj_has_label(&st->keys[i], label);
	for (size_t i = 0; i < st->n_pubs; i++)
		p->n_pub += vz_obj_has_label(&st->pubs[i], label);
	for (size_t i = 0; i < st->n_certs; i++) {
		if (!leaving(st, i, label))
			continue;
		p->n_cert++;
		if (st->x509s[i] && add_chain(st, i, p, err) != VZ_OK)
			return VZ_FAIL;
	}
	/* Until nothing changes: a CA kept now keeps its own issuers. */
	while (keep_used_cas(st, label, p))
		;
	return VZ_OK;
}

/* Public objects first: on a failure the transaction creates them again.
 * The private key cannot be restored, so it goes last. */
static vz_rv destroy_planned(vz_token *tk, const vz_store *st, const char *label,
			     const struct plan *p, vz_err *err)
{
	tok_err te = {0};
	tok_txn *x = NULL;
	tok_rv r = tok_txn_begin(tk->s, &x, &te);

	for (size_t i = 0; r == TOK_OK && i < p->n_ca; i++)
		r = tok_txn_destroy(x, st->certs[p->cas[i]].handle, &te);
	for (size_t i = 0; r == TOK_OK && i < st->n_certs; i++)
		if (leaving(st, i, label))
			r = tok_txn_destroy(x, st->certs[i].handle, &te);
	for (size_t i = 0; r == TOK_OK && i < st->n_pubs; i++)
		if (vz_obj_has_label(&st->pubs[i], label))
			r = tok_txn_destroy(x, st->pubs[i].handle, &te);
	for (size_t i = 0; r == TOK_OK && i < st->n_keys; i++)
		if (vz_obj_has_label(&st->keys[i], label))
			r = tok_txn_destroy(x, st->keys[i].handle, &te);
	if (r != TOK_OK) {
		tok_err ae = {0};
		size_t used;

		vz_err_from_tok(err, &te, r);
		used = strlen(err->msg);
		if (!x || tok_txn_abort(x, &ae) == TOK_OK)
			snprintf(err->msg + used, sizeof(err->msg) - used,
				 _("; nothing was removed"));
		else
			snprintf(err->msg + used, sizeof(err->msg) - used, "; %s", ae.msg);
		return VZ_FAIL;
	}
	tok_txn_commit(x);
	return VZ_OK;
}

/* The object in objs with this label and o's CKA_ID, or NULL. */
static const tok_obj *same_label_id(const tok_obj *objs, size_t n, const char *label,
				    const tok_obj *o)
{
	for (size_t i = 0; i < n; i++)
		if (vz_obj_has_label(&objs[i], label) && objs[i].id_len == o->id_len &&
		    (!o->id_len || memcmp(objs[i].id, o->id, o->id_len) == 0))
			return &objs[i];
	return NULL;
}

/* One audit record (token/token.h) for an object that went, or (failed) was to go. */
static void audit_one(const vz_token *tk, const char *action, const tok_obj *o, const X509 *x509,
		      tok_arrival arrival, const char *detail, const vz_err *failed)
{
	vz_cert_info info;
	vz_err ignored = {0};
	bool have_info = x509 && vz_cert_info_get(x509, &info, &ignored) == VZ_OK;

	vz_audit(tk, &(vz_audit_rec){.action = action,
				     .failed = failed != NULL,
				     .label = o->label,
				     .cert = have_info ? &info : NULL,
				     .id = o->id,
				     .id_len = o->id_len,
				     .arrival = arrival,
				     .detail = detail,
				     .error = failed ? failed->msg : NULL});
}

/* The audit trail of a remove: a record per certificate of the label (with
 * how its key arrived), per key or public key of the label without such a
 * certificate, and per CA certificate that went with them. */
static void audit_removed(const vz_token *tk, const vz_store *st, const char *label,
			  const struct plan *p, const vz_err *failed)
{
	for (size_t i = 0; i < st->n_certs; i++) {
		const tok_obj *key = same_label_id(st->keys, st->n_keys, label, &st->certs[i]);

		if (leaving(st, i, label))
			audit_one(tk, "remove", &st->certs[i], st->x509s[i],
				  key ? key->arrival : TOK_ARRIVAL_UNKNOWN,
				  key ? NULL : "certificate without a key", failed);
	}
	for (size_t i = 0; i < st->n_keys; i++)
		if (vz_obj_has_label(&st->keys[i], label) &&
		    !same_label_id(st->certs, st->n_certs, label, &st->keys[i]))
			audit_one(tk, "remove", &st->keys[i], NULL, st->keys[i].arrival,
				  "key without a certificate", failed);
	for (size_t i = 0; i < st->n_pubs; i++)
		if (vz_obj_has_label(&st->pubs[i], label) &&
		    !same_label_id(st->certs, st->n_certs, label, &st->pubs[i]) &&
		    !same_label_id(st->keys, st->n_keys, label, &st->pubs[i]))
			audit_one(tk, "remove", &st->pubs[i], NULL, TOK_ARRIVAL_UNKNOWN,
				  "public key alone", failed);
	for (size_t i = 0; i < p->n_ca; i++)
		audit_one(tk, "remove-ca", &st->certs[p->cas[i]], st->x509s[p->cas[i]],
			  TOK_ARRIVAL_UNKNOWN, "no longer used", failed);
}

static void print_removed(const vz_global *g, const vz_token *tk, const char *label,
			  const struct plan *p)
{
	const char *token = tok_token_info_of(tk->tok)->label;

	if (g->json) {
		vz_out_json(stdout,
			    json_pack("{s:s, s:s, s:{s:I, s:I, s:I, s:I}}", "label", label, "token",
				      token, "removed", "private_keys", (json_int_t)p->n_key,
				      "public_keys", (json_int_t)p->n_pub, "certificates",
				      (json_int_t)p->n_cert, "ca_certificates",
				      (json_int_t)p->n_ca));
		return;
	}
	printf(_("Removed '%s' from token '%s': %zu private key(s), %zu public key(s), "
		 "%zu certificate(s), %zu CA certificate(s) no longer used.\n"),
	       label, token, p->n_key, p->n_pub, p->n_cert, p->n_ca);
}

static const vz_opt remove_opts[] = {
	VZ_OPT("yes", 'y', NULL, N_("do not ask; needed when there is no terminal")),
	{0},
};

static int cmd_remove(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_remove = {
	.name = "remove",
	.run = cmd_remove,
	.usage = N_("remove LABEL [--yes]"),
	.about = N_("Delete the private key, public key and certificate with this label, and the\n"
		    "CA certificates no other certificate on the token uses.\n"),
	.opts = remove_opts,
};

static int cmd_remove(vz_global *g, int argc, char **argv)
{
	const char *label, *arg;
	bool yes = false;
	vz_token tk;
	vz_store *st = NULL;
	vz_err err = {0};
	struct plan plan;
	int ret = VZ_EXIT_FAIL, lock = -1;
	vz_rv r;
	int o;

	while ((o = vz_opt_next(g, &vz_cmd_remove, argc, argv, &arg)) > 0)
		if (o == 'y')
			yes = true;
	if (o != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_remove, o, argv);
	if (optind + 1 != argc)
		return vz_usage("remove",
				optind == argc ? "LABEL is missing" : "too many arguments");
	label = argv[optind];
	if (!yes && (!isatty(STDIN_FILENO) || access("/dev/tty", R_OK | W_OK) != 0)) {
		fprintf(stderr,
			_("vzp11: removing needs a confirmation and there is no terminal to "
			  "ask; nothing was removed\n"
			  "vzp11: pass --yes to remove without asking\n"));
		return VZ_EXIT_FAIL;
	}
	r = vz_token_open(g, true, true, &tk, &err);
	if (r == VZ_OK)
		r = vz_toklock_take(g, tok_token_info_of(tk.tok), &lock, &err);
	if (r == VZ_OK)
		r = vz_store_load(tk.s, &st, &err);
	if (r == VZ_OK)
		r = make_plan(st, label, &plan, &err);
	if (r != VZ_OK) {
		vz_report(&err);
		goto out;
	}
	if (plan.n_key + plan.n_pub + plan.n_cert == 0) {
		fprintf(stderr,
			_("vzp11: nothing has the label '%s' on token '%s'; nothing was removed\n"
			  "vzp11: see the labels with 'vzp11 list'\n"),
			label, tok_token_info_of(tk.tok)->label);
		goto out;
	}
	if (!yes && !confirm(label, tok_token_info_of(tk.tok)->label)) {
		fprintf(stderr, _("vzp11: not confirmed; nothing was removed\n"));
		goto out;
	}
	r = destroy_planned(&tk, st, label, &plan, &err);
	audit_removed(&tk, st, label, &plan, r == VZ_OK ? NULL : &err);
	if (r != VZ_OK) {
		vz_report(&err);
		goto out;
	}
	print_removed(g, &tk, label, &plan);
	ret = VZ_EXIT_OK;
out:
	vz_store_free(st);
	vz_token_close(&tk);
	vz_toklock_release(lock);
	return ret;
}
