/* tls.c - the token's key in libcurl's TLS handshakes, through
 * pkcs11-provider. libcurl 7.88 cannot take a provider key itself, so the
 * certificate, chain and key go into each SSL_CTX from its callback.
 *
 * Re-connecting after the token went away (verified with pkcs11-provider
 * 1.0, OpenSSL 3.0, libcurl 7.88, SoftHSM 2.6 behind tests/faulty-p11):
 * the provider keeps the session and object handles of a key it loaded
 * and has no way to refresh them (pkcs11-provider issues 494/495); once
 * the token was gone its sessions are dead and the key object cannot be
 * used again, nor reloaded through the same provider instance, which also
 * never calls C_Initialize again. What works is a new provider instance:
 * the module is finalized and initialized again (through p11-kit, the
 * token layer's own pair of calls), pkcs11-provider is loaded into a fresh
 * OSSL_LIB_CTX and the key loaded there. libssl signs through the provider
 * of the SSL_CTX's library context, and libcurl 7.88 makes its SSL_CTX with
 * SSL_CTX_new(), i.e. in the thread's default context: so the fresh context
 * becomes the thread's default (OSSL_LIB_CTX_set0_default; vzp11 runs its
 * transfers on one thread). The old context is retired, never freed: its
 * provider instance's handles are dead and may by now name other sessions,
 * so tearing it down could close sessions of the new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509v3.h>

#include "cert.h"
#include "secret.h"
#include "store.h"
#include "tls.h"
#include "token.h"
#include "i18n.h"

/* Client signatures TLS 1.2 can make without RSA-PSS: PKCS#1 v1.5. */
#define PKCS1_SIGALGS "RSA+SHA256:RSA+SHA384:RSA+SHA512"

struct vz_tls {
	X509 *cert;
	STACK_OF(X509) *chain; /* intermediates to send, nearest first */
	EVP_PKEY *key;
	char subject[512];
	char *key_uri; /* kept for re-connects */
	char *module;  /* file of the PKCS#11 module */
	const char *pin_source;
	vz_secret pin;
	int pin_asked;
	vz_err *pin_err;
	bool pin_refused;     /* the PIN failed once: never log in again */
	vz_token login;	      /* held open when certificates needed a login */
	vz_global g;	      /* module, token and PIN source, for re-connects */
	OSSL_LIB_CTX *libctx; /* the key's context; NULL: the default one */
	bool tls12_only;      /* an RSA key on a token without RSA-PSS */
	char note[256];
	size_t connections, key_failures, handshakes, reconnects;
};

/* SSL_CTX ex_data slot that leads the info callback back to its vz_tls. */
static int ctx_index = -1;

/* Library contexts of earlier provider instances (see the top comment). */
static OSSL_LIB_CTX **retired;
static size_t n_retired;

/* Keys of provider instances that lost their token, kept and never freed:
 * pkcs11-provider 1.0 logs in again to release a key, and with the token
 * logged out (it went away, or the PIN was refused since) it asks for the
 * PIN on the terminal, even at exit. */
static EVP_PKEY **retired_keys;
static size_t n_retired_keys;

/* The provider calls this when the token wants the PIN; it gets the PIN at
 * most once, so a rejected PIN is never sent again. */
static int pin_cb(char *buf, int size, int rwflag, void *userdata)
{
	struct vz_tls *t = userdata;

	if (t->pin_asked++ > 0)
		return -1;
	if (vz_secret_read(t->pin_source, _("token PIN"), &t->pin, t->pin_err) != VZ_OK)
		return -1;
	if ((int)t->pin.len >= size)
		return -1;
	memcpy(buf, t->pin.buf, t->pin.len);
	return (int)t->pin.len;
}

/* Keeps a replaced library context reachable and unused for good. */
static void retire(OSSL_LIB_CTX *libctx)
{
	OSSL_LIB_CTX **grown;

	if (!libctx)
		return;
	grown = realloc(retired, (n_retired + 1) * sizeof(*grown));
	if (!grown)
		return; /* unreachable then, but still never torn down */
	retired = grown;
	retired[n_retired++] = libctx;
}

void vz_tls_forget_key(vz_tls *t)
{
	EVP_PKEY **grown;

	if (!t->key)
		return;
	grown = realloc(retired_keys, (n_retired_keys + 1) * sizeof(*grown));
	if (grown) {
		retired_keys = grown;
		retired_keys[n_retired_keys++] = t->key;
	} /* else unreachable then, but still never freed */
	t->key = NULL;
}

