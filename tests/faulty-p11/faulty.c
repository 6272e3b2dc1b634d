/* faulty.c - a PKCS#11 module for tests that forwards every call to a real
 * module (SoftHSM2 by default) and fails on purpose.
 *
 * Environment:
 *   FAULTY_P11_MODULE       the real module (default: SoftHSM2)
 *   FAULTY_P11_FAIL_AT=N    fail the Nth call (counting every call)
 *   FAULTY_P11_FAIL_FUNC=F  fail every call of function F (e.g. C_Login)
 *   FAULTY_P11_RV=CKR_...   what the failed call returns (default CKR_DEVICE_ERROR)
 *   FAULTY_P11_TOKEN_FLAGS  comma list added to C_GetTokenInfo's flags:
 *                           write-protected, pin-locked, pin-final-try, protected-path
 *   FAULTY_P11_FAIL_ATTR=A  fail every C_GetAttributeValue whose template
 *                           holds attribute A (CKA_SENSITIVE, CKA_EXTRACTABLE,
 *                           CKA_VALUE, CKA_PRIVATE_EXPONENT, ... or 0x...)
 *                           with FAULTY_P11_RV
 *   FAULTY_P11_FAIL_ATTR_CLASS=private-key
 *                           only for objects of that class
 *   FAULTY_P11_CREATE_FAIL_ATTR=A
 *                           fail every C_CreateObject whose template holds A
 *                           (a token that does not know the attribute:
 *                           FAULTY_P11_RV=CKR_ATTRIBUTE_TYPE_INVALID)
 *   FAULTY_P11_SLEEP=F:MS   sleep MS milliseconds before each call of F
 *   FAULTY_P11_HIDE_SLOT=1  the first C_GetSlotList length query reports one
 *                           slot fewer than there are (a slot appearing
 *                           between the two calls)
 *   FAULTY_P11_REPORT=PATH  at exit, write "calls N", "injected F" and one
 *                           "func F N" line per function called
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

static CK_FUNCTION_LIST *real;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long calls, fail_at;
static const char *fail_func;
static CK_RV fail_rv = CKR_DEVICE_ERROR;
static CK_FLAGS extra_token_flags;
static char injected[64];
struct attr_rule {
	CK_ATTRIBUTE_TYPE type;
	bool privkey_only;
	bool on;
};
static struct attr_rule read_attr, create_attr;
static char sleep_func[64];
static long sleep_ms;
static bool hide_slot;

/* Calls per function, for the report. */
static struct {
	const char *name;
	unsigned long n;
} per_func[96];
static size_t n_funcs;

