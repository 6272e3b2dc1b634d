/* p12.c - PKCS#12 parsing in a private library context with the legacy
 * provider (Windows exports still use RC2-40 and 3DES). */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>

#include "token/token.h"

struct vz_p12 {
	OSSL_LIB_CTX *libctx;
	OSSL_PROVIDER *prov_default, *prov_legacy;
	EVP_PKEY *key;
	STACK_OF(X509) *certs;
};

void vz_p12_free(vz_p12 *p)
{
	if (!p)
		return;
	EVP_PKEY_free(p->key);
	sk_X509_pop_free(p->certs, X509_free);
	OSSL_PROVIDER_unload(p->prov_legacy);
	OSSL_PROVIDER_unload(p->prov_default);
	OSSL_LIB_CTX_free(p->libctx);
	free(p);
}

EVP_PKEY *vz_p12_key(const vz_p12 *p)
{
	return p->key;
}

STACK_OF(X509) *vz_p12_certs(const vz_p12 *p)
{
	return p->certs;
}

static bool last_error_is(int lib, int reason)
{
	unsigned long e = ERR_peek_last_error();

	return ERR_GET_LIB(e) == lib && ERR_GET_REASON(e) == reason;
}

/* MAC check first: it tells a wrong password from a damaged file. */
static vz_rv check_mac(PKCS12 *p12, const char *pass, size_t pass_len, vz_err *err)
{
	if (!PKCS12_mac_present(p12))
		return VZ_OK;
	if (PKCS12_verify_mac(p12, pass, (int)pass_len))
		return VZ_OK;
	/* An empty password may have been applied as "no password". */
	if (pass_len == 0 && PKCS12_verify_mac(p12, NULL, 0))
		return VZ_OK;
	if (last_error_is(ERR_LIB_PKCS12, PKCS12_R_MAC_VERIFY_FAILURE) ||
	    ERR_peek_last_error() == 0) {
		ERR_clear_error();
		vz_err_set(err,
			   "the password is wrong: the file's integrity check does not match it");
		vz_err_hint(err, "use the password chosen when the certificate was exported");
		return VZ_BAD_PASSWORD;
	}
	vz_err_set(err, "the file's integrity check cannot be computed");
	vz_err_openssl(err);
	vz_err_hint(err, "export the certificate again (PKCS#12 with a SHA-256 or SHA-1 MAC)");
	return VZ_FAIL;
}

/* A file of 0 bytes or over 10 MiB is no certificate export: refused
 * before OpenSSL reads it. */
static vz_rv check_size(size_t len, vz_err *err)
{
	if (len == 0) {
		vz_err_set(err, "the file is empty");
		vz_err_hint(
			err,
			"export the system certificate again as .pfx/.p12 with its private key");
		return VZ_FAIL;
	}
	if (len > 10 * 1024 * 1024) {
		vz_err_set(err, "the file is larger than 10 MiB; it is not a certificate export");
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* p's own library context with the default provider (required) and the
 * legacy one (if installed: RC2-40 and 3DES exports need it). */
static vz_rv load_providers(vz_p12 *p, vz_err *err)
{
	p->libctx = OSSL_LIB_CTX_new();
	if (p->libctx) {
		p->prov_default = OSSL_PROVIDER_load(p->libctx, "default");
		p->prov_legacy = OSSL_PROVIDER_load(p->libctx, "legacy");
	}
	if (!p->prov_default) {
		vz_err_set(err, "cannot load OpenSSL's default provider");
		vz_err_openssl(err);
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* The whole of der is one PKCS#12 structure, or the file is not an export. */
static vz_rv decode_pkcs12(const unsigned char *der, size_t len, PKCS12 **out, vz_err *err)
{
	const unsigned char *q = der;
	PKCS12 *p12 = d2i_PKCS12(NULL, &q, (long)len);

	if (!p12 || (size_t)(q - der) != len) {
		PKCS12_free(p12);
		vz_err_set(err, "this is not a PKCS#12 (.pfx/.p12) file, or it is truncated or "
				"damaged");
		vz_err_hint(
			err,
			"export the system certificate again as .pfx/.p12 with its private key");
		ERR_clear_error();
		return VZ_FAIL;
	}
	*out = p12;
	return VZ_OK;
}

/* Why PKCS12_parse() failed after the MAC (if any) matched: a missing
 * legacy provider, a wrong password (only a file without a MAC can still
 * have one), or a damaged file. */
static vz_rv explain_parse_failure(const vz_p12 *p, PKCS12 *p12, vz_err *err)
{
	vz_rv ret = VZ_FAIL;

	if (!p->prov_legacy && last_error_is(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM)) {
		vz_err_set(err, "the file uses legacy encryption and OpenSSL's legacy provider "
				"is not installed");
		vz_err_hint(err, "install the OpenSSL legacy provider (Debian: libssl3), or "
				 "export again with AES-256");
	} else if (!PKCS12_mac_present(p12)) {
		vz_err_set(err, "the file cannot be decrypted: the password is wrong or the "
				"file is damaged");
		vz_err_hint(err, "check the password; if it is right, export the certificate "
				 "again");
		ret = VZ_BAD_PASSWORD;
	} else {
		vz_err_set(err, "the file's contents cannot be decrypted or read");
		vz_err_openssl(err);
		vz_err_hint(err, "export the certificate again");
	}
	ERR_clear_error();
	return ret;
}

/* p->certs gets the key's certificate first, then the file's others, taken
 * out of *cert and ca; what is left there is the caller's to free. */
static vz_rv collect_certs(vz_p12 *p, X509 **cert, STACK_OF(X509) *ca, vz_err *err)
{
	p->certs = sk_X509_new_null();
	if (!p->certs) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	if (*cert) {
		if (!sk_X509_push(p->certs, *cert)) {
			vz_err_set(err, "out of memory");
			return VZ_FAIL;
		}
		*cert = NULL;
	}
	while (ca && sk_X509_num(ca) > 0) {
		X509 *c = sk_X509_shift(ca);

		if (!sk_X509_push(p->certs, c)) {
			X509_free(c);
			vz_err_set(err, "out of memory");
			return VZ_FAIL;
		}
	}
	return VZ_OK;
}

vz_rv vz_p12_parse(const unsigned char *der, size_t len, const char *pass, size_t pass_len,
		   vz_p12 **out, vz_err *err)
{
	OSSL_LIB_CTX *prev = NULL;
	bool swapped = false;
	PKCS12 *p12 = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *ca = NULL;
	vz_p12 *p;
	vz_rv ret;

	ret = check_size(len, err);
	if (ret != VZ_OK)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	ret = load_providers(p, err);
	if (ret != VZ_OK)
		goto out;
	/* Only for this parse: the legacy ciphers stay out of the global context. */
	prev = OSSL_LIB_CTX_set0_default(p->libctx);
	swapped = true;
	ret = decode_pkcs12(der, len, &p12, err);
	if (ret == VZ_OK)
		ret = check_mac(p12, pass, pass_len, err);
	if (ret != VZ_OK)
		goto out;
	if (!PKCS12_parse(p12, pass, &p->key, &cert, &ca)) {
		ret = explain_parse_failure(p, p12, err);
		goto out;
	}
	ret = collect_certs(p, &cert, ca, err);
	if (ret != VZ_OK)
		goto out;
	*out = p;
	p = NULL;
out:
	if (swapped)
		OSSL_LIB_CTX_set0_default(prev);
	X509_free(cert);
	sk_X509_pop_free(ca, X509_free);
	PKCS12_free(p12);
	vz_p12_free(p);
	return ret;
}
