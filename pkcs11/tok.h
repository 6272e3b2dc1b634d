/* tok.h - the token layer's whole public API.
 *
 * Everything vzp11 does with a PKCS#11 token goes through here. No CK_*
 * type leaves this directory: callers see opaque handles, plain byte
 * buffers and the tok_rv result enum. Nothing here prints; failures are
 * described in a tok_err that the caller renders.
 */
#ifndef VZP11_TOK_H
#define VZP11_TOK_H

#include <stdbool.h>
#include <stddef.h>

typedef enum tok_rv {
	TOK_OK = 0,
	TOK_ERR,	   /* the call failed; see tok_err */
	TOK_NOT_FOUND,	   /* no such module, token or object */
	TOK_AMBIGUOUS,	   /* more than one candidate */
	TOK_PIN_INCORRECT, /* the token rejected the PIN; never retried */
	TOK_PIN_LOCKED,	   /* the user PIN is locked */
	TOK_READ_ONLY,	   /* token is write-protected */
	TOK_NO_PIN,	   /* the PIN source gave nothing */
	TOK_UNSUPPORTED,   /* the token cannot do this at all: trying again will not help */
} tok_rv;

/* What failed (msg), what to do (hint), and the CKR_ code if any. */
typedef struct tok_err {
	char msg[512];
	char hint[512];
	unsigned long ckr;
	bool has_ckr;
} tok_err;

typedef struct tok_bytes {
	const unsigned char *p;
	size_t len;
} tok_bytes;

/* ---- modules and tokens (module.c) ---- */

typedef struct tok_lib tok_lib;
typedef struct tok_token tok_token;

typedef struct tok_token_info {
	char label[33];
	char manufacturer[33];
	char model[17];
	char serial[17];
	char module[256]; /* p11-kit name or file of the module */
	bool initialized;
	bool login_required;
	bool write_protected;
	bool protected_path; /* PIN is entered on the device itself */
	bool pin_locked;
	bool pin_final_try;
	bool pin_count_low;
} tok_token_info;

/* Loads modules. module: a file path, a p11-kit module name, or NULL for
 * every module registered with p11-kit. module_args (NULL: none) goes to
 * the module's C_Initialize as pReserved (NSS softoken's "configdir=...");
 * it needs one module named in module, and takes the place of a p11-kit
 * module's x-init-reserved. Free with tok_lib_close(). */
tok_rv tok_lib_open(const char *module, const char *module_args, tok_lib **out, tok_err *err);
void tok_lib_close(tok_lib *lib);

/* Picks a token by RFC 7512 URI ("pkcs11:token=...") or by label. spec NULL:
 * the only initialized token that needs a login (trust stores are skipped);
 * TOK_AMBIGUOUS or TOK_NOT_FOUND otherwise, with the candidates in err. The
 * token is owned by lib. */
tok_rv tok_lib_select(tok_lib *lib, const char *spec, tok_token **out, tok_err *err);
const tok_token_info *tok_token_info_of(const tok_token *t);

/* Path of the module file that serves the token (for pkcs11-provider);
 * caller frees *out with free(). TOK_NOT_FOUND, with a message, for a
 * module without a file here (a p11-kit remote module). */
tok_rv tok_token_module_path(const tok_token *t, char **out, tok_err *err);

/* The C_Initialize argument (pReserved) the token's module was given: the
 * module_args of tok_lib_open(), else its p11-kit x-init-reserved; NULL
 * when none. For pkcs11-provider's pkcs11-module-init-args. Caller frees
 * with free(). */
char *tok_token_module_args(const tok_token *t);

/* ---- sessions (session.c) ---- */

typedef struct tok_session tok_session;

/* Asked for the user PIN at most once per session, only when the token
 * needs one. Writes up to size bytes into buf and the length into *len. */
typedef tok_rv (*tok_pin_fn)(void *ctx, char *buf, size_t size, size_t *len);

