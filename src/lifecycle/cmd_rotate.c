/* cmd_rotate.c - `vzp11 rotate`: a renewed system certificate takes the
 * place of the active one with no moment in which its label names none.
 *
 * Labels carry the state: LABEL is the active certificate, LABEL.next a
 * renewal on trial, LABEL.previous the one it replaced. Switching from A
 * (active) to B is five label writes, each a single C_SetAttributeValue:
 *
 *   1. B's certificate -> LABEL    two certificates carry LABEL, but only
 *                                  A's key does too: A is still active
 *   2. A's key -> LABEL.previous   the switch: from here B is active
 *   3. A's certificate and public key -> LABEL.previous
 *   4. B's public key -> LABEL
 *   5. B's key -> LABEL
 *
 * vz_store_resolve() makes every command choose between two certificates
 * that way. So whichever call fails, or wherever the process dies, LABEL
 * names exactly one complete key and certificate, and settle() puts the
 * rest in line: the active one's objects all get LABEL; another with any
 * object labelled LABEL.previous (or LABEL.rollback) goes back to
 * LABEL.previous, any other to LABEL.next. --rollback first moves the
 * previous key to LABEL.rollback (from LABEL.previous, step 1 would make
 * a tie) and then switches the same way; a .rollback label on the active
 * key tells a later --rollback that the last one had switched already, so
 * running any mode again after a failure completes it and goes no further. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "token/token.h"
#include "cli/cli.h"
#include "cov/cov.h"
#include "lifecycle/lifecycle.h"

#define VZ_ROLLBACK_SUFFIX ".rollback"
#define MAX_GROUPS	   8

enum mode {
	M_ROTATE,
	M_ROLLBACK,
	M_FINISH
};

/* The objects of one key that carry one of the rotation's labels. */
struct group {
	const unsigned char *id;
	size_t id_len;
	tok_obj *cert, *key, *pub; /* the store's; relabel() keeps their labels current */
	bool was_previous;	   /* an object is labelled .previous or .rollback */
	bool rolling_back;	   /* an object is labelled .rollback */
	const vz_cert_info *info;  /* its certificate's, for the audit trail; may be NULL */
};

struct rotate {
	const vz_global *g;
	enum mode mode;
	struct vz_import_opts imp;
	const char *label, *env, *endpoint, *cacert;
	char next[160], previous[160], back[160];
	vz_secret pin;
	bool have_pin;
	int lock_fd;	    /* the token's lock (token/token.h), held to the end; -1 before */
	const char *action; /* of the audit records: "rotate", "rotate-rollback", ... */
	json_t *steps;	    /* every label write, for --json */
	size_t n_steps;
	bool rolled_back; /* settle() completed a rollback that had switched */
};

/* ---- the PIN, read once and handed to each token opening ---- */

/* A pipe holding the PIN, as "fd:N" in src; -1 when there is no PIN. */
static int pin_fd(const struct rotate *r, char *src, size_t size)
{
	return r->have_pin ? vz_secret_pipe(&r->pin, src, size) : -1;
}

/* Opens the token read-write and logged in, and reads what it holds. */
static vz_rv open_token(struct rotate *r, vz_token *tk, vz_store **st, vz_err *err)
{
	vz_global g2 = *r->g;
	char src[32];
	int fd = pin_fd(r, src, sizeof(src));
	vz_rv ret;

	if (fd >= 0)
		g2.pin_source = src;
	ret = vz_token_open(&g2, true, true, tk, err);
	if (fd >= 0)
		close(fd);
	/* one rotate (or import, remove) at a time on a token, from its first
	 * look at the labels to its last write */
	if (ret == VZ_OK && r->lock_fd < 0)
		ret = vz_toklock_take(r->g, tok_token_info_of(tk->tok), &r->lock_fd, err);
	if (ret == VZ_OK)
		ret = vz_store_load(tk->s, st, err);
	return ret;
}

/* ---- reading the state from the labels ---- */

static bool labelled(const tok_obj *o, const char *label)
{
	return o && vz_obj_has_label(o, label);
}

static bool ours(const struct rotate *r, const tok_obj *o)
{
	return labelled(o, r->label) || labelled(o, r->next) || labelled(o, r->previous) ||
	       labelled(o, r->back);
}

static vz_rv add_obj(const struct rotate *r, struct group *gs, size_t *n, tok_obj *o, vz_err *err)
{
	struct group *g = NULL;
	tok_obj **slot;

	if (!ours(r, o))
		return VZ_OK;
	if (o->id_len == 0) {
		vz_err_set(err, "an object labelled '%s' has no CKA_ID; rotate cannot pair it",
			   o->label);
		vz_err_hint(err, "see 'vzp11 list' and 'pkcs11-tool --list-objects'");
		return VZ_FAIL;
	}
	for (size_t i = 0; i < *n && !g; i++)
		if (gs[i].id_len == o->id_len && memcmp(gs[i].id, o->id, o->id_len) == 0)
			g = &gs[i];
	if (!g) {
		if (*n == MAX_GROUPS) {
			vz_err_set(err, "more than %d keys carry the labels of '%s'", MAX_GROUPS,
				   r->label);
			return VZ_FAIL;
		}
		g = &gs[(*n)++];
		memset(g, 0, sizeof(*g));
		g->id = o->id;
		g->id_len = o->id_len;
	}
	slot = o->cls == TOK_CERT ? &g->cert : o->cls == TOK_PRIVKEY ? &g->key : &g->pub;
	if (*slot) {
		vz_err_set(err, "two objects of one kind share a key id under the label '%s'",
			   o->label);
		vz_err_hint(err, "see 'vzp11 list'; remove the extra one with 'vzp11 remove'");
		return VZ_FAIL;
	}
	*slot = o;
	g->was_previous |= labelled(o, r->previous) || labelled(o, r->back);
	g->rolling_back |= labelled(o, r->back);
	return VZ_OK;
}

