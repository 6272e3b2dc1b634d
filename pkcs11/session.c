/* session.c - opening a session and logging in without ever resending a
 * PIN the token rejected. */
#include <stdlib.h>
#include <string.h>

#include "tok-int.h"

/* Reads the token's PIN flags fresh: they change as attempts fail. */
static void refresh_flags(struct tok_token *t)
{
	CK_TOKEN_INFO ck;

	if (t->f->C_GetTokenInfo(t->slot, &ck) == CKR_OK) {
		t->ck.flags = ck.flags;
		t->info.pin_locked = ck.flags & CKF_USER_PIN_LOCKED;
		t->info.pin_final_try = ck.flags & CKF_USER_PIN_FINAL_TRY;
		t->info.pin_count_low = ck.flags & CKF_USER_PIN_COUNT_LOW;
	}
}

static tok_rv login(tok_session *s, tok_pin_fn pin_fn, void *pin_ctx, tok_err *err)
{
	struct tok_token *t = s->t;
	CK_SESSION_INFO si;
	char pin[256];
	size_t len = 0;
	tok_rv ret = TOK_ERR;
	CK_RV rv;

	/* Logged in already (by another session of this process): no PIN. */
	if (t->f->C_GetSessionInfo(s->h, &si) == CKR_OK &&
	    (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS))
		return TOK_OK;
	refresh_flags(t);
	if (t->info.pin_locked) {
		tok_err_set(err, "the user PIN of token '%s' is locked; no PIN was sent",
			    t->info.label);
		tok_err_hint(err, "the token's security officer must unlock or reset the user PIN");
		return TOK_PIN_LOCKED;
	}
	if (t->info.protected_path) {
		rv = t->f->C_Login(s->h, CKU_USER, NULL, 0);
	} else {
		ret = pin_fn(pin_ctx, pin, sizeof(pin), &len);
		if (ret != TOK_OK) {
			if (err && err->msg[0] == '\0')
				tok_err_set(err, "no PIN was read for token '%s'", t->info.label);
			goto out;
		}
		rv = t->f->C_Login(s->h, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)len);
	}
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		s->logged_in = rv == CKR_OK;
		ret = TOK_OK;
		goto out;
	}
	ret = tok_err_ckr(err, "C_Login", rv);
	if (ret == TOK_PIN_INCORRECT) {
		refresh_flags(t);
		tok_err_set(err, "the token '%s' rejected the PIN%s", t->info.label,
			    t->info.pin_locked	    ? _("; the PIN is now locked")
			    : t->info.pin_final_try ? _("; one more wrong PIN will lock it")
			    : t->info.pin_count_low ? _("; few attempts are left before it locks")
						    : "");
		err->has_ckr = true;
		err->ckr = rv;
		tok_err_hint(err, "check the PIN source; vzp11 never retries a rejected PIN");
	}
out:
	explicit_bzero(pin, sizeof(pin));
	return ret;
}

tok_rv tok_session_open(tok_token *t, bool rw, tok_pin_fn pin_fn, void *pin_ctx, tok_session **out,
			tok_err *err)
{
	tok_session *s;
	CK_FLAGS flags = CKF_SERIAL_SESSION;
	tok_rv ret;
	CK_RV rv;

	if (rw && t->info.write_protected) {
		tok_err_set(err, "token '%s' is write-protected; nothing was changed",
			    t->info.label);
		tok_err_hint(err,
			     "choose a token that can be written to, or lift its write protection");
		return TOK_READ_ONLY;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		tok_err_set(err, "out of memory");
		return TOK_ERR;
	}
	s->t = t;
	s->rw = rw;
	if (rw)
		flags |= CKF_RW_SESSION;
	rv = t->f->C_OpenSession(t->slot, flags, NULL, NULL, &s->h);
	if (rv != CKR_OK) {
		free(s);
		return tok_err_ckr(err, "C_OpenSession", rv);
	}
	if (t->info.login_required && pin_fn) {
		ret = login(s, pin_fn, pin_ctx, err);
		if (ret != TOK_OK) {
			tok_session_close(s);
			return ret;
		}
	}
	*out = s;
	return TOK_OK;
}

void tok_session_close_shared(tok_session *s)
{
	if (!s)
		return;
	s->t->f->C_CloseSession(s->h);
	free(s);
}

void tok_session_close(tok_session *s)
{
	if (!s)
		return;
	if (s->logged_in)
		s->t->f->C_Logout(s->h);
	s->t->f->C_CloseSession(s->h);
	free(s);
}
