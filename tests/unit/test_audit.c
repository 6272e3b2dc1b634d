/* Unit tests: the audit record's JSON (the syslog side is audit-* in
 * tests/integration/audit.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "token/token.h"

static const char *const keys[] = {
	"audit", "time",    "action",	"result", "label", "old_label", "new_label", "certificate",
	"id",	 "arrived", "previous", "token",  "user",  "detail",	"error",
};

/* Every key of the audit record (token/token.h), in its order, and nothing else. */
static void assert_layout(json_t *j)
{
	const char *key;
	json_t *v;
	size_t i = 0;

	assert_non_null(j);
	json_object_foreach(j, key, v)
	{
		assert_true(i < sizeof(keys) / sizeof(keys[0]));
		assert_string_equal(key, keys[i]);
		i++;
	}
	assert_int_equal(i, sizeof(keys) / sizeof(keys[0]));
	assert_int_equal(json_integer_value(json_object_get(j, "audit")), VZ_AUDIT_FORMAT);
}

/* A rotate step: a relabel, no certificate or token at hand; the empty
 * fields are null, the error is left out of a record that did not fail. */
static void relabel_step(void **state)
{
	vz_audit_rec r = {.action = "rotate-activate",
			  .label = "vecozo-system",
			  .old_label = "vecozo-system.next",
			  .new_label = "vecozo-system",
			  .error = "not shown: the step did not fail"};
	json_t *j = vz_audit_json(NULL, &r);
	json_t *user;

	assert_layout(j);
	assert_string_equal(json_string_value(json_object_get(j, "action")), "rotate-activate");
	assert_string_equal(json_string_value(json_object_get(j, "result")), "ok");
	assert_string_equal(json_string_value(json_object_get(j, "old_label")),
			    "vecozo-system.next");
	assert_string_equal(json_string_value(json_object_get(j, "new_label")), "vecozo-system");
	assert_true(json_is_null(json_object_get(j, "certificate")));
	assert_true(json_is_null(json_object_get(j, "id")));
	assert_true(json_is_null(json_object_get(j, "arrived")));
	assert_true(json_is_null(json_object_get(j, "token")));
	assert_true(json_is_null(json_object_get(j, "error")));
	user = json_object_get(j, "user");
	assert_int_equal(json_integer_value(json_object_get(user, "uid")), (json_int_t)getuid());
	json_decref(j);
}

/* The user's name comes from the password database, never the environment. */
static void user_not_from_environment(void **state)
{
	vz_audit_rec r = {.action = "import"};
	json_t *j;
	const char *name;

	setenv("USER", "someone-else", 1);
	setenv("LOGNAME", "someone-else", 1);
	j = vz_audit_json(NULL, &r);
	assert_layout(j);
	name = json_string_value(json_object_get(json_object_get(j, "user"), "name"));
	assert_true(name == NULL || strcmp(name, "someone-else") != 0);
	json_decref(j);
}

/* A failed change with a certificate, an id, a label that is not UTF-8
 * (from argv or a token: the record must not be lost for it) and a token. */
static void failed_import(void **state)
{
	vz_cert_info ci = {.subject = "CN=Demo,O=Demo Praktijk,C=NL",
			   .issuer = "CN=CA",
			   .serial = "1001",
			   .not_before = "2026-01-01T00:00:00Z",
			   .not_after = "2028-01-01T00:00:00Z",
			   .fingerprint = "AB:CD"};
	tok_token_info ti = {.label = "hsm", .serial = "42", .manufacturer = "M", .model = "X"};
	const unsigned char id[] = {0x31, 0x0c, 0xff};
	vz_audit_rec r = {.action = "import",
			  .failed = true,
			  .label = "bad\xff\xfelabel",
			  .cert = &ci,
			  .id = id,
			  .id_len = sizeof(id),
			  .arrival = TOK_ARRIVAL_UNWRAPPED,
			  .error = "C_CreateObject failed; the token is unchanged"};
	json_t *j = vz_audit_json(&ti, &r);
	json_t *c;

	assert_layout(j);
	assert_string_equal(json_string_value(json_object_get(j, "result")), "failed");
	assert_string_equal(json_string_value(json_object_get(j, "label")), "bad??label");
	assert_string_equal(json_string_value(json_object_get(j, "id")), "310cff");
	assert_string_equal(json_string_value(json_object_get(j, "arrived")), "unwrapped");
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "C_CreateObject failed; the token is unchanged");
	c = json_object_get(j, "certificate");
	assert_string_equal(json_string_value(json_object_get(c, "subject")), ci.subject);
	assert_string_equal(json_string_value(json_object_get(c, "serial")), "1001");
	assert_string_equal(json_string_value(json_object_get(c, "fingerprint_sha256")), "AB:CD");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "token"), "serial")), "42");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(relabel_step),
		cmocka_unit_test(user_not_from_environment),
		cmocka_unit_test(failed_import),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
