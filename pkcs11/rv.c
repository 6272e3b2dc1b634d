/* rv.c - CKR_* codes as names, sentences and our result enum. */
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "tok-int.h"

struct ckr_text {
	CK_RV rv;
	const char *name;
	const char *text;
};

static const struct ckr_text ckr_texts[] = {
	{CKR_OK, "CKR_OK", N_("success")},
	{CKR_HOST_MEMORY, "CKR_HOST_MEMORY", N_("the PKCS#11 library ran out of memory")},
	{CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", N_("the slot no longer exists")},
	{CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", N_("the token reported an unrecoverable error")},
	{CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED",
	 N_("the token could not carry out the request")},
	{CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED",
	 N_("the token's policy forbids this action (an HSM in FIPS mode, for instance)")},
	{CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", N_("the token rejected the arguments")},
	{CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY",
	 N_("an attribute cannot be set on this token")},
	{CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE",
	 N_("the value is secret and cannot be read")},
	{CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID",
	 N_("the token does not know an attribute")},
	{CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID",
	 N_("the token refused an attribute value")},
	{CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE",
	 N_("the data has a length the token does not accept")},
	{CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", N_("the device reported a hardware error")},
	{CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", N_("the token is out of storage space")},
	{CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED",
	 N_("the token was removed during the operation")},
	{CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED",
	 N_("the token does not support this operation")},
	{CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT",
	 N_("the key type does not fit the operation")},
	{CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID",
	 N_("the token does not support the mechanism")},
	{CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID", N_("the object no longer exists")},
	{CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE",
	 N_("another operation is still active on the session")},
	{CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", N_("the PIN is wrong")},
	{CKR_PIN_INVALID, "CKR_PIN_INVALID",
	 N_("the PIN contains characters the token does not accept")},
	{CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE",
	 N_("the PIN is too long or too short for this token")},
	{CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED", N_("the PIN has expired and must be changed")},
	{CKR_PIN_LOCKED, "CKR_PIN_LOCKED", N_("the PIN is locked after too many wrong attempts")},
	{CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED", N_("the session was closed")},
	{CKR_SESSION_COUNT, "CKR_SESSION_COUNT", N_("the token has no free sessions")},
	{CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID",
	 N_("the session is no longer valid")},
	{CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY", N_("the session is read-only")},
	{CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS",
	 N_("a read-only session blocks the login")},
	{CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS",
	 N_("the security officer is logged in")},
	{CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE",
	 N_("the token needs an attribute that was not given")},
	{CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT",
	 N_("the token refused a combination of attributes")},
	{CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", N_("no token is present in the slot")},
	{CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", N_("the token is not recognized")},
	{CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED",
	 N_("the token is write-protected")},
	{CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN",
	 N_("the user is already logged in")},
	{CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", N_("the operation needs a login")},
	{CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED",
	 N_("the token has no user PIN yet")},
	{CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID", N_("the user type is not valid")},
	{CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL", N_("the output buffer was too small")},
	{CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED",
	 N_("the PKCS#11 library is not initialized")},
	{CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED",
	 N_("the PKCS#11 library was already initialized")},
	{CKR_CANT_LOCK, "CKR_CANT_LOCK", N_("the library cannot do the locking asked for")},
};

static const struct ckr_text *ckr_lookup(CK_RV rv)
{
	for (size_t i = 0; i < ARRAY_SIZE(ckr_texts); i++)
		if (ckr_texts[i].rv == rv)
			return &ckr_texts[i];
	return NULL;
}

const char *tok_ckr_name(unsigned long ckr)
{
	const struct ckr_text *t = ckr_lookup(ckr);

	return t ? t->name : "CKR_(unknown)";
}

const char *tok_ckr_text(unsigned long ckr)
{
	const struct ckr_text *t = ckr_lookup(ckr);

	return t ? _(t->text) : _("the token returned an error code vzp11 does not know");
}

void tok_err_set(tok_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), _(fmt), ap);
	va_end(ap);
	err->hint[0] = '\0';
	err->has_ckr = false;
	err->ckr = 0;
}

void tok_err_hint(tok_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), _(fmt), ap);
	va_end(ap);
}

tok_rv tok_err_ckr(tok_err *err, const char *func, CK_RV rv)
{
	tok_rv r = TOK_ERR;

	if (rv == CKR_OK)
		abort();
	if (ckr_lookup(rv))
		tok_err_set(err, "%s failed: %s (%s)", func, tok_ckr_name(rv), tok_ckr_text(rv));
	else
		tok_err_set(err, "%s failed: CKR 0x%08lx (%s)", func, (unsigned long)rv,
			    tok_ckr_text(rv));
	if (err) {
		err->ckr = rv;
		err->has_ckr = true;
	}
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		r = TOK_PIN_INCORRECT;
		tok_err_hint(err, "check the PIN source; vzp11 does not retry a rejected PIN, "
				  "so the token's retry counter went down by one only");
		break;
	case CKR_PIN_LOCKED:
		r = TOK_PIN_LOCKED;
		tok_err_hint(err, "the token's security officer must unlock or reset the user PIN");
		break;
	case CKR_TOKEN_WRITE_PROTECTED:
	case CKR_SESSION_READ_ONLY:
		r = TOK_READ_ONLY;
		tok_err_hint(err,
			     "choose a token that can be written to, or lift its write protection");
		break;
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
		tok_err_hint(err, "check the token and its connection (reconnect it, or the "
				  "network to the HSM) and run the command again");
		break;
	case CKR_DEVICE_MEMORY:
		tok_err_hint(err, "remove unused objects from the token and try again");
		break;
	case CKR_HOST_MEMORY:
	case CKR_SESSION_CLOSED:
	case CKR_SESSION_COUNT:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_OPERATION_ACTIVE:
		tok_err_hint(err, "run the command again; if it keeps failing, check the token "
				  "and its PKCS#11 library");
		break;
	case CKR_FUNCTION_FAILED:
		/* No reason given: it may recur or not, so no "run again". */
		tok_err_hint(err,
			     "the token gave no reason why %s failed: its own log or management "
			     "tool may say (a full or misconfigured token, a policy); the README's "
			     "\"Using a real HSM or smartcard\" says what each kind of token "
			     "supports",
			     func);
		break;
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		/* vzp11 initialized the module: someone finalized it since. */
		tok_err_hint(err,
			     "the module was finalized while vzp11 still used it (by another "
			     "library in this process, or the far end of a remote module); that "
			     "is a fault to report with the command and 'vzp11 --version', "
			     "not one that running again fixes");
		break;
	default:
		/* The token's answer to what was asked, not a passing fault. */
		tok_err_hint(
			err,
			"this token cannot do what %s asks, and running the command again will "
			"not help; the README's \"Using a real HSM or smartcard\" says what "
			"each kind of token supports",
			func);
		break;
	}
	return r;
}

void tok_padded_copy(char *dst, size_t dst_size, const unsigned char *src, size_t src_len)
{
	size_t n = src_len;

	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	if (n >= dst_size)
		n = dst_size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}
