/* probe.c - one real signature with the token's key, for /_vzp11/health:
 * a random challenge signed the way a TLS 1.2 handshake signs (PKCS#1 v1.5
 * for RSA, ECDSA), verified with the certificate's public key in software.
 * It runs on the label's upstream thread, whose default library context
 * holds the key's provider after a re-connect (see src/tls/tls.c). */
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "probe.h"

vz_gw_probe vz_gw_sign_probe(vz_tls *t, char *why, size_t size)
{
	EVP_PKEY *key = vz_tls_key(t);
	EVP_PKEY *pub = X509_get0_pubkey(vz_tls_cert(t));
	const char *md =
		pub && EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA && EVP_PKEY_get_bits(pub) > 256
			? "SHA384"
			: "SHA256";
	unsigned char challenge[32], sig[1024];
	size_t sig_len = sizeof(sig);
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	vz_gw_probe ret = VZ_GW_PROBE_NO_SIGNATURE;
	char detail[160] = "";

	ERR_clear_error();
	if (!mc || !key || !pub || RAND_bytes(challenge, sizeof(challenge)) != 1 ||
	    EVP_DigestSignInit_ex(mc, NULL, md, NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(mc, sig, &sig_len, challenge, sizeof(challenge)) != 1) {
		ERR_error_string_n(ERR_peek_last_error(), detail, sizeof(detail));
		snprintf(why, size, "the token's key does not sign (%s)",
			 detail[0] ? detail : "no reason given");
		goto out;
	}
	EVP_MD_CTX_free(mc);
	mc = EVP_MD_CTX_new();
	if (mc && EVP_DigestVerifyInit_ex(mc, NULL, md, NULL, "provider=default", pub, NULL) == 1 &&
	    EVP_DigestVerify(mc, sig, sig_len, challenge, sizeof(challenge)) == 1) {
		ret = VZ_GW_PROBE_OK;
		why[0] = '\0';
	} else {
		ret = VZ_GW_PROBE_MISMATCH;
		snprintf(why, size,
			 "the token's signature does not verify with the certificate: key and "
			 "certificate do not match");
	}
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mc);
	return ret;
}
