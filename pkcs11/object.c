/* object.c - finding objects and reading their attributes in two passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok-int.h"

static CK_OBJECT_CLASS ck_class(tok_class cls)
{
	switch (cls) {
	case TOK_CERT:
		return CKO_CERTIFICATE;
	case TOK_PRIVKEY:
		return CKO_PRIVATE_KEY;
	case TOK_PUBKEY:
		return CKO_PUBLIC_KEY;
	}
	return CKO_DATA;
}

/* Reads a variable-length attribute. Absent or secret: TOK_NOT_FOUND. */
static tok_rv get_bytes(tok_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
			unsigned char **out, size_t *len, tok_err *err)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	unsigned char *buf;
	CK_RV rv;

	rv = s->t->f->C_GetAttributeValue(s->h, h, &a, 1);
	if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return TOK_NOT_FOUND;
	if (rv != CKR_OK)
		return tok_err_ckr(err, "C_GetAttributeValue", rv);
	buf = malloc(a.ulValueLen + 1);
	if (!buf) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	a.pValue = buf;
	rv = s->t->f->C_GetAttributeValue(s->h, h, &a, 1);
	if (rv != CKR_OK) {
		free(buf);
		return tok_err_ckr(err, "C_GetAttributeValue", rv);
	}
	buf[a.ulValueLen] = '\0';
	*out = buf;
	*len = a.ulValueLen;
	return TOK_OK;
}

static const char *attr_name(CK_ATTRIBUTE_TYPE type)
{
	switch (type) {
	case CKA_PRIVATE:
		return "CKA_PRIVATE";
	case CKA_SENSITIVE:
		return "CKA_SENSITIVE";
	case CKA_EXTRACTABLE:
		return "CKA_EXTRACTABLE";
	case CKA_ALWAYS_SENSITIVE:
		return "CKA_ALWAYS_SENSITIVE";
	case CKA_NEVER_EXTRACTABLE:
		return "CKA_NEVER_EXTRACTABLE";
	case CKA_SIGN:
		return "CKA_SIGN";
	case CKA_DECRYPT:
		return "CKA_DECRYPT";
	case CKA_UNWRAP:
		return "CKA_UNWRAP";
	case CKA_DERIVE:
		return "CKA_DERIVE";
	case CKA_SIGN_RECOVER:
		return "CKA_SIGN_RECOVER";
	case CKA_VALUE:
		return "CKA_VALUE";
	case CKA_PRIVATE_EXPONENT:
		return "CKA_PRIVATE_EXPONENT";
	case CKA_KEY_TYPE:
		return "CKA_KEY_TYPE";
	case CKA_ALLOWED_MECHANISMS:
		return "CKA_ALLOWED_MECHANISMS";
	}
	return "attribute";
}

/* Remembers the first attribute the token gave no clear answer for. */
static void note_unclear(tok_obj *o, CK_ATTRIBUTE_TYPE type, CK_RV rv, const char *why)
{
	if (o->unclear[0])
		return;
	if (why)
		snprintf(o->unclear, sizeof(o->unclear), "%s: %s", attr_name(type), why);
	else
		snprintf(o->unclear, sizeof(o->unclear), "%s: %s", attr_name(type),
			 tok_ckr_name(rv));
}

/* A CK_BBOOL attribute: only CKR_OK with a one-byte CK_TRUE or CK_FALSE is
 * an answer; everything else is unknown (and noted in o->unclear). */
static tok_flag get_flag(tok_session *s, tok_obj *o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0xff;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};
	CK_RV rv = s->t->f->C_GetAttributeValue(s->h, o->handle, &a, 1);

	if (rv == CKR_OK && a.ulValueLen == sizeof(v) && (v == CK_TRUE || v == CK_FALSE))
		return v == CK_TRUE ? TOK_FLAG_YES : TOK_FLAG_NO;
	note_unclear(o, type, rv, rv == CKR_OK ? "not a CK_BBOOL" : NULL);
	return TOK_FLAG_UNKNOWN;
}

static CK_ULONG get_ulong(tok_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt)
{
	CK_ULONG v = 0;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};

	if (s->t->f->C_GetAttributeValue(s->h, h, &a, 1) != CKR_OK)
		return dflt;
	return v;
}