/* A value safe to put in the provider configuration between quotes. */
static bool conf_safe(const char *s)
{
	return strpbrk(s, "\"\\\n\r$") == NULL;
}

/* default first, then pkcs11 (the other order deadlocks with SoftHSM), in
 * the default library context where libssl looks for the key's methods.
 * OpenSSL 3.0 cannot pass parameters to OSSL_PROVIDER_load, so the
 * configuration is built in memory; it holds no PIN. */
static vz_rv load_provider(OSSL_LIB_CTX *libctx, const char *module_path, vz_err *err)
{
	static bool loaded; /* into the default context */
	char conf[1024];
	CONF *cnf = NULL;
	BIO *bio = NULL;
	vz_rv ret = VZ_FAIL;

	if (!libctx && loaded)
		return VZ_OK;
	if (!conf_safe(module_path)) {
		vz_err_set(err, "the PKCS#11 module path contains characters vzp11 cannot pass on");
		return VZ_FAIL;
	}
	snprintf(conf, sizeof(conf),
		 "vzp11 = vzp11_init\n"
		 "[vzp11_init]\n"
		 "providers = vzp11_providers\n"
		 "[vzp11_providers]\n"
		 "default = vzp11_default\n"
		 "pkcs11 = vzp11_pkcs11\n"
		 "[vzp11_default]\n"
		 "activate = 1\n"
		 "[vzp11_pkcs11]\n"
		 "pkcs11-module-path = \"%s\"\n"
		 "pkcs11-module-quirks = no-deinit no-operation-state\n"
		 "activate = 1\n",
		 module_path);
	OPENSSL_load_builtin_modules();
	bio = BIO_new_mem_buf(conf, -1);
	cnf = NCONF_new_ex(libctx, NULL);
	if (!bio || !cnf || NCONF_load_bio(cnf, bio, NULL) <= 0 ||
	    CONF_modules_load(cnf, "vzp11", 0) <= 0 || !OSSL_PROVIDER_available(libctx, "pkcs11")) {
		vz_err_set(err, "cannot load pkcs11-provider into OpenSSL");
		vz_err_openssl(err);
		vz_err_hint(err, "install pkcs11-provider (Debian 12: from bookworm-backports)");
		goto out;
	}
	loaded = loaded || !libctx;
	ret = VZ_OK;
out:
	NCONF_free(cnf);
	BIO_free(bio);
	return ret;
}

/* Whether the provider's errors on the queue say the token went away
 * (pkcs11-provider raises the CKR_ value as the reason); empties the queue. */
static bool token_gone_in_errors(void)
{
	bool gone = false;
	unsigned long e;

	for (e = ERR_get_error(); e != 0; e = ERR_get_error()) {
		const char *lib = ERR_lib_error_string(e);

		if (!lib || strcmp(lib, "pkcs11") != 0)
			continue;
		switch (ERR_GET_REASON(e)) {
		case 0x30:  /* CKR_DEVICE_ERROR */
		case 0x32:  /* CKR_DEVICE_REMOVED */
		case 0xB3:  /* CKR_SESSION_HANDLE_INVALID */
		case 0xE0:  /* CKR_TOKEN_NOT_PRESENT */
		case 0x190: /* CKR_CRYPTOKI_NOT_INITIALIZED */
			gone = true;
			break;
		default:
			break;
		}
	}
	return gone;
}

/* Loads the private key through the provider of libctx (NULL: the default
 * context) into *out. The PIN is read at most once per call, only if the
 * token asks; a failure that cannot be told apart from a refused PIN sets
 * t->pin_refused, so the PIN is never sent again. */