/* Opens a session (read-write if rw) and logs in as user when the token
 * needs it. pin NULL: no login, only public objects are visible. The PIN is
 * wiped from memory right after C_Login and never sent twice; a locked PIN
 * is reported without sending anything; a token this process is logged in
 * to already is not asked again (and not logged out by this session). */
tok_rv tok_session_open(tok_token *t, bool rw, tok_pin_fn pin, void *pin_ctx, tok_session **out,
			tok_err *err);
void tok_session_close(tok_session *s);
/* Closes the session without C_Logout: other sessions of this process
 * (pkcs11-provider's) share its login and go on using it. */
void tok_session_close_shared(tok_session *s);

/* ---- objects (object.c) ---- */

typedef enum tok_class {
	TOK_CERT = 1,
	TOK_PRIVKEY,
	TOK_PUBKEY
} tok_class;
typedef enum tok_keytype {
	TOK_KEY_OTHER = 0,
	TOK_KEY_RSA,
	TOK_KEY_EC
} tok_keytype;

/* A yes/no attribute as the token answered it. Anything but a clear answer
 * (an error, a missing attribute, a value of the wrong size) is
 * TOK_FLAG_UNKNOWN, which callers must never take for "no". */
typedef enum tok_flag {
	TOK_FLAG_UNKNOWN = 0,
	TOK_FLAG_NO,
	TOK_FLAG_YES
} tok_flag;

/* How a private key reached the token. The token keeps no such record:
 * UNWRAPPED rests on vzp11's own mark (CKA_WRAP_WITH_TRUSTED true, set only
 * by its unwrap import, a no-op on a key that can never be wrapped);
 * GENERATED on CKA_LOCAL true; CREATED is every other key (CKA_LOCAL false,
 * no mark), including keys another tool unwrapped. UNKNOWN: no clear
 * answer. */
typedef enum tok_arrival {
	TOK_ARRIVAL_UNKNOWN = 0,
	TOK_ARRIVAL_CREATED,
	TOK_ARRIVAL_UNWRAPPED,
	TOK_ARRIVAL_GENERATED
} tok_arrival;

/* Attributes vzp11 writes that an object does not carry (tok_obj.lacks):
 * the token does not know them, or holds no value for them. */
enum {
	TOK_LACKS_CATEGORY = 1u << 0,	    /* the token knows no CKA_CERTIFICATE_CATEGORY */
	TOK_LACKS_ALLOWED_MECHS = 1u << 1,  /* a private key's CKA_ALLOWED_MECHANISMS */
	TOK_LACKS_CATEGORY_VALUE = 1u << 2, /* this certificate's category is unspecified
					       (0, as other tools write it) */
};

/* One object as read from the token. Absent attributes are empty; flags
 * that were not answered are TOK_FLAG_UNKNOWN. */
typedef struct tok_obj {
	unsigned long handle;
	tok_class cls;
	char *label;
	unsigned char *id;
	size_t id_len;
	unsigned char *value; /* certificate DER */
	size_t value_len;
	bool authority; /* a CA certificate (CKA_CERTIFICATE_CATEGORY 2; without a
			   category, TOK_LACKS_CATEGORY*, the caller decides from
			   the certificate) */
	unsigned lacks; /* TOK_LACKS_* */
	tok_keytype key_type;
	unsigned long bits;	  /* RSA modulus bits */
	unsigned char *ec_params; /* DER of the curve OID */
	size_t ec_params_len;
	tok_flag is_private;
	/* private keys only: */
	tok_flag sensitive, extractable, always_sensitive, never_extractable;
	tok_flag can_sign, can_decrypt, can_unwrap, can_derive, can_sign_recover;
	tok_flag value_readable;  /* the secret value could be read (must be NO) */
	tok_flag sign_only_mechs; /* CKA_ALLOWED_MECHANISMS holds only signature mechanisms */
	char unclear[96];	  /* the first protection attribute without a clear answer,
				     as "CKA_X: CKR_Y"; empty when all were answered */
	tok_arrival arrival;	  /* private keys only */
} tok_obj;

