/* keygen.c - a key pair made on the token itself (C_GenerateKeyPair), for
 * keys that never exist anywhere else: the gateway's local client CA. */
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "tok-int.h"

#define ATTR(t, p, l) ((CK_ATTRIBUTE){(t), (void *)(p), (CK_ULONG)(l)})

/* DER of the OID of NIST P-256 (prime256v1). */
static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

/* The point inside CKA_EC_POINT's DER OCTET STRING (tokens give it wrapped;
 * a few give it bare). */
static bool bare_point(const unsigned char *p, size_t len, const unsigned char **out,
		       size_t *out_len)
{
	if (len == 65 && p[0] == 0x04) {
		*out = p;
		*out_len = len;
		return true;
	}
	if (len == 67 && p[0] == 0x04 && p[1] == 65 && p[2] == 0x04) {
		*out = p + 2;
		*out_len = 65;
		return true;
	}
	return false;
}

static tok_rv read_point(tok_session *s, CK_OBJECT_HANDLE pub, tok_genkey *out, tok_err *err)
{
	CK_ATTRIBUTE a = ATTR(CKA_EC_POINT, NULL, 0);
	const unsigned char *pt;
	size_t pt_len;
	CK_RV rv = s->t->f->C_GetAttributeValue(s->h, pub, &a, 1);

	if (rv != CKR_OK)
		return tok_err_ckr(err, "C_GetAttributeValue (CKA_EC_POINT)", rv);
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 256) {
		tok_err_set(err, _("the token gave no public point for the key it generated"));
		return TOK_ERR;
	}
	a.pValue = malloc(a.ulValueLen);
	if (!a.pValue) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	rv = s->t->f->C_GetAttributeValue(s->h, pub, &a, 1);
	if (rv != CKR_OK || !bare_point(a.pValue, a.ulValueLen, &pt, &pt_len)) {
		free(a.pValue);
		if (rv != CKR_OK)
			return tok_err_ckr(err, "C_GetAttributeValue (CKA_EC_POINT)", rv);
		tok_err_set(err, _("the token gave a public point vzp11 cannot read"));
		return TOK_ERR;
	}
	memcpy(out->point, pt, pt_len);
	out->point_len = pt_len;
	free(a.pValue);
	return TOK_OK;
}

tok_rv tok_txn_generate_ec(tok_txn *x, const char *label, tok_bytes subject, tok_genkey *out,
			   tok_err *err)
{
	tok_session *s = tok_txn_session(x);
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_KEY_TYPE kt = CKK_EC;
	CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY, pub_class = CKO_PUBLIC_KEY;
	/* A placeholder CKA_ID until the point is known (see below). */
	unsigned char tmp_id[1] = {0};
	CK_ATTRIBUTE pub[] = {
		ATTR(CKA_CLASS, &pub_class, sizeof(pub_class)),
		ATTR(CKA_KEY_TYPE, &kt, sizeof(kt)),
		ATTR(CKA_TOKEN, &yes, sizeof(yes)),
		ATTR(CKA_PRIVATE, &no, sizeof(no)),
		ATTR(CKA_VERIFY, &yes, sizeof(yes)),
		ATTR(CKA_ENCRYPT, &no, sizeof(no)),
		ATTR(CKA_WRAP, &no, sizeof(no)),
		ATTR(CKA_EC_PARAMS, p256, sizeof(p256)),
		ATTR(CKA_LABEL, label, strlen(label)),
		ATTR(CKA_ID, tmp_id, sizeof(tmp_id)),
	};
	CK_ATTRIBUTE priv[] = {
		ATTR(CKA_CLASS, &priv_class, sizeof(priv_class)),
		ATTR(CKA_KEY_TYPE, &kt, sizeof(kt)),
		ATTR(CKA_TOKEN, &yes, sizeof(yes)),
		ATTR(CKA_PRIVATE, &yes, sizeof(yes)),
		ATTR(CKA_SENSITIVE, &yes, sizeof(yes)),
		ATTR(CKA_EXTRACTABLE, &no, sizeof(no)),
		ATTR(CKA_SIGN, &yes, sizeof(yes)),
		ATTR(CKA_DECRYPT, &no, sizeof(no)),
		ATTR(CKA_UNWRAP, &no, sizeof(no)),
		ATTR(CKA_DERIVE, &no, sizeof(no)),
		ATTR(CKA_LABEL, label, strlen(label)),
		ATTR(CKA_ID, tmp_id, sizeof(tmp_id)),
		ATTR(CKA_SUBJECT, subject.p, subject.len),
	};
	CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
	CK_ATTRIBUTE id_attr;
	tok_genkey k = {0};
	CK_RV rv;
	tok_rv r;

	if (!s->rw) {
		tok_err_set(err, "internal error: writing needs a read-write session");
		return TOK_ERR;
	}
	if (tok_txn_reserve(x, 2, err) != TOK_OK)
		return TOK_ERR;
	rv = s->t->f->C_GenerateKeyPair(s->h, &mech, pub, ARRAY_SIZE(pub), priv,
					subject.len ? ARRAY_SIZE(priv) : ARRAY_SIZE(priv) - 1,
					&hpub, &hpriv);
	if (rv != CKR_OK) {
		r = tok_err_ckr(err, "C_GenerateKeyPair (EC P-256)", rv);
		if (rv == CKR_MECHANISM_INVALID || rv == CKR_FUNCTION_NOT_SUPPORTED)
			tok_err_hint(err,
				     _("this token cannot make EC P-256 keys; use a token that "
				       "can (SoftHSM, most HSMs)"));
		return r;
	}
	tok_txn_record(x, hpub);
	tok_txn_record(x, hpriv);
	k.priv = hpriv;
	k.pub = hpub;
	r = read_point(s, hpub, &k, err);
	if (r != TOK_OK)
		return r;
	/* CKA_ID as for every key vzp11 writes: SHA-1 of the public key's
	 * bits, so key, public key and certificate always match. */
	SHA1(k.point, k.point_len, k.id);
	id_attr = ATTR(CKA_ID, k.id, sizeof(k.id));
	rv = s->t->f->C_SetAttributeValue(s->h, hpub, &id_attr, 1);
	if (rv == CKR_OK)
		rv = s->t->f->C_SetAttributeValue(s->h, hpriv, &id_attr, 1);
	if (rv != CKR_OK)
		return tok_err_ckr(err, "C_SetAttributeValue (CKA_ID)", rv);
	*out = k;
	return TOK_OK;
}
