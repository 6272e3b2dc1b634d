/* unwrap.c - a private key onto a token that refuses key material in the
 * clear (HSMs in FIPS mode): the PKCS#8 key is wrapped on the host with a
 * fresh AES-256 key, that key goes onto the token as a session object (in
 * the clear, or, when the token refuses that too, wrapped with RSA-OAEP to
 * a session key pair the token generates), and C_UnwrapKey makes the
 * private key. Session objects are destroyed before returning; the AES key
 * is wiped on the host on every path. */
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "tok-int.h"

#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x210BUL /* PKCS#11 3.0: RFC 5649 by definition */
#endif

/* How the PKCS#8 key is wrapped on the host for the mechanism chosen. */
enum wrap_form {
	FORM_RFC5649,	 /* CKM_AES_KEY_WRAP_KWP; SoftHSM 2.6's CKM_AES_KEY_WRAP_PAD */
	FORM_PKCS7_3394, /* CKM_AES_KEY_WRAP_PAD as PKCS#11 defines it */
	FORM_CBC_PAD,	 /* CKM_AES_CBC_PAD, random IV */
};

#define AES_KEY_LEN   32
#define TRANSPORT_RSA 2048UL /* the session key pair only carries AES-256 for seconds */

#define ATTR(t, p, l) ((CK_ATTRIBUTE){(t), (void *)(p), (CK_ULONG)(l)})

/* Everything made on the token or the host for one unwrap. */
struct unwrap {
	tok_session *s;
	CK_MECHANISM_TYPE *mechs;
	CK_ULONG n_mechs;
	unsigned char aes[AES_KEY_LEN]; /* wiped */
	CK_OBJECT_HANDLE aes_h, rsa_pub, rsa_priv;
};

bool tok_refuses_clear_key(unsigned long ckr)
{
	return ckr == CKR_TEMPLATE_INCONSISTENT || ckr == CKR_ATTRIBUTE_VALUE_INVALID ||
	       ckr == CKR_FUNCTION_NOT_SUPPORTED || ckr == CKR_ACTION_PROHIBITED ||
	       ckr == CKR_ATTRIBUTE_READ_ONLY;
}

static bool listed(const struct unwrap *u, CK_MECHANISM_TYPE m)
{
	for (CK_ULONG i = 0; i < u->n_mechs; i++)
		if (u->mechs[i] == m)
			return true;
	return false;
}

/* Listed, and offered for this use (CKF_UNWRAP, CKF_GENERATE_KEY_PAIR): a
 * token may list a mechanism for other uses only. */
static bool offers(const struct unwrap *u, CK_MECHANISM_TYPE m, CK_FLAGS use)
{
	CK_MECHANISM_INFO info;

	return listed(u, m) && u->s->t->f->C_GetMechanismInfo(u->s->t->slot, m, &info) == CKR_OK &&
	       (info.flags & use) == use;
}

static tok_rv read_mechs(struct unwrap *u, tok_err *err)
{
	CK_FUNCTION_LIST *f = u->s->t->f;
	CK_ULONG n = 0;
	CK_RV rv;

	rv = f->C_GetMechanismList(u->s->t->slot, NULL, &n);
	if (rv == CKR_OK) {
		u->mechs = calloc(n ? n : 1, sizeof(*u->mechs));
		if (!u->mechs) {
			tok_err_set(err, "out of memory");
			return TOK_ERR;
		}
		rv = f->C_GetMechanismList(u->s->t->slot, u->mechs, &n);
	}
	if (rv != CKR_OK)
		return tok_err_ckr(err, "C_GetMechanismList", rv);
	u->n_mechs = n;
	return TOK_OK;
}

/* The attributes of the session AES key, without its value. */
static CK_ULONG aes_template(CK_ATTRIBUTE *t, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *kt, CK_BBOOL *yes,
			     CK_BBOOL *no)
{
	CK_ULONG n = 0;

	t[n++] = ATTR(CKA_CLASS, cls, sizeof(*cls));
	t[n++] = ATTR(CKA_KEY_TYPE, kt, sizeof(*kt));
	t[n++] = ATTR(CKA_TOKEN, no, sizeof(*no));
	t[n++] = ATTR(CKA_PRIVATE, yes, sizeof(*yes));
	t[n++] = ATTR(CKA_SENSITIVE, yes, sizeof(*yes));
	t[n++] = ATTR(CKA_EXTRACTABLE, no, sizeof(*no));
	t[n++] = ATTR(CKA_UNWRAP, yes, sizeof(*yes));
	t[n++] = ATTR(CKA_WRAP, no, sizeof(*no));
	t[n++] = ATTR(CKA_ENCRYPT, no, sizeof(*no));
	t[n++] = ATTR(CKA_DECRYPT, no, sizeof(*no));
	t[n++] = ATTR(CKA_SIGN, no, sizeof(*no));
	t[n++] = ATTR(CKA_VERIFY, no, sizeof(*no));
	t[n++] = ATTR(CKA_DERIVE, no, sizeof(*no));
	return n;
}