/* Finds objects of a class, optionally only with this label and/or id.
 * *out is an array of *n objects; free with tok_objs_free(). */
tok_rv tok_find(tok_session *s, tok_class cls, const char *label, tok_bytes id, tok_obj **out,
		size_t *n, tok_err *err);
void tok_objs_free(tok_obj *objs, size_t n);

/* Gives one object a new CKA_LABEL: a single C_SetAttributeValue, which
 * either happens or not (what `rotate` builds its steps on). */
tok_rv tok_set_label(tok_session *s, unsigned long handle, const char *label, tok_err *err);

/* ---- all-or-nothing writes (txn.c) ---- */

typedef struct tok_key {
	tok_keytype type;
	tok_bytes n, e, d, p, q, dp, dq, qinv; /* RSA */
	tok_bytes ec_params;		       /* EC: DER of the curve OID */
	tok_bytes ec_point;		       /* EC: DER OCTET STRING of the point */
	tok_bytes ec_value;		       /* EC: private scalar */
	tok_bytes pkcs8;		       /* the whole key, PKCS#8 DER, for unwrapping */
} tok_key;

typedef struct tok_cert {
	tok_bytes der, subject, issuer, serial, id;
	const char *label;
	bool authority; /* a CA certificate (category 2) instead of a user one (1) */
} tok_cert;

/* The private keys and public key objects on the token whose public part
 * is key's (RSA: CKA_MODULUS; EC: CKA_EC_POINT, or for a private key
 * without one, the CKA_ID of a public key object that matches), whatever
 * their labels and CKA_IDs. Free both arrays with tok_objs_free(). */
tok_rv tok_find_by_public(tok_session *s, const tok_key *key, tok_obj **priv, size_t *n_priv,
			  tok_obj **pub, size_t *n_pub, tok_err *err);

typedef struct tok_txn tok_txn;

/* Starts an operation on a read-write session. Every object it creates is
 * recorded, and every public object it destroys is remembered with its
 * attributes; tok_txn_abort() destroys what was created and creates again
 * what was destroyed, tok_txn_commit() keeps the changes. Either call frees
 * the transaction. */
tok_rv tok_txn_begin(tok_session *s, tok_txn **out, tok_err *err);
/* Creates the private key (sensitive, not extractable, sign only: no
 * decrypt, unwrap, derive or sign-recover, and CKA_ALLOWED_MECHANISMS set to
 * the signature mechanisms TLS uses) and its public key, sharing label, id
 * and subject. A token that does not know CKA_ALLOWED_MECHANISMS
 * (CKR_ATTRIBUTE_TYPE_INVALID) gets the key without that list (read
 * tok_obj.sign_only_mechs to see which happened). */
tok_rv tok_txn_add_keypair(tok_txn *x, const char *label, tok_bytes id, tok_bytes subject,
			   const tok_key *key, tok_err *err);
/* As tok_txn_add_keypair, and the way the private key goes on the token:
 * TOK_IMPORT_AUTO tries C_CreateObject and unwraps when the token refuses
 * key material in the clear (CKR_TEMPLATE_INCONSISTENT,
 * CKR_ATTRIBUTE_VALUE_INVALID, CKR_FUNCTION_NOT_SUPPORTED,
 * CKR_ACTION_PROHIBITED, CKR_ATTRIBUTE_READ_ONLY); TOK_IMPORT_UNWRAP always
 * unwraps. Unwrapping takes key->pkcs8 and uses only session objects
 * besides the key, all destroyed before returning; the host's transport
 * key is wiped. *how (CREATED or UNWRAPPED) is written on success. */
typedef enum tok_import_way {
	TOK_IMPORT_AUTO = 0,
	TOK_IMPORT_UNWRAP
} tok_import_way;
tok_rv tok_txn_import_keypair(tok_txn *x, const char *label, tok_bytes id, tok_bytes subject,
			      const tok_key *key, tok_import_way way, tok_arrival *how,
			      tok_err *err);
