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
 * becomes the thread's default (OSSL_LIB_CTX_set0_default), and a thread
 * that drives the transfers of several keys (the gateway's labels) makes
 * each one's context its default before (vz_tls_enter). The old context
 * is retired, never freed: its
 * provider instance's handles are dead and may by now name other sessions,
 * so tearing it down could close sessions of the new one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509v3.h>

#include "token/token.h"
#include "cli/cli.h"
#include "tls/tls.h"

/* Client signatures TLS 1.2 can make without RSA-PSS: PKCS#1 v1.5. */
#define PKCS1_SIGALGS "RSA+SHA256:RSA+SHA384:RSA+SHA512"
/* ... and with RSA-PSS only, in TLS 1.2 as in 1.3. */
#define PSS_SIGALGS "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512"

struct vz_tls {
	X509 *cert;
	STACK_OF(X509) *chain; /* intermediates to send, nearest first */
	EVP_PKEY *key;
	char subject[512];
	char *key_uri;	   /* kept for re-connects */
	char *module;	   /* file of the PKCS#11 module */
	char *module_args; /* its C_Initialize argument, or NULL */
	const char *pin_source;
	vz_secret pin;
	int pin_asked;
	vz_err *pin_err;
	bool pin_refused;     /* the PIN failed once: never log in again */
	vz_token login;	      /* held open when certificates needed a login */
	vz_global g;	      /* module, token and PIN source, for re-connects */
	OSSL_LIB_CTX *libctx; /* the key's context; NULL: the default one */
	bool tls12_only;      /* an RSA key that is not to sign RSA-PSS */
	bool mechs_unread;    /* the token's mechanism list could not be read */
	vz_tls_rsa_sig rsa_sig;
	char token_label[33];
	char note[640];
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

/* The provider calls this when the token wants the PIN (normally it does
 * not: login_for_key() logged in first); it gets the PIN at most once, so a
 * rejected PIN is never sent again: the one login_for_key() read, else
 * from its source. */
static int pin_cb(char *buf, int size, int rwflag, void *userdata)
{
	struct vz_tls *t = userdata;

	if (t->pin_asked++ > 0)
		return -1;
	if (!t->pin.len &&
	    vz_secret_read(t->pin_source, _("token PIN"), &t->pin, t->pin_err) != VZ_OK)
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
 * configuration is built in memory; it holds no PIN. The module gets the
 * same initialization arguments as the token layer gave it. */
static vz_rv load_provider(OSSL_LIB_CTX *libctx, const char *module_path, const char *module_args,
			   vz_err *err)
{
	static bool loaded; /* into the default context */
	char *conf = NULL, args[1200] = "";
	CONF *cnf = NULL;
	BIO *bio = NULL;
	vz_rv ret = VZ_FAIL;

	if (!libctx && loaded)
		return VZ_OK;
	if (!conf_safe(module_path)) {
		vz_err_set(err, "the PKCS#11 module path contains characters vzp11 cannot pass on");
		return VZ_FAIL;
	}
	if (module_args && (!conf_safe(module_args) || strlen(module_args) > 1000)) {
		vz_err_set(err, "the module's initialization arguments (--module-args) are longer "
				"than 1000 characters or hold a character pkcs11-provider's "
				"configuration cannot carry (\", \\, $ or a line end)");
		vz_err_hint(err, "write them without those characters");
		return VZ_FAIL;
	}
	if (module_args)
		snprintf(args, sizeof(args), "pkcs11-module-init-args = \"%s\"\n", module_args);
	if (asprintf(&conf,
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
		     "%s"
		     "pkcs11-module-quirks = no-deinit no-operation-state\n"
		     "activate = 1\n",
		     module_path, args) < 0) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
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
	free(conf);
	return ret;
}

/* What pkcs11-provider's errors on the queue say (it raises the CKR_ value
 * as the reason); empties the queue. */
struct provider_errors {
	bool gone;	   /* the token went away */
	unsigned long pin; /* C_Login refused the PIN: its CKR_ code, else 0 */
	char reason[160];  /* the first of its errors, for messages */
};

static void read_provider_errors(struct provider_errors *pe)
{
	unsigned long e;
	const char *data = NULL;
	int flags = 0;

	memset(pe, 0, sizeof(*pe));
	for (e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags); e != 0;
	     e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) {
		const char *lib = ERR_lib_error_string(e);
		unsigned long reason = (unsigned long)ERR_GET_REASON(e);

		if (!pe->reason[0])
			snprintf(pe->reason, sizeof(pe->reason), "%s",
				 (flags & ERR_TXT_STRING) && data && *data
					 ? data
					 : (ERR_reason_error_string(e) ? ERR_reason_error_string(e)
								       : "unknown"));
		if (!lib || strcmp(lib, "pkcs11") != 0)
			continue;
		switch (reason) {
		case 0x30:  /* CKR_DEVICE_ERROR */
		case 0x32:  /* CKR_DEVICE_REMOVED */
		case 0xB3:  /* CKR_SESSION_HANDLE_INVALID */
		case 0xE0:  /* CKR_TOKEN_NOT_PRESENT */
		case 0x190: /* CKR_CRYPTOKI_NOT_INITIALIZED */
			pe->gone = true;
			break;
		case 0xA0: /* CKR_PIN_INCORRECT */
		case 0xA1: /* CKR_PIN_INVALID */
		case 0xA2: /* CKR_PIN_LEN_RANGE */
		case 0xA3: /* CKR_PIN_EXPIRED */
		case 0xA4: /* CKR_PIN_LOCKED */
			pe->pin = pe->pin ? pe->pin : reason;
			break;
		default:
			break;
		}
	}
}

/* Loads the private key through the provider of libctx (NULL: the default
 * context) into *out. The PIN is read at most once per call, only if the
 * token asks. "The token did not accept the PIN" only when C_Login said
 * so; any failure after the PIN was read sets t->pin_refused all the same,
 * so a PIN that may have been refused is never sent again. */
static vz_rv load_key(vz_tls *t, OSSL_LIB_CTX *libctx, EVP_PKEY **out, vz_err *err)
{
	UI_METHOD *ui = UI_UTIL_wrap_read_pem_callback(pin_cb, 0);
	OSSL_STORE_CTX *st = NULL;
	EVP_PKEY *key = NULL;
	vz_err pin_err = {0};
	struct provider_errors pe;
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
	read_provider_errors(&pe);
	if (key) {
		*out = key;
		ret = VZ_OK;
	} else if (pin_err.msg[0]) {
		t->pin_refused = true;
		*err = pin_err;
	} else if (pe.pin) {
		t->pin_refused = true;
		err->pin_refused = true;
		vz_err_set(err,
			   "the token did not accept the PIN (C_Login: %s); the key was not loaded",
			   tok_ckr_name(pe.pin));
		vz_err_hint(err, "check the PIN source; vzp11 never retries a rejected PIN");
	} else if (pe.gone) {
		vz_err_set(err, "the token went away while pkcs11-provider loaded the key (%s)",
			   pe.reason);
		vz_err_hint(err, "check the token and its connection and run the command again");
	} else if (t->pin_asked) {
		t->pin_refused = true; /* the PIN may have reached the token: not again */
		vz_err_set(err,
			   "pkcs11-provider read the PIN but did not load the key (%s); the token "
			   "did not say that it refused the PIN",
			   pe.reason[0] ? pe.reason : _("no reason given"));
		vz_err_hint(err, "see 'vzp11 show LABEL' for the key; vzp11 does not send the PIN "
				 "again in this run");
	} else {
		vz_err_set(err,
			   "the private key for this certificate cannot be loaded from the token "
			   "through pkcs11-provider (%s)",
			   pe.reason[0] ? pe.reason : _("no reason given"));
		vz_err_hint(err, "check that 'vzp11 show LABEL' shows the key; if it does, the "
				 "provider cannot use this token's key");
	}
	ERR_clear_error();
	OSSL_STORE_close(st);
	UI_destroy_method(ui);
	t->pin_err = NULL;
	return ret;
}

/* An RSA key on a token without RSA-PSS signs only PKCS#1 v1.5, which TLS
 * 1.3 forbids for CertificateVerify: such keys are held to TLS 1.2. The
 * token's mechanism list says what it does not offer; what it offers is
 * tried once the key is loaded (probe_key). The key's
 * CKA_ALLOWED_MECHANISMS lists PSS on every key vzp11 imports and decides
 * nothing. */
static void check_pss(vz_tls *t, const tok_token *tok)
{
	const char *label = tok_token_info_of(tok)->label;
	tok_mech_caps caps;
	tok_err te = {0};

	snprintf(t->token_label, sizeof(t->token_label), "%s", label);
	if (EVP_PKEY_get_base_id(X509_get0_pubkey(t->cert)) != EVP_PKEY_RSA)
		return;
	if (tok_token_mech_caps(tok, &caps, &te) != TOK_OK) {
		t->tls12_only = true;
		t->mechs_unread = true;
		t->rsa_sig = VZ_TLS_SIG_PKCS1_UNLISTED;
		snprintf(t->note, sizeof(t->note),
			 _("the mechanisms of token '%s' cannot be read (%.120s): TLS 1.2 with RSA "
			   "PKCS#1 v1.5 signatures only"),
			 label, te.msg);
	} else if (!caps.rsa_pss) {
		t->tls12_only = true;
		t->rsa_sig = VZ_TLS_SIG_PKCS1_UNLISTED;
		snprintf(t->note, sizeof(t->note),
			 _("token '%s' offers no RSA-PSS: TLS 1.2 with RSA PKCS#1 v1.5 signatures "
			   "only (TLS 1.3 needs RSA-PSS)"),
			 label);
	} else {
		t->rsa_sig = VZ_TLS_SIG_PSS; /* to be tried */
	}
}

int vz_tls_try_sign(EVP_PKEY *key, EVP_PKEY *pub, const char *md, bool pss, char *why,
		    size_t why_size)
{
	unsigned char challenge[32], sig[1024];
	size_t sig_len = sizeof(sig);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ret = -1;

	why[0] = '\0';
	if (!mc || RAND_bytes(challenge, sizeof(challenge)) != 1 ||
	    EVP_DigestSignInit_ex(mc, &pc, md, NULL, NULL, key, NULL) != 1 ||
	    (pss && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1)) ||
	    EVP_DigestSign(mc, sig, &sig_len, challenge, sizeof(challenge)) != 1) {
		struct provider_errors pe;

		read_provider_errors(&pe);
		snprintf(why, why_size, "%s", pe.reason[0] ? pe.reason : _("no reason given"));
		ret = pe.gone ? -2 : -1;
		goto out;
	}
	EVP_MD_CTX_free(mc);
	mc = EVP_MD_CTX_new();
	pc = NULL;
	ret = 0;
	if (mc && EVP_DigestVerifyInit_ex(mc, &pc, md, NULL, "provider=default", pub, NULL) == 1 &&
	    (!pss || (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
		      EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1)) &&
	    EVP_DigestVerify(mc, sig, sig_len, challenge, sizeof(challenge)) == 1)
		ret = 1;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mc);
	return ret;
}

