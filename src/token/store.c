/* store.c - pairing certificates with their keys through CKA_ID. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "token/token.h"

void vz_store_free(vz_store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_entries; i++)
		sk_X509_free(st->entries[i].chain);
	for (size_t i = 0; st->x509s && i < st->n_certs; i++)
		X509_free(st->x509s[i]);
	free(st->x509s);
	sk_X509_free(st->pool);
	free(st->entries);
	tok_objs_free(st->certs, st->n_certs);
	tok_objs_free(st->keys, st->n_keys);
	tok_objs_free(st->pubs, st->n_pubs);
	free(st);
}

static bool same_id(const tok_obj *a, const tok_obj *b)
{
	return a->id_len > 0 && a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

static const tok_obj *match(const tok_obj *objs, size_t n, const tok_obj *cert)
{
	for (size_t i = 0; i < n; i++)
		if (same_id(&objs[i], cert))
			return &objs[i];
	return NULL;
}

vz_rv vz_store_load(tok_session *s, vz_store **out, vz_err *err)
{
	vz_store *st = calloc(1, sizeof(*st));
	tok_bytes none = {0};
	tok_err te = {0};
	tok_rv r;
	vz_rv ret = VZ_FAIL;

	if (!st) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	r = tok_find(s, TOK_CERT, NULL, none, &st->certs, &st->n_certs, &te);
	if (r == TOK_OK)
		r = tok_find(s, TOK_PRIVKEY, NULL, none, &st->keys, &st->n_keys, &te);
	if (r == TOK_OK)
		r = tok_find(s, TOK_PUBKEY, NULL, none, &st->pubs, &st->n_pubs, &te);
	if (r != TOK_OK) {
		vz_err_from_tok(err, &te, r);
		goto out;
	}
	st->x509s = calloc(st->n_certs + 1, sizeof(*st->x509s));
	st->entries = calloc(st->n_certs + 1, sizeof(*st->entries));
	st->pool = sk_X509_new_null();
	if (!st->x509s || !st->entries || !st->pool) {
		vz_err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < st->n_certs; i++) {
		const unsigned char *p = st->certs[i].value;

		if (p)
			st->x509s[i] = d2i_X509(NULL, &p, (long)st->certs[i].value_len);
		/* A token without certificate categories (openCryptoki 3.8), or
		 * a certificate without one (written by another tool): the
		 * certificate itself says whether it is a CA's. */
		if (st->x509s[i] &&
		    (st->certs[i].lacks & (TOK_LACKS_CATEGORY | TOK_LACKS_CATEGORY_VALUE)))
			st->certs[i].authority = X509_check_ca(st->x509s[i]) > 0;
		if (st->x509s[i] && !sk_X509_push(st->pool, st->x509s[i])) {
			vz_err_set(err, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < st->n_certs; i++) {
		const tok_obj *key = match(st->keys, st->n_keys, &st->certs[i]);
		vz_entry *e;

		if (!key || !st->x509s[i] || st->certs[i].authority)
			continue;
		e = &st->entries[st->n_entries];
		e->cert = &st->certs[i];
		e->key = key;
		e->pub = match(st->pubs, st->n_pubs, &st->certs[i]);
		e->x509 = st->x509s[i];
		if (vz_cert_info_get(e->x509, &e->info, err) != VZ_OK)
			goto out;
		e->chain = vz_cert_chain(e->x509, st->pool, NULL);
		if (!e->chain) {
			vz_err_set(err, "out of memory");
			goto out;
		}
		st->n_entries++;
	}
	*out = st;
	st = NULL;
	ret = VZ_OK;
out:
	vz_store_free(st);
	return ret;
}

bool vz_obj_has_label(const tok_obj *o, const char *label)
{
	return o->label && strcmp(o->label, label) == 0;
}

/* 0: the key carries the label too; 1: another label; 2: LABEL.previous. */
static int rank(const vz_entry *e, const char *label)
{
	const char *k = e->key->label ? e->key->label : "";
	size_t n = strlen(label);

	if (strcmp(k, label) == 0)
		return 0;
	if (strncmp(k, label, n) == 0 && strcmp(k + n, VZ_PREVIOUS_SUFFIX) == 0)
		return 2;
	return 1;
}

const vz_entry *vz_store_resolve(const vz_store *st, const char *label, size_t *n)
{
	const vz_entry *best = NULL;
	int best_rank = 3;

	*n = 0;
	for (size_t i = 0; i < st->n_entries; i++) {
		const vz_entry *e = &st->entries[i];
		int r;

		if (!vz_obj_has_label(e->cert, label))
			continue;
		r = rank(e, label);
		if (r < best_rank) {
			best = e;
			best_rank = r;
			*n = 1;
		} else if (r == best_rank) {
			(*n)++;
		}
	}
	return *n == 1 ? best : NULL;
}

long vz_store_find_cert(const vz_store *st, const X509 *c)
{
	for (size_t i = 0; i < st->n_certs; i++)
		if (st->x509s[i] && X509_cmp(st->x509s[i], c) == 0)
			return (long)i;
	return -1;
}

/* A certificate that is not a CA's, with this label when one is given. */
static bool has_user_cert(const vz_store *st, const char *label)
{
	for (size_t i = 0; i < st->n_certs; i++)
		if (!st->certs[i].authority && (!label || vz_obj_has_label(&st->certs[i], label)))
			return true;
	return false;
}

vz_rv vz_store_load_or_login(const vz_global *g, vz_token *tk, const char *label, vz_store **out,
			     vz_err *err)
{
	vz_store *st = NULL;
	vz_rv r;

	r = vz_store_load(tk->s, &st, err);
	if (r != VZ_OK)
		return r;
	if (tk->logged_in || has_user_cert(st, label) ||
	    !tok_token_info_of(tk->tok)->login_required) {
		*out = st;
		return VZ_OK;
	}
	/* Some tokens show certificates only after login (YubiHSM always). */
	vz_store_free(st);
	st = NULL;
	r = vz_token_login(g, tk, err);
	if (r == VZ_OK)
		r = vz_store_load(tk->s, &st, err);
	if (r == VZ_OK)
		*out = st;
	return r;
}
