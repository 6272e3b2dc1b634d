/* tls.c - the token's key in libcurl's TLS handshakes, through
 * pkcs11-provider. libcurl 7.88 cannot take a provider key itself, so the
 * certificate, chain and key go into each SSL_CTX from its callback. */
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

struct vz_tls {
	X509 *cert;
	STACK_OF(X509) *chain; /* intermediates to send, nearest first */
	EVP_PKEY *key;
	char subject[512];
	const char *pin_source;
	vz_secret pin;
	int pin_asked;
	vz_err *pin_err;
	size_t connections;
};

/* The provider calls this when the token wants the PIN; it gets the PIN at
 * most once, so a rejected PIN is never sent again. */
static int pin_cb(char *buf, int size, int rwflag, void *userdata)
{
	struct vz_tls *t = userdata;

	if (t->pin_asked++ > 0)
		return -1;
	if (vz_secret_read(t->pin_source, "token PIN", &t->pin, t->pin_err) != VZ_OK)
		return -1;
	if ((int)t->pin.len >= size)
		return -1;
	memcpy(buf, t->pin.buf, t->pin.len);
	return (int)t->pin.len;
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
static vz_rv load_provider(const char *module_path, vz_err *err)
{
	static bool loaded;
	char conf[1024];
	CONF *cnf = NULL;
	BIO *bio = NULL;
	vz_rv ret = VZ_FAIL;

	if (loaded)
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
	cnf = NCONF_new(NULL);
	if (!bio || !cnf || NCONF_load_bio(cnf, bio, NULL) <= 0 ||
	    CONF_modules_load(cnf, "vzp11", 0) <= 0 || !OSSL_PROVIDER_available(NULL, "pkcs11")) {
		vz_err_set(err, "cannot load pkcs11-provider into OpenSSL");
		vz_err_openssl(err);
		vz_err_hint(err, "install pkcs11-provider (Debian 12: from bookworm-backports)");
		goto out;
	}
	loaded = true;
	ret = VZ_OK;
out:
	NCONF_free(cnf);
	BIO_free(bio);
	return ret;
}

static vz_rv load_key(vz_tls *t, const char *uri, vz_err *err)
{
	UI_METHOD *ui = UI_UTIL_wrap_read_pem_callback(pin_cb, 0);
	OSSL_STORE_CTX *st = NULL;
	vz_err pin_err = {0};
	vz_rv ret = VZ_FAIL;

	t->pin_err = &pin_err;
	if (ui)
		st = OSSL_STORE_open_ex(uri, NULL, "provider=pkcs11", ui, t, NULL, NULL, NULL);
	while (st && !t->key && !OSSL_STORE_eof(st)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(st);

		if (!info)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			t->key = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	if (t->key) {
		ret = VZ_OK;
	} else if (pin_err.msg[0]) {
		*err = pin_err;
	} else if (t->pin_asked) {
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

/* The certificate of label and its chain, from public objects only. */
static vz_rv find_cert(const vz_global *g, const char *label, vz_tls *t, char **key_uri,
		       char **module, vz_err *err)
{
	vz_token tk;
	vz_store *st = NULL;
	tok_err te = {0};
	tok_rv tr;
	long found = -1;
	size_t n = 0;
	vz_rv r;

	r = vz_token_open(g, false, false, &tk, err);
	if (r == VZ_OK)
		r = vz_store_load(tk.s, &st, err);
	if (r != VZ_OK)
		goto out;
	for (size_t i = 0; i < st->n_certs; i++) {
		const tok_obj *o = &st->certs[i];

		if (vz_obj_has_label(o, label) && !o->authority && st->x509s[i]) {
			found = (long)i;
			n++;
		}
	}
	if (n != 1) {
		vz_err_set(err,
			   n ? "%zu certificates have the label '%s' on token '%s'"
			     : "%zu certificates have the label '%s' on token '%s'; nothing to "
			       "authenticate with",
			   n, label, tok_token_info_of(tk.tok)->label);
		vz_err_hint(err,
			    "see 'vzp11 list'; import the system certificate with 'vzp11 import'");
		r = VZ_FAIL;
		goto out;
	}
	{
		const tok_obj *o = &st->certs[found];
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
		vz_name_string(X509_get_subject_name(t->cert), t->subject, sizeof(t->subject));
		*key_uri = tok_uri(tk.tok, TOK_PRIVKEY, o->label, (tok_bytes){o->id, o->id_len});
		if (!t->cert || !t->chain || !*key_uri) {
			vz_err_set(err, "out of memory");
			r = VZ_FAIL;
			goto out;
		}
	}
	tr = tok_token_module_path(tk.tok, module, &te);
	if (tr != TOK_OK) {
		vz_err_from_tok(err, &te, tr);
		r = VZ_FAIL;
	}
out:
	vz_store_free(st);
	vz_token_close(&tk); /* finalized before the provider loads the module */
	return r;
}

vz_rv vz_tls_open(const vz_global *g, const char *label, vz_tls **out, vz_err *err)
{
	vz_tls *t = calloc(1, sizeof(*t));
	char *uri = NULL, *module = NULL;
	vz_rv r;

	if (!t) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	t->pin_source = g->pin_source;
	r = find_cert(g, label, t, &uri, &module, err);
	if (r == VZ_OK)
		r = load_provider(module, err);
	if (r == VZ_OK)
		r = load_key(t, uri, err);
	free(uri);
	free(module);
	vz_secret_wipe(&t->pin);
	if (r != VZ_OK) {
		vz_tls_close(t);
		return r;
	}
	*out = t;
	return VZ_OK;
}

/* Called by libcurl for each new SSL_CTX, after its own settings. */
static CURLcode ctx_cb(CURL *h, void *ssl_ctx, void *userdata)
{
	SSL_CTX *ctx = ssl_ctx;
	vz_tls *t = userdata;

	t->connections++; /* libcurl makes one SSL_CTX per new connection */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate(ctx, t->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, t->key) != 1)
		return CURLE_SSL_CERTPROBLEM;
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

size_t vz_tls_connections(const vz_tls *t)
{
	return t->connections;
}

const char *vz_tls_subject(const vz_tls *t)
{
	return t->subject;
}

void vz_tls_close(vz_tls *t)
{
	if (!t)
		return;
	EVP_PKEY_free(t->key);
	X509_free(t->cert);
	sk_X509_pop_free(t->chain, X509_free);
	vz_secret_wipe(&t->pin);
	free(t);
}
