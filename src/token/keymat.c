/* keymat.c - private key parts for C_CreateObject; every buffer is wiped. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "token/token.h"

void vz_keymat_wipe(vz_keymat *m)
{
	for (size_t i = 0; i < m->n; i++)
		OPENSSL_clear_free(m->bufs[i], m->lens[i]);
	memset(m, 0, sizeof(*m));
}

/* Stores a buffer in m and points b at it. */
static bool keep(vz_keymat *m, unsigned char *buf, size_t len, tok_bytes *b)
{
	if (!buf || m->n == sizeof(m->bufs) / sizeof(m->bufs[0])) {
		OPENSSL_clear_free(buf, len);
		return false;
	}
	m->bufs[m->n] = buf;
	m->lens[m->n++] = len;
	b->p = buf;
	b->len = len;
	return true;
}

/* A big-endian copy of a BN parameter, left-padded to pad bytes if given. */
static bool bn_param(vz_keymat *m, EVP_PKEY *pk, const char *name, size_t pad, tok_bytes *b)
{
	BIGNUM *bn = NULL;
	unsigned char *buf;
	size_t len;

	if (!EVP_PKEY_get_bn_param(pk, name, &bn))
		return false;
	len = (size_t)BN_num_bytes(bn);
	if (pad > len)
		len = pad;
	buf = OPENSSL_malloc(len ? len : 1);
	if (buf && BN_bn2binpad(bn, buf, (int)len) < 0) {
		OPENSSL_free(buf);
		buf = NULL;
	}
	BN_clear_free(bn);
	return keep(m, buf, len, b);
}

static vz_rv rsa_parts(EVP_PKEY *pk, vz_keymat *m, vz_err *err)
{
	int bits = EVP_PKEY_get_bits(pk);

	if (bits < 2048) {
		vz_err_set(err, "the RSA key has %d bits; VECOZO and vzp11 need at least 2048",
			   bits);
		vz_err_hint(err, "request a new system certificate at VECOZO");
		return VZ_FAIL;
	}
	m->key.type = TOK_KEY_RSA;
	if (!bn_param(m, pk, OSSL_PKEY_PARAM_RSA_N, 0, &m->key.n) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_RSA_E, 0, &m->key.e) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_RSA_D, 0, &m->key.d) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_RSA_FACTOR1, 0, &m->key.p) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_RSA_FACTOR2, 0, &m->key.q) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0, &m->key.dp) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0, &m->key.dq) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0, &m->key.qinv)) {
		vz_err_set(err, "the RSA key in the file is incomplete (it lacks its CRT parts)");
		vz_err_hint(err, "export the certificate again with its private key");
		return VZ_FAIL;
	}
	return VZ_OK;
}

static vz_rv ec_parts(EVP_PKEY *pk, vz_keymat *m, vz_err *err)
{
	char group[64] = "";
	unsigned char point[200];
	size_t plen = 0, field;
	unsigned char *params = NULL, *octet;
	ASN1_OBJECT *oid;
	int nid, len;

	if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    NULL))
		group[0] = '\0';
	nid = OBJ_txt2nid(group);
	if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1) {
		vz_err_set(err, "the EC key uses curve '%s'; vzp11 supports P-256 and P-384",
			   group);
		return VZ_FAIL;
	}
	field = nid == NID_secp384r1 ? 48 : 32;
	m->key.type = TOK_KEY_EC;
	oid = OBJ_nid2obj(nid);
	len = i2d_ASN1_OBJECT(oid, &params);
	if (len <= 0 || !keep(m, params, (size_t)len, &m->key.ec_params))
		goto fail;
	if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					     sizeof(point), &plen) ||
	    plen > 127)
		goto fail;
	/* CKA_EC_POINT is the DER OCTET STRING holding the point. */
	octet = OPENSSL_malloc(plen + 2);
	if (!octet)
		goto fail;
	octet[0] = 0x04;
	octet[1] = (unsigned char)plen;
	memcpy(octet + 2, point, plen);
	if (!keep(m, octet, plen + 2, &m->key.ec_point) ||
	    !bn_param(m, pk, OSSL_PKEY_PARAM_PRIV_KEY, field, &m->key.ec_value))
		goto fail;
	return VZ_OK;
fail:
	vz_err_set(err, "the EC key in the file cannot be read");
	vz_err_openssl(err);
	return VZ_FAIL;
}

/* The whole key as PKCS#8 DER, for tokens that take keys only wrapped. */
static vz_rv pkcs8_der(EVP_PKEY *pk, vz_keymat *m, vz_err *err)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
	unsigned char *der = NULL;
	int len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, &der) : -1;

	PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets it held */
	if (len <= 0 || !keep(m, der, (size_t)len, &m->key.pkcs8)) {
		vz_err_set(err, "the private key cannot be encoded as PKCS#8");
		vz_err_openssl(err);
		return VZ_FAIL;
	}
	return VZ_OK;
}

vz_rv vz_keymat_from_pkey(EVP_PKEY *pkey, vz_keymat *out, vz_err *err)
{
	vz_rv r;

	memset(out, 0, sizeof(*out));
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		r = rsa_parts(pkey, out, err);
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		r = ec_parts(pkey, out, err);
	} else {
		vz_err_set(err, "the key type %s is not supported; vzp11 takes RSA and EC keys",
			   EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
		r = VZ_FAIL;
	}
	if (r == VZ_OK)
		r = pkcs8_der(pkey, out, err);
	if (r != VZ_OK)
		vz_keymat_wipe(out);
	return r;
}
