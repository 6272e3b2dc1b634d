/* txn.c - writes that happen completely or not at all: every object created
 * is recorded, and an abort destroys them in reverse order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok-int.h"

/* A destroyed public object, as the template that creates it again. */
struct gone {
	CK_ATTRIBUTE attrs[24];
	CK_ULONG n;
};

/* An attribute change on an object that was there before, with the old
 * values to write back on abort. */
struct changed {
	CK_OBJECT_HANDLE h;
	CK_ATTRIBUTE old[4];
	CK_ULONG n;
};

struct tok_txn {
	tok_session *s;
	CK_OBJECT_HANDLE *made;
	size_t n, cap;
	struct gone *gone;
	size_t n_gone;
	struct changed *changed;
	size_t n_changed;
	bool irreversible;  /* a private object was destroyed */
	bool protected_key; /* an adopted key was made sensitive / not extractable */
};

tok_rv tok_txn_begin(tok_session *s, tok_txn **out, tok_err *err)
{
	tok_txn *x;

	if (!s->rw) {
		tok_err_set(err, "internal error: writing needs a read-write session");
		return TOK_ERR;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	x->s = s;
	*out = x;
	return TOK_OK;
}

tok_session *tok_txn_session(tok_txn *x)
{
	return x->s;
}

tok_rv tok_txn_reserve(tok_txn *x, size_t n, tok_err *err)
{
	while (x->cap - x->n < n) {
		size_t ncap = x->cap ? x->cap * 2 : 8;
		CK_OBJECT_HANDLE *grown = realloc(x->made, ncap * sizeof(*grown));

		if (!grown) {
			tok_err_set(err, "out of memory");
			return TOK_ERR;
		}
		x->made = grown;
		x->cap = ncap;
	}
	return TOK_OK;
}

void tok_txn_record(tok_txn *x, CK_OBJECT_HANDLE h)
{
	x->made[x->n++] = h;
}

/* Room to record one more object, before it is made. */
static tok_rv make_room(tok_txn *x, tok_err *err)
{
	return tok_txn_reserve(x, 1, err);
}

struct create_ctx {
	tok_txn *x;
	CK_OBJECT_HANDLE h;
};

static CK_RV create_once(void *ctx, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	struct create_ctx *c = ctx;

	return c->x->s->t->f->C_CreateObject(c->x->s->h, tmpl, n, &c->h);
}

/* C_CreateObject of one object, recorded; the last n_opt attributes of the
 * template are left out one by one where the token does not know them. */
static tok_rv create(tok_txn *x, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ULONG n_opt, const char *what,
		     tok_err *err)
{
	struct create_ctx c = {x, CK_INVALID_HANDLE};
	unsigned dropped = 0;
	CK_RV rv;

	if (make_room(x, err) != TOK_OK)
		return TOK_ERR;
	rv = tok_try_degrading(tmpl, n, n_opt, create_once, &c, &dropped);
	if (rv != CKR_OK) {
		char func[64];

		snprintf(func, sizeof(func), "C_CreateObject (%s)", what);
		return tok_err_ckr(err, func, rv);
	}
	x->made[x->n++] = c.h;
	return TOK_OK;
}

#define ATTR(t, p, l) ((CK_ATTRIBUTE){(t), (void *)(p), (CK_ULONG)(l)})
#define ATTR_B(t, b)  ATTR((t), (b).p, (b).len)

/* Puts text in front of err->msg, cutting the end if it does not fit. */
static void prefix_msg(tok_err *err, const char *text)
{
	size_t used = strlen(text), rest = strlen(err->msg);

	if (used >= sizeof(err->msg))
		return;
	if (used + rest >= sizeof(err->msg))
		rest = sizeof(err->msg) - used - 1;
	memmove(err->msg + used, err->msg, rest);
	memcpy(err->msg, text, used);
	err->msg[used + rest] = '\0';
}

/* The private key by C_UnwrapKey, recorded like a created object. The
 * template is the created one without key material, plus vzp11's mark. */
static tok_rv unwrap_priv(tok_txn *x, const CK_ATTRIBUTE *common, CK_ULONG n, tok_bytes pkcs8,
			  const CK_MECHANISM_TYPE *mechs, size_t n_mechs, tok_err *err)
{
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[24];
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG nt = 0;
	tok_rv r;

	if (make_room(x, err) != TOK_OK)
		return TOK_ERR;
	for (CK_ULONG i = 0; i < n; i++)
		t[nt++] = common[i];
	t[nt++] = ATTR(CKA_ALLOWED_MECHANISMS, mechs, n_mechs * sizeof(*mechs));
	t[nt++] = ATTR(CKA_WRAP_WITH_TRUSTED, &yes, sizeof(yes));
	r = tok_unwrap_private(x->s, t, nt, 2, pkcs8, &h, err);
	if (r != TOK_OK)
		return r;
	x->made[x->n++] = h;
	return TOK_OK;
}

tok_rv tok_txn_add_keypair(tok_txn *x, const char *label, tok_bytes id, tok_bytes subject,
			   const tok_key *key, tok_err *err)
{
	tok_arrival how;

	return tok_txn_import_keypair(x, label, id, subject, key, TOK_IMPORT_AUTO, &how, err);
}

/* The two templates of a key pair and the values they point to: filled in
 * place and used there (the attributes point into the struct). */
struct keypair_tmpl {
	CK_OBJECT_CLASS priv_class, pub_class;
	CK_BBOOL yes, no;
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE priv[24], pub[16];
	CK_ULONG np, nq;
	CK_ULONG n_common; /* priv's attributes before the key material */
	const CK_MECHANISM_TYPE *mechs;
	size_t n_mechs;
};

/* What the two objects are and may do, and their names: everything but
 * the key material. */
static void keypair_uses(struct keypair_tmpl *k, const char *label, tok_bytes id, tok_bytes subject)
{
	CK_ATTRIBUTE *priv = k->priv, *pub = k->pub;
	CK_ULONG np = 0, nq = 0;

	priv[np++] = ATTR(CKA_CLASS, &k->priv_class, sizeof(k->priv_class));
	priv[np++] = ATTR(CKA_KEY_TYPE, &k->kt, sizeof(k->kt));
	priv[np++] = ATTR(CKA_TOKEN, &k->yes, sizeof(k->yes));
	priv[np++] = ATTR(CKA_PRIVATE, &k->yes, sizeof(k->yes));
	priv[np++] = ATTR(CKA_SENSITIVE, &k->yes, sizeof(k->yes));
	priv[np++] = ATTR(CKA_EXTRACTABLE, &k->no, sizeof(k->no));
	priv[np++] = ATTR(CKA_SIGN, &k->yes, sizeof(k->yes));
	priv[np++] = ATTR(CKA_SIGN_RECOVER, &k->no, sizeof(k->no));
	priv[np++] = ATTR(CKA_DECRYPT, &k->no, sizeof(k->no));
	priv[np++] = ATTR(CKA_UNWRAP, &k->no, sizeof(k->no));
	priv[np++] = ATTR(CKA_DERIVE, &k->no, sizeof(k->no));
	priv[np++] = ATTR(CKA_LABEL, label, strlen(label));
	priv[np++] = ATTR_B(CKA_ID, id);
	priv[np++] = ATTR_B(CKA_SUBJECT, subject);
	k->n_common = np;

	pub[nq++] = ATTR(CKA_CLASS, &k->pub_class, sizeof(k->pub_class));
	pub[nq++] = ATTR(CKA_KEY_TYPE, &k->kt, sizeof(k->kt));
	pub[nq++] = ATTR(CKA_TOKEN, &k->yes, sizeof(k->yes));
	pub[nq++] = ATTR(CKA_PRIVATE, &k->no, sizeof(k->no));
	pub[nq++] = ATTR(CKA_VERIFY, &k->yes, sizeof(k->yes));
	pub[nq++] = ATTR(CKA_ENCRYPT, &k->no, sizeof(k->no));
	pub[nq++] = ATTR(CKA_WRAP, &k->no, sizeof(k->no));
	pub[nq++] = ATTR(CKA_LABEL, label, strlen(label));
	pub[nq++] = ATTR_B(CKA_ID, id);
	pub[nq++] = ATTR_B(CKA_SUBJECT, subject);
	k->np = np;
	k->nq = nq;
}

/* The key material after the common attributes: the whole private key,
 * the public half in the public key. */
static void keypair_material(struct keypair_tmpl *k, const tok_key *key)
{
	if (k->kt == CKK_RSA) {
		k->priv[k->np++] = ATTR_B(CKA_MODULUS, key->n);
		k->priv[k->np++] = ATTR_B(CKA_PUBLIC_EXPONENT, key->e);
		k->priv[k->np++] = ATTR_B(CKA_PRIVATE_EXPONENT, key->d);
		k->priv[k->np++] = ATTR_B(CKA_PRIME_1, key->p);
		k->priv[k->np++] = ATTR_B(CKA_PRIME_2, key->q);
		k->priv[k->np++] = ATTR_B(CKA_EXPONENT_1, key->dp);
		k->priv[k->np++] = ATTR_B(CKA_EXPONENT_2, key->dq);
		k->priv[k->np++] = ATTR_B(CKA_COEFFICIENT, key->qinv);
		k->pub[k->nq++] = ATTR_B(CKA_MODULUS, key->n);
		k->pub[k->nq++] = ATTR_B(CKA_PUBLIC_EXPONENT, key->e);
	} else {
		k->priv[k->np++] = ATTR_B(CKA_EC_PARAMS, key->ec_params);
		k->priv[k->np++] = ATTR_B(CKA_VALUE, key->ec_value);
		k->pub[k->nq++] = ATTR_B(CKA_EC_PARAMS, key->ec_params);
		k->pub[k->nq++] = ATTR_B(CKA_EC_POINT, key->ec_point);
	}
}

/* Both templates for key; only RSA and EC keys have one. */
static tok_rv keypair_templates(struct keypair_tmpl *k, const char *label, tok_bytes id,
				tok_bytes subject, const tok_key *key, tok_err *err)
{
	if (key->type == TOK_KEY_RSA) {
		k->kt = CKK_RSA;
	} else if (key->type == TOK_KEY_EC) {
		k->kt = CKK_EC;
	} else {
		tok_err_set(err, "internal error: unknown key type");
		return TOK_ERR;
	}
	k->priv_class = CKO_PRIVATE_KEY;
	k->pub_class = CKO_PUBLIC_KEY;
	k->yes = CK_TRUE;
	k->no = CK_FALSE;
	keypair_uses(k, label, id, subject);
	keypair_material(k, key);
	/* Sign only, and only with the signature mechanisms TLS uses: no raw
	 * RSA (CKM_RSA_X_509), which would let the token decrypt. Keep the
	 * hash-and-sign variants: pkcs11-provider signs TLS 1.3's RSA-PSS
	 * with CKM_SHA256_RSA_PKCS_PSS and friends and refuses itself ("mechanism
	 * not allowed with this key") when the key's list lacks them. Last in
	 * the template and optional: a token that does not know the attribute
	 * gets the key without it (show says so). */
	k->mechs = tok_sign_mechs(k->kt, &k->n_mechs);
	k->priv[k->np++] = ATTR(CKA_ALLOWED_MECHANISMS, k->mechs, k->n_mechs * sizeof(*k->mechs));
	return TOK_OK;
}

/* The private key wrapped, as asked or because the token refused it in the
 * clear (refused: that refusal, else ""); a failure says what was tried. */
static tok_rv unwrap_instead(tok_txn *x, const struct keypair_tmpl *k, const tok_key *key,
			     const char *refused, tok_err *err)
{
	tok_rv r = unwrap_priv(x, k->priv, k->n_common, key->pkcs8, k->mechs, k->n_mechs, err);

	/* What the token cannot do at all is said as such. */
	if (r == TOK_UNSUPPORTED) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		snprintf(err->msg, sizeof(err->msg),
			 _("token '%s' cannot take an existing private key over PKCS#11: "
			   "%s%s"),
			 x->s->t->info.label, refused, why);
	} else if (r != TOK_OK && refused[0]) {
		char prefix[260];

		snprintf(prefix, sizeof(prefix), _("%sunwrapping it failed: "), refused);
		prefix_msg(err, prefix);
	}
	return r;
}

