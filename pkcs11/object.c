/* object.c - finding objects and reading their attributes in two passes. */
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

static bool get_bool(tok_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};

	return s->t->f->C_GetAttributeValue(s->h, h, &a, 1) == CKR_OK && v == CK_TRUE;
}

static CK_ULONG get_ulong(tok_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt)
{
	CK_ULONG v = 0;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};

	if (s->t->f->C_GetAttributeValue(s->h, h, &a, 1) != CKR_OK)
		return dflt;
	return v;
}

/* The secret part must not be readable; probe without fetching it. */
static bool secret_readable(tok_session *s, CK_OBJECT_HANDLE h, CK_KEY_TYPE kt)
{
	CK_ATTRIBUTE a = {kt == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, NULL, 0};
	CK_RV rv = s->t->f->C_GetAttributeValue(s->h, h, &a, 1);

	return rv == CKR_OK && a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen > 0;
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
	o->is_private = get_bool(s, h, CKA_PRIVATE);
	if (cls == TOK_CERT) {
		r = get_bytes(s, h, CKA_VALUE, &o->value, &o->value_len, err);
		if (r != TOK_OK && r != TOK_NOT_FOUND)
			return r;
		o->category = get_ulong(s, h, CKA_CERTIFICATE_CATEGORY, 0);
		return TOK_OK;
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
	if (cls == TOK_PRIVKEY) {
		o->sensitive = get_bool(s, h, CKA_SENSITIVE);
		o->extractable = get_bool(s, h, CKA_EXTRACTABLE);
		o->always_sensitive = get_bool(s, h, CKA_ALWAYS_SENSITIVE);
		o->never_extractable = get_bool(s, h, CKA_NEVER_EXTRACTABLE);
		o->can_sign = get_bool(s, h, CKA_SIGN);
		o->value_readable = secret_readable(s, h, kt);
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

tok_rv tok_find(tok_session *s, tok_class cls, const char *label, tok_bytes id, tok_obj **out,
		size_t *n, tok_err *err)
{
	CK_OBJECT_CLASS klass = ck_class(cls);
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[4];
	CK_ULONG nt = 0;
	CK_OBJECT_HANDLE *hs = NULL;
	size_t count = 0;
	tok_obj *objs = NULL;
	tok_rv ret;

	tmpl[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &klass, sizeof(klass)};
	tmpl[nt++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	if (label)
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	if (id.p)
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)id.p, id.len};
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