/* The keys (with their certificate and public key) that carry LABEL,
 * LABEL.next, LABEL.previous or LABEL.rollback. */
static vz_rv groups_of(const struct rotate *r, const vz_store *st, struct group *gs, size_t *n,
		       vz_err *err)
{
	*n = 0;
	for (size_t i = 0; i < st->n_certs; i++)
		if (!st->certs[i].authority && add_obj(r, gs, n, &st->certs[i], err) != VZ_OK)
			return VZ_FAIL;
	for (size_t i = 0; i < st->n_keys; i++)
		if (add_obj(r, gs, n, &st->keys[i], err) != VZ_OK)
			return VZ_FAIL;
	for (size_t i = 0; i < st->n_pubs; i++)
		if (add_obj(r, gs, n, &st->pubs[i], err) != VZ_OK)
			return VZ_FAIL;
	for (size_t i = 0; i < *n; i++)
		for (size_t j = 0; j < st->n_entries && !gs[i].info; j++)
			if (st->entries[j].cert == gs[i].cert)
				gs[i].info = &st->entries[j].info;
	return VZ_OK;
}

static struct group *group_of(struct group *gs, size_t n, const tok_obj *o)
{
	for (size_t i = 0; o && i < n; i++)
		if (gs[i].id_len == o->id_len && memcmp(gs[i].id, o->id, o->id_len) == 0)
			return &gs[i];
	return NULL;
}

/* The active entry; a failure when LABEL names none or is ambiguous. */
static const vz_entry *active(const struct rotate *r, const vz_token *tk, const vz_store *st,
			      vz_err *err)
{
	size_t n;
	const vz_entry *e = vz_store_resolve(st, r->label, &n);

	if (e)
		return e;
	if (n == 0) {
		vz_err_set(err,
			   "no certificate with a private key has the label '%s' on token '%s'",
			   r->label, tok_token_info_of(tk->tok)->label);
		vz_err_hint(err, r->mode == M_ROTATE
					 ? "rotate replaces an active certificate; for a first one "
					   "use 'vzp11 import'"
					 : "see 'vzp11 list'");
	} else {
		vz_err_set(err, "%zu certificates claim the label '%s' equally on token '%s'", n,
			   r->label, tok_token_info_of(tk->tok)->label);
		vz_err_hint(err, "see 'vzp11 list'; remove the extra one with 'vzp11 remove'");
	}
	return NULL;
}

/* ---- changing labels ---- */

static const char *class_name(tok_class c)
{
	return c == TOK_CERT ? "certificate" : c == TOK_PRIVKEY ? "private key" : "public key";
}

/* One label write (nothing when the object has it already). */
static vz_rv relabel(struct rotate *r, vz_token *tk, const struct group *g, tok_obj *o,
		     const char *to, vz_err *err)
{
	vz_audit_rec rec = {.action = r->action,
			    .label = r->label,
			    .old_label = o ? o->label : NULL,
			    .new_label = to,
			    .cert = g->info,
			    .id = g->id,
			    .id_len = g->id_len,
			    .detail = o ? class_name(o->cls) : NULL};
	tok_err te = {0};
	tok_rv tr;
	char *now;

	if (!o || labelled(o, to))
		return VZ_OK;
	if (g->key)
		rec.arrival = g->key->arrival;
	tr = tok_set_label(tk->s, o->handle, to, &te);
	if (tr != TOK_OK) {
		vz_err_from_tok(err, &te, tr);
		rec.failed = true;
		rec.error = err->msg;
		vz_audit(tk, &rec);
		return VZ_FAIL;
	}
	vz_audit(tk, &rec);
	if (r->g->verbose)
		fprintf(stderr, _("vzp11: %s '%s' -> '%s'\n"), class_name(o->cls),
			o->label ? o->label : "", to);
	json_array_append_new(r->steps, json_pack("{s:s, s:s, s:s}", "object", class_name(o->cls),
						  "from", o->label ? o->label : "", "to", to));
	r->n_steps++;
	now = strdup(to);
	if (!now) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	free(o->label);
	o->label = now;
	return VZ_OK;
}

/* Brings a state some earlier run left half-way back in line (see the top
 * of this file); the active certificate stays the active one throughout. */