/* The private key on the token: in the clear unless way says unwrap. A
 * token that refuses key material in the clear (HSMs in FIPS mode) takes
 * it wrapped. *arrived is written on success. */
static tok_rv put_private(tok_txn *x, struct keypair_tmpl *k, const tok_key *key,
			  tok_import_way way, tok_arrival *arrived, tok_err *err)
{
	char refused[200] = "";
	tok_rv r;

	if (way == TOK_IMPORT_AUTO) {
		r = create(x, k->priv, k->np, 1, "private key", err);
		if (r == TOK_OK)
			*arrived = TOK_ARRIVAL_CREATED;
		if (r == TOK_OK || !err->has_ckr || !tok_refuses_clear_key(err->ckr))
			return r;
		snprintf(refused, sizeof(refused),
			 _("the token refused the key in the clear (%s), and "),
			 tok_ckr_name(err->ckr));
	}
	r = unwrap_instead(x, k, key, refused, err);
	if (r == TOK_OK)
		*arrived = TOK_ARRIVAL_UNWRAPPED;
	return r;
}

tok_rv tok_txn_import_keypair(tok_txn *x, const char *label, tok_bytes id, tok_bytes subject,
			      const tok_key *key, tok_import_way way, tok_arrival *how,
			      tok_err *err)
{
	struct keypair_tmpl k;
	tok_arrival arrived;
	tok_rv r;

	r = keypair_templates(&k, label, id, subject, key, err);
	if (r == TOK_OK)
		r = put_private(x, &k, key, way, &arrived, err);
	if (r == TOK_OK)
		r = create(x, k.pub, k.nq, 0, "public key", err);
	if (r == TOK_OK)
		*how = arrived;
	return r;
}

