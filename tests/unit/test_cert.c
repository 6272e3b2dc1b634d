/* Unit tests: the PKCS#12 reader and the certificate helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "token/token.h"

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* A certificate for key, issued by issuer (self-signed when NULL). Each
 * name entry is "FIELD=value". */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char **names,
		       long from_days, long to_days)
{
	X509 *c = X509_new();
	X509_NAME *n = X509_NAME_new();
	static long serial = 1;

	assert_non_null(c);
	for (const char **e = names; *e; e++) {
		char field[32];
		const char *eq = strchr(*e, '=');

		snprintf(field, sizeof(field), "%.*s", (int)(eq - *e), *e);
		assert_int_equal(X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
							    (const unsigned char *)eq + 1, -1, -1,
							    0),
				 1);
	}
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
	X509_set_subject_name(c, n);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n);
	X509_gmtime_adj(X509_getm_notBefore(c), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(c), to_days * 86400);
	X509_set_pubkey(c, key);
	assert_true(X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return c;
}

static vz_kind classify(const char **names)
{
	EVP_PKEY *k = ec_key();
	X509 *c = make_cert(k, NULL, NULL, names, 0, 30);
	vz_kind kind = vz_cert_classify(c, NULL, 0);

	X509_free(c);
	EVP_PKEY_free(k);
	return kind;
}

static void classifier(void **state)
{
	const char *gn[] = {"O=Demo B.V.", "GN=Jan", "SN=Vries", "CN=Demo", NULL};
	const char *initials[] = {"O=Demo B.V.", "CN=J. de Vries", NULL};
	const char *initials2[] = {"CN=A.B. Jansen", NULL};
	const char *prefix[] = {"CN=Jan van der Berg", NULL};
	const char *three[] = {"CN=Maria Anna Jansen", NULL};
	const char *system[] = {"O=Demo Praktijk B.V.", "CN=Demo Praktijk B.V. systeemcertificaat",
				NULL};
	const char *fysio[] = {"CN=Fysiotherapie de Brug", NULL};
	const char *agb[] = {"CN=Jansen 01234567", NULL};
	const char *two[] = {"O=Oost", "CN=Zorg Oost", NULL};
	const char *nothing[] = {"C=NL", NULL};

	assert_int_equal(classify(gn), VZ_KIND_PERSONAL);
	assert_int_equal(classify(initials), VZ_KIND_PERSONAL);
	assert_int_equal(classify(initials2), VZ_KIND_PERSONAL);
	assert_int_equal(classify(prefix), VZ_KIND_PERSONAL);
	assert_int_equal(classify(three), VZ_KIND_PERSONAL);
	assert_int_equal(classify(system), VZ_KIND_SYSTEM);
	assert_int_equal(classify(fysio), VZ_KIND_SYSTEM);
	assert_int_equal(classify(agb), VZ_KIND_SYSTEM);
	assert_int_equal(classify(two), VZ_KIND_SYSTEM);
	assert_int_equal(classify(nothing), VZ_KIND_UNKNOWN);
}

static void info_and_key_id(void **state)
{
	const char *names[] = {"O=Demo", "CN=Demo systeem", NULL};
	EVP_PKEY *k = ec_key();
	X509 *c = make_cert(k, NULL, NULL, names, -1, 10);
	vz_cert_info i;
	vz_err err = {0};
	unsigned char id[20], want[20];
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(c);

	assert_int_equal(vz_cert_info_get(c, &i, &err), VZ_OK);
	assert_string_equal(i.subject, "CN=Demo systeem,O=Demo");
	assert_string_equal(i.key_type, "ec");
	assert_int_equal(i.key_bits, 256);
	assert_true(i.days_left == 9 || i.days_left == 10);
	assert_false(i.expired);
	assert_false(i.not_yet_valid);
	assert_int_equal(strlen(i.fingerprint), 32 * 3 - 1);
	assert_int_equal(i.not_after[strlen(i.not_after) - 1], 'Z');
	assert_int_equal(vz_cert_key_id(c, id, &err), VZ_OK);
	SHA1(bits->data, (size_t)bits->length, want);
	assert_memory_equal(id, want, 20);
	X509_free(c);
	c = make_cert(k, NULL, NULL, names, -20, -3);
	assert_int_equal(vz_cert_info_get(c, &i, &err), VZ_OK);
	assert_true(i.expired);
	assert_true(i.days_left <= -3 && i.days_left >= -4);
	X509_free(c);
	EVP_PKEY_free(k);
}

