/* keymat.h - a private key's parts in the form the token layer writes. */
#ifndef VZP11_KEYMAT_H
#define VZP11_KEYMAT_H

#include <openssl/evp.h>

#include "err.h"
#include "tok.h"

typedef struct vz_keymat {
	tok_key key;		 /* points into bufs */
	unsigned char *bufs[10]; /* owned; wiped on free */
	size_t lens[10];
	size_t n;
} vz_keymat;

/* Splits an RSA (2048 bits or more) or EC P-256/P-384 key into its parts,
 * and keeps the whole key as PKCS#8 DER (key.pkcs8) for unwrapping.
 * Refuses other keys with a reason. Free with vz_keymat_wipe(). */
vz_rv vz_keymat_from_pkey(EVP_PKEY *pkey, vz_keymat *out, vz_err *err);
void vz_keymat_wipe(vz_keymat *m);

#endif