tok_rv tok_txn_add_cert(tok_txn *x, const tok_cert *c, tok_err *err)
{
	CK_OBJECT_CLASS klass = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_ULONG category = c->authority ? CK_CERTIFICATE_CATEGORY_AUTHORITY
					 : CK_CERTIFICATE_CATEGORY_TOKEN_USER;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		ATTR(CKA_CLASS, &klass, sizeof(klass)),
		ATTR(CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)),
		ATTR(CKA_TOKEN, &yes, sizeof(yes)),
		ATTR(CKA_PRIVATE, &no, sizeof(no)),
		ATTR_B(CKA_VALUE, c->der),
		ATTR_B(CKA_SUBJECT, c->subject),
		ATTR_B(CKA_ISSUER, c->issuer),
		ATTR_B(CKA_SERIAL_NUMBER, c->serial),
		ATTR_B(CKA_ID, c->id),
		ATTR(CKA_LABEL, c->label, strlen(c->label)),
		/* optional: openCryptoki 3.8 does not know it */
		ATTR(CKA_CERTIFICATE_CATEGORY, &category, sizeof(category)),
	};

	return create(x, t, ARRAY_SIZE(t), 1, c->authority ? "CA certificate" : "certificate", err);
}

/* Attributes that describe a public object and may be given to
 * C_CreateObject; values the token computes itself are left out. */