static vz_rv load_key(vz_tls *t, OSSL_LIB_CTX *libctx, EVP_PKEY **out, vz_err *err)
{
	UI_METHOD *ui = UI_UTIL_wrap_read_pem_callback(pin_cb, 0);
	OSSL_STORE_CTX *st = NULL;
	EVP_PKEY *key = NULL;
	vz_err pin_err = {0};
	vz_rv ret = VZ_FAIL;

	ERR_clear_error();
	t->pin_err = &pin_err;
	t->pin_asked = 0;
	if (ui)
		st = OSSL_STORE_open_ex(t->key_uri, libctx, "provider=pkcs11", ui, t, NULL, NULL,
					NULL);
	while (st && !key && !OSSL_STORE_eof(st)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(st);

		if (!info)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			key = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	vz_secret_wipe(&t->pin);
	if (key) {
		*out = key;
		ret = VZ_OK;
	} else if (pin_err.msg[0]) {
		t->pin_refused = true;
		*err = pin_err;
	} else if (t->pin_asked && !token_gone_in_errors()) {
		t->pin_refused = true;
		err->pin_refused = true;
		vz_err_set(err, "the token did not accept the PIN; the key was not loaded");
		vz_err_hint(err, "check the PIN source; vzp11 never retries a rejected PIN");
	} else {
		vz_err_set(err,
			   "the private key for this certificate cannot be loaded from the token "
			   "through pkcs11-provider");
		vz_err_hint(err, "check that the key is on the token with 'vzp11 list'");
	}
	ERR_clear_error();
	OSSL_STORE_close(st);
	UI_destroy_method(ui);
	t->pin_err = NULL;
	return ret;
}

/* An RSA key on a token without RSA-PSS signs only PKCS#1 v1.5, which TLS
 * 1.3 forbids for CertificateVerify: such keys are held to TLS 1.2. The
 * token's mechanism list decides, not the key's CKA_ALLOWED_MECHANISMS
 * (which lists PSS on every key vzp11 imports). */
static void check_pss(vz_tls *t, const tok_token *tok)
{
	const char *label = tok_token_info_of(tok)->label;
	tok_mech_caps caps;
	tok_err te = {0};

	if (EVP_PKEY_get_base_id(X509_get0_pubkey(t->cert)) != EVP_PKEY_RSA)
		return;
	if (tok_token_mech_caps(tok, &caps, &te) != TOK_OK) {
		t->tls12_only = true;
		snprintf(t->note, sizeof(t->note),
			 _("the mechanisms of token '%s' cannot be read (%.120s): TLS 1.2 with RSA "
			   "PKCS#1 v1.5 signatures only"),
			 label, te.msg);
	} else if (!caps.rsa_pss) {
		t->tls12_only = true;
		snprintf(t->note, sizeof(t->note),
			 _("token '%s' offers no RSA-PSS: TLS 1.2 with RSA PKCS#1 v1.5 signatures "
			   "only (TLS 1.3 needs RSA-PSS)"),
			 label);
	} else {
		snprintf(t->note, sizeof(t->note),
			 _("token '%s' signs RSA-PSS: TLS 1.3 when the server offers it"), label);
	}
}

/* Copies the certificate of store index found and the intermediates of its
 * chain on the token into t. */
static vz_rv take_cert(vz_tls *t, const vz_store *st, size_t found, vz_err *err)
{
	STACK_OF(X509) *chain = vz_cert_chain(st->x509s[found], st->pool, NULL);

	t->cert = X509_dup(st->x509s[found]);
	t->chain = sk_X509_new_null();
	for (int i = 0; chain && t->chain && i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);

		/* The root is the server's to know; send the intermediates. */
		if (X509_check_issued(c, c) != X509_V_OK) {
			X509 *dup = X509_dup(c);

			if (!dup || !sk_X509_push(t->chain, dup)) {
				X509_free(dup);
				sk_X509_pop_free(t->chain, X509_free);
				t->chain = NULL;
				break;
			}
		}
	}
	sk_X509_free(chain);
	if (!t->cert || !t->chain) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	vz_name_string(X509_get_subject_name(t->cert), t->subject, sizeof(t->subject));
	return VZ_OK;
}

/* Certificates (not a CA's) with this label; *last is the last one's index. */
static size_t count_labelled(const vz_store *st, const char *label, size_t *last)
{
	size_t n = 0;

	for (size_t i = 0; i < st->n_certs; i++) {
		if (vz_obj_has_label(&st->certs[i], label) && !st->certs[i].authority &&
		    st->x509s[i]) {
			*last = i;
			n++;
		}
	}
	return n;
}

/* The certificate of label and its chain; public objects first, after a
 * login when the token keeps its certificates private, or when two carry
 * the label (a rotation under way: the private keys' labels decide, see
 * vz_store_resolve). A session that had to log in stays open in t->login:
 * the provider's sessions share its login, so the PIN is sent once. The
 * key is named by its CKA_ID alone (when it has one), so it is found
 * whatever its label. */
