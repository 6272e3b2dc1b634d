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
	{CKR_OK, "CKR_OK", "success"},
	{CKR_HOST_MEMORY, "CKR_HOST_MEMORY", "the PKCS#11 library ran out of memory"},
	{CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", "the slot no longer exists"},
	{CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", "the token reported an unrecoverable error"},
	{CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED", "the token could not carry out the request"},
	{CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", "the token rejected the arguments"},
	{CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY",
	 "an attribute cannot be set on this token"},
	{CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE",
	 "the value is secret and cannot be read"},
	{CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID",
	 "the token does not know an attribute"},
	{CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID",
	 "the token refused an attribute value"},
	{CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE",
	 "the data has a length the token does not accept"},
	{CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", "the device reported a hardware error"},
	{CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", "the token is out of storage space"},
	{CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", "the token was removed during the operation"},
	{CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED",
	 "the token does not support this operation"},
	{CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT",
	 "the key type does not fit the operation"},
	{CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID",
	 "the token does not support the mechanism"},
	{CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID", "the object no longer exists"},
	{CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE",
	 "another operation is still active on the session"},
	{CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", "the PIN is wrong"},
	{CKR_PIN_INVALID, "CKR_PIN_INVALID",
	 "the PIN contains characters the token does not accept"},
	{CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE", "the PIN is too long or too short for this token"},
	{CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED", "the PIN has expired and must be changed"},
	{CKR_PIN_LOCKED, "CKR_PIN_LOCKED", "the PIN is locked after too many wrong attempts"},
	{CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED", "the session was closed"},
	{CKR_SESSION_COUNT, "CKR_SESSION_COUNT", "the token has no free sessions"},
	{CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID",
	 "the session is no longer valid"},
	{CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY", "the session is read-only"},
	{CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS",
	 "a read-only session blocks the login"},
	{CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS",
	 "the security officer is logged in"},
	{CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE",
	 "the token needs an attribute that was not given"},
	{CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT",
	 "the token refused a combination of attributes"},
	{CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", "no token is present in the slot"},
	{CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", "the token is not recognized"},
	{CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED", "the token is write-protected"},
	{CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN", "the user is already logged in"},
	{CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", "the operation needs a login"},
	{CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED",
	 "the token has no user PIN yet"},
	{CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID", "the user type is not valid"},
	{CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL", "the output buffer was too small"},
	{CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED",
	 "the PKCS#11 library is not initialized"},
	{CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED",
	 "the PKCS#11 library was already initialized"},
	{CKR_CANT_LOCK, "CKR_CANT_LOCK", "the library cannot do the locking asked for"},
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

	return t ? t->text : "the token returned an error code vzp11 does not know";
}

void tok_err_set(tok_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
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
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
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
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
		tok_err_hint(err, "reconnect the token and run the command again");
		break;
	case CKR_DEVICE_MEMORY:
		tok_err_hint(err, "remove unused objects from the token and try again");
		break;
	default:
		tok_err_hint(err, "run the command again; if it keeps failing, check the token "
				  "and its PKCS#11 library");
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