static const CK_ATTRIBUTE_TYPE kept_types[] = {
	CKA_CLASS,
	CKA_TOKEN,
	CKA_PRIVATE,
	CKA_LABEL,
	CKA_ID,
	CKA_CERTIFICATE_TYPE,
	CKA_CERTIFICATE_CATEGORY,
	CKA_VALUE,
	CKA_SUBJECT,
	CKA_ISSUER,
	CKA_SERIAL_NUMBER,
	CKA_KEY_TYPE,
	CKA_MODULUS,
	CKA_PUBLIC_EXPONENT,
	CKA_EC_PARAMS,
	CKA_EC_POINT,
	CKA_VERIFY,
	CKA_VERIFY_RECOVER,
	CKA_ENCRYPT,
	CKA_WRAP,
	CKA_DERIVE,
	CKA_MODIFIABLE,
};

static void gone_free(struct gone *g)
{
	for (CK_ULONG i = 0; i < g->n; i++)
		free(g->attrs[i].pValue);
	g->n = 0;
}

/* Reads what is needed to create a public object again. */
static tok_rv remember(tok_txn *x, CK_OBJECT_HANDLE h, struct gone *g, bool *is_private,
		       tok_err *err)
{
	CK_FUNCTION_LIST *f = x->s->t->f;
	CK_OBJECT_CLASS klass = 0;
	CK_BBOOL priv = CK_FALSE;
	CK_ATTRIBUTE probe[] = {{CKA_CLASS, &klass, sizeof(klass)},
				{CKA_PRIVATE, &priv, sizeof(priv)}};
	CK_RV rv;

	g->n = 0;
	rv = f->C_GetAttributeValue(x->s->h, h, probe, ARRAY_SIZE(probe));
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE)
		return tok_err_ckr(err, "C_GetAttributeValue", rv);
	*is_private = klass == CKO_PRIVATE_KEY || klass == CKO_SECRET_KEY || priv == CK_TRUE;
	if (*is_private)
		return TOK_OK;
	for (size_t i = 0; i < ARRAY_SIZE(kept_types); i++) {
		CK_ATTRIBUTE a = {kept_types[i], NULL, 0};

		rv = f->C_GetAttributeValue(x->s->h, h, &a, 1);
		if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
		    (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
			continue;
		if (rv == CKR_OK) {
			a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
			if (!a.pValue) {
				gone_free(g);
				tok_err_set(err, "out of memory");
				return TOK_ERR;
			}
			rv = f->C_GetAttributeValue(x->s->h, h, &a, 1);
		}
		if (rv != CKR_OK) {
			free(a.pValue);
			gone_free(g);
			return tok_err_ckr(err, "C_GetAttributeValue", rv);
		}
		g->attrs[g->n++] = a;
	}
	return TOK_OK;
}

