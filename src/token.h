/* token.h - opening the token the global options name, with its PIN. */
#ifndef VZP11_TOKEN_H
#define VZP11_TOKEN_H

#include "cli.h"
#include "secret.h"
#include "tok.h"

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

#endif
