/* Unit tests: CKR_ texts and RFC 7512 URI building in the token layer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <p11-kit/uri.h>

#include "tok-int.h"

static void ckr_names(void **state)
{
	assert_string_equal(tok_ckr_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
	assert_string_equal(tok_ckr_text(CKR_PIN_LOCKED),
			    "the PIN is locked after too many wrong attempts");
	assert_string_equal(tok_ckr_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
	assert_string_equal(tok_ckr_name(0x8000abcdUL), "CKR_(unknown)");
}

static void ckr_to_result(void **state)
{
	tok_err err;

	assert_int_equal(tok_err_ckr(&err, "C_Login", CKR_PIN_INCORRECT), TOK_PIN_INCORRECT);
	assert_non_null(strstr(err.msg, "C_Login failed: CKR_PIN_INCORRECT (the PIN is wrong)"));
	assert_true(err.has_ckr);
	assert_int_equal(err.ckr, CKR_PIN_INCORRECT);
	assert_int_equal(tok_err_ckr(&err, "C_Login", CKR_PIN_LOCKED), TOK_PIN_LOCKED);
	assert_non_null(strstr(err.hint, "security officer"));
	assert_int_equal(tok_err_ckr(&err, "C_CreateObject", CKR_TOKEN_WRITE_PROTECTED),
			 TOK_READ_ONLY);
	assert_int_equal(tok_err_ckr(&err, "C_CreateObject", CKR_DEVICE_MEMORY), TOK_ERR);
	assert_non_null(strstr(err.hint, "remove unused objects"));
	assert_int_equal(tok_err_ckr(&err, "C_Sign", 0x80001234UL), TOK_ERR);
	assert_non_null(strstr(err.msg, "0x80001234"));
}

/* "Run the command again" only where the failure can pass; the token's
 * own answer (it does not know an attribute, a mechanism) says it will not
 * help. */