tok_rv tok_txn_destroy(tok_txn *x, unsigned long handle, tok_err *err)
{
	struct gone g = {.n = 0};
	struct gone *grown;
	bool is_private = false;
	tok_rv r;
	CK_RV rv;

	r = remember(x, handle, &g, &is_private, err);
	if (r != TOK_OK)
		return r;
	if (!is_private) {
		grown = realloc(x->gone, (x->n_gone + 1) * sizeof(*grown));
		if (!grown) {
			gone_free(&g);
			tok_err_set(err, "out of memory");
			return TOK_ERR;
		}
		x->gone = grown;
	}
	rv = x->s->t->f->C_DestroyObject(x->s->h, handle);
	if (rv != CKR_OK) {
		gone_free(&g);
		return tok_err_ckr(err, "C_DestroyObject", rv);
	}
	if (is_private)
		x->irreversible = true;
	else
		x->gone[x->n_gone++] = g;
	return TOK_OK;
}

static void changed_free(struct changed *c)
{
	for (CK_ULONG i = 0; i < c->n; i++)
		free(c->old[i].pValue);
	c->n = 0;
}

static void txn_free(tok_txn *x)
{
	for (size_t i = 0; i < x->n_gone; i++)
		gone_free(&x->gone[i]);
	free(x->gone);
	for (size_t i = 0; i < x->n_changed; i++)
		changed_free(&x->changed[i]);
	free(x->changed);
	free(x->made);
	free(x);
}

void tok_txn_commit(tok_txn *x)
{
	if (x)
		txn_free(x);
}

tok_rv tok_txn_abort(tok_txn *x, tok_err *err)
{
	tok_rv ret = TOK_OK;
	size_t left = 0, lost = 0, unrestored = 0;

	if (!x)
		return TOK_OK;
	for (size_t i = x->n; i-- > 0;) {
		CK_RV rv = x->s->t->f->C_DestroyObject(x->s->h, x->made[i]);

		if (rv != CKR_OK)
			left++;
	}
	for (size_t i = x->n_gone; i-- > 0;) {
		CK_OBJECT_HANDLE h;
		CK_RV rv = x->s->t->f->C_CreateObject(x->s->h, x->gone[i].attrs, x->gone[i].n, &h);

		if (rv != CKR_OK)
			lost++;
	}
	for (size_t i = x->n_changed; i-- > 0;) {
		struct changed *c = &x->changed[i];

		if (x->s->t->f->C_SetAttributeValue(x->s->h, c->h, c->old, c->n) != CKR_OK)
			unrestored++;
	}
	if (!left && !lost && !unrestored && !x->irreversible && x->protected_key) {
		tok_err_set(err,
			    "the token is as it was, except that the key that was to be "
			    "adopted stays sensitive and not extractable (that cannot be undone)");
		tok_err_hint(err, "the key is only safer so; import again once the cause is "
				  "fixed");
		ret = TOK_ERR;
	} else if (left || lost || unrestored || x->irreversible) {
		tok_err_set(err,
			    "the token could not be put back as it was: %zu new object(s) "
			    "remain, %zu removed object(s) are missing, %zu object(s) keep "
			    "a new label or CKA_ID%s",
			    left, lost, unrestored,
			    x->irreversible ? _(", a private key was removed") : "");
		tok_err_hint(err,
			     "check with 'vzp11 list' and remove leftovers with 'vzp11 remove'");
		ret = TOK_ERR;
	}
	txn_free(x);
	return ret;
}

