/* fuzz_p12.c - libFuzzer target: the PKCS#12 reader, then the certificate
 * helpers on whatever it yields (classifier, info, key id, chain). */
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "token/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vz_p12 *p = NULL;
	vz_err err = {0};
	const unsigned char *q = data;
	X509 *c;

	if (vz_p12_parse(data, size, "fuzz", 4, &p, &err) == VZ_OK) {
		STACK_OF(X509) *certs = vz_p12_certs(p);
		X509 *leaf = vz_cert_for_key(certs, vz_p12_key(p));

		for (int i = 0; i < sk_X509_num(certs); i++) {
			vz_cert_info info;
			unsigned char id[20];

			vz_cert_info_get(sk_X509_value(certs, i), &info, &err);
			vz_cert_key_id(sk_X509_value(certs, i), id, &err);
		}
		if (leaf)
			sk_X509_free(vz_cert_chain(leaf, certs, NULL));
		vz_p12_free(p);
	}
	/* The same bytes as a bare certificate, for the classifier. */
	c = d2i_X509(NULL, &q, (long)size);
	if (c) {
		vz_cert_info info;

		vz_cert_info_get(c, &info, &err);
		X509_free(c);
	}
	return 0;
}
