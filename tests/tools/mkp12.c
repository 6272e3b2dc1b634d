/* mkp12.c - test helper: writes PKCS#12 files that `openssl pkcs12` will
 * not make (a key with another certificate, the leaf after its chain).
 *
 *   mkp12 OUT KEY.pem CERT.pem...   password from VZP11_P12_PASS
 *
 * Certificates go into the file in the order given, with no key/cert
 * pairing hint, so a reader has to match the key itself. */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>

int main(int argc, char **argv)
{
	const char *pass = getenv("VZP11_P12_PASS");
	STACK_OF(X509) *certs = sk_X509_new_null();
	EVP_PKEY *key = NULL;
	PKCS12 *p12 = NULL;
	FILE *f;
	int ret = 1;

	if (argc < 4 || !pass || !certs) {
		fprintf(stderr, "usage: VZP11_P12_PASS=... mkp12 OUT KEY.pem CERT.pem...\n");
		return 2;
	}
	f = fopen(argv[2], "r");
	if (f) {
		key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	for (int i = 3; i < argc; i++) {
		X509 *c = NULL;

		f = fopen(argv[i], "r");
		if (f) {
			c = PEM_read_X509(f, NULL, NULL, NULL);
			fclose(f);
		}
		if (!c || !sk_X509_push(certs, c)) {
			fprintf(stderr, "mkp12: cannot read %s\n", argv[i]);
			goto out;
		}
	}
	if (!key) {
		fprintf(stderr, "mkp12: cannot read %s\n", argv[2]);
		goto out;
	}
	p12 = PKCS12_create(pass, "vzp11", key, NULL, certs, 0, 0, 0, 0, 0);
	f = p12 ? fopen(argv[1], "wb") : NULL;
	if (f) {
		ret = i2d_PKCS12_fp(f, p12) ? 0 : 1;
		ret |= fclose(f) != 0;
	}
	if (ret)
		fprintf(stderr, "mkp12: cannot write %s\n", argv[1]);
out:
	PKCS12_free(p12);
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	return ret;
}