/* The token went away while the key was tried: nothing is decided (the
 * handshakes go by the mechanism list, and their failures by the
 * re-connect logic). */
static vz_rv gone_while_tried(const vz_tls *t, const char *why, vz_err *err)
{
	vz_err_set(err, "token '%s' went away while its key was tried (%s)", t->token_label, why);
	vz_err_hint(err, "check the token and its connection and run the command again");
	return VZ_FAIL;
}

int vz_tls_key_matches(const vz_tls *t)
{
	EVP_PKEY *pub = X509_get0_pubkey(t->cert);
	BIGNUM *key_n = NULL, *cert_n = NULL;
	int r = -1;

	/* The modulus the provider reads from the private key object itself
	 * (EVP_PKEY_eq is no help: pkcs11-provider 1.0 compares the public key
	 * object of the same CKA_ID). */
	if (pub && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bn_param(t->key, OSSL_PKEY_PARAM_RSA_N, &key_n) == 1 &&
	    EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_RSA_N, &cert_n) == 1)
		r = BN_cmp(key_n, cert_n) == 0;
	BN_free(key_n);
	BN_free(cert_n);
	ERR_clear_error();
	return r;
}

/* The RSA PKCS#1 v1.5 signature did not verify with the certificate and no
 * RSA-PSS one did: whether the key is the certificate's says which of the
 * two is wrong, and what RSA-PSS did is said as it happened. */
