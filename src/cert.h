/* cert.h - what a certificate says, and whether it is a system certificate. */
#ifndef VZP11_CERT_H
#define VZP11_CERT_H

#include <stdbool.h>

#include <openssl/x509.h>

#include "err.h"

typedef enum vz_kind {
	VZ_KIND_UNKNOWN = 0,
	VZ_KIND_SYSTEM,
	VZ_KIND_PERSONAL
} vz_kind;

typedef struct vz_cert_info {
	char subject[512];
	char issuer[512];
	char serial[100];    /* hex, upper case */
	char not_before[24]; /* ISO 8601 UTC */
	char not_after[24];
	long days_left; /* whole days until not_after; negative when expired */
	bool expired;
	bool not_yet_valid;
	char fingerprint[96]; /* SHA-256, "AB:CD:..." */
	char key_type[4];     /* "rsa" or "ec" */
	int key_bits;
	vz_kind kind;
	char kind_reason[160]; /* why it was judged personal or unknown */
} vz_cert_info;

const char *vz_kind_name(vz_kind k);

/* Judges a subject: person-name attributes, or a CN that reads as a
 * person's name, make it personal; a subject with an organisation or
 * non-name CN is system; nothing to go on is unknown. reason may be NULL. */
vz_kind vz_cert_classify(const X509 *c, char *reason, size_t reason_size);

vz_rv vz_cert_info_get(const X509 *c, vz_cert_info *out, vz_err *err);

/* SHA-1 of the subjectPublicKey bits: the CKA_ID shared by key, public key
 * and certificate. */
vz_rv vz_cert_key_id(const X509 *c, unsigned char id[20], vz_err *err);

/* The certificate among certs whose public key belongs to key, or NULL. */
X509 *vz_cert_for_key(STACK_OF(X509) *certs, EVP_PKEY *key);

/* The issuers of leaf found in pool, nearest first (borrowed pointers;
 * free the stack only). Certificates in pool that are neither leaf nor in
 * the chain are counted in *unrelated when it is not NULL. */
STACK_OF(X509) *vz_cert_chain(const X509 *leaf, STACK_OF(X509) *pool, size_t *unrelated);

/* Readable one-line name (RFC 2253 order, UTF-8). */
void vz_name_string(const X509_NAME *n, char *buf, size_t size);

/* Common name of a name, or "" when it has none. */
void vz_name_cn(const X509_NAME *n, char *buf, size_t size);

#endif