/* Room for one more attribute change. */
static struct changed *new_change(tok_txn *x, tok_err *err)
{
	struct changed *grown = realloc(x->changed, (x->n_changed + 1) * sizeof(*grown));

	if (!grown) {
		tok_err_set(err, "out of memory");
		return NULL;
	}
	x->changed = grown;
	memset(&x->changed[x->n_changed], 0, sizeof(*grown));
	return &x->changed[x->n_changed];
}

/* Reads the current values of the attributes in set (two passes) into c,
 * so that an abort can write them back. */
static tok_rv read_old(tok_txn *x, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *set, CK_ULONG n,
		       struct changed *c, tok_err *err)
{
	CK_FUNCTION_LIST *f = x->s->t->f;

	c->h = h;
	for (CK_ULONG i = 0; i < n && i < ARRAY_SIZE(c->old); i++) {
		CK_ATTRIBUTE a = {set[i].type, NULL, 0};
		CK_RV rv = f->C_GetAttributeValue(x->s->h, h, &a, 1);

		if (rv == CKR_OK && a.ulValueLen != CK_UNAVAILABLE_INFORMATION) {
			a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
			if (!a.pValue) {
				changed_free(c);
				tok_err_set(err, "out of memory");
				return TOK_ERR;
			}
			rv = f->C_GetAttributeValue(x->s->h, h, &a, 1);
		}
		if (rv != CKR_OK) {
			free(a.pValue);
			changed_free(c);
			return tok_err_ckr(err, "C_GetAttributeValue", rv);
		}
		c->old[c->n++] = a;
	}
	return TOK_OK;
}

/* C_SetAttributeValue of set on an object that was there before; the old
 * values are kept for an abort. */
static tok_rv set_undoable(tok_txn *x, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *set, CK_ULONG n,
			   const char *what, tok_err *err)
{
	struct changed *c = new_change(x, err);
	char func[80];
	tok_rv r;
	CK_RV rv;

	if (!c)
		return TOK_ERR;
	r = read_old(x, h, set, n, c, err);
	if (r != TOK_OK)
		return r;
	rv = x->s->t->f->C_SetAttributeValue(x->s->h, h, set, n);
	if (rv != CKR_OK) {
		changed_free(c);
		snprintf(func, sizeof(func), "C_SetAttributeValue (%s)", what);
		return tok_err_ckr(err, func, rv);
	}
	x->n_changed++;
	return TOK_OK;
}

/* What a token answers when it will not change an attribute this way. */
static bool refuses_change(CK_RV rv)
{
	return rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
	       rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT ||
	       rv == CKR_ACTION_PROHIBITED || rv == CKR_FUNCTION_NOT_SUPPORTED ||
	       rv == CKR_KEY_FUNCTION_NOT_PERMITTED;
}

/* A yes/no attribute of the key as the token has it: 1 yes, 0 no, -1 no
 * clear answer. */
static int read_bool(tok_txn *x, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0xff;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};

	if (x->s->t->f->C_GetAttributeValue(x->s->h, h, &a, 1) != CKR_OK ||
	    a.ulValueLen != sizeof(v) || (v != CK_TRUE && v != CK_FALSE))
		return -1;
	return v == CK_TRUE;
}