static vz_rv settle(struct rotate *r, vz_token *tk, const vz_entry *act, struct group *gs, size_t n,
		    vz_err *err)
{
	struct group *a = group_of(gs, n, act->cert);
	const char *action = r->action;
	vz_rv ret = VZ_OK;

	r->action = "rotate-complete";
	/* Other certificates first: then act is the only one with LABEL. */
	for (size_t i = 0; ret == VZ_OK && i < n; i++)
		if (&gs[i] != a)
			ret = relabel(r, tk, &gs[i], gs[i].cert,
				      gs[i].was_previous ? r->previous : r->next, err);
	if (ret == VZ_OK)
		ret = relabel(r, tk, a, a->key, r->label, err);
	if (ret == VZ_OK)
		ret = relabel(r, tk, a, a->pub, r->label, err);
	for (size_t i = 0; ret == VZ_OK && i < n; i++) {
		const char *to = gs[i].was_previous ? r->previous : r->next;

		if (&gs[i] == a)
			continue;
		ret = relabel(r, tk, &gs[i], gs[i].key, to, err);
		if (ret == VZ_OK)
			ret = relabel(r, tk, &gs[i], gs[i].pub, to, err);
	}
	r->action = action;
	return ret;
}

/* Makes b active in a's place, a becoming LABEL.previous. b's key is
 * relabelled last: until then its label (.next, or .rollback) shows a
 * later run which way the switch went. */
static vz_rv switch_to(struct rotate *r, vz_token *tk, const struct group *a, const struct group *b,
		       vz_err *err)
{
	vz_rv ret = relabel(r, tk, b, b->cert, r->label, err);

	if (ret == VZ_OK)
		ret = relabel(r, tk, a, a->key, r->previous, err);
	if (ret == VZ_OK)
		ret = relabel(r, tk, a, a->cert, r->previous, err);
	if (ret == VZ_OK)
		ret = relabel(r, tk, a, a->pub, r->previous, err);
	if (ret == VZ_OK)
		ret = relabel(r, tk, b, b->pub, r->label, err);
	if (ret == VZ_OK)
		ret = relabel(r, tk, b, b->key, r->label, err);
	return ret;
}

/* A label write of a switch failed. Until the next run settles it,
 * vz_store_resolve() still picks one certificate, but a program that finds
 * the key by its RFC 7512 URI (pkcs11:object=LABEL;type=private) finds
 * none or two. So before rotate exits the labels are put in line the way
 * settle() does: the certificate resolve picks (the old one while its key
 * still has LABEL, the new one once it gave it up) keeps LABEL on its key,
 * public key and certificate, every other object gives it up; the switch
 * is undone, or finished. *st, *act, gs and *n describe the token after.
 * VZ_OK when that worked; err keeps the first failure either way, and
 * says what became of the switch. Its hint says "run again" only when
 * every failure can pass (err->may_pass); otherwise it keeps the token's
 * own hint for the failure that will come again. */
static vz_rv realign(struct rotate *r, vz_token *tk, vz_store **st, const vz_entry **act,
		     struct group *gs, size_t *n, vz_err *err)
{
	vz_err again = {0};
	size_t used = strlen(err->msg);

	vz_store_free(*st);
	*st = NULL;
	if (vz_store_load(tk->s, st, &again) == VZ_OK && (*act = active(r, tk, *st, &again)) &&
	    groups_of(r, *st, gs, n, &again) == VZ_OK &&
	    settle(r, tk, *act, gs, *n, &again) == VZ_OK) {
		vz_store_free(*st);
		*st = NULL;
		if (vz_store_load(tk->s, st, &again) == VZ_OK &&
		    (*act = active(r, tk, *st, &again)) &&
		    groups_of(r, *st, gs, n, &again) == VZ_OK)
			return VZ_OK;
	}
	snprintf(err->msg + used, sizeof(err->msg) - used,
		 _("; putting the labels back in line failed too: %s"), again.msg);
	if (err->may_pass && again.may_pass)
		vz_err_hint(err, "run the same command again: it completes the change");
	else if (err->may_pass)
		snprintf(err->hint, sizeof(err->hint), "%s", again.hint);
	err->may_pass = err->may_pass && again.may_pass;
	return VZ_FAIL;
}

/* After realign(): VZ_OK when the certificate with key id want is
 * active (the switch was finished: said on stderr), else VZ_FAIL with err
 * saying that it was undone, and "run again" when its failure can pass
 * (else the token's hint stays: the same write would fail again). */
static vz_rv settled_after(const struct rotate *r, const vz_entry *act, const unsigned char *want,
			   vz_err *err)
{
	size_t used = strlen(err->msg);

	if (act->cert->id_len == 20 && memcmp(act->cert->id, want, 20) == 0) {
		vz_note(r->g, "%s; the switch was finished with the label writes after it",
			err->msg);
		err->msg[0] = '\0';
		err->hint[0] = '\0';
		return VZ_OK;
	}
	snprintf(err->msg + used, sizeof(err->msg) - used,
		 _("; the switch was undone: '%s' names the certificate it named before"),
		 r->label);
	if (err->may_pass)
		vz_err_hint(err, "run the same command again to switch");
	return VZ_FAIL;
}

/* Deletes a group: certificate and public key, then the private key (which
 * cannot be restored); the public objects come back if that fails. CA
 * certificates stay. */