/* The secret part must not be readable; probe its length without fetching
 * it. "Sensitive" and "no such attribute" are answers; an error is not. */
static tok_flag secret_readable(tok_session *s, tok_obj *o, CK_KEY_TYPE kt)
{
	CK_ATTRIBUTE_TYPE type = kt == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE;
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	if (kt != CKK_RSA && kt != CKK_EC) {
		note_unclear(o, CKA_KEY_TYPE, CKR_OK, "not RSA or EC");
		return TOK_FLAG_UNKNOWN;
	}
	rv = s->t->f->C_GetAttributeValue(s->h, o->handle, &a, 1);
	if (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	    (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
		return TOK_FLAG_NO;
	if (rv == CKR_OK && a.ulValueLen > 0)
		return TOK_FLAG_YES;
	note_unclear(o, type, rv, rv == CKR_OK ? _("empty value") : NULL);
	return TOK_FLAG_UNKNOWN;
}

/* The signature mechanisms a TLS client key needs, and nothing else. */
static const CK_MECHANISM_TYPE rsa_sign_mechs[] = {
	CKM_RSA_PKCS,
	CKM_SHA1_RSA_PKCS,
	CKM_SHA224_RSA_PKCS,
	CKM_SHA256_RSA_PKCS,
	CKM_SHA384_RSA_PKCS,
	CKM_SHA512_RSA_PKCS,
	CKM_RSA_PKCS_PSS,
	CKM_SHA1_RSA_PKCS_PSS,
	CKM_SHA224_RSA_PKCS_PSS,
	CKM_SHA256_RSA_PKCS_PSS,
	CKM_SHA384_RSA_PKCS_PSS,
	CKM_SHA512_RSA_PKCS_PSS,
};
static const CK_MECHANISM_TYPE ec_sign_mechs[] = {
	CKM_ECDSA,	  CKM_ECDSA_SHA1,   CKM_ECDSA_SHA224,
	CKM_ECDSA_SHA256, CKM_ECDSA_SHA384, CKM_ECDSA_SHA512,
};

const CK_MECHANISM_TYPE *tok_sign_mechs(CK_KEY_TYPE kt, size_t *n)
{
	if (kt == CKK_RSA) {
		*n = ARRAY_SIZE(rsa_sign_mechs);
		return rsa_sign_mechs;
	}
	*n = ARRAY_SIZE(ec_sign_mechs);
	return ec_sign_mechs;
}

/* YES when CKA_ALLOWED_MECHANISMS lists only signature mechanisms of the
 * key's type; NO when the key has no such list (absent, or empty as
 * SoftHSM reports "no restriction"; o->lacks says so) or one with other
 * mechanisms. */
static tok_flag sign_only_mechs(tok_session *s, tok_obj *o, CK_KEY_TYPE kt)
{
	CK_MECHANISM_TYPE got[64];
	CK_ATTRIBUTE a = {CKA_ALLOWED_MECHANISMS, got, sizeof(got)};
	const CK_MECHANISM_TYPE *ok;
	size_t n_ok, n;
	CK_RV rv = s->t->f->C_GetAttributeValue(s->h, o->handle, &a, 1);

	if (rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	    (rv == CKR_OK && (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0))) {
		o->lacks |= TOK_LACKS_ALLOWED_MECHS;
		return TOK_FLAG_NO;
	}
	if (rv != CKR_OK || a.ulValueLen % sizeof(got[0]) != 0 || (kt != CKK_RSA && kt != CKK_EC))
		return TOK_FLAG_UNKNOWN; /* too long a list is not "signature only" either */
	ok = tok_sign_mechs(kt, &n_ok);
	n = a.ulValueLen / sizeof(got[0]);
	for (size_t i = 0; i < n; i++) {
		bool listed = false;

		for (size_t j = 0; j < n_ok; j++)
			listed |= got[i] == ok[j];
		if (!listed)
			return TOK_FLAG_NO;
	}
	return TOK_FLAG_YES;
}

/* A yes/no attribute that is not part of the key's protection (never
 * recorded in o->unclear). */
static tok_flag plain_flag(tok_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};
	CK_RV rv = s->t->f->C_GetAttributeValue(s->h, h, &a, 1);

	if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
		return TOK_FLAG_NO;
	if (rv != CKR_OK || a.ulValueLen != sizeof(v))
		return TOK_FLAG_UNKNOWN;
	return v == CK_TRUE ? TOK_FLAG_YES : TOK_FLAG_NO;
}

/* See tok_arrival: vzp11's unwrap mark, else CKA_LOCAL. */
static tok_arrival arrival(tok_session *s, CK_OBJECT_HANDLE h)
{
	tok_flag local = plain_flag(s, h, CKA_LOCAL);
	tok_flag mark = plain_flag(s, h, CKA_WRAP_WITH_TRUSTED);

	if (local == TOK_FLAG_YES)
		return TOK_ARRIVAL_GENERATED;
	if (local == TOK_FLAG_UNKNOWN || mark == TOK_FLAG_UNKNOWN)
		return TOK_ARRIVAL_UNKNOWN;
	return mark == TOK_FLAG_YES ? TOK_ARRIVAL_UNWRAPPED : TOK_ARRIVAL_CREATED;
}

static unsigned long modulus_bits(const unsigned char *m, size_t len)
{
	size_t i = 0;
	unsigned long bits;

	while (i < len && m[i] == 0)
		i++;
	if (i == len)
		return 0;
	bits = (unsigned long)(len - i) * 8;
	for (unsigned char top = m[i]; !(top & 0x80); top <<= 1)
		bits--;
	return bits;
}

/* A certificate's CKA_CERTIFICATE_CATEGORY. The token's answer that it does
 * not know the attribute (openCryptoki 3.8; NSS's CKR_GENERAL_ERROR) says
 * the token keeps no categories; 0 ("unspecified", what other tools write)
 * or a value PKCS#11 does not define says only that this certificate has
 * none. Either way the caller tells CA certificates apart otherwise. */
static tok_rv read_category(tok_session *s, tok_obj *o, tok_err *err)
{
	CK_ULONG category = 0;
	CK_ATTRIBUTE a = {CKA_CERTIFICATE_CATEGORY, &category, sizeof(category)};
	CK_RV rv = s->t->f->C_GetAttributeValue(s->h, o->handle, &a, 1);

	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_GENERAL_ERROR) {
		o->lacks |= TOK_LACKS_CATEGORY;
		return TOK_OK;
	}
	if (rv != CKR_OK)
		return tok_err_ckr(err, "C_GetAttributeValue (CKA_CERTIFICATE_CATEGORY)", rv);
	o->authority = category == CK_CERTIFICATE_CATEGORY_AUTHORITY;
	if (a.ulValueLen != sizeof(category) || category < CK_CERTIFICATE_CATEGORY_TOKEN_USER ||
	    category > 3)
		o->lacks |= TOK_LACKS_CATEGORY_VALUE;
	return TOK_OK;
}