static vz_rv pkcs1_unverified(const vz_tls *t, int pss, const char *why_pss, vz_err *err)
{
	char pss_said[240];

	if (pss == 0)
		snprintf(pss_said, sizeof(pss_said), "%s",
			 _("its RSA-PSS signature does not verify either"));
	else if (t->rsa_sig == VZ_TLS_SIG_PSS)
		snprintf(pss_said, sizeof(pss_said), _("it signs no RSA-PSS (%s)"), why_pss);
	else
		snprintf(pss_said, sizeof(pss_said), _("RSA-PSS was not tried (%s)"),
			 t->mechs_unread ? _("the token's mechanism list could not be read")
					 : _("the token offers none"));
	switch (vz_tls_key_matches(t)) {
	case 0:
		vz_err_set(err,
			   "the key of token '%s' with this certificate's CKA_ID is another key "
			   "(its public key is not the certificate's): no signature of it can "
			   "verify",
			   t->token_label);
		vz_err_hint(err, "import the .pfx again with 'vzp11 import --replace' (the key "
				 "with this certificate's CKA_ID belongs to another certificate)");
		break;
	case 1:
		vz_err_set(err,
			   "the key of token '%s' is the certificate's, but its RSA PKCS#1 v1.5 "
			   "signature does not verify, and %s: the token signs wrongly with it",
			   t->token_label, pss_said);
		vz_err_hint(err, "no TLS handshake can use this key on this token; use a token "
				 "that signs RSA-PSS or offers CKM_SHA256_RSA_PKCS");
		break;
	default:
		vz_err_set(err,
			   "the RSA PKCS#1 v1.5 signature of the key of token '%s' does not "
			   "verify with the certificate, and %s: either the key is not the "
			   "certificate's or the token signs wrongly",
			   t->token_label, pss_said);
		vz_err_hint(err, "if the key belongs to another certificate, import the .pfx "
				 "again with 'vzp11 import --replace'; else use a token that signs "
				 "RSA-PSS or offers CKM_SHA256_RSA_PKCS");
		break;
	}
	return VZ_FAIL;
}