tok_rv tok_txn_add_cert(tok_txn *x, const tok_cert *c, tok_err *err);
/* Adopts a private key that is on the token already (priv) and its public
 * key object (pub; 0: there is none, one is written from key's public
 * part): both get label and id; the key's other uses (decrypt, unwrap,
 * derive, sign-recover) are switched off where the token lets it (a
 * refusal leaves a use as it was). Every change is undone on abort. */
tok_rv tok_txn_adopt_keypair(tok_txn *x, unsigned long priv, unsigned long pub, const char *label,
			     tok_bytes id, tok_bytes subject, const tok_key *key, tok_err *err);
/* Makes an adopted key sensitive and not extractable where it is not yet,
 * in one C_SetAttributeValue. That cannot be undone, so it comes last
 * before the read-back; an abort after it says the key stays protected. A
 * token that refuses the change: TOK_UNSUPPORTED, nothing changed by it. */
tok_rv tok_txn_protect_key(tok_txn *x, unsigned long priv, tok_err *err);
/* Destroys an object. A private object cannot be created again on abort:
 * destroy private keys last, after everything else that can fail. */
tok_rv tok_txn_destroy(tok_txn *x, unsigned long handle, tok_err *err);
void tok_txn_commit(tok_txn *x);
/* Returns TOK_OK when every created object is gone again. */
tok_rv tok_txn_abort(tok_txn *x, tok_err *err);

/* ---- keys made on the token (keygen.c) ---- */

typedef struct tok_genkey {
	unsigned long priv, pub; /* object handles */
	unsigned char point[65]; /* the public point, uncompressed */
	size_t point_len;
	unsigned char id[20]; /* CKA_ID of both: SHA-1 of the point */
} tok_genkey;

/* Makes an EC P-256 key pair on the token (C_GenerateKeyPair), recorded in
 * x: the private key private, sensitive, never extractable, for signing
 * only; both with label and CKA_ID = SHA-1 of the public point. subject
 * (DER) goes on the private key; may be empty. */
tok_rv tok_txn_generate_ec(tok_txn *x, const char *label, tok_bytes subject, tok_genkey *out,
			   tok_err *err);

/* ---- URIs (uri.c) ---- */

/* RFC 7512 URI of the token, or of an object on it (cls 0: token only).
 * Never contains a PIN. Caller frees with free(). */
char *tok_uri(const tok_token *t, tok_class cls, const char *label, tok_bytes id);

/* ---- result codes (rv.c) ---- */

/* "CKR_PIN_INCORRECT" and a sentence for a CKR_ value. */
const char *tok_ckr_name(unsigned long ckr);
const char *tok_ckr_text(unsigned long ckr);

/* ---- mechanisms (mech.c) ---- */

/* The signature mechanisms the token's slot offers for signing
 * (C_GetMechanismList, CKF_SIGN in C_GetMechanismInfo): the token's own
 * list, not a key's CKA_ALLOWED_MECHANISMS. */
typedef struct tok_mech_caps {
	bool rsa_pkcs; /* CKM_RSA_PKCS: PKCS#1 v1.5, enough for TLS 1.2 */
	bool rsa_pss;  /* CKM_RSA_PKCS_PSS or a CKM_SHA*_RSA_PKCS_PSS: TLS 1.3 with RSA */
	bool ecdsa;    /* CKM_ECDSA */
	bool rsa_sign; /* any RSA signature mechanism (PKCS#1 v1.5 or PSS, hashed or not) */
	bool ec_sign;  /* CKM_ECDSA or a CKM_ECDSA_SHA* */
} tok_mech_caps;

/* Reads the signature mechanisms of the token's slot into *out. */
tok_rv tok_token_mech_caps(const tok_token *t, tok_mech_caps *out, tok_err *err);

#endif
