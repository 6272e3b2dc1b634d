/* import.h - what `import` and `rotate` share: a .pfx file read and
 * checked, and its all-or-nothing write onto the token. */
#ifndef VZP11_IMPORT_H
#define VZP11_IMPORT_H

#include <stdbool.h>

#include "cert.h"
#include "keymat.h"
#include "p12.h"
#include "store.h"
#include "token.h"

struct vz_import_opts {
	const char *file;
	const char *password_source;
	const char *label;
	bool replace;
	bool allow_personal;
	bool unwrap;
	bool use_token_key; /* adopt the private key already on the token */
};

/* The file's system certificate, key and chain, in memory. */
struct vz_import_src {
	vz_p12 *p12;
	X509 *leaf;
	STACK_OF(X509) *chain;
	vz_cert_info info;
	vz_keymat km;
	unsigned char id[20]; /* CKA_ID: SHA-1 of the public key */
	size_t unrelated;     /* certificates in the file outside the chain */
	/* --use-token-key: the private key on the token whose public part is
	 * the certificate's, and its public key object (0: none); adopt when
	 * its label and CKA_ID are still to be set (vz_import_token_key). */
	unsigned long token_priv, token_pub;
	bool adopt;
};

/* Reads o->file with the password from o->password_source and checks it:
 * a key with its certificate, valid now, not personal unless allowed. */
vz_rv vz_import_load(const struct vz_import_opts *o, struct vz_import_src *src, vz_err *err);
/* Wipes the key material. */
void vz_import_src_free(struct vz_import_src *s);

/* --use-token-key: finds the private key on the token whose public key is
 * the certificate's, whatever its label and CKA_ID, into src (token_priv,
 * token_pub, adopt). Refused, with what to do, when there is none or more
 * than one, or when it is the key of another certificate on the token. */
vz_rv vz_import_token_key(vz_token *tk, const vz_store *st, struct vz_import_src *src,
			  const struct vz_import_opts *o, vz_err *err);

/* What writing src under o->label would do to the token st shows: *same
 * (it is there already), *has_old (the label holds other objects, only
 * allowed with o->replace), *reuse_key (the label's key is src's). */
vz_rv vz_import_check(const vz_store *st, const struct vz_import_src *src,
		      const struct vz_import_opts *o, bool *same, bool *has_old, bool *reuse_key,
		      vz_err *err);

/* Writes src under o->label in one transaction and reads it back into
 * *after; on any failure the token is put back as it was. */
vz_rv vz_import_apply(vz_token *tk, const vz_store *st, const struct vz_import_src *src,
		      const struct vz_import_opts *o, bool reuse_key, bool has_old,
		      tok_arrival *how, vz_store **after, vz_err *err);

/* The entry of this label and key id, or NULL. */
const vz_entry *vz_import_find(const vz_store *st, const char *label, const unsigned char id[20]);

/* The audit trail of one import (audit.h): the certificate written, as the
 * token reads back in after (with the one of its label in before that it
 * replaced), and each CA certificate the token gained; or, failed, the
 * attempt that was rolled back, with its reason. action NULL: "import" or
 * "replace". */
void vz_import_audit(const vz_token *tk, const char *action, const vz_store *before,
		     const vz_store *after, const struct vz_import_src *src,
		     const struct vz_import_opts *o, bool replace, tok_arrival how,
		     const vz_err *failed);

/* "created" or "unwrapped"; NULL when no key was written. */
const char *vz_import_way(tok_arrival how);
/* As vz_import_way(), and "adopted" for a key on the token that src
 * adopted (--use-token-key). */
const char *vz_import_key_way(const struct vz_import_src *src, tok_arrival how);

#endif
