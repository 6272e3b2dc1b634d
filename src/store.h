/* store.h - the certificates with keys on a token, as vzp11 sees them. */
#ifndef VZP11_STORE_H
#define VZP11_STORE_H

#include <openssl/x509.h>

#include "cert.h"
#include "tok.h"
#include "token.h"

/* A certificate with its private key (same CKA_ID) and public key. */
typedef struct vz_entry {
	const tok_obj *cert; /* borrowed from the store */
	const tok_obj *key;
	const tok_obj *pub; /* NULL when the token has no public key object */
	X509 *x509;	    /* owned by the store */
	vz_cert_info info;
	STACK_OF(X509) *chain; /* CA certificates on the token it chains to (borrowed) */
} vz_entry;

typedef struct vz_store {
	tok_obj *certs, *keys, *pubs;
	size_t n_certs, n_keys, n_pubs;
	X509 **x509s;	      /* parsed certs[i], NULL when not parseable */
	STACK_OF(X509) *pool; /* every parseable certificate (borrowed) */
	vz_entry *entries;
	size_t n_entries;
} vz_store;

/* True when the object carries exactly this label. */
bool vz_obj_has_label(const tok_obj *o, const char *label);

/* The labels `rotate` gives a renewed certificate before it is active, and
 * the replaced one after. */
#define VZ_NEXT_SUFFIX	   ".next"
#define VZ_PREVIOUS_SUFFIX ".previous"

/* The entry label names, or NULL; *n is how many entries tie for it (1
 * when found). Normally the one certificate with that label. While `rotate`
 * switches, two can carry it for a moment: then the one whose private key
 * carries it too wins, and one whose key already went to LABEL.previous
 * loses (see cmd_rotate.c). */
const vz_entry *vz_store_resolve(const vz_store *st, const char *label, size_t *n);

/* Reads every certificate and key object of the session's token. */
vz_rv vz_store_load(tok_session *s, vz_store **out, vz_err *err);
void vz_store_free(vz_store *st);

/* vz_store_load() for a token that may keep certificates private: when tk
 * is not logged in and no user certificate (with this label; NULL: any) is
 * visible, logs in with vz_token_login() (the PIN read once, only if the
 * token asks) and reads again. tk stays logged in afterwards. */
vz_rv vz_store_load_or_login(const vz_global *g, vz_token *tk, const char *label, vz_store **out,
			     vz_err *err);

/* Index of the certificate object whose DER equals c, or -1. */
long vz_store_find_cert(const vz_store *st, const X509 *c);

#endif