static vz_rv drop(const struct rotate *r, vz_token *tk, struct group *g, vz_err *err)
{
	const tok_obj *objs[] = {g->cert, g->pub, g->key};
	const tok_obj *any = g->cert ? g->cert : g->key ? g->key : g->pub;
	vz_audit_rec rec = {.action = r->action,
			    .label = any ? any->label : NULL,
			    .cert = g->info,
			    .id = g->id,
			    .id_len = g->id_len,
			    .arrival = g->key ? g->key->arrival : TOK_ARRIVAL_UNKNOWN,
			    .detail = "deleted"};
	tok_txn *x = NULL;
	tok_err te = {0};
	tok_rv tr = tok_txn_begin(tk->s, &x, &te);

	for (size_t i = 0; tr == TOK_OK && i < 3; i++)
		if (objs[i])
			tr = tok_txn_destroy(x, objs[i]->handle, &te);
	if (tr == TOK_OK) {
		tok_txn_commit(x);
		vz_audit(tk, &rec);
		g->cert = g->key = g->pub = NULL;
		g->info = NULL;
		return VZ_OK;
	}
	vz_err_from_tok(err, &te, tr);
	rec.failed = true;
	rec.error = err->msg;
	vz_audit(tk, &rec);
	if (x)
		vz_err_abort(err, x, _("; the token is unchanged"));
	return VZ_FAIL;
}

/* ---- the renewal must be the same organisation's ---- */

/* The subject's attributes but serialNumber, "SN=value", one by one. */
static int next_rdn(const X509_NAME *n, int i, char *buf, size_t size)
{
	for (; i < X509_NAME_entry_count(n); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
		unsigned char *u = NULL;
		int len;

		if (nid == NID_serialNumber)
			continue;
		len = ASN1_STRING_to_UTF8(&u, v);
		snprintf(buf, size, "%s=%.*s", nid != NID_undef ? OBJ_nid2sn(nid) : "?",
			 len > 0 ? len : 0, len > 0 ? (const char *)u : "");
		OPENSSL_free(u);
		return i + 1;
	}
	buf[0] = '\0';
	return -1;
}

static vz_rv same_subject(const X509 *old, const X509 *renewed, vz_err *err)
{
	const X509_NAME *a = X509_get_subject_name(old), *b = X509_get_subject_name(renewed);
	char x[300], y[300];
	int i = 0, j = 0;

	for (;;) {
		i = next_rdn(a, i, x, sizeof(x));
		j = next_rdn(b, j, y, sizeof(y));
		if (i < 0 && j < 0)
			return VZ_OK;
		if (strcmp(x, y) != 0)
			break;
	}
	vz_err_set(err,
		   "the renewed certificate is not for the same organisation: its subject has "
		   "%s%s%s where the active one has %s%s%s; nothing was changed",
		   y[0] ? "'" : "", y[0] ? y : _("nothing more"), y[0] ? "'" : "", x[0] ? "'" : "",
		   x[0] ? x : _("nothing more"), x[0] ? "'" : "");
	vz_err_hint(err, "rotate renews one system certificate; import another organisation's "
			 "under its own --label");
	return VZ_FAIL;
}

/* ---- the three modes ---- */

static void print_entry(const struct rotate *r, const char *what, const vz_entry *e)
{
	if (!r->g->json && e)
		printf(_("%-9s %s, serial %s, expires %.10s\n"), what, e->info.subject,
		       e->info.serial, e->info.not_after);
}

/* The entry of group g in st, or NULL. */
static const vz_entry *entry_of(const vz_store *st, const struct group *g)
{
	for (size_t i = 0; g && i < st->n_entries; i++)
		if (st->entries[i].cert == g->cert)
			return &st->entries[i];
	return NULL;
}

/* The closing lines (or --json) from what this run read and changed:
 * nothing is asked of the token any more once the work is done. */
static void report(struct rotate *r, const vz_token *tk, const vz_store *st, struct group *gs,
		   size_t n, const char *status, const char *message)
{
	size_t tied;
	const vz_entry *act = vz_store_resolve(st, r->label, &tied), *prev = NULL;

	for (size_t i = 0; i < n && !prev; i++)
		if (gs[i].cert && labelled(gs[i].cert, r->previous))
			prev = entry_of(st, &gs[i]);
	if (r->g->json) {
		vz_out_json(stdout, json_pack("{s:s, s:s, s:o, s:o, s:O, s:s}", "status", status,
					      "label", r->label, "active",
					      act ? vz_out_entry_json(tk->tok, act) : json_null(),
					      "previous",
					      prev ? vz_out_entry_json(tk->tok, prev) : json_null(),
					      "label_changes", r->steps, "token",
					      tok_token_info_of(tk->tok)->label));
		return;
	}
	printf("%s\n", message);
	print_entry(r, _("active:"), act);
	print_entry(r, _("previous:"), prev);
}

/* Opens the token and settles it; *act, gs and *n describe the result. */
static vz_rv open_settled(struct rotate *r, vz_token *tk, vz_store **st, const vz_entry **act,
			  struct group *gs, size_t *n, vz_err *err)
{
	size_t before = r->n_steps;