/* An EC key signs once and the certificate verifies it, or no handshake
 * can use the key. */
static vz_rv probe_ec(const vz_tls *t, EVP_PKEY *pub, vz_err *err)
{
	const char *md = EVP_PKEY_get_bits(pub) > 256 ? "SHA384" : "SHA256";
	char why[160];
	int ec = vz_tls_try_sign(t->key, pub, md, false, why, sizeof(why));

	if (ec == 1)
		return VZ_OK;
	if (ec == -2)
		return gone_while_tried(t, why, err);
	if (ec == 0) {
		vz_err_set(err,
			   "the ECDSA signature of the key of token '%s' does not verify with "
			   "the certificate: key and certificate do not match",
			   t->token_label);
		vz_err_hint(err, "import the .pfx again with 'vzp11 import --replace'");
	} else {
		vz_err_set(err,
			   "the key of token '%s' does not sign ECDSA (%s), so no TLS "
			   "handshake can use it",
			   t->token_label, why);
		vz_err_hint(err, "use a token that offers ECDSA (CKM_ECDSA) for signing");
	}
	return VZ_FAIL;
}

/* The RSA key signed in neither scheme: why each did not, as it happened. */
static vz_rv signs_neither(const vz_tls *t, int pss, const char *why_pss, const char *why_pkcs1,
			   vz_err *err)
{
	const char *pss_why = why_pss[0] ? why_pss : _("its signature does not verify");

	if (pss == -1 && !why_pss[0])
		pss_why = t->mechs_unread
				  ? _("not tried: the token's mechanism list could not be read")
				  : _("the token offers no RSA-PSS");
	vz_err_set(err,
		   "the key of token '%s' signs neither RSA-PSS (%s) nor RSA PKCS#1 v1.5 "
		   "(%s), so no TLS handshake can use it",
		   t->token_label, pss_why,
		   why_pkcs1[0] ? why_pkcs1 : _("its signature does not verify"));
	vz_err_hint(err, "check the key with 'vzp11 show LABEL': the token does not let it "
			 "sign");
	return VZ_FAIL;
}