static vz_rv find_cert(const vz_global *g, const char *label, vz_tls *t, vz_err *err)
{
	vz_token tk;
	vz_store *st = NULL;
	const vz_entry *e;
	tok_err te = {0};
	tok_rv tr;
	size_t found = 0, n;
	vz_rv r;

	r = vz_token_open(g, false, false, &tk, err);
	if (r == VZ_OK)
		r = vz_store_load_or_login(g, &tk, label, &st, err);
	if (r == VZ_OK && !tk.logged_in && count_labelled(st, label, &found) > 1) {
		vz_store_free(st);
		st = NULL;
		r = vz_token_login(g, &tk, err);
		if (r == VZ_OK)
			r = vz_store_load(tk.s, &st, err);
	}
	if (r != VZ_OK)
		goto out;
	n = count_labelled(st, label, &found);
	e = n > 1 ? vz_store_resolve(st, label, &n) : NULL;
	if (e)
		found = (size_t)(e->cert - st->certs);
	if (n != 1) {
		vz_err_set(err,
			   n ? N_("%zu certificates have the label '%s' on token '%s'")
			     : N_("%zu certificates have the label '%s' on token '%s'; nothing to "
				  "authenticate with"),
			   n, label, tok_token_info_of(tk.tok)->label);
		vz_err_hint(err,
			    "see 'vzp11 list'; import the system certificate with 'vzp11 import'");
		r = VZ_FAIL;
		goto out;
	}
	r = take_cert(t, st, found, err);
	if (r != VZ_OK)
		goto out;
	check_pss(t, tk.tok);
	t->key_uri = tok_uri(tk.tok, TOK_PRIVKEY, st->certs[found].id_len ? NULL : label,
			     (tok_bytes){st->certs[found].id, st->certs[found].id_len});
	if (!t->key_uri) {
		vz_err_set(err, "out of memory");
		r = VZ_FAIL;
		goto out;
	}
	tr = tok_token_module_path(tk.tok, &t->module, &te);
	if (tr != TOK_OK) {
		vz_err_from_tok(err, &te, tr);
		r = VZ_FAIL;
	}
out:
	vz_store_free(st);
	if (r == VZ_OK && tk.logged_in) {
		t->login = tk;
	} else {
		vz_token_close(&tk); /* finalized before the provider loads the module */
	}
	return r;
}

vz_rv vz_tls_open(const vz_global *g, const char *label, vz_tls **out, vz_err *err)
{
	vz_tls *t = calloc(1, sizeof(*t));
	vz_rv r;

	if (!t) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	if (ctx_index < 0)
		ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	t->pin_source = g->pin_source;
	t->g = *g;
	t->g.verbose = 0;
	r = ctx_index < 0 ? VZ_FAIL : VZ_OK;
	if (r != VZ_OK)
		vz_err_set(err, "out of memory");
	if (r == VZ_OK)
		r = find_cert(g, label, t, err);
	if (r == VZ_OK)
		r = load_provider(NULL, t->module, err);
	if (r == VZ_OK)
		r = load_key(t, NULL, &t->key, err);
	if (r != VZ_OK) {
		vz_tls_close(t);
		return r;
	}
	*out = t;
	return VZ_OK;
}

vz_rv vz_tls_open_key(const vz_global *g, const vz_token *tk, const unsigned char *id,
		      size_t id_len, vz_tls **out, vz_err *err)
{
	vz_tls *t = calloc(1, sizeof(*t));
	tok_err te = {0};
	tok_rv tr;
	vz_rv r = VZ_FAIL;

	if (!t) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	t->pin_source = g->pin_source;
	t->g = *g;
	t->g.verbose = 0;
	t->key_uri = tok_uri(tk->tok, TOK_PRIVKEY, NULL, (tok_bytes){id, id_len});
	tr = tok_token_module_path(tk->tok, &t->module, &te);
	if (!t->key_uri) {
		vz_err_set(err, "out of memory");
	} else if (tr != TOK_OK) {
		vz_err_from_tok(err, &te, tr);
	} else {
		r = load_provider(NULL, t->module, err);
		if (r == VZ_OK)
			r = load_key(t, NULL, &t->key, err);
	}
	if (r != VZ_OK) {
		vz_tls_close(t);
		return r;
	}
	*out = t;
	return VZ_OK;
}

/* Counts handshakes that completed, and those in which the token could not
 * sign the CertificateVerify (the client then sends a fatal alert). */
static void info_cb(const SSL *ssl, int where, int ret)
{
	vz_tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);

	(void)ret;
	if (!t)
		return;
	if (where & SSL_CB_HANDSHAKE_DONE)
		t->handshakes++;
	if ((where & SSL_CB_WRITE_ALERT) && SSL_get_state(ssl) == TLS_ST_CW_CERT_VRFY)
		t->key_failures++;
}