/* The AES key as a session object in the clear; *refused when the token
 * will not take a clear secret key. */
static tok_rv aes_create(struct unwrap *u, bool *refused, tok_err *err)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[16];
	CK_ULONG n = aes_template(t, &cls, &kt, &yes, &no);
	CK_RV rv;

	t[n++] = ATTR(CKA_VALUE, u->aes, sizeof(u->aes));
	rv = u->s->t->f->C_CreateObject(u->s->h, t, n, &u->aes_h);
	*refused = tok_refuses_clear_key(rv);
	if (rv != CKR_OK) {
		u->aes_h = CK_INVALID_HANDLE;
		return tok_err_ckr(err, "C_CreateObject (session AES key)", rv);
	}
	return TOK_OK;
}

static tok_rv get_attr(struct unwrap *u, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
		       unsigned char *buf, size_t size, size_t *len, tok_err *err)
{
	CK_ATTRIBUTE a = {type, buf, size};
	CK_RV rv = u->s->t->f->C_GetAttributeValue(u->s->h, h, &a, 1);

	if (rv != CKR_OK)
		return tok_err_ckr(err, "C_GetAttributeValue (session RSA key)", rv);
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > size) {
		tok_err_set(err, "the token gave no usable public key for the session key pair");
		return TOK_ERR;
	}
	*len = a.ulValueLen;
	return TOK_OK;
}

/* The session key pair's public key as an OpenSSL key. */
static tok_rv rsa_public(struct unwrap *u, EVP_PKEY **out, tok_err *err)
{
	unsigned char mod[1024], exp[16];
	size_t mlen = 0, elen = 0;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *pk = NULL;
	tok_rv r;

	r = get_attr(u, u->rsa_pub, CKA_MODULUS, mod, sizeof(mod), &mlen, err);
	if (r == TOK_OK)
		r = get_attr(u, u->rsa_pub, CKA_PUBLIC_EXPONENT, exp, sizeof(exp), &elen, err);
	if (r != TOK_OK)
		return r;
	n = BN_bin2bn(mod, (int)mlen, NULL);
	e = BN_bin2bn(exp, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (n && e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		tok_err_set(err, "the token's session RSA public key cannot be used on the host");
		r = TOK_ERR;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	if (r == TOK_OK)
		*out = pk;
	return r;
}

/* RSA-OAEP of the AES key to the session public key; md "SHA256" or "SHA1". */
static tok_rv oaep_encrypt(EVP_PKEY *pk, const char *md, const unsigned char *in, size_t in_len,
			   unsigned char *out, size_t *out_len, tok_err *err)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	size_t len = *out_len;
	tok_rv r = TOK_ERR;

	if (ctx && EVP_PKEY_encrypt_init(ctx) > 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) > 0 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) > 0 &&
	    EVP_PKEY_encrypt(ctx, out, &len, in, in_len) > 0) {
		*out_len = len;
		r = TOK_OK;
	} else {
		tok_err_set(err, "RSA-OAEP encryption of the transport key failed on the host");
	}
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* A token that refuses clear secret keys: it generates a session RSA key
 * pair, the host wraps the AES key to its public key with RSA-OAEP
 * (SHA-256 when the token lists it and takes it, else SHA-1), and the
 * token unwraps the AES key. */
