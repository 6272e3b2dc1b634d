/* token.h - the token: opening the module and token with the PIN,
 * finding certificates, keys and chains, reading a .pfx and writing it
 * onto the token whole, the lock and audit trail of every write, and the
 * commands import, list, show and remove. */
#ifndef VZP11_TOKEN_TOKEN_H
#define VZP11_TOKEN_TOKEN_H

#include <stdbool.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <jansson.h>

#include "cli/cli.h"
#include "tok.h"

/* ---- what a certificate says, and whether it is a system certificate. */

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

/* ---- opening the token the global options name, with its PIN. */

typedef struct vz_token {
	tok_lib *lib;
	tok_token *tok; /* owned by lib */
	tok_session *s;
	bool rw;	/* s is a read-write session */
	bool logged_in; /* s was opened with a login (or the token needs none) */
} vz_token;

/* Loads the module, selects the token and, with login, logs in (the PIN is
 * read from g->pin_source only if the token asks for one). rw: a read-write
 * session. Close with vz_token_close() on every path. */
vz_rv vz_token_open(const vz_global *g, bool rw, bool login, vz_token *out, vz_err *err);
void vz_token_close(vz_token *t);
/* As vz_token_close(), without logging out: for a session whose login
 * pkcs11-provider's sessions share. */
void vz_token_close_shared(vz_token *t);

/* Logs in on a token opened without login: a logged-in session of the same
 * kind takes the place of t->s (the PIN is read from g->pin_source once,
 * only if the token asks; a rejected PIN is never sent again). Nothing
 * happens when t is logged in already. */
vz_rv vz_token_login(const vz_global *g, vz_token *t, vz_err *err);

/* As vz_token_login(), and the PIN it read (if the token asked for one) is
 * copied into *pin, for a second user in this process (pkcs11-provider);
 * the caller wipes it. */
vz_rv vz_token_login_pin(const vz_global *g, vz_token *t, vz_secret *pin, vz_err *err);

/* ---- the certificates with keys on a token, as vzp11 sees them. */

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

/* ---- a private key's parts in the form the token layer writes. */

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

/* ---- reading a PKCS#12 (.pfx/.p12) file in memory. */

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

/* ---- what `import` and `rotate` share: a .pfx file read and
 * checked, and its all-or-nothing write onto the token. */

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

/* The audit trail of one import (below): the certificate written, as the
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

/* ---- one writer at a time per token. `rotate`, `import` and
 * `remove` hold an exclusive flock(2) on a per-token file while they change
 * the token, so two of them never interleave their writes (a second one
 * waits, then sees what the first did). The file is
 * DIR/vzp11-token-HASH.lock, HASH the first 16 hex digits of SHA-256 over
 * the token's manufacturer, model and serial number. DIR is
 * $VZP11_LOCK_DIR when set; else a directory no other user can write, so
 * that nobody else can hold the lock and make the writers wait: for root
 * /run/vzp11-locks (made when missing; it must be root's and writable by
 * root alone), for another user $XDG_RUNTIME_DIR (the user's own, mode
 * 0700). A lock file that belongs to another user is refused, never waited
 * for. So the lock keeps apart the writers of one user; writers of
 * different users on one token are not seen, nor processes on other
 * machines (a network HSM). The kernel drops the lock when the process
 * ends, however it ends. */

#define VZ_TOKLOCK_WAIT_S   120		       /* how long a second writer waits */
#define VZ_TOKLOCK_ROOT_DIR "/run/vzp11-locks" /* root's DIR */

/* Takes the lock of token info, waiting at most VZ_TOKLOCK_WAIT_S while
 * another process holds it (a note says so once). VZ_OK: *fd holds it
 * until vz_toklock_release(). VZ_FAIL: err says why (still held by another
 * after the wait, a directory or lock file another user could write or
 * made, or one that cannot be opened); nothing is locked. */
vz_rv vz_toklock_take(const vz_global *g, const tok_token_info *info, int *fd, vz_err *err);

/* Releases a lock vz_toklock_take() gave; -1 is ignored. */
void vz_toklock_release(int fd);

