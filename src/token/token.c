/* token.c - from global options to a logged-in session. */
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "token/token.h"

struct pin_ctx {
	const char *source;
	vz_err *err;
	vz_rv rv;
	vz_secret *keep; /* a copy of the PIN read, for the caller; NULL: none */
};

/* Called by the token layer only when the token needs a PIN. */
static tok_rv read_pin(void *ctx, char *buf, size_t size, size_t *len)
{
	struct pin_ctx *pc = ctx;
	vz_secret pin;

	pc->rv = vz_secret_read(pc->source, _("token PIN"), &pin, pc->err);
	if (pc->rv != VZ_OK) {
		vz_secret_wipe(&pin);
		return TOK_NO_PIN;
	}
	if (pin.len >= size) {
		vz_secret_wipe(&pin);
		pc->rv = VZ_FAIL;
		vz_err_set(pc->err, "the PIN is too long");
		return TOK_NO_PIN;
	}
	memcpy(buf, pin.buf, pin.len);
	*len = pin.len;
	if (pc->keep)
		*pc->keep = pin;
	vz_secret_wipe(&pin);
	return TOK_OK;
}

vz_rv vz_token_open(const vz_global *g, bool rw, bool login, vz_token *out, vz_err *err)
{
	struct pin_ctx pc = {.source = g->pin_source, .err = err, .rv = VZ_OK};
	const char *module, *module_args;
	tok_err te = {0};
	tok_rv r;
	vz_rv v;

	memset(out, 0, sizeof(*out));
	if (g->pin_source) {
		v = vz_secret_check_source(g->pin_source, err);
		if (v != VZ_OK)
			return v;
	}
	v = vz_config_module(g, &module, &module_args, err);
	if (v != VZ_OK)
		return v;
	r = tok_lib_open(module, module_args, &out->lib, &te);
	if (r == TOK_OK)
		r = tok_lib_select(out->lib, g->token, &out->tok, &te);
	if (r == TOK_OK && g->verbose) {
		const tok_token_info *ti = tok_token_info_of(out->tok);

		vz_note(g, "using token '%s' (serial %s, %s) of module %s", ti->label, ti->serial,
			ti->model, ti->module);
	}
	if (r == TOK_OK) {
		r = tok_session_open(out->tok, rw, login ? read_pin : NULL, &pc, &out->s, &te);
		/* The PIN source's own failure explains itself. */
		if (r == TOK_NO_PIN && pc.rv != VZ_OK) {
			vz_token_close(out);
			return pc.rv;
		}
	}
	if (r != TOK_OK) {
		vz_token_close(out);
		vz_err_from_tok(err, &te, r);
		return VZ_FAIL;
	}
	out->rw = rw;
	out->logged_in = login;
	return VZ_OK;
}

vz_rv vz_token_login(const vz_global *g, vz_token *t, vz_err *err)
{
	return vz_token_login_pin(g, t, NULL, err);
}

vz_rv vz_token_login_pin(const vz_global *g, vz_token *t, vz_secret *pin, vz_err *err)
{
	struct pin_ctx pc = {.source = g->pin_source, .err = err, .rv = VZ_OK, .keep = pin};
	tok_session *s = NULL;
	tok_err te = {0};
	tok_rv r;

	if (t->logged_in)
		return VZ_OK;
	if (g->pin_source) {
		vz_rv v = vz_secret_check_source(g->pin_source, err);

		if (v != VZ_OK)
			return v;
	}
	/* A second session that logs in; the public one is closed after it, so
	 * the token never sees the application without a session. */
	r = tok_session_open(t->tok, t->rw, read_pin, &pc, &s, &te);
	if (r == TOK_NO_PIN && pc.rv != VZ_OK)
		return pc.rv;
	if (r != TOK_OK) {
		vz_err_from_tok(err, &te, r);
		return VZ_FAIL;
	}
	tok_session_close(t->s);
	t->s = s;
	t->logged_in = true;
	return VZ_OK;
}

void vz_token_close_shared(vz_token *t)
{
	tok_session_close_shared(t->s);
	tok_lib_close(t->lib);
	memset(t, 0, sizeof(*t));
}

void vz_token_close(vz_token *t)
{
	tok_session_close(t->s);
	tok_lib_close(t->lib);
	memset(t, 0, sizeof(*t));
}