/* Called by libcurl for each new SSL_CTX, after its own settings. */
static CURLcode ctx_cb(CURL *h, void *ssl_ctx, void *userdata)
{
	SSL_CTX *ctx = ssl_ctx;
	vz_tls *t = userdata;

	(void)h;
	t->connections++; /* libcurl makes one SSL_CTX per new connection */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_ex_data(ctx, ctx_index, t) != 1)
		return CURLE_SSL_CERTPROBLEM;
	/* Client sigalgs govern only our own CertificateVerify; the server may
	 * still sign with PSS, which OpenSSL verifies in software. */
	if (t->tls12_only && (SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
			      SSL_CTX_set1_client_sigalgs_list(ctx, PKCS1_SIGALGS) != 1))
		return CURLE_SSL_CERTPROBLEM;
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (SSL_CTX_use_certificate(ctx, t->cert) != 1)
		return CURLE_SSL_CERTPROBLEM;
	if (SSL_CTX_use_PrivateKey(ctx, t->key) != 1) {
		t->key_failures++;
		return CURLE_SSL_CERTPROBLEM;
	}
	for (int i = 0; i < sk_X509_num(t->chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(t->chain, i)) != 1)
			return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

vz_rv vz_tls_setup_curl(vz_tls *t, CURL *h, const char *cacert, vz_err *err)
{
	CURLcode c = CURLE_OK;

	c |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	c |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	c |= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	c |= curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ctx_cb);
	c |= curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, t);
	if (cacert) {
		/* libcurl keeps its built-in CA directory next to CAINFO: drop it
		 * so that only the named file is trusted. */
		c |= curl_easy_setopt(h, CURLOPT_CAINFO, cacert);
		c |= curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	if (c != CURLE_OK) {
		vz_err_set(err,
			   "libcurl does not accept the TLS settings (is it built with OpenSSL?)");
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* Whether the token is back: the module initialized again (a module that
 * lost its device may find it only in a fresh C_Initialize), the token
 * listed and a session opened, then all closed and the module finalized.
 * The provider is not touched before this succeeds: pkcs11-provider 1.0
 * can crash tearing down an instance whose C_GetMechanismList failed. */
static vz_rv token_back(vz_tls *t, vz_err *err)
{
	vz_token tk;
	vz_rv r;

	vz_token_close(&t->login);
	r = vz_token_open(&t->g, false, false, &tk, err);
	if (r == VZ_OK)
		vz_token_close(&tk);
	return r;
}

vz_rv vz_tls_reconnect(vz_tls *t, bool *final, vz_err *err)
{
	OSSL_LIB_CTX *libctx = NULL;
	EVP_PKEY *key = NULL;
	vz_rv r;

	*final = t->pin_refused;
	vz_tls_forget_key(t); /* its instance lost the token: see retired_keys */
	if (t->pin_refused) {
		vz_err_set(err, "the token is not re-connected: the PIN failed before");
		vz_err_hint(err, "check the PIN source; vzp11 never retries a rejected PIN");
		return VZ_FAIL;
	}
	r = token_back(t, err);
	if (r != VZ_OK)
		return r;
	libctx = OSSL_LIB_CTX_new();
	if (!libctx) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	r = load_provider(libctx, t->module, err);
	if (r == VZ_OK)
		r = load_key(t, libctx, &key, err);
	if (r != VZ_OK) {
		retire(libctx); /* a provider instance may live in it */
		*final = t->pin_refused;
		return r;
	}
	retire(t->libctx);
	t->libctx = libctx;
	OSSL_LIB_CTX_set0_default(libctx);
	t->key = key;
	t->reconnects++;
	return VZ_OK;
}

size_t vz_tls_connections(const vz_tls *t)
{
	return t->connections;
}

size_t vz_tls_key_failures(const vz_tls *t)
{
	return t->key_failures;
}

size_t vz_tls_handshakes(const vz_tls *t)
{
	return t->handshakes;
}

size_t vz_tls_reconnects(const vz_tls *t)
{
	return t->reconnects;
}

const char *vz_tls_subject(const vz_tls *t)
{
	return t->subject;
}

EVP_PKEY *vz_tls_key(const vz_tls *t)
{
	return t->key;
}

X509 *vz_tls_cert(const vz_tls *t)
{
	return t->cert;
}

const char *vz_tls_note(const vz_tls *t)
{
	return t->note;
}

void vz_tls_close(vz_tls *t)
{
	if (!t)
		return;
	EVP_PKEY_free(t->key);
	X509_free(t->cert);
	sk_X509_pop_free(t->chain, X509_free);
	free(t->key_uri);
	free(t->module);
	vz_secret_wipe(&t->pin);
	vz_token_close(&t->login);
	free(t);
}