	if (open_token(r, tk, st, err) != VZ_OK || !(*act = active(r, tk, *st, err)) ||
	    groups_of(r, *st, gs, n, err) != VZ_OK)
		return VZ_FAIL;
	r->rolled_back = group_of(gs, *n, (*act)->cert)->rolling_back;
	if (settle(r, tk, *act, gs, *n, err) != VZ_OK)
		return VZ_FAIL;
	if (r->n_steps == before)
		return VZ_OK;
	vz_note(r->g, "completed what an earlier rotate left half-way (%zu label changes)",
		r->n_steps - before);
	vz_store_free(*st);
	*st = NULL;
	if (vz_store_load(tk->s, st, err) != VZ_OK || !(*act = active(r, tk, *st, err)))
		return VZ_FAIL;
	return groups_of(r, *st, gs, n, err);
}

/* The end of --finish and --rollback: the token closed, the error (if any)
 * reported; the exit code. */
static int end_run(vz_token *tk, vz_store *st, vz_rv rv, const vz_err *err)
{
	vz_store_free(st);
	vz_token_close(tk);
	if (rv != VZ_OK) {
		vz_report(err);
		return VZ_EXIT_FAIL;
	}
	return VZ_EXIT_OK;
}

static int rotate_finish(struct rotate *r)
{
	vz_token tk = {0};
	vz_store *st = NULL;
	struct group gs[MAX_GROUPS];
	const vz_entry *act;
	vz_err err = {0};
	size_t n = 0, dropped = 0;
	vz_rv rv;

	rv = open_settled(r, &tk, &st, &act, gs, &n, &err);
	for (size_t i = 0; rv == VZ_OK && i < n; i++) {
		if (gs[i].was_previous) {
			rv = drop(r, &tk, &gs[i], &err);
			dropped += rv == VZ_OK;
		}
	}
	if (rv == VZ_OK)
		report(r, &tk, st, gs, n, dropped ? "finished" : "unchanged",
		       dropped ? _("Deleted the previous certificate and its key.")
			       : _("There is no previous certificate; nothing to finish."));
	return end_run(&tk, st, rv, &err);
}

static int rotate_rollback(struct rotate *r)
{
	vz_token tk = {0};
	vz_store *st = NULL;
	struct group gs[MAX_GROUPS];
	const vz_entry *act;
	struct group *prev = NULL, *a;
	vz_err err = {0};
	size_t n = 0, staged = 0;
	const char *status = "rolled-back";
	vz_rv rv;

	rv = open_settled(r, &tk, &st, &act, gs, &n, &err);
	if (rv != VZ_OK)
		goto out;
	a = group_of(gs, n, act->cert);
	for (size_t i = 0; i < n; i++) {
		if (gs[i].was_previous && gs[i].cert && gs[i].key && entry_of(st, &gs[i]))
			prev = &gs[i];
		staged += !gs[i].was_previous && &gs[i] != a;
	}
	if (r->rolled_back) {
		/* An earlier --rollback had switched already; settle() finished it. */
	} else if (prev) {
		unsigned char want[20];
		bool sized = prev->id_len == sizeof(want);

		if (sized)
			memcpy(want, prev->id, sizeof(want));
		rv = relabel(r, &tk, prev, prev->key, r->back, &err);
		if (rv == VZ_OK)
			rv = switch_to(r, &tk, a, prev, &err);
		if (rv != VZ_OK && realign(r, &tk, &st, &act, gs, &n, &err) == VZ_OK)
			rv = sized ? settled_after(r, act, want, &err) : VZ_FAIL;
	} else if (staged) {
		/* No previous one: drop a renewal that never became active. */
		for (size_t i = 0; rv == VZ_OK && i < n; i++)
			if (!gs[i].was_previous && &gs[i] != a)
				rv = drop(r, &tk, &gs[i], &err);
		status = "dropped-next";
	} else {
		vz_err_set(&err, "'%s' has no previous certificate to go back to on token '%s'",
			   r->label, tok_token_info_of(tk.tok)->label);
		vz_err_hint(&err, "see 'vzp11 list'");
		rv = VZ_FAIL;
	}
	if (rv == VZ_OK)
		report(r, &tk, st, gs, n, status,
		       strcmp(status, "rolled-back") == 0
			       ? _("Rolled back: the previous certificate is active again.")
			       : _("Dropped the renewal that was not active yet."));
out:
	return end_run(&tk, st, rv, &err);
}

/* Deletes every renewal on trial except keep. */
static vz_rv drop_staged(struct rotate *r, vz_token *tk, struct group *gs, size_t n,
			 const struct group *a, const struct group *keep, vz_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (&gs[i] == a || &gs[i] == keep || gs[i].was_previous)
			continue;
		vz_note(r->g, "deleting '%s', left by an unfinished rotate", r->next);
		if (drop(r, tk, &gs[i], err) != VZ_OK)
			return VZ_FAIL;
	}
	return VZ_OK;
}

/* Checks the renewal against what the token holds; *done when it is the
 * active certificate already, *keep when it is on trial already. */