static tok_rv read_obj(tok_session *s, CK_OBJECT_HANDLE h, tok_class cls, tok_obj *o, tok_err *err)
{
	unsigned char *label = NULL;
	size_t len = 0;
	tok_rv r;

	o->handle = h;
	o->cls = cls;
	r = get_bytes(s, h, CKA_LABEL, &label, &len, err);
	if (r == TOK_OK)
		o->label = (char *)label;
	else if (r != TOK_NOT_FOUND)
		return r;
	r = get_bytes(s, h, CKA_ID, &o->id, &o->id_len, err);
	if (r != TOK_OK && r != TOK_NOT_FOUND)
		return r;
	if (cls == TOK_CERT) {
		o->is_private = get_flag(s, o, CKA_PRIVATE);
		r = get_bytes(s, h, CKA_VALUE, &o->value, &o->value_len, err);
		if (r != TOK_OK && r != TOK_NOT_FOUND)
			return r;
		r = read_category(s, o, err);
		o->unclear[0] = '\0'; /* only a key's protection must be answered */
		return r;
	}
	CK_KEY_TYPE kt = get_ulong(s, h, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
	if (kt == CKK_RSA) {
		unsigned char *mod = NULL;
		size_t mlen = 0;

		o->key_type = TOK_KEY_RSA;
		r = get_bytes(s, h, CKA_MODULUS, &mod, &mlen, err);
		if (r == TOK_OK)
			o->bits = modulus_bits(mod, mlen);
		free(mod);
		if (r != TOK_OK && r != TOK_NOT_FOUND)
			return r;
	} else if (kt == CKK_EC) {
		o->key_type = TOK_KEY_EC;
		r = get_bytes(s, h, CKA_EC_PARAMS, &o->ec_params, &o->ec_params_len, err);
		if (r != TOK_OK && r != TOK_NOT_FOUND)
			return r;
	}
	if (cls == TOK_PUBKEY) {
		o->is_private = get_flag(s, o, CKA_PRIVATE);
		o->unclear[0] = '\0';
	} else {
		/* The protection first, so o->unclear names what matters most. */
		o->sensitive = get_flag(s, o, CKA_SENSITIVE);
		o->extractable = get_flag(s, o, CKA_EXTRACTABLE);
		o->value_readable = secret_readable(s, o, kt);
		o->is_private = get_flag(s, o, CKA_PRIVATE);
		o->always_sensitive = get_flag(s, o, CKA_ALWAYS_SENSITIVE);
		o->never_extractable = get_flag(s, o, CKA_NEVER_EXTRACTABLE);
		o->can_sign = get_flag(s, o, CKA_SIGN);
		o->can_decrypt = get_flag(s, o, CKA_DECRYPT);
		o->can_unwrap = get_flag(s, o, CKA_UNWRAP);
		o->can_derive = get_flag(s, o, CKA_DERIVE);
		o->can_sign_recover = get_flag(s, o, CKA_SIGN_RECOVER);
		o->sign_only_mechs = sign_only_mechs(s, o, kt);
		o->arrival = arrival(s, h);
	}
	return TOK_OK;
}

/* Collects every handle matching the template; always ends the search. */
static tok_rv find_handles(tok_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE **out,
			   size_t *count, tok_err *err)
{
	CK_FUNCTION_LIST *f = s->t->f;
	CK_OBJECT_HANDLE *hs = NULL;
	size_t cap = 0, used = 0;
	tok_rv ret = TOK_ERR;
	CK_RV rv;

	rv = f->C_FindObjectsInit(s->h, tmpl, n);
	if (rv != CKR_OK)
		return tok_err_ckr(err, "C_FindObjectsInit", rv);
	for (;;) {
		CK_ULONG got = 0;

		if (used == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			CK_OBJECT_HANDLE *grown = realloc(hs, ncap * sizeof(*hs));

			if (!grown) {
				tok_err_set(err, "out of memory");
				goto out;
			}
			hs = grown;
			cap = ncap;
		}
		rv = f->C_FindObjects(s->h, hs + used, (CK_ULONG)(cap - used), &got);
		if (rv != CKR_OK) {
			ret = tok_err_ckr(err, "C_FindObjects", rv);
			goto out;
		}
		if (got == 0)
			break;
		used += got;
	}
	ret = TOK_OK;
out:
	rv = f->C_FindObjectsFinal(s->h);
	if (ret == TOK_OK && rv != CKR_OK)
		ret = tok_err_ckr(err, "C_FindObjectsFinal", rv);
	if (ret != TOK_OK) {
		free(hs);
		return ret;
	}
	*out = hs;
	*count = used;
	return TOK_OK;
}

/* The objects of class cls (token objects) matching the template's other
 * attributes, read. */
static tok_rv find_objs(tok_session *s, tok_class cls, CK_ATTRIBUTE *extra, CK_ULONG n_extra,
			tok_obj **out, size_t *n, tok_err *err)
{
	CK_OBJECT_CLASS klass = ck_class(cls);
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[8];
	CK_ULONG nt = 0;
	CK_OBJECT_HANDLE *hs = NULL;
	size_t count = 0;
	tok_obj *objs = NULL;
	tok_rv ret;

	tmpl[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &klass, sizeof(klass)};
	tmpl[nt++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	for (CK_ULONG i = 0; i < n_extra && nt < ARRAY_SIZE(tmpl); i++)
		tmpl[nt++] = extra[i];
	ret = find_handles(s, tmpl, nt, &hs, &count, err);
	if (ret != TOK_OK)
		return ret;
	objs = calloc(count + 1, sizeof(*objs));
	if (!objs) {
		tok_err_set(err, "out of memory");
		ret = TOK_ERR;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		ret = read_obj(s, hs[i], cls, &objs[i], err);
		if (ret != TOK_OK) {
			tok_objs_free(objs, count);
			objs = NULL;
			goto out;
		}
	}
	*out = objs;
	*n = count;
	ret = TOK_OK;
out:
	free(hs);
	return ret;
}

tok_rv tok_find(tok_session *s, tok_class cls, const char *label, tok_bytes id, tok_obj **out,
		size_t *n, tok_err *err)
{
	CK_ATTRIBUTE extra[2];
	CK_ULONG ne = 0;

	if (label)
		extra[ne++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	if (id.p)
		extra[ne++] = (CK_ATTRIBUTE){CKA_ID, (void *)id.p, id.len};
	return find_objs(s, cls, extra, ne, out, n, err);
}

/* Objects of class cls whose public part is key's: RSA by CKA_MODULUS; EC
 * by CKA_EC_POINT, in the DER OCTET STRING form PKCS#11 prescribes or the
 * raw point some tokens keep. */
static tok_rv find_public_part(tok_session *s, tok_class cls, const tok_key *key, tok_obj **out,
			       size_t *n, tok_err *err)
{
	CK_ATTRIBUTE a;
	tok_rv r;

	if (key->type == TOK_KEY_RSA) {
		a = (CK_ATTRIBUTE){CKA_MODULUS, (void *)key->n.p, key->n.len};
		return find_objs(s, cls, &a, 1, out, n, err);
	}
	a = (CK_ATTRIBUTE){CKA_EC_POINT, (void *)key->ec_point.p, key->ec_point.len};
	r = find_objs(s, cls, &a, 1, out, n, err);
	if (r != TOK_OK || *n > 0 || key->ec_point.len < 3)
		return r;
	tok_objs_free(*out, *n);
	a = (CK_ATTRIBUTE){CKA_EC_POINT, (void *)(key->ec_point.p + 2), key->ec_point.len - 2};
	return find_objs(s, cls, &a, 1, out, n, err);
}

tok_rv tok_find_by_public(tok_session *s, const tok_key *key, tok_obj **priv, size_t *n_priv,
			  tok_obj **pub, size_t *n_pub, tok_err *err)
{
	tok_obj *ks = NULL, *ps = NULL;
	size_t nk = 0, np = 0;
	tok_rv r;

	if (key->type != TOK_KEY_RSA && key->type != TOK_KEY_EC) {
		tok_err_set(err, "internal error: unknown key type");
		return TOK_ERR;
	}
	r = find_public_part(s, TOK_PUBKEY, key, &ps, &np, err);
	if (r == TOK_OK)
		r = find_public_part(s, TOK_PRIVKEY, key, &ks, &nk, err);
	/* An EC private key need not carry its point: its public key's CKA_ID
	 * names it. */
	for (size_t i = 0; r == TOK_OK && nk == 0 && i < np; i++) {
		if (!ps[i].id_len)
			continue;
		tok_objs_free(ks, nk);
		ks = NULL;
		r = tok_find(s, TOK_PRIVKEY, NULL, (tok_bytes){ps[i].id, ps[i].id_len}, &ks, &nk,
			     err);
	}
	if (r != TOK_OK) {
		tok_objs_free(ks, nk);
		tok_objs_free(ps, np);
		return r;
	}
	*priv = ks;
	*n_priv = nk;
	*pub = ps;
	*n_pub = np;
	return TOK_OK;
}

tok_rv tok_set_label(tok_session *s, unsigned long handle, const char *label, tok_err *err)
{
	CK_ATTRIBUTE a = {CKA_LABEL, (void *)label, strlen(label)};
	CK_RV rv = s->t->f->C_SetAttributeValue(s->h, handle, &a, 1);

	return rv == CKR_OK ? TOK_OK : tok_err_ckr(err, "C_SetAttributeValue", rv);
}

void tok_objs_free(tok_obj *objs, size_t n)
{
	if (!objs)
		return;
	for (size_t i = 0; i < n; i++) {
		free(objs[i].label);
		free(objs[i].id);
		free(objs[i].value);
		free(objs[i].ec_params);
	}
	free(objs);
}
