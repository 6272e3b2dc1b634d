/* err.h - results and the error context every vz_ function fills. */
#ifndef VZP11_ERR_H
#define VZP11_ERR_H

#include <stdbool.h>

#include "tok.h"

typedef enum vz_rv {
	VZ_OK = 0,
	VZ_FAIL,	 /* refused or failed; err says why */
	VZ_USAGE,	 /* the command line is wrong */
	VZ_BAD_PASSWORD, /* the .pfx password is wrong */
	VZ_NOT_FOUND,
	VZ_DUPLICATE, /* a unique rule refused the record; the earlier one is given */
} vz_rv;

/* What happened (msg) and what to do next (hint). */
typedef struct vz_err {
	char msg[768];
	char hint[512];
	/* The token refused the PIN (or it is locked): it must not be sent
	 * again, not even by a restarted process (see `vzp11 gateway`'s exit
	 * code 3). Set by vz_err_from_tok() and the TLS key load only. */
	bool pin_refused;
	/* The token's failure can pass by itself (the device, a session, the
	 * link to a network HSM: CKR_DEVICE_ERROR, CKR_SESSION_HANDLE_INVALID,
	 * ...), so running the command again may help; false for the token's
	 * answer to what was asked (CKR_ATTRIBUTE_READ_ONLY, ...), which comes
	 * again. Set by vz_err_from_tok() only. */
	bool may_pass;
} vz_err;

void vz_err_set(vz_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vz_err_hint(vz_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds the newest OpenSSL error reason to err->msg and clears the queue. */
void vz_err_openssl(vz_err *err);
/* Copies a token-layer error and maps its result. */
/* Puts the token back as it was before transaction x (x may be NULL: nothing
 * was written) and says so after err's message: unchanged (e.g. "; the
 * token is unchanged"), or what could not be undone. */
void vz_err_abort(vz_err *err, tok_txn *x, const char *unchanged);

vz_rv vz_err_from_tok(vz_err *err, const tok_err *te, tok_rv r);

#endif