static vz_rv check_renewal(const struct rotate *r, const vz_store *st, const vz_entry *act,
			   struct group *gs, size_t n, const struct vz_import_src *src, bool *done,
			   const struct group **keep, vz_err *err)
{
	*done = X509_cmp(act->x509, src->leaf) == 0;
	*keep = NULL;
	if (*done)
		return VZ_OK;
	if (act->cert->id_len == 20 && memcmp(act->cert->id, src->id, 20) == 0) {
		vz_err_set(err, "the renewed certificate has the same key as the active one; "
				"nothing was changed");
		vz_err_hint(err, "put a certificate for the same key in place with 'vzp11 import "
				 "--replace'");
		return VZ_FAIL;
	}
	if (same_subject(act->x509, src->leaf, err) != VZ_OK)
		return VZ_FAIL;
	for (size_t i = 0; i < n; i++) {
		const vz_entry *e = entry_of(st, &gs[i]);
		bool it = gs[i].id_len == 20 && memcmp(gs[i].id, src->id, 20) == 0;

		if (gs[i].was_previous && it) {
			vz_err_set(err,
				   "this is the certificate the last rotate replaced (now '%s')",
				   r->previous);
			vz_err_hint(err, "go back to it with 'vzp11 rotate --rollback'");
			return VZ_FAIL;
		}
		if (gs[i].was_previous) {
			vz_err_set(err,
				   "'%s' still holds the certificate the last rotate replaced; "
				   "nothing was changed",
				   r->previous);
			vz_err_hint(err, "delete it with 'vzp11 rotate --finish' (or go back with "
					 "--rollback) before the next rotation");
			return VZ_FAIL;
		}
		if (it && e && X509_cmp(e->x509, src->leaf) == 0 && gs[i].key)
			*keep = &gs[i];
	}
	return VZ_OK;
}

/* Puts the renewal on the token as LABEL.next, unless keep is it already;
 * other renewals on trial go first. The token is closed after, either
 * way: it is finalized before the self-test's provider loads it. */
static vz_rv stage_renewal(struct rotate *r, vz_token *tk, vz_store **st, struct group *gs,
			   size_t n, const vz_entry *act, const struct group *keep,
			   const struct vz_import_src *src, tok_arrival *how, vz_err *err)
{
	vz_store *after = NULL;
	bool same, has_old, reuse_key;
	vz_rv rv = drop_staged(r, tk, gs, n, group_of(gs, n, act->cert), keep, err);

	if (rv == VZ_OK && !keep) {
		vz_store_free(*st);
		*st = NULL;
		rv = vz_store_load(tk->s, st, err);
		if (rv == VZ_OK)
			rv = vz_import_check(*st, src, &r->imp, &same, &has_old, &reuse_key, err);
		if (rv == VZ_OK) {
			rv = vz_import_apply(tk, *st, src, &r->imp, false, false, how, &after, err);
			vz_import_audit(tk, "rotate-import", *st, after, src, &r->imp, false, *how,
					rv == VZ_OK ? NULL : err);
		}
	}
	vz_store_free(*st);
	vz_store_free(after);
	*st = NULL;
	vz_token_close(tk);
	return rv;
}

/* The self-test of LABEL.next, with the PIN this run read: whether it
 * passed. With --json its checks go to *checks, else it prints them. */
static bool test_renewal(const struct rotate *r, tok_arrival how, json_t **checks)
{
	vz_global g2 = *r->g;
	char pinsrc[32];
	bool passed;
	int fd;

	if (!r->g->json && !r->g->quiet)
		printf(_("Imported the renewal as '%s'%s; self-test:\n"), r->next,
		       vz_import_way(how) ? "" : _(" (it was there already)"));
	fd = pin_fd(r, pinsrc, sizeof(pinsrc));
	if (fd >= 0)
		g2.pin_source = pinsrc;
	passed = vz_selftest(&g2, r->next, r->endpoint, r->cacert, r->g->json ? checks : NULL);
	if (fd >= 0)
		close(fd);
	return passed;
}

/* After the self-test, on the token opened again: the renewal (key id
 * id) becomes LABEL when it passed, else it is deleted again. *st, *act,
 * gs and *n describe the token after. */
static vz_rv switch_to_renewal(struct rotate *r, vz_token *tk, vz_store **st, const vz_entry **act,
			       struct group *gs, size_t *n, const unsigned char *id, bool passed,
			       vz_err *err)
{
	struct group *a, *b = NULL;
	vz_rv rv = open_settled(r, tk, st, act, gs, n, err);

	if (rv != VZ_OK)
		return rv;
	a = group_of(gs, *n, (*act)->cert);
	for (size_t i = 0; i < *n; i++)
		if (&gs[i] != a && !gs[i].was_previous && gs[i].id_len == 20 &&
		    memcmp(gs[i].id, id, 20) == 0)
			b = &gs[i];
	if (!passed) {
		if (b)
			rv = drop(r, tk, b, err);
		if (rv == VZ_OK)
			vz_err_set(err,
				   "the renewed certificate failed the self-test; it was "
				   "removed again and '%s' is unchanged",
				   r->label);
		vz_err_hint(err, "fix what the self-test names and run rotate again");
		return VZ_FAIL;
	}
	if (!b || !b->cert || !b->key) {
		vz_err_set(err, "the renewal is no longer on the token as '%s'", r->next);
		return VZ_FAIL;
	}
	rv = switch_to(r, tk, a, b, err);
	if (rv != VZ_OK && realign(r, tk, st, act, gs, n, err) == VZ_OK)
		rv = settled_after(r, *act, id, err);
	return rv;
}