static void ckr_hints(void **state)
{
	tok_err err;

	tok_err_ckr(&err, "C_CreateObject (certificate)", CKR_ATTRIBUTE_TYPE_INVALID);
	assert_null(strstr(err.hint, "run the command again;"));
	assert_non_null(strstr(err.hint, "running the command again will not help"));
	assert_non_null(strstr(err.hint, "C_CreateObject (certificate)"));
	tok_err_ckr(&err, "C_Initialize", CKR_ARGUMENTS_BAD);
	assert_non_null(strstr(err.hint, "will not help"));
	tok_err_ckr(&err, "C_SignInit", CKR_MECHANISM_INVALID);
	assert_non_null(strstr(err.hint, "will not help"));
	tok_err_ckr(&err, "C_Sign", CKR_DEVICE_ERROR);
	assert_non_null(strstr(err.hint, "run the command again"));
	tok_err_ckr(&err, "C_FindObjects", CKR_SESSION_HANDLE_INVALID);
	assert_non_null(strstr(err.hint, "run the command again"));
	/* no reason given, or the module finalized under vzp11: no retry advice */
	tok_err_ckr(&err, "C_CreateObject (certificate)", CKR_FUNCTION_FAILED);
	assert_null(strstr(err.hint, "run the command again"));
	assert_non_null(strstr(err.hint, "gave no reason why C_CreateObject (certificate) failed"));
	tok_err_ckr(&err, "C_Sign", CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_null(strstr(err.hint, "run the command again"));
	assert_non_null(strstr(err.hint, "finalized while vzp11 still used it"));
}

/* A fake token for tok_try_degrading: it does not know the attribute
 * types in unknown[], and answers with code to any template that holds one. */
struct fake {
	CK_ATTRIBUTE_TYPE unknown[4];
	size_t n_unknown;
	CK_RV code;
	int tries;
	CK_ATTRIBUTE_TYPE last[8];
	CK_ULONG n_last;
};

static CK_RV fake_try(void *ctx, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	struct fake *f = ctx;

	f->tries++;
	for (CK_ULONG i = 0; i < n; i++)
		for (size_t k = 0; k < f->n_unknown; k++)
			if (tmpl[i].type == f->unknown[k])
				return f->code;
	for (CK_ULONG i = 0; i < n && i < 8; i++)
		f->last[i] = tmpl[i].type;
	f->n_last = n;
	return CKR_OK;
}

static void degrading(void **state)
{
	CK_ATTRIBUTE t[] = {{CKA_CLASS, NULL, 0},
			    {CKA_VALUE, NULL, 0},
			    {CKA_ALLOWED_MECHANISMS, NULL, 0},
			    {CKA_CERTIFICATE_CATEGORY, NULL, 0},
			    {CKA_WRAP_WITH_TRUSTED, NULL, 0}};
	struct fake f = {.unknown = {CKA_CERTIFICATE_CATEGORY},
			 .n_unknown = 1,
			 .code = CKR_ATTRIBUTE_TYPE_INVALID};
	unsigned dropped = 0;

	/* one unknown optional attribute: left out, the others kept */
	assert_int_equal(tok_try_degrading(t, 5, 3, fake_try, &f, &dropped), CKR_OK);
	assert_int_equal(dropped, 2u);
	assert_int_equal(f.n_last, 4);
	assert_int_equal(f.last[2], CKA_ALLOWED_MECHANISMS);
	assert_int_equal(f.last[3], CKA_WRAP_WITH_TRUSTED);
	/* two (openCryptoki 3.8), NSS's code: both left out, nothing else */
	f = (struct fake){.unknown = {CKA_CERTIFICATE_CATEGORY, CKA_ALLOWED_MECHANISMS},
			  .n_unknown = 2,
			  .code = CKR_GENERAL_ERROR};
	assert_int_equal(tok_try_degrading(t, 5, 3, fake_try, &f, &dropped), CKR_OK);
	assert_int_equal(dropped, 3u);
	assert_int_equal(f.n_last, 3);
	assert_int_equal(f.last[2], CKA_WRAP_WITH_TRUSTED);
	/* a required attribute unknown: every try fails, the last code returned */
	f = (struct fake){
		.unknown = {CKA_VALUE}, .n_unknown = 1, .code = CKR_ATTRIBUTE_TYPE_INVALID};
	assert_int_equal(tok_try_degrading(t, 5, 3, fake_try, &f, &dropped),
			 CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(f.tries, 8);
	/* any other answer is a failure at once, never a reason to write less */
	f = (struct fake){
		.unknown = {CKA_ALLOWED_MECHANISMS}, .n_unknown = 1, .code = CKR_DEVICE_ERROR};
	assert_int_equal(tok_try_degrading(t, 5, 3, fake_try, &f, &dropped), CKR_DEVICE_ERROR);
	assert_int_equal(f.tries, 1);
	/* no optional attributes: one try */
	f = (struct fake){.unknown = {CKA_ALLOWED_MECHANISMS},
			  .n_unknown = 1,
			  .code = CKR_ATTRIBUTE_TYPE_INVALID};
	assert_int_equal(tok_try_degrading(t, 3, 0, fake_try, &f, &dropped),
			 CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(f.tries, 1);
}

static void fill(unsigned char *dst, size_t n, const char *s)
{
	memset(dst, ' ', n);
	memcpy(dst, s, strlen(s));
}

static void uri_round_trip(void **state)
{
	struct tok_token t;
	const unsigned char id[] = {0x00, 0xc8, 0x31, 0xff};
	const char *label = "vecozo system;2026 %é";
	P11KitUri *uri = p11_kit_uri_new();
	CK_ATTRIBUTE *a;
	char *s;

	memset(&t, 0, sizeof(t));
	fill(t.ck.label, sizeof(t.ck.label), "practice hsm");
	fill(t.ck.manufacturerID, sizeof(t.ck.manufacturerID), "SoftHSM project");
	fill(t.ck.model, sizeof(t.ck.model), "SoftHSM v2");
	fill(t.ck.serialNumber, sizeof(t.ck.serialNumber), "1234abcd");
	s = tok_uri(&t, TOK_PRIVKEY, label, (tok_bytes){id, sizeof(id)});
	assert_non_null(s);
	assert_null(strstr(s, "pin"));
	assert_non_null(strstr(s, "type=private"));
	assert_non_null(strstr(s, "token=practice%20hsm"));
	assert_int_equal(p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, uri), P11_KIT_URI_OK);
	assert_int_equal(p11_kit_uri_match_token_info(uri, &t.ck), 1);
	a = p11_kit_uri_get_attribute(uri, CKA_LABEL);
	assert_non_null(a);
	assert_int_equal(a->ulValueLen, strlen(label));
	assert_memory_equal(a->pValue, label, strlen(label));
	a = p11_kit_uri_get_attribute(uri, CKA_ID);
	assert_non_null(a);
	assert_int_equal(a->ulValueLen, sizeof(id));
	assert_memory_equal(a->pValue, id, sizeof(id));
	free(s);
	s = tok_uri(&t, 0, NULL, (tok_bytes){0});
	assert_non_null(s);
	assert_null(strstr(s, "type="));
	free(s);
	p11_kit_uri_free(uri);
}

/* tpm2-pkcs11 pads its model with NULs: the URI must carry no %00 (which
 * pkcs11-provider refuses) and still match the token. */
static void uri_nul_padding(void **state)
{
	struct tok_token t;
	P11KitUri *uri = p11_kit_uri_new();
	char *s;

	memset(&t, 0, sizeof(t));
	fill(t.ck.label, sizeof(t.ck.label), "tpm");
	fill(t.ck.manufacturerID, sizeof(t.ck.manufacturerID), "IBM");
	memcpy(t.ck.model, "SW   TPM", 8); /* the other 8 bytes stay NUL */
	memcpy(t.ck.serialNumber, "0123", 4);
	s = tok_uri(&t, TOK_PRIVKEY, "vecozo", (tok_bytes){0});
	assert_non_null(s);
	assert_null(strstr(s, "%00"));
	assert_non_null(strstr(s, "model=SW%20%20%20TPM;"));
	assert_non_null(strstr(s, "serial=0123;"));
	assert_int_equal(p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, uri), P11_KIT_URI_OK);
	tok_token_info_clean(&t.ck);
	assert_int_equal(p11_kit_uri_match_token_info(uri, &t.ck), 1);
	free(s);
	p11_kit_uri_free(uri);
}

/* A module whose CK_INFO is padded with NULs still matches a --token URI
 * that names its library-manufacturer. */
static void module_info_nul_padding(void **state)
{
	CK_INFO mi;
	P11KitUri *uri = p11_kit_uri_new();

	memset(&mi, 0, sizeof(mi));
	memcpy(mi.manufacturerID, "tpm2-software", 13);
	memcpy(mi.libraryDescription, "TPM2.0 Cryptoki", 15);
	assert_int_equal(p11_kit_uri_parse("pkcs11:library-manufacturer=tpm2-software;"
					   "library-description=TPM2.0%20Cryptoki",
					   P11_KIT_URI_FOR_ANY, uri),
			 P11_KIT_URI_OK);
	assert_int_equal(p11_kit_uri_match_module_info(uri, &mi), 0);
	tok_module_info_clean(&mi);
	assert_int_equal(p11_kit_uri_match_module_info(uri, &mi), 1);
	p11_kit_uri_free(uri);
}

static void padded_copy(void **state)
{
	unsigned char src[32];
	char dst[33];

	fill(src, sizeof(src), "label");
	tok_padded_copy(dst, sizeof(dst), src, sizeof(src));
	assert_string_equal(dst, "label");
}

/* A module p11-kit did not load from a file (a p11-kit remote module) has
 * no path for pkcs11-provider: say so, not "out of memory". */
static void module_without_file(void **state)
{
	static CK_FUNCTION_LIST remote; /* unknown to p11-kit: no file name */
	struct tok_token t = {.f = &remote};
	tok_err err = {0};
	char *path = (char *)"untouched";

	snprintf(t.info.label, sizeof(t.info.label), "practice-hsm");
	snprintf(t.info.module, sizeof(t.info.module), "remote-hsm");
	assert_int_equal(tok_token_module_path(&t, &path, &err), TOK_NOT_FOUND);
	assert_string_equal(path, "untouched");
	assert_non_null(strstr(err.msg, "'practice-hsm' (remote-hsm) has no file"));
	assert_null(strstr(err.msg, "memory"));
	assert_non_null(strstr(err.hint, "--module"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ckr_names),
		cmocka_unit_test(ckr_to_result),
		cmocka_unit_test(ckr_hints),
		cmocka_unit_test(degrading),
		cmocka_unit_test(module_info_nul_padding),
		cmocka_unit_test(uri_round_trip),
		cmocka_unit_test(uri_nul_padding),
		cmocka_unit_test(padded_copy),
		cmocka_unit_test(module_without_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