static tok_rv aes_by_oaep(struct unwrap *u, tok_err *err)
{
	CK_FUNCTION_LIST *f = u->s->t->f;
	CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG bits = TRANSPORT_RSA;
	CK_BYTE e65537[] = {0x01, 0x00, 0x01};
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE pub[] = {
		ATTR(CKA_TOKEN, &no, sizeof(no)),
		ATTR(CKA_WRAP, &yes, sizeof(yes)),
		ATTR(CKA_ENCRYPT, &no, sizeof(no)),
		ATTR(CKA_VERIFY, &no, sizeof(no)),
		ATTR(CKA_MODULUS_BITS, &bits, sizeof(bits)),
		ATTR(CKA_PUBLIC_EXPONENT, e65537, 3),
	};
	CK_ATTRIBUTE priv[] = {
		ATTR(CKA_TOKEN, &no, sizeof(no)),	ATTR(CKA_PRIVATE, &yes, sizeof(yes)),
		ATTR(CKA_SENSITIVE, &yes, sizeof(yes)), ATTR(CKA_EXTRACTABLE, &no, sizeof(no)),
		ATTR(CKA_UNWRAP, &yes, sizeof(yes)),	ATTR(CKA_DECRYPT, &no, sizeof(no)),
		ATTR(CKA_SIGN, &no, sizeof(no)),
	};
	/* No CKA_VALUE_LEN: the length comes with the key (SoftHSM calls the
	 * attribute read-only in C_UnwrapKey). */
	CK_ATTRIBUTE t[16];
	CK_ULONG nt = aes_template(t, &cls, &kt, &yes, &no);
	unsigned char wrapped[512];
	EVP_PKEY *pk = NULL;
	bool sha256;
	tok_rv r;
	CK_RV rv;

	if (!offers(u, CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR) ||
	    !offers(u, CKM_RSA_PKCS_OAEP, CKF_UNWRAP)) {
		tok_err_set(err, "it refuses a secret key in the clear too and offers no RSA-OAEP "
				 "unwrapping to bring a transport key onto it");
		tok_err_hint(err, "put the key on the token with its own tool and adopt it with "
				  "'vzp11 import --use-token-key' (see vzp11-import(1))");
		return TOK_UNSUPPORTED;
	}
	rv = f->C_GenerateKeyPair(u->s->h, &gen, pub, ARRAY_SIZE(pub), priv, ARRAY_SIZE(priv),
				  &u->rsa_pub, &u->rsa_priv);
	if (rv != CKR_OK) {
		u->rsa_pub = u->rsa_priv = CK_INVALID_HANDLE;
		return tok_err_ckr(err, "C_GenerateKeyPair (session RSA key)", rv);
	}
	r = rsa_public(u, &pk, err);
	for (sha256 = listed(u, CKM_SHA256); r == TOK_OK; sha256 = false) {
		CK_RSA_PKCS_OAEP_PARAMS p = {sha256 ? CKM_SHA256 : CKM_SHA_1,
					     sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1,
					     CKZ_DATA_SPECIFIED, NULL, 0};
		CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &p, sizeof(p)};
		size_t wlen = sizeof(wrapped);

		r = oaep_encrypt(pk, sha256 ? "SHA256" : "SHA1", u->aes, sizeof(u->aes), wrapped,
				 &wlen, err);
		if (r != TOK_OK)
			break;
		rv = f->C_UnwrapKey(u->s->h, &m, u->rsa_priv, wrapped, wlen, t, nt, &u->aes_h);
		if (rv == CKR_OK)
			break;
		u->aes_h = CK_INVALID_HANDLE;
		/* SoftHSM, for one, takes OAEP only with SHA-1 (CKR_ARGUMENTS_BAD). */
		if (!sha256 || (rv != CKR_MECHANISM_PARAM_INVALID && rv != CKR_ARGUMENTS_BAD))
			r = tok_err_ckr(err, "C_UnwrapKey (session AES key)", rv);
	}
	EVP_PKEY_free(pk);
	return r;
}

/* PKCS#7 padding to a multiple of 8 bytes (1 to 8 bytes, each the count),
 * as PKCS#11's CKM_AES_KEY_WRAP_PAD puts in front of RFC 3394. */
static size_t pkcs7_pad(const unsigned char *in, size_t len, unsigned char *out)
{
	size_t pad = 8 - len % 8;

	memcpy(out, in, len);
	memset(out + len, (int)pad, pad);
	return len + pad;
}

/* in wrapped on the host with the AES key in the given form: RFC 5649 key
 * wrap with padding, PKCS#7 padding and RFC 3394 key wrap, or AES-CBC with
 * PKCS#7 padding under a random IV (kept in iv). *out is freed by the
 * caller with OPENSSL_clear_free(*out, *out_len). */