/* Import as LABEL.next (unless there already), self-test, switch. */
static int rotate_new(struct rotate *r)
{
	struct vz_import_src src;
	vz_token tk = {0};
	vz_store *st = NULL;
	struct group gs[MAX_GROUPS];
	const struct group *keep = NULL;
	const vz_entry *act;
	tok_arrival how = TOK_ARRIVAL_UNKNOWN;
	vz_err err = {0};
	size_t n = 0;
	bool done = false, passed = true;
	json_t *checks = NULL;
	char msg[600];
	vz_rv rv;

	rv = vz_import_load(&r->imp, &src, &err);
	if (rv == VZ_OK)
		rv = open_settled(r, &tk, &st, &act, gs, &n, &err);
	if (rv == VZ_OK)
		rv = check_renewal(r, st, act, gs, n, &src, &done, &keep, &err);
	if (rv != VZ_OK || done)
		goto out;
	rv = stage_renewal(r, &tk, &st, gs, n, act, keep, &src, &how, &err);
	if (rv != VZ_OK)
		goto out;
	passed = test_renewal(r, how, &checks);
	rv = switch_to_renewal(r, &tk, &st, &act, gs, &n, src.id, passed, &err);
out:
	snprintf(
		msg, sizeof(msg),
		done ? _("The renewed certificate is active already; nothing was changed.")
		     : _("Rotated: the renewed certificate is '%s' now; the old one stays as '%s' "
			 "until 'vzp11 rotate --finish' (or 'vzp11 rotate --rollback' to go back)."),
		r->label, r->previous);
	if (rv == VZ_OK)
		report(r, &tk, st, gs, n, done ? "unchanged" : "rotated", msg);
	vz_store_free(st);
	vz_token_close(&tk);
	vz_import_src_free(&src);
	if (checks && !passed) /* the self-test's verdict, in its own words */
		vz_out_json(stdout,
			    json_pack("{s:s, s:o}", "status", "selftest-failed", "checks", checks));
	else
		json_decref(checks);
	if (rv != VZ_OK) {
		vz_report(&err);
		return vz_exit_code(rv == VZ_USAGE ? VZ_USAGE : VZ_FAIL);
	}
	return VZ_EXIT_OK;
}

/* ---- options ---- */

enum {
	O_LABEL = 1,
	O_PASSWORD_SOURCE,
	O_UNWRAP,
	O_ENV,
	O_ENDPOINT,
	O_CACERT,
	O_ROLLBACK,
	O_FINISH
};

static const vz_opt rotate_opts[] = {
	{"label", O_LABEL, "LABEL", N_("the active certificate's label (default: %s)"),
	 VZ_AS_LABEL},
	VZ_OPT("password-source", O_PASSWORD_SOURCE, "SRC",
	       N_("NEW.p12's password: env:VAR, file:PATH (mode 0600),\n"
		  "fd:N, stdin or prompt (default on a terminal)")),
	VZ_OPT("unwrap", O_UNWRAP, NULL,
	       N_("bring the new key wrapped (C_UnwrapKey), as import does")),
	{"env", O_ENV, "ENV", N_("also try a COV handshake with the renewal: tst, acc or prd"),
	 VZ_AS_ENV},
	{"endpoint", O_ENDPOINT, "URL", N_("... or with this COV endpoint"), VZ_AS_COV_ENDPOINT},
	{"cacert", O_CACERT, "FILE", N_("trust only the CA certificates in FILE for the server"),
	 VZ_AS_CACERT},
	VZ_OPT("rollback", O_ROLLBACK, NULL,
	       N_("make LABEL.previous active again (the current one\n"
		  "becomes LABEL.previous); without one, drop an\n"
		  "unfinished LABEL.next")),
	VZ_OPT("finish", O_FINISH, NULL,
	       N_("delete LABEL.previous (key and certificate) for good")),
	{0},
};

static int cmd_rotate(vz_global *g, int argc, char **argv);

/* The labels are written out: VZ_NEXT_SUFFIX, VZ_PREVIOUS_SUFFIX. */
const vz_command vz_cmd_rotate = {
	.name = "rotate",
	.run = cmd_rotate,
	.synopsis =
		"rotate NEW.p12 [--label LABEL] [--password-source SRC] [--env tst|acc|prd | --endpoint URL]\n"
		"      [--cacert FILE]\n"
		"rotate --rollback|--finish [--label LABEL]",
	.usage = N_(
		"rotate NEW.p12 [--label LABEL] [--password-source SRC]\n"
		"                                  [--unwrap] [--env tst|acc|prd | --endpoint URL]\n"
		"                                  [--cacert FILE]\n"
		"rotate --rollback [--label LABEL]\n"
		"rotate --finish [--label LABEL]"),
	.about = N_("Put a renewed system certificate in place of the active one without a gap.\n"
		    "The renewal must be for the same organisation (same subject apart from its\n"
		    "serial number) with a new key. It is imported beside the active one as\n"
		    "LABEL.next, passes the self-test (with --env or --endpoint also a COV\n"
		    "handshake), and then becomes LABEL; the old one stays as LABEL.previous.\n"
		    "Each step is one label change on the token: if vzp11 stops anywhere, LABEL\n"
		    "still names one complete certificate and key, and the next rotate,\n"
		    "--rollback or --finish completes what was left.\n"),
	.opts = rotate_opts,
};