/* ---- the audit trail: every change vzp11 makes to a token is one
 * syslog record (facility authpriv, priority notice, ident "vzp11" with the
 * PID) whose whole message is one JSON object on one line. */

/* Version of the record's layout, its first key ("audit"); raised when a key
 * changes meaning or goes away (added keys keep it). */
#define VZ_AUDIT_FORMAT 1

/* One change to a token. Every field but action may be left empty (NULL,
 * 0, TOK_ARRIVAL_UNKNOWN): its key is then null in the record. Nothing in
 * it may be a secret or patient data; labels, names and error messages are
 * fine. Nothing is kept after the call. */
typedef struct vz_audit_rec {
	const char *action; /* "import", "replace", "remove", "import-ca", "remove-ca",
			       "rotate-import", "rotate-activate", ... */
	bool failed;	    /* the change was tried and did not happen (rolled back) */
	const char *label;  /* the label acted on */
	const char *old_label, *new_label; /* a relabel (rotate): before and after */
	const vz_cert_info *cert;	   /* the certificate concerned; NULL: a key alone */
	const unsigned char *id;	   /* CKA_ID of its objects */
	size_t id_len;
	tok_arrival arrival;	      /* how its key reached the token */
	const vz_cert_info *previous; /* the certificate it took the place of (replace) */
	const char *detail;	      /* a short fact for the reader ("key kept") */
	const char *error;	      /* why it failed (failed only) */
} vz_audit_rec;

/* The record as JSON, with the token (label, serial, manufacturer, model;
 * token NULL: null), the acting user (real uid and its name from the
 * password database, never the environment) and the time (UTC); caller
 * frees. Every key is always there, in this order: audit, time, action,
 * result ("ok" or "failed"), label, old_label, new_label, certificate
 * {subject, issuer, serial, not_before, not_after, fingerprint_sha256}, id
 * (hex), arrived, previous {subject, serial, fingerprint_sha256}, token
 * {label, serial, manufacturer, model}, user {uid, name}, detail, error.
 * A string that is not valid UTF-8 has each of its non-ASCII bytes
 * written as '?'. NULL only when out of memory. */
json_t *vz_audit_json(const tok_token_info *token, const vz_audit_rec *rec);

/* Sends the record to syslog: openlog("vzp11", LOG_PID | LOG_NDELAY,
 * LOG_AUTHPRIV), one LOG_NOTICE message (JSON, compact, ASCII only),
 * closelog(). Never fails the caller: a missing syslog daemon loses the
 * record silently (syslog(3) cannot report it). Not for a process that keeps
 * its own syslog identity open (the gateway): closelog() ends it. */
void vz_audit(const vz_token *tk, const vz_audit_rec *rec);

/* A record of action on an entry of the token (read back after the change,
 * or before a removal): its label, certificate, CKA_ID and how its key
 * arrived. The caller may fill in more fields, then calls vz_audit(); e
 * must outlive that call. */
vz_audit_rec vz_audit_rec_of(const char *action, const vz_entry *e);

/* ---- rendering certificates on the token as text or JSON. */

/* The object of `list --json`: label, id, subject, issuer, serial, dates,
 * days_left, kind, fingerprint_sha256, key{}, uri{}, chain[]. */
json_t *vz_out_entry_json(const tok_token *t, const vz_entry *e);

/* One line: label, subject, expiry, days left, key type; expired marked. */
void vz_out_entry_line(FILE *f, const vz_entry *e);

/* Everything: certificate, key attributes as read from the token, URIs,
 * chain. */
void vz_out_entry_full(FILE *f, const tok_token *t, const vz_entry *e);

/* How a key arrived: "created", "unwrapped", "generated"; NULL when
 * unknown. See tok_arrival for what each rests on. */
const char *vz_out_arrival_name(tok_arrival a);

/* ---- the commands */
extern const vz_command vz_cmd_import;
extern const vz_command vz_cmd_list;
extern const vz_command vz_cmd_show;
extern const vz_command vz_cmd_remove;

#endif
