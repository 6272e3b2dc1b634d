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
 *   FAULTY_P11_REPORT=PATH  at exit, write "calls N" and "injected F" lines
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

static bool fault(const char *name, CK_RV *rv)
{
	bool hit;

	pthread_mutex_lock(&lock);
	calls++;
	hit = (fail_at && calls == fail_at) || (fail_func && strcmp(fail_func, name) == 0);
	if (hit) {
		*rv = fail_rv;
		snprintf(injected, sizeof(injected), "%s", name);
	}
	pthread_mutex_unlock(&lock);
	return hit;
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