/* One option into r; *modes counts --rollback and --finish. */
static void take_option(struct rotate *r, int o, const char *arg, int *modes)
{
	switch (o) {
	case O_LABEL:
		r->label = arg;
		break;
	case O_PASSWORD_SOURCE:
		r->imp.password_source = arg;
		break;
	case O_UNWRAP:
		r->imp.unwrap = true;
		break;
	case O_ENV:
		r->env = arg;
		break;
	case O_ENDPOINT:
		r->endpoint = arg;
		break;
	case O_CACERT:
		r->cacert = arg;
		break;
	case O_ROLLBACK:
		r->mode = M_ROLLBACK;
		(*modes)++;
		break;
	case O_FINISH:
		r->mode = M_FINISH;
		(*modes)++;
		break;
	}
}

/* One mode, the arguments and options it takes, a label that fits: 0, or
 * the usage exit code. */
static int check_mode(const struct rotate *r, int modes, int argc)
{
	if (modes > 1)
		return vz_usage("rotate", "--rollback and --finish exclude each other");
	if (r->mode == M_ROTATE && optind + 1 != argc)
		return vz_usage("rotate", optind == argc ? "NEW.p12 is missing (or give --rollback "
							   "or --finish)"
							 : "too many arguments");
	if (r->mode != M_ROTATE && optind != argc)
		return vz_usage("rotate", "--rollback and --finish take no file");
	if (r->mode != M_ROTATE &&
	    (r->imp.password_source || r->imp.unwrap || r->env || r->endpoint || r->cacert))
		return vz_usage("rotate", "--rollback and --finish take only --label");
	if (r->label[0] == '\0' || strlen(r->label) > 100)
		return vz_usage("rotate", "the label must be 1 to 100 characters long");
	return 0;
}

/* -1 after --help, 0 when the options are good, else the exit code. */
static int parse(vz_global *g, int argc, char **argv, struct rotate *r)
{
	vz_err err = {0};
	const char *arg;
	int o, modes = 0, ret;

	while ((o = vz_opt_next(g, &vz_cmd_rotate, argc, argv, &arg)) > 0)
		take_option(r, o, arg, &modes);
	if (o == VZ_OPT_HELP)
		return -1;
	if (o != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_rotate, o, argv);
	ret = check_mode(r, modes, argc);
	if (ret != 0)
		return ret;
	snprintf(r->next, sizeof(r->next), "%s" VZ_NEXT_SUFFIX, r->label);
	snprintf(r->previous, sizeof(r->previous), "%s" VZ_PREVIOUS_SUFFIX, r->label);
	snprintf(r->back, sizeof(r->back), "%s" VZ_ROLLBACK_SUFFIX, r->label);
	r->imp.file = r->mode == M_ROTATE ? argv[optind] : NULL;
	r->imp.label = r->next;
	if ((r->imp.password_source &&
	     vz_secret_check_source(r->imp.password_source, &err) != VZ_OK) ||
	    (g->pin_source && vz_secret_check_source(g->pin_source, &err) != VZ_OK)) {
		vz_report(&err);
		return VZ_EXIT_USAGE;
	}
	r->cacert = r->cacert ? r->cacert : vz_env("VZP11_CACERT");
	if (r->mode != M_ROTATE || (!r->env && !r->endpoint && !vz_env("VZP11_ENV")))
		return 0;
	return vz_target("rotate", &r->env, &r->endpoint, vz_cov_endpoint);
}

static int cmd_rotate(vz_global *g, int argc, char **argv)
{
	struct rotate r = {.g = g, .label = VZ_DEFAULT_LABEL, .lock_fd = -1};
	vz_err err = {0};
	int ret;

	ret = parse(g, argc, argv, &r);
	if (ret != 0)
		return ret == -1 ? VZ_EXIT_OK : ret;
	r.steps = json_array();
	if (!r.steps || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, _("vzp11: out of memory\n"));
		json_decref(r.steps);
		return VZ_EXIT_FAIL;
	}
	/* The PIN once, for the several openings of the token (and the
	 * self-test's provider); wiped at the end. */
	if (vz_secret_read(g->pin_source, _("token PIN"), &r.pin, &err) != VZ_OK) {
		vz_report(&err);
		ret = VZ_EXIT_FAIL;
		goto out;
	}
	r.have_pin = true;
	r.action = r.mode == M_FINISH	  ? "rotate-finish"
		   : r.mode == M_ROLLBACK ? "rotate-rollback"
					  : "rotate";
	ret = r.mode == M_FINISH     ? rotate_finish(&r)
	      : r.mode == M_ROLLBACK ? rotate_rollback(&r)
				     : rotate_new(&r);
	if (ret == VZ_EXIT_OK && vz_out_flush(stdout, &err) != VZ_OK) {
		vz_report(&err);
		ret = VZ_EXIT_FAIL;
	}
out:
	vz_toklock_release(r.lock_fd);
	vz_secret_wipe(&r.pin);
	json_decref(r.steps);
	curl_global_cleanup();
	return ret;
}
