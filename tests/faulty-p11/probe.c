/* probe.c - a tiny PKCS#11 client that proves faulty-p11's modes where
 * pkcs11-tool cannot (one process, many calls). Prints one line per step:
 * "STEP CKR_NAME".
 *
 *   faulty-probe MODULE outage K SECONDS   sign K times, then show what the
 *                                          token says during and after
 *   faulty-probe MODULE pss                mechanism info and sign init
 *
 * The user PIN comes from the environment variable VZT_PIN, never argv. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *f;

static const char *rv_name(CK_RV rv)
{
	static char hex[32];
	static const struct {
		CK_RV rv;
		const char *name;
	} names[] = {
		{CKR_OK, "CKR_OK"},
		{CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
		{CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
		{CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
		{CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
		{CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
		{CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
		{CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].rv == rv)
			return names[i].name;
	snprintf(hex, sizeof(hex), "0x%lx", (unsigned long)rv);
	return hex;
}

static CK_RV step(const char *what, CK_RV rv)
{
	printf("%s %s\n", what, rv_name(rv));
	return rv;
}

static CK_RV open_login(CK_SLOT_ID slot, CK_SESSION_HANDLE *s)
{
	const char *pin = getenv("VZT_PIN");
	CK_RV rv;

	rv = step("open", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, s));
	if (rv != CKR_OK || !pin)
		return rv;
	return step("login", f->C_Login(*s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin)));
}

static CK_OBJECT_HANDLE rsa_key(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_RSA;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, t, 2) == CKR_OK) {
		f->C_FindObjects(s, &k, 1, &n);
		f->C_FindObjectsFinal(s);
	}
	return n == 1 ? k : CK_INVALID_HANDLE;
}

static CK_RV sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k)
{
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
	unsigned char data[] = "probe", sig[1024];
	CK_ULONG len = sizeof(sig);
	CK_RV rv;

	rv = f->C_SignInit(s, &m, k);
	if (rv == CKR_OK)
		rv = f->C_Sign(s, data, sizeof(data), sig, &len);
	return rv;
}

static int outage(CK_SLOT_ID slot, unsigned long k, unsigned seconds)
{
	CK_SESSION_HANDLE s, s2;
	CK_OBJECT_HANDLE key;
	char what[32];

	if (open_login(slot, &s) != CKR_OK)
		return 1;
	key = rsa_key(s);
	if (key == CK_INVALID_HANDLE) {
		step("find-key", CKR_GENERAL_ERROR);
		return 1;
	}
	for (unsigned long i = 1; i <= k; i++) {
		snprintf(what, sizeof(what), "sign-%lu", i);
		step(what, sign(s, key));
	}
	step("during-sign", sign(s, key));
	step("during-open", f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2));
	sleep(seconds + 1);
	step("after-old-session-sign", sign(s, key));
	step("after-old-session-close", f->C_CloseSession(s));
	if (open_login(slot, &s2) != CKR_OK)
		return 1;
	step("after-new-session-sign", sign(s2, rsa_key(s2)));
	f->C_CloseSession(s2);
	return 0;
}

static int pss(CK_SLOT_ID slot)
{
	CK_RSA_PKCS_PSS_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, 32};
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p)};
	CK_MECHANISM_INFO info;
	CK_SESSION_HANDLE s;

	step("info-pss", f->C_GetMechanismInfo(slot, CKM_RSA_PKCS_PSS, &info));
	step("info-pkcs", f->C_GetMechanismInfo(slot, CKM_RSA_PKCS, &info));
	if (open_login(slot, &s) != CKR_OK)
		return 1;
	step("signinit-pss", f->C_SignInit(s, &m, rsa_key(s)));
	f->C_CloseSession(s);
	return 0;
}

int main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_SLOT_ID slots[16], slot;
	CK_ULONG n = 16;
	void *dl;
	int rc = 2;

	if (argc < 3)
		return 2;
	dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	get = dl ? (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(dl, "C_GetFunctionList") : NULL;
	if (!get || get(&f) != CKR_OK || f->C_Initialize(&args) != CKR_OK ||
	    f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n < 1)
		return 1;
	slot = slots[0]; /* SoftHSM lists initialised tokens first */
	if (strcmp(argv[2], "outage") == 0 && argc == 5)
		rc = outage(slot, strtoul(argv[3], NULL, 10), (unsigned)atoi(argv[4]));
	if (strcmp(argv[2], "pss") == 0)
		rc = pss(slot);
	f->C_Finalize(NULL);
	return rc;
}