tok_rv tok_txn_adopt_keypair(tok_txn *x, unsigned long priv, unsigned long pub, const char *label,
			     tok_bytes id, tok_bytes subject, const tok_key *key, tok_err *err)
{
	static const CK_ATTRIBUTE_TYPE uses[] = {CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE,
						 CKA_SIGN_RECOVER};
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE names[] = {
		ATTR(CKA_LABEL, label, strlen(label)),
		ATTR_B(CKA_ID, id),
	};
	size_t n_mechs;
	const CK_MECHANISM_TYPE *mechs =
		tok_sign_mechs(key->type == TOK_KEY_RSA ? CKK_RSA : CKK_EC, &n_mechs);
	CK_ATTRIBUTE allowed = ATTR(CKA_ALLOWED_MECHANISMS, mechs, n_mechs * sizeof(*mechs));
	tok_rv r;

	r = set_undoable(x, priv, names, ARRAY_SIZE(names), "label and CKA_ID of the key", err);
	if (r != TOK_OK)
		return r;
	/* Sign only where the token lets it; a refusal leaves that use as it
	 * is (show says so), any other answer is a failure. Set whatever the
	 * use reads now: a read that fails must not leave it on unseen. */
	for (size_t i = 0; i < ARRAY_SIZE(uses); i++) {
		CK_ATTRIBUTE off = ATTR(uses[i], &no, sizeof(no));

		r = set_undoable(x, priv, &off, 1, "use of the key", err);
		if (r != TOK_OK && !(err->has_ckr && refuses_change(err->ckr)))
			return r;
	}
	/* The signature mechanisms only, as an imported key has them; a token
	 * that does not know the list (NSS: CKR_GENERAL_ERROR) or will not
	 * change it leaves it (show says "not kept"). */
	r = set_undoable(x, priv, &allowed, 1, "CKA_ALLOWED_MECHANISMS of the key", err);
	if (r != TOK_OK &&
	    !(err->has_ckr && (refuses_change(err->ckr) || err->ckr == CKR_GENERAL_ERROR)))
		return r;
	if (pub != 0) {
		r = set_undoable(x, pub, names, ARRAY_SIZE(names),
				 "label and CKA_ID of the public key", err);
	} else {
		CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY;
		CK_KEY_TYPE kt = key->type == TOK_KEY_RSA ? CKK_RSA : CKK_EC;
		CK_BBOOL yes = CK_TRUE;
		CK_ATTRIBUTE t[12];
		CK_ULONG n = 0;

		t[n++] = ATTR(CKA_CLASS, &pub_class, sizeof(pub_class));
		t[n++] = ATTR(CKA_KEY_TYPE, &kt, sizeof(kt));
		t[n++] = ATTR(CKA_TOKEN, &yes, sizeof(yes));
		t[n++] = ATTR(CKA_PRIVATE, &no, sizeof(no));
		t[n++] = ATTR(CKA_VERIFY, &yes, sizeof(yes));
		t[n++] = ATTR(CKA_LABEL, label, strlen(label));
		t[n++] = ATTR_B(CKA_ID, id);
		t[n++] = ATTR_B(CKA_SUBJECT, subject);
		if (kt == CKK_RSA) {
			t[n++] = ATTR_B(CKA_MODULUS, key->n);
			t[n++] = ATTR_B(CKA_PUBLIC_EXPONENT, key->e);
		} else {
			t[n++] = ATTR_B(CKA_EC_PARAMS, key->ec_params);
			t[n++] = ATTR_B(CKA_EC_POINT, key->ec_point);
		}
		r = create(x, t, n, 0, "public key", err);
	}
	return r;
}

tok_rv tok_txn_protect_key(tok_txn *x, unsigned long priv, tok_err *err)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE set[2];
	CK_ULONG n = 0;
	CK_RV rv;

	if (read_bool(x, priv, CKA_SENSITIVE) != 1)
		set[n++] = ATTR(CKA_SENSITIVE, &yes, sizeof(yes));
	if (read_bool(x, priv, CKA_EXTRACTABLE) != 0)
		set[n++] = ATTR(CKA_EXTRACTABLE, &no, sizeof(no));
	if (n == 0)
		return TOK_OK;
	/* One call: a token either takes both or neither. */
	rv = x->s->t->f->C_SetAttributeValue(x->s->h, priv, set, n);
	if (rv == CKR_OK) {
		x->protected_key = true;
		return TOK_OK;
	}
	tok_err_ckr(err, "C_SetAttributeValue (CKA_SENSITIVE, CKA_EXTRACTABLE)", rv);
	if (!refuses_change(rv))
		return TOK_ERR;
	tok_err_set(err,
		    "token '%s' does not let the key on it be made sensitive and not extractable "
		    "(C_SetAttributeValue: %s), so vzp11 does not adopt it",
		    x->s->t->info.label, tok_ckr_name(rv));
	tok_err_hint(err, "make the key sensitive and not extractable with the token's own tool, "
			  "or use a token that allows it");
	err->has_ckr = true;
	err->ckr = rv;
	return TOK_UNSUPPORTED;
}