static const struct {
	const char *name;
	CK_RV rv;
} rvs[] = {
	{"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
	{"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
	{"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
	{"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
	{"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
	{"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
	{"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
	{"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
	{"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
	{"CKR_PIN_LOCKED", CKR_PIN_LOCKED},
	{"CKR_TOKEN_WRITE_PROTECTED", CKR_TOKEN_WRITE_PROTECTED},
	{"CKR_ATTRIBUTE_TYPE_INVALID", CKR_ATTRIBUTE_TYPE_INVALID},
	{"CKR_ATTRIBUTE_SENSITIVE", CKR_ATTRIBUTE_SENSITIVE},
};

static const struct {
	const char *name;
	CK_ATTRIBUTE_TYPE type;
} attrs[] = {
	{"CKA_SENSITIVE", CKA_SENSITIVE},
	{"CKA_EXTRACTABLE", CKA_EXTRACTABLE},
	{"CKA_VALUE", CKA_VALUE},
	{"CKA_PRIVATE_EXPONENT", CKA_PRIVATE_EXPONENT},
	{"CKA_ALLOWED_MECHANISMS", CKA_ALLOWED_MECHANISMS},
	{"CKA_SIGN", CKA_SIGN},
	{"CKA_DECRYPT", CKA_DECRYPT},
	{"CKA_SIGN_RECOVER", CKA_SIGN_RECOVER},
};

static void count_call(const char *name)
{
	for (size_t i = 0; i < n_funcs; i++) {
		if (strcmp(per_func[i].name, name) == 0) {
			per_func[i].n++;
			return;
		}
	}
	if (n_funcs < sizeof(per_func) / sizeof(per_func[0])) {
		per_func[n_funcs].name = name;
		per_func[n_funcs++].n = 1;
	}
}

static bool fault(const char *name, CK_RV *rv)
{
	bool hit;

	bool snooze;

	pthread_mutex_lock(&lock);
	calls++;
	count_call(name);
	hit = (fail_at && calls == fail_at) || (fail_func && strcmp(fail_func, name) == 0);
	if (hit) {
		*rv = fail_rv;
		snprintf(injected, sizeof(injected), "%s", name);
	}
	snooze = sleep_ms > 0 && strcmp(sleep_func, name) == 0;
	pthread_mutex_unlock(&lock);
	if (snooze) {
		struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	return hit;
}

static bool is_privkey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ,
		       unsigned long count)
{
	CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
	CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof(cls)};

	if (object == CK_INVALID_HANDLE) {
		for (unsigned long i = 0; i < count; i++)
			if (templ[i].type == CKA_CLASS && templ[i].pValue &&
			    templ[i].ulValueLen == sizeof(cls))
				memcpy(&cls, templ[i].pValue, sizeof(cls));
	} else if (real->C_GetAttributeValue(session, object, &a, 1) != CKR_OK) {
		return false;
	}
	return cls == CKO_PRIVATE_KEY;
}

/* A template that names the rule's attribute fails. */
static bool attr_fault(const struct attr_rule *rule, CK_SESSION_HANDLE session,
		       CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count, CK_RV *rv)
{
	bool named = false;

	if (!rule->on)
		return false;
	for (unsigned long i = 0; i < count; i++)
		named |= templ[i].type == rule->type;
	if (!named || (rule->privkey_only && !is_privkey(session, object, templ, count)))
		return false;
	pthread_mutex_lock(&lock);
	*rv = fail_rv;
	snprintf(injected, sizeof(injected), "attribute 0x%lx", (unsigned long)rule->type);
	pthread_mutex_unlock(&lock);
	return true;
}

/* FAULTY_P11_HIDE_SLOT: the first length query is one slot short. */
static void hide_a_slot(unsigned long *count)
{
	pthread_mutex_lock(&lock);
	if (hide_slot && count && *count > 1) {
		(*count)--;
		hide_slot = false;
	}
	pthread_mutex_unlock(&lock);
}

#include "wrappers.h"

static void report(void)
{
	const char *path = getenv("FAULTY_P11_REPORT");
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "calls %lu\n", calls);
	if (injected[0])
		fprintf(f, "injected %s\n", injected);
	for (size_t i = 0; i < n_funcs; i++)
		fprintf(f, "func %s %lu\n", per_func[i].name, per_func[i].n);
	fclose(f);
}

static CK_FLAGS parse_flags(const char *s)
{
	CK_FLAGS f = 0;

	if (!s)
		return 0;
	if (strstr(s, "write-protected"))
		f |= CKF_WRITE_PROTECTED;
	if (strstr(s, "pin-locked"))
		f |= CKF_USER_PIN_LOCKED;
	if (strstr(s, "pin-final-try"))
		f |= CKF_USER_PIN_FINAL_TRY;
	if (strstr(s, "protected-path"))
		f |= CKF_PROTECTED_AUTHENTICATION_PATH;
	return f;
}

static void parse_attr(const char *v, struct attr_rule *rule)
{
	for (size_t i = 0; v && i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (strcmp(v, attrs[i].name) == 0) {
			rule->type = attrs[i].type;
			rule->on = true;
		}
	}
	if (v && strncmp(v, "0x", 2) == 0) {
		rule->type = strtoul(v, NULL, 16);
		rule->on = true;
	}
}

static void configure(void)
{
	const char *v;

	v = getenv("FAULTY_P11_FAIL_AT");
	fail_at = v ? strtoul(v, NULL, 10) : 0;
	fail_func = getenv("FAULTY_P11_FAIL_FUNC");
	v = getenv("FAULTY_P11_RV");
	for (size_t i = 0; v && i < sizeof(rvs) / sizeof(rvs[0]); i++)
		if (strcmp(v, rvs[i].name) == 0)
			fail_rv = rvs[i].rv;
	if (v && strncmp(v, "0x", 2) == 0)
		fail_rv = strtoul(v, NULL, 16);
	extra_token_flags = parse_flags(getenv("FAULTY_P11_TOKEN_FLAGS"));
	parse_attr(getenv("FAULTY_P11_FAIL_ATTR"), &read_attr);
	v = getenv("FAULTY_P11_FAIL_ATTR_CLASS");
	read_attr.privkey_only = v && strcmp(v, "private-key") == 0;
	parse_attr(getenv("FAULTY_P11_CREATE_FAIL_ATTR"), &create_attr);
	v = getenv("FAULTY_P11_SLEEP");
	if (v && strchr(v, ':')) {
		snprintf(sleep_func, sizeof(sleep_func), "%.*s", (int)(strchr(v, ':') - v), v);
		sleep_ms = strtol(strchr(v, ':') + 1, NULL, 10);
	}
	v = getenv("FAULTY_P11_HIDE_SLOT");
	hide_slot = v && strcmp(v, "1") == 0;
	atexit(report);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	const char *path = getenv("FAULTY_P11_MODULE");
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	void *dl;
	CK_RV rv;

	if (!list)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&lock);
	if (!real) {
		dl = dlopen(path ? path : DEFAULT_MODULE, RTLD_NOW | RTLD_LOCAL);
		get = dl ? (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(dl, "C_GetFunctionList")
			 : NULL;
		if (!get || (rv = get(&real)) != CKR_OK) {
			pthread_mutex_unlock(&lock);
			return CKR_GENERAL_ERROR;
		}
		configure();
	}
	pthread_mutex_unlock(&lock);
	*list = &wrapped;
	return CKR_OK;
}