static void chain_any_order(void **state)
{
	const char *rn[] = {"CN=Root", NULL}, *in[] = {"CN=Issuing", NULL};
	const char *ln[] = {"O=P", "CN=Leaf systeem", NULL}, *on[] = {"CN=Other", NULL};
	EVP_PKEY *rk = ec_key(), *ik = ec_key(), *lk = ec_key(), *ok = ec_key();
	X509 *root = make_cert(rk, NULL, NULL, rn, 0, 100);
	X509 *iss = make_cert(ik, root, rk, in, 0, 100);
	X509 *leaf = make_cert(lk, iss, ik, ln, 0, 100);
	X509 *other = make_cert(ok, NULL, NULL, on, 0, 100);
	STACK_OF(X509) *pool = sk_X509_new_null(), *chain;
	size_t unrelated = 0;

	sk_X509_push(pool, root);
	sk_X509_push(pool, other);
	sk_X509_push(pool, leaf);
	sk_X509_push(pool, iss);
	chain = vz_cert_chain(leaf, pool, &unrelated);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_ptr_equal(sk_X509_value(chain, 0), iss);
	assert_ptr_equal(sk_X509_value(chain, 1), root);
	assert_int_equal(unrelated, 1);
	assert_ptr_equal(vz_cert_for_key(pool, lk), leaf);
	assert_ptr_equal(vz_cert_for_key(pool, ik), iss);
	sk_X509_free(chain);
	sk_X509_pop_free(pool, X509_free);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(ok);
}

/* DER of a PKCS#12 made with the given algorithms; legacy ones are made in
 * a context with the legacy provider. */
static unsigned char *make_p12(EVP_PKEY *k, X509 *c, const char *pass, int key_nid, int cert_nid,
			       int mac_iter, size_t *len)
{
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *d = OSSL_PROVIDER_load(ctx, "default");
	OSSL_PROVIDER *l = OSSL_PROVIDER_load(ctx, "legacy");
	PKCS12 *p12;
	unsigned char *der = NULL;
	int n;

	assert_non_null(d);
	assert_non_null(l);
	p12 = PKCS12_create_ex((char *)pass, "t", k, c, NULL, key_nid, cert_nid, 0, mac_iter, 0,
			       ctx, NULL);
	assert_non_null(p12);
	n = i2d_PKCS12(p12, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	PKCS12_free(p12);
	OSSL_PROVIDER_unload(l);
	OSSL_PROVIDER_unload(d);
	OSSL_LIB_CTX_free(ctx);
	return der;
}

static void p12_reader(void **state)
{
	const char *names[] = {"O=Demo", "CN=Demo systeem", NULL};
	EVP_PKEY *k = ec_key();
	X509 *c = make_cert(k, NULL, NULL, names, 0, 10);
	vz_p12 *p = NULL;
	vz_err err = {0};
	size_t len = 0;
	unsigned char *modern = make_p12(k, c, "good", NID_aes_256_cbc, NID_aes_256_cbc, 0, &len);
	unsigned char *legacy;
	size_t llen = 0;

	assert_int_equal(vz_p12_parse(modern, len, "good", 4, &p, &err), VZ_OK);
	assert_non_null(vz_p12_key(p));
	assert_int_equal(EVP_PKEY_eq(vz_p12_key(p), k), 1);
	assert_int_equal(sk_X509_num(vz_p12_certs(p)), 1);
	vz_p12_free(p);
	p = NULL;
	assert_int_equal(vz_p12_parse(modern, len, "bad", 3, &p, &err), VZ_BAD_PASSWORD);
	assert_null(p);
	assert_non_null(strstr(err.msg, "password is wrong"));
	assert_int_equal(vz_p12_parse(modern, len / 2, "good", 4, &p, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "truncated"));
	assert_int_equal(vz_p12_parse(modern, 0, "good", 4, &p, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "empty"));

	legacy = make_p12(k, c, "good", NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
			  NID_pbe_WithSHA1And40BitRC2_CBC, 0, &llen);
	assert_int_equal(vz_p12_parse(legacy, llen, "good", 4, &p, &err), VZ_OK);
	assert_int_equal(sk_X509_num(vz_p12_certs(p)), 1);
	vz_p12_free(p);
	/* The legacy provider was used in a private context only. */
	assert_int_equal(OSSL_PROVIDER_available(NULL, "legacy"), 0);
	assert_int_equal(vz_p12_parse(legacy, llen, "nope", 4, &p, &err), VZ_BAD_PASSWORD);

	OPENSSL_free(modern);
	OPENSSL_free(legacy);
	X509_free(c);
	EVP_PKEY_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classifier),
		cmocka_unit_test(info_and_key_id),
		cmocka_unit_test(chain_any_order),
		cmocka_unit_test(p12_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
