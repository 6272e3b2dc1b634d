/* err.c - the error context, and messages to the user. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "cli/cli.h"

void vz_err_set(vz_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), _(fmt), ap);
	va_end(ap);
	err->hint[0] = '\0';
}

void vz_err_hint(vz_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), _(fmt), ap);
	va_end(ap);
}

void vz_err_openssl(vz_err *err)
{
	unsigned long e = ERR_peek_last_error();
	size_t used;

	if (err && e) {
		used = strlen(err->msg);
		snprintf(err->msg + used, sizeof(err->msg) - used, " (%s)",
			 ERR_reason_error_string(e) ? ERR_reason_error_string(e) : _("unknown"));
	}
	ERR_clear_error();
}

/* The CKR_ codes that can pass by themselves: those pkcs11/rv.c answers
 * with "run the command again" (src/ names them, it cannot include
 * pkcs11.h). */
static bool ckr_may_pass(const tok_err *te)
{
	static const char *const passing[] = {
		"CKR_DEVICE_ERROR",	 "CKR_DEVICE_REMOVED",
		"CKR_TOKEN_NOT_PRESENT", "CKR_HOST_MEMORY",
		"CKR_FUNCTION_FAILED",	 "CKR_SESSION_CLOSED",
		"CKR_SESSION_COUNT",	 "CKR_SESSION_HANDLE_INVALID",
		"CKR_OPERATION_ACTIVE",	 "CKR_CRYPTOKI_NOT_INITIALIZED",
	};
	const char *name = te->has_ckr ? tok_ckr_name(te->ckr) : "";

	for (size_t i = 0; i < sizeof(passing) / sizeof(passing[0]); i++)
		if (strcmp(name, passing[i]) == 0)
			return true;
	return false;
}

vz_rv vz_err_from_tok(vz_err *err, const tok_err *te, tok_rv r)
{
	if (err) {
		snprintf(err->msg, sizeof(err->msg), "%s", te->msg);
		snprintf(err->hint, sizeof(err->hint), "%s", te->hint);
		err->may_pass = r == TOK_ERR && ckr_may_pass(te);
	}
	if (err && (r == TOK_PIN_INCORRECT || r == TOK_PIN_LOCKED))
		err->pin_refused = true;
	if (r == TOK_OK)
		return VZ_OK;
	if (r == TOK_NOT_FOUND)
		return VZ_NOT_FOUND;
	return VZ_FAIL;
}

void vz_err_abort(vz_err *err, tok_txn *x, const char *unchanged)
{
	tok_err ae = {0};
	size_t used = strlen(err->msg);

	if (!x || tok_txn_abort(x, &ae) == TOK_OK)
		snprintf(err->msg + used, sizeof(err->msg) - used, "%s", unchanged);
	else
		snprintf(err->msg + used, sizeof(err->msg) - used, "; and %s", ae.msg);
}

void vz_report(const vz_err *err)
{
	fprintf(stderr, _("vzp11: %s\n"), err->msg[0] ? err->msg : _("failed"));
	if (err->hint[0])
		fprintf(stderr, _("vzp11: %s\n"), err->hint);
}

int vz_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs(_("vzp11: "), stderr);
	va_start(ap, fmt);
	vfprintf(stderr, _(fmt), ap);
	va_end(ap);
	fprintf(stderr, _("\nTry 'vzp11 %s%s--help'.\n"), cmd ? cmd : "", cmd ? " " : "");
	return VZ_EXIT_USAGE;
}

void vz_note(const vz_global *g, const char *fmt, ...)
{
	va_list ap;

	if (g->quiet)
		return;
	fputs(_("vzp11: "), stderr);
	va_start(ap, fmt);
	vfprintf(stderr, _(fmt), ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vz_exit_code(vz_rv r)
{
	return r == VZ_OK ? VZ_EXIT_OK : r == VZ_USAGE ? VZ_EXIT_USAGE : VZ_EXIT_FAIL;
}
