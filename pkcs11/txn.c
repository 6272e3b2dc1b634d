/* txn.c - writes that happen completely or not at all: every object created
 * is recorded, and an abort destroys them in reverse order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok-int.h"

struct tok_txn {
	tok_session *s;
	CK_OBJECT_HANDLE *made;
	size_t n, cap;
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

static tok_rv create(tok_txn *x, CK_ATTRIBUTE *tmpl, CK_ULONG n, const char *what, tok_err *err)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;

	if (x->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 8;
		CK_OBJECT_HANDLE *grown = realloc(x->made, ncap * sizeof(*grown));

		if (!grown) {
			tok_err_set(err, "out of memory");
			return TOK_ERR;
		}
		x->made = grown;
		x->cap = ncap;
	}
	rv = x->s->t->f->C_CreateObject(x->s->h, tmpl, n, &h);
	if (rv != CKR_OK) {
		char func[64];

		snprintf(func, sizeof(func), "C_CreateObject (%s)", what);
		return tok_err_ckr(err, func, rv);
	}
	x->made[x->n++] = h;
	return TOK_OK;
}

#define ATTR(t, p, l) ((CK_ATTRIBUTE){(t), (void *)(p), (CK_ULONG)(l)})
#define ATTR_B(t, b)  ATTR((t), (b).p, (b).len)

tok_rv tok_txn_add_keypair(tok_txn *x, const char *label, tok_bytes id, tok_bytes subject,
			   const tok_key *key, tok_err *err)
{
	CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY, pub_class = CKO_PUBLIC_KEY;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE priv[24], pub[16];
	CK_ULONG np = 0, nq = 0;
	tok_rv r;

	if (key->type == TOK_KEY_RSA) {
		kt = CKK_RSA;
	} else if (key->type == TOK_KEY_EC) {
		kt = CKK_EC;
	} else {
		tok_err_set(err, "internal error: unknown key type");
		return TOK_ERR;
	}
	priv[np++] = ATTR(CKA_CLASS, &priv_class, sizeof(priv_class));
	priv[np++] = ATTR(CKA_KEY_TYPE, &kt, sizeof(kt));
	priv[np++] = ATTR(CKA_TOKEN, &yes, sizeof(yes));
	priv[np++] = ATTR(CKA_PRIVATE, &yes, sizeof(yes));
	priv[np++] = ATTR(CKA_SENSITIVE, &yes, sizeof(yes));
	priv[np++] = ATTR(CKA_EXTRACTABLE, &no, sizeof(no));
	priv[np++] = ATTR(CKA_SIGN, &yes, sizeof(yes));
	priv[np++] = ATTR(CKA_DECRYPT, &no, sizeof(no));
	priv[np++] = ATTR(CKA_UNWRAP, &no, sizeof(no));
	priv[np++] = ATTR(CKA_DERIVE, &no, sizeof(no));
	priv[np++] = ATTR(CKA_LABEL, label, strlen(label));
	priv[np++] = ATTR_B(CKA_ID, id);
	priv[np++] = ATTR_B(CKA_SUBJECT, subject);

	pub[nq++] = ATTR(CKA_CLASS, &pub_class, sizeof(pub_class));
	pub[nq++] = ATTR(CKA_KEY_TYPE, &kt, sizeof(kt));
	pub[nq++] = ATTR(CKA_TOKEN, &yes, sizeof(yes));
	pub[nq++] = ATTR(CKA_PRIVATE, &no, sizeof(no));
	pub[nq++] = ATTR(CKA_VERIFY, &yes, sizeof(yes));
	pub[nq++] = ATTR(CKA_ENCRYPT, &no, sizeof(no));
	pub[nq++] = ATTR(CKA_WRAP, &no, sizeof(no));
	pub[nq++] = ATTR(CKA_LABEL, label, strlen(label));
	pub[nq++] = ATTR_B(CKA_ID, id);
	pub[nq++] = ATTR_B(CKA_SUBJECT, subject);

	if (kt == CKK_RSA) {
		priv[np++] = ATTR_B(CKA_MODULUS, key->n);
		priv[np++] = ATTR_B(CKA_PUBLIC_EXPONENT, key->e);
		priv[np++] = ATTR_B(CKA_PRIVATE_EXPONENT, key->d);
		priv[np++] = ATTR_B(CKA_PRIME_1, key->p);
		priv[np++] = ATTR_B(CKA_PRIME_2, key->q);
		priv[np++] = ATTR_B(CKA_EXPONENT_1, key->dp);
		priv[np++] = ATTR_B(CKA_EXPONENT_2, key->dq);
		priv[np++] = ATTR_B(CKA_COEFFICIENT, key->qinv);
		pub[nq++] = ATTR_B(CKA_MODULUS, key->n);
		pub[nq++] = ATTR_B(CKA_PUBLIC_EXPONENT, key->e);
	} else {
		priv[np++] = ATTR_B(CKA_EC_PARAMS, key->ec_params);
		priv[np++] = ATTR_B(CKA_VALUE, key->ec_value);
		pub[nq++] = ATTR_B(CKA_EC_PARAMS, key->ec_params);
		pub[nq++] = ATTR_B(CKA_EC_POINT, key->ec_point);
	}
	r = create(x, priv, np, "private key", err);
	if (r != TOK_OK)
		return r;
	return create(x, pub, nq, "public key", err);
}

tok_rv tok_txn_add_cert(tok_txn *x, const tok_cert *c, tok_err *err)
{
	CK_OBJECT_CLASS klass = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_ULONG category = c->authority ? 2 : 1;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		ATTR(CKA_CLASS, &klass, sizeof(klass)),
		ATTR(CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)),
		ATTR(CKA_TOKEN, &yes, sizeof(yes)),
		ATTR(CKA_PRIVATE, &no, sizeof(no)),
		ATTR(CKA_CERTIFICATE_CATEGORY, &category, sizeof(category)),
		ATTR_B(CKA_VALUE, c->der),
		ATTR_B(CKA_SUBJECT, c->subject),
		ATTR_B(CKA_ISSUER, c->issuer),
		ATTR_B(CKA_SERIAL_NUMBER, c->serial),
		ATTR_B(CKA_ID, c->id),
		ATTR(CKA_LABEL, c->label, strlen(c->label)),
	};

	return create(x, t, ARRAY_SIZE(t), c->authority ? "CA certificate" : "certificate", err);
}

void tok_txn_commit(tok_txn *x)
{
	if (!x)
		return;
	free(x->made);
	free(x);
}

tok_rv tok_txn_abort(tok_txn *x, tok_err *err)
{
	tok_rv ret = TOK_OK;
	size_t left = 0;

	if (!x)
		return TOK_OK;
	for (size_t i = x->n; i-- > 0;) {
		CK_RV rv = x->s->t->f->C_DestroyObject(x->s->h, x->made[i]);

		if (rv != CKR_OK)
			left++;
	}
	if (left) {
		tok_err_set(err, "%zu object(s) written by this run could not be removed again", left);
		tok_err_hint(err, "check with 'vzp11 list' and remove leftovers with 'vzp11 remove'");
		ret = TOK_ERR;
	}
	free(x->made);
	free(x);
	return ret;
}