/* The RSA schemes the handshakes may use, from what the two tries did
 * (1 verified, 0 signed but did not verify, -1 no signature, or RSA-PSS
 * not tried): both, RSA-PSS only, PKCS#1 v1.5 only (then TLS 1.2), or none
 * (a failure that says why). */
static vz_rv settle_rsa_schemes(vz_tls *t, int pss, int pkcs1, const char *why_pss,
				const char *why_pkcs1, vz_err *err)
{
	if (pss == 1 && pkcs1 == 1) {
		snprintf(t->note, sizeof(t->note),
			 _("token '%s' signs RSA-PSS: TLS 1.3 when the server offers it"),
			 t->token_label);
	} else if (pss == 1) {
		t->rsa_sig = VZ_TLS_SIG_PSS_ONLY;
		if (pkcs1 == 0)
			snprintf(
				t->note, sizeof(t->note),
				_("token '%s' signs RSA-PSS, but its RSA PKCS#1 v1.5 signature does "
				  "not verify with the certificate: RSA-PSS signatures only, in TLS "
				  "1.2 too"),
				t->token_label);
		else
			snprintf(t->note, sizeof(t->note),
				 _("token '%s' signs RSA-PSS but not RSA PKCS#1 v1.5 (%s): RSA-PSS "
				   "signatures only, in TLS 1.2 too"),
				 t->token_label, why_pkcs1);
	} else if (pkcs1 == 1 && t->rsa_sig == VZ_TLS_SIG_PSS) {
		t->tls12_only = true;
		t->rsa_sig = VZ_TLS_SIG_PKCS1_FALLBACK;
		if (pss == 0)
			snprintf(t->note, sizeof(t->note),
				 _("token '%s' offers RSA-PSS but its RSA-PSS signature does not "
				   "verify with the certificate: TLS 1.2 with RSA PKCS#1 v1.5 "
				   "signatures instead"),
				 t->token_label);
		else
			snprintf(
				t->note, sizeof(t->note),
				_("token '%s' offers RSA-PSS but did not sign with it (%s): TLS 1.2 "
				  "with RSA PKCS#1 v1.5 signatures instead"),
				t->token_label, why_pss);
	} else if (pkcs1 == 0) {
		return pkcs1_unverified(t, pss, why_pss, err);
	} else if (pkcs1 != 1) {
		return signs_neither(t, pss, why_pss, why_pkcs1, err);
	}
	return VZ_OK;
}

