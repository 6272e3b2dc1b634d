/* tok-int.h - private structures shared by the files of pkcs11/. */
#ifndef VZP11_TOK_INT_H
#define VZP11_TOK_INT_H

#include <libintl.h>
#include <p11-kit/pkcs11.h>

#include "tok.h"

/* Messages are translated (gettext, domain "vzp11"; see src/cli/cli.h). */
#define _(s)  gettext(s)
#define N_(s) s

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* CKA_CERTIFICATE_CATEGORY values (PKCS#11 2.40), missing from p11-kit's header. */
#ifndef CK_CERTIFICATE_CATEGORY_AUTHORITY
#define CK_CERTIFICATE_CATEGORY_TOKEN_USER 1UL
#define CK_CERTIFICATE_CATEGORY_AUTHORITY  2UL
#endif

struct tok_token {
	const struct tok_lib *lib; /* NULL in unit tests */
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO ck;
	tok_token_info info;
};

struct tok_lib {
	CK_FUNCTION_LIST **registry; /* p11-kit's array when loaded from the registry */
	CK_FUNCTION_LIST *single;    /* a module loaded from a file */
	CK_FUNCTION_LIST **used;     /* initialized modules, NULL-terminated */
	size_t n_used;
	struct tok_token *tokens;
	size_t n_tokens;
	bool listed;
	char *module_args; /* pReserved of C_Initialize, or NULL */
};

struct tok_session {
	struct tok_token *t;
	CK_SESSION_HANDLE h;
	bool rw;
	bool logged_in;
};

/* Formats err->msg; err->hint is cleared. */
void tok_err_set(tok_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "FUNC failed: CKR_X (sentence)" plus a hint when one fits; maps to a tok_rv. */
tok_rv tok_err_ckr(tok_err *err, const char *func, CK_RV rv);
void tok_err_hint(tok_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The signature mechanisms a key of type kt may be limited to
 * (CKA_ALLOWED_MECHANISMS); *n is their number. */
const CK_MECHANISM_TYPE *tok_sign_mechs(CK_KEY_TYPE kt, size_t *n);

/* One attempt to make an object from a template (C_CreateObject,
 * C_UnwrapKey, ...). */
typedef CK_RV (*tok_try_fn)(void *ctx, CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* Makes an object with try_once from a template whose last n_opt (at most
 * 4) attributes a token may not know (template.c): the whole template
 * first; while the token answers that it does not know an attribute
 * (CKR_ATTRIBUTE_TYPE_INVALID; NSS softoken: CKR_GENERAL_ERROR), again
 * with one optional attribute left out, then two, ... Each try makes
 * either the one object or nothing. *dropped: bit i set when optional
 * attribute i was left out. Returns the first other answer: CKR_OK, a real
 * failure, or the last try's code when every optional attribute was left
 * out. */
CK_RV tok_try_degrading(CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ULONG n_opt, tok_try_fn try_once,
			void *ctx, unsigned *dropped);

/* CKR_ codes with which tokens refuse key material in the clear. */
bool tok_refuses_clear_key(unsigned long ckr);

/* Puts a private key on the token with C_UnwrapKey (unwrap.c): tmpl is the
 * key's template without key material; its last n_opt attributes are
 * optional (see tok_try_degrading). Writes *out on success. */
tok_rv tok_unwrap_private(tok_session *s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ULONG n_opt,
			  tok_bytes pkcs8, CK_OBJECT_HANDLE *out, tok_err *err);

/* For writes outside txn.c: the transaction's session; room for n more
 * objects (so that recording them cannot fail); records one made. */
tok_session *tok_txn_session(tok_txn *x);
tok_rv tok_txn_reserve(tok_txn *x, size_t n, tok_err *err);
void tok_txn_record(tok_txn *x, CK_OBJECT_HANDLE h);

/* Turns the padding of the token's text fields into blanks, as RFC 7512 and
 * p11-kit's URI matching expect: everything from a field's first NUL on. */
void tok_token_info_clean(CK_TOKEN_INFO *ck);
/* The same for a module's CK_INFO (library-manufacturer,
 * library-description), before a --token URI is matched against it. */
void tok_module_info_clean(CK_INFO *mi);

/* Copies a blank-padded PKCS#11 string into a NUL-terminated one. */
void tok_padded_copy(char *dst, size_t dst_size, const unsigned char *src, size_t src_len);

#endif