static tok_rv wrap_bytes(const unsigned char aes[AES_KEY_LEN], const unsigned char *in,
			 size_t in_len, enum wrap_form form, unsigned char iv[16],
			 unsigned char **out, size_t *out_len, tok_err *err)
{
	const char *name = form == FORM_RFC5649	     ? "AES-256-WRAP-PAD"
			   : form == FORM_PKCS7_3394 ? "AES-256-WRAP"
						     : "AES-256-CBC";
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	size_t cap = in_len + 32, plen = in_len;
	unsigned char *buf = OPENSSL_malloc(cap), *padded = NULL;
	const unsigned char *src = in;
	int len = 0, fin = 0;
	tok_rv r = TOK_ERR;

	if (form == FORM_CBC_PAD && RAND_bytes(iv, 16) != 1)
		goto out;
	if (!c || !ctx || !buf || in_len > (size_t)INT32_MAX - 16)
		goto out;
	if (form == FORM_PKCS7_3394) {
		padded = OPENSSL_malloc(in_len + 8);
		if (!padded)
			goto out;
		plen = pkcs7_pad(in, in_len, padded);
		src = padded;
	}
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_EncryptInit_ex2(ctx, c, aes, form == FORM_CBC_PAD ? iv : NULL, NULL) != 1 ||
	    EVP_EncryptUpdate(ctx, buf, &len, src, (int)plen) != 1 ||
	    EVP_EncryptFinal_ex(ctx, buf + len, &fin) != 1)
		goto out;
	*out = buf;
	*out_len = (size_t)len + (size_t)fin;
	buf = NULL;
	r = TOK_OK;
out:
	if (r != TOK_OK)
		tok_err_set(err, "wrapping the private key on the host failed");
	OPENSSL_clear_free(padded, in_len + 8);
	OPENSSL_clear_free(buf, cap);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return r;
}

/* Whether the token reads CKM_AES_KEY_WRAP_PAD as PKCS#11 defines it
 * (PKCS#7 padding + RFC 3394) or as RFC 5649 (SoftHSM 2.6): a throwaway
 * session secret of random bytes is unwrapped in each form; the form the
 * token takes is the one it implements (each form carries an integrity
 * check the other fails, so the order decides nothing). RFC 5649 first:
 * SoftHSM logs every unwrap it refuses to syslog. */
static tok_rv probe_wrap_pad(struct unwrap *u, enum wrap_form *form, tok_err *err)
{
	static const enum wrap_form forms[] = {FORM_RFC5649, FORM_PKCS7_3394};
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		ATTR(CKA_CLASS, &cls, sizeof(cls)),
		ATTR(CKA_KEY_TYPE, &kt, sizeof(kt)),
		ATTR(CKA_TOKEN, &no, sizeof(no)),
		ATTR(CKA_EXTRACTABLE, &no, sizeof(no)),
	};
	CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	unsigned char probe[32];
	CK_RV rv = CKR_OK;

	if (RAND_bytes(probe, sizeof(probe)) != 1) {
		tok_err_set(err, "no random bytes for the transport key");
		return TOK_ERR;
	}
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		unsigned char *w = NULL, iv[16];
		size_t wlen = 0;
		CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

		if (wrap_bytes(u->aes, probe, sizeof(probe), forms[i], iv, &w, &wlen, err) !=
		    TOK_OK)
			return TOK_ERR;
		rv = u->s->t->f->C_UnwrapKey(u->s->h, &m, u->aes_h, w, wlen, t, ARRAY_SIZE(t), &h);
		OPENSSL_clear_free(w, wlen);
		if (rv == CKR_OK) {
			u->s->t->f->C_DestroyObject(u->s->h, h); /* a session object */
			*form = forms[i];
			return TOK_OK;
		}
	}
	tok_err_ckr(err, "C_UnwrapKey (CKM_AES_KEY_WRAP_PAD, probe)", rv);
	tok_err_hint(err, "the token unwrapped neither form of CKM_AES_KEY_WRAP_PAD (PKCS#7 + "
			  "RFC 3394, RFC 5649); try --unwrap on a token that offers "
			  "CKM_AES_KEY_WRAP_KWP or CKM_AES_CBC_PAD, or import the key with the "
			  "token's own tool");
	return TOK_ERR;
}