/* The key signs once in each scheme the TLS layer may use, and the
 * certificate's public key verifies each signature: the mechanism list
 * says what a token does not offer, only signing shows what it does. An
 * RSA key that does not sign RSA-PSS (p11-kit 0.24 remoting lists it and
 * refuses CKM_SHA256_RSA_PKCS_PSS) is held to TLS 1.2 with PKCS#1 v1.5; one
 * whose PKCS#1 v1.5 signature does not verify (pkcs11-provider 1.0 sends
 * no DigestInfo where a token lacks CKM_SHA256_RSA_PKCS: openCryptoki 3.8)
 * signs RSA-PSS only, in TLS 1.2 too. A failure here is what the token
 * does with this key, never a lost token or a PIN. */
static vz_rv probe_key(vz_tls *t, vz_err *err)
{
	EVP_PKEY *pub = X509_get0_pubkey(t->cert);
	char why_pss[160] = "", why_pkcs1[160] = "";
	int pss = -1, pkcs1;

	if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA)
		return probe_ec(t, pub, err);
	if (t->rsa_sig == VZ_TLS_SIG_PSS)
		pss = vz_tls_try_sign(t->key, pub, "SHA256", true, why_pss, sizeof(why_pss));
	if (pss == -2)
		return gone_while_tried(t, why_pss, err);
	pkcs1 = vz_tls_try_sign(t->key, pub, "SHA256", false, why_pkcs1, sizeof(why_pkcs1));
	if (pkcs1 == -2)
		return gone_while_tried(t, why_pkcs1, err);
	return settle_rsa_schemes(t, pss, pkcs1, why_pss, why_pkcs1, err);
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

/* Logs in with the token layer before pkcs11-provider needs the key: then
 * C_Login's own answer says whether the PIN was refused (pkcs11-provider
 * 1.0 keeps that to itself), the session stays open in t->login so the
 * provider's sessions share the login and it sends no PIN, and the PIN
 * read is kept in t->pin in case the provider asks all the same (wiped
 * once the key is loaded). */
static vz_rv login_for_key(const vz_global *g, vz_tls *t, vz_token *tk, vz_err *err)
{
	vz_rv r;

	if (tk->logged_in || !tok_token_info_of(tk->tok)->login_required)
		return VZ_OK;
	r = vz_token_login_pin(g, tk, &t->pin, err);
	if (r != VZ_OK)
		t->pin_refused = t->pin_refused || err->pin_refused;
	return r;
}

/* Where pkcs11-provider finds the key: its URI on tok (by CKA_ID; by label
 * where label is not NULL), the module's file and its arguments. */
static vz_rv locate_key(vz_tls *t, const tok_token *tok, const char *label, tok_bytes id,
			vz_err *err)
{
	tok_err te = {0};
	tok_rv tr;

	t->key_uri = tok_uri(tok, TOK_PRIVKEY, label, id);
	if (!t->key_uri) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	tr = tok_token_module_path(tok, &t->module, &te);
	t->module_args = tok_token_module_args(tok);
	if (tr != TOK_OK) {
		vz_err_from_tok(err, &te, tr);
		return VZ_FAIL;
	}
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
	if (r == VZ_OK)
		r = login_for_key(g, t, &tk, err);
	if (r != VZ_OK)
		goto out;
	check_pss(t, tk.tok);
	r = locate_key(t, tk.tok, st->certs[found].id_len ? NULL : label,
		       (tok_bytes){st->certs[found].id, st->certs[found].id_len}, err);
out:
	vz_store_free(st);
	if (r == VZ_OK && tk.logged_in)
		t->login = tk;
	else
		vz_token_close(&tk); /* finalized before the provider loads the module */
	return r;
}

/* A vz_tls that keeps the global options (quiet) for re-connects; NULL,
 * with err set, when out of memory. */
static vz_tls *tls_new(const vz_global *g, vz_err *err)
{
	vz_tls *t = calloc(1, sizeof(*t));

	if (!t) {
		vz_err_set(err, "out of memory");
		return NULL;
	}
	t->pin_source = g->pin_source;
	t->g = *g;
	t->g.verbose = 0;
	return t;
}

