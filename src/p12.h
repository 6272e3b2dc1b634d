/* p12.h - reading a PKCS#12 (.pfx/.p12) file in memory. */
#ifndef VZP11_P12_H
#define VZP11_P12_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

typedef struct vz_p12 vz_p12;

/* Parses der (modern AES/PBKDF2 or legacy RC2-40/3DES) with the password in
 * a private library context that has the legacy provider, so the global
 * context stays clean. VZ_BAD_PASSWORD when the password is wrong, VZ_FAIL
 * with a reason for anything else. Free with vz_p12_free(). */
vz_rv vz_p12_parse(const unsigned char *der, size_t len, const char *pass, size_t pass_len,
		   vz_p12 **out, vz_err *err);
void vz_p12_free(vz_p12 *p);

/* The private key, or NULL when the file has none. Owned by p. */
EVP_PKEY *vz_p12_key(const vz_p12 *p);
/* Every certificate in the file, in file order. Owned by p. */
STACK_OF(X509) *vz_p12_certs(const vz_p12 *p);

#endif