static void destroy_session_objects(struct unwrap *u)
{
	CK_OBJECT_HANDLE *hs[] = {&u->aes_h, &u->rsa_priv, &u->rsa_pub};

	/* Session objects die with the session anyway; a failure here leaves
	 * nothing on the token. */
	for (size_t i = 0; i < ARRAY_SIZE(hs); i++) {
		if (*hs[i] != CK_INVALID_HANDLE)
			u->s->t->f->C_DestroyObject(u->s->h, *hs[i]);
		*hs[i] = CK_INVALID_HANDLE;
	}
}

struct unwrap_try {
	struct unwrap *u;
	CK_MECHANISM *m;
	unsigned char *wrapped;
	size_t wlen;
	CK_OBJECT_HANDLE h;
};

static CK_RV unwrap_once(void *ctx, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	struct unwrap_try *t = ctx;

	return t->u->s->t->f->C_UnwrapKey(t->u->s->h, t->m, t->u->aes_h, t->wrapped, t->wlen, tmpl,
					  n, &t->h);
}

/* The mechanism the PKCS#8 key is unwrapped with, among those the token
 * offers for unwrapping: RFC 5649 by its own name first. */
static tok_rv choose_mech(struct unwrap *u, CK_MECHANISM_TYPE *mech, tok_err *err)
{
	static const CK_MECHANISM_TYPE prefer[] = {CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD,
						   CKM_AES_CBC_PAD};

	for (size_t i = 0; i < ARRAY_SIZE(prefer); i++) {
		if (offers(u, prefer[i], CKF_UNWRAP)) {
			*mech = prefer[i];
			return TOK_OK;
		}
	}
	tok_err_set(err, "it offers no mechanism to unwrap a private key with (neither AES key "
			 "wrap with padding nor AES-CBC with padding for C_UnwrapKey)");
	tok_err_hint(err, "put the key on the token with its own tool and adopt it with 'vzp11 "
			  "import --use-token-key' (see vzp11-import(1))");
	return TOK_UNSUPPORTED;
}

tok_rv tok_unwrap_private(tok_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ULONG n_opt,
			  tok_bytes pkcs8, CK_OBJECT_HANDLE *out, tok_err *err)
{
	struct unwrap u = {.s = s};
	CK_MECHANISM_TYPE mech = 0;
	CK_MECHANISM m = {0, NULL, 0};
	struct unwrap_try t = {.u = &u, .m = &m, .h = CK_INVALID_HANDLE};
	enum wrap_form form = FORM_RFC5649;
	unsigned char iv[16] = {0};
	unsigned dropped = 0;
	bool refused = false;
	tok_rv r;
	CK_RV rv;

	if (!pkcs8.p || !pkcs8.len) {
		tok_err_set(err, "internal error: no PKCS#8 form of the key to unwrap");
		return TOK_ERR;
	}
	r = read_mechs(&u, err);
	if (r == TOK_OK)
		r = choose_mech(&u, &mech, err);
	if (r != TOK_OK)
		goto out;
	if (RAND_priv_bytes(u.aes, sizeof(u.aes)) != 1) {
		tok_err_set(err, "no random bytes for the transport key");
		r = TOK_ERR;
		goto out;
	}
	r = aes_create(&u, &refused, err);
	if (r != TOK_OK && refused)
		r = aes_by_oaep(&u, err);
	if (r == TOK_OK && mech == CKM_AES_KEY_WRAP_PAD)
		r = probe_wrap_pad(&u, &form, err);
	if (r == TOK_OK && mech == CKM_AES_CBC_PAD)
		form = FORM_CBC_PAD;
	if (r == TOK_OK)
		r = wrap_bytes(u.aes, pkcs8.p, pkcs8.len, form, iv, &t.wrapped, &t.wlen, err);
	if (r != TOK_OK)
		goto out;
	m.mechanism = mech;
	if (mech == CKM_AES_CBC_PAD) {
		m.pParameter = iv;
		m.ulParameterLen = sizeof(iv);
	}
	rv = tok_try_degrading(tmpl, n, n_opt, unwrap_once, &t, &dropped);
	if (rv != CKR_OK) {
		r = tok_err_ckr(err, "C_UnwrapKey (private key)", rv);
		goto out;
	}
	*out = t.h;
out:
	destroy_session_objects(&u);
	OPENSSL_cleanse(u.aes, sizeof(u.aes));
	OPENSSL_clear_free(t.wrapped, t.wlen);
	free(u.mechs);
	return r;
}