/* Once the key is located (r), loads it through pkcs11-provider in the
 * default library context and hands t out; on any failure t is closed. */
static vz_rv finish_open(vz_tls *t, vz_rv r, vz_tls **out, vz_err *err)
{
	if (r == VZ_OK)
		r = load_provider(NULL, t->module, t->module_args, err);
	if (r == VZ_OK)
		r = load_key(t, NULL, &t->key, err);
	if (r != VZ_OK) {
		vz_tls_close(t);
		return r;
	}
	*out = t;
	return VZ_OK;
}

vz_rv vz_tls_open_untried(const vz_global *g, const char *label, vz_tls **out, vz_err *err)
{
	vz_tls *t = tls_new(g, err);
	vz_rv r;

	if (!t)
		return VZ_FAIL;
	if (ctx_index < 0)
		ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	r = ctx_index < 0 ? VZ_FAIL : VZ_OK;
	if (r != VZ_OK)
		vz_err_set(err, "out of memory");
	if (r == VZ_OK)
		r = find_cert(g, label, t, err);
	return finish_open(t, r, out, err);
}

vz_rv vz_tls_open_key(const vz_global *g, const vz_token *tk, const unsigned char *id,
		      size_t id_len, vz_tls **out, vz_err *err)
{
	vz_tls *t = tls_new(g, err);
	vz_rv r;

	if (!t)
		return VZ_FAIL;
	r = locate_key(t, tk->tok, NULL, (tok_bytes){id, id_len}, err);
	return finish_open(t, r, out, err);
}

vz_rv vz_tls_try_key(vz_tls *t, vz_err *err)
{
	return probe_key(t, err);
}

vz_rv vz_tls_open(const vz_global *g, const char *label, vz_tls **out, vz_err *err)
{
	vz_tls *t = NULL;
	vz_err untried = {0};
	vz_rv r = vz_tls_open_untried(g, label, &t, err);

	if (r != VZ_OK)
		return r;
	/* A key that signs in no scheme is left to the handshakes, as before
	 * this try: the gateway starts and says so in its health check. */
	if (vz_tls_try_key(t, &untried) != VZ_OK)
		snprintf(t->note, sizeof(t->note), "%.400s%s%.230s", untried.msg,
			 untried.hint[0] ? "; " : "", untried.hint);
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
	if (t->rsa_sig == VZ_TLS_SIG_PSS_ONLY &&
	    SSL_CTX_set1_client_sigalgs_list(ctx, PSS_SIGALGS) != 1)
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

	vz_token_close_shared(&t->login);
	r = vz_token_open(&t->g, false, false, &tk, err);
	if (r == VZ_OK)
		r = login_for_key(&t->g, t, &tk, err);
	if (r == VZ_OK && tk.logged_in)
		t->login = tk; /* the new provider instance shares its login */
	else
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
	r = load_provider(libctx, t->module, t->module_args, err);
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

void vz_tls_enter(const vz_tls *t)
{
	OSSL_LIB_CTX_set0_default(t->libctx ? t->libctx : OSSL_LIB_CTX_get0_global_default());
}

void vz_tls_leave(void)
{
	OSSL_LIB_CTX_set0_default(OSSL_LIB_CTX_get0_global_default());
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

vz_tls_rsa_sig vz_tls_rsa_scheme(const vz_tls *t)
{
	return t->rsa_sig;
}

bool vz_tls_fell_back(const vz_tls *t)
{
	return t->rsa_sig == VZ_TLS_SIG_PKCS1_FALLBACK || t->rsa_sig == VZ_TLS_SIG_PSS_ONLY;
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
	free(t->module_args);
	vz_secret_wipe(&t->pin);
	vz_token_close_shared(&t->login);
	free(t);
}
