/* faulty.c - a PKCS#11 module for tests that forwards every call to a real
 * module (SoftHSM2 by default) and fails on purpose.
 *
 * Environment:
 *   FAULTY_P11_MODULE       the real module (default: SoftHSM2)
 *   FAULTY_P11_FAIL_AT=N    fail the Nth call (counting every call)
 *   FAULTY_P11_FAIL_FUNC=F  fail every call of function F (e.g. C_Login)
 *   FAULTY_P11_FAIL_NTH=N   with FAIL_FUNC: fail only the Nth call of F
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
 *                           FAULTY_P11_RV=CKR_ATTRIBUTE_TYPE_INVALID; NSS
 *                           softoken's answer: CKR_GENERAL_ERROR); names as
 *                           for FAULTY_P11_FAIL_ATTR, CKA_CERTIFICATE_CATEGORY
 *                           too
 *   FAULTY_P11_SET_FAIL_ATTR=A[,A...]
 *                           fail every C_SetAttributeValue whose template
 *                           holds one of these attributes with FAULTY_P11_RV
 *                           (a token that will not change them:
 *                           CKR_ATTRIBUTE_READ_ONLY); names as for
 *                           FAULTY_P11_FAIL_ATTR, CKA_UNWRAP, CKA_DERIVE,
 *                           CKA_LABEL, CKA_ID and CKA_ISSUER too
 *   FAULTY_P11_SLEEP=F:MS   sleep MS milliseconds before each call of F
 *   FAULTY_P11_HIDE_SLOT=1  the first C_GetSlotList length query reports one
 *                           slot fewer than there are (a slot appearing
 *                           between the two calls)
 *   FAULTY_P11_STRICT=private
 *                           act like an HSM in FIPS mode: C_CreateObject of a
 *                           CKO_PRIVATE_KEY whose template carries key
 *                           material (CKA_VALUE, CKA_PRIVATE_EXPONENT,
 *                           CKA_PRIME_1/2, CKA_EXPONENT_1/2, CKA_COEFFICIENT)
 *                           fails with FAULTY_P11_STRICT_RV; C_UnwrapKey,
 *                           C_GenerateKey and C_GenerateKeyPair still work
 *   FAULTY_P11_STRICT=secret
 *                           as private, and C_CreateObject of a
 *                           CKO_SECRET_KEY with CKA_VALUE fails the same way
 *   FAULTY_P11_STRICT_RV=CKR_...
 *                           what a strict refusal returns (default
 *                           CKR_TEMPLATE_INCONSISTENT; e.g.
 *                           CKR_ATTRIBUTE_VALUE_INVALID,
 *                           CKR_FUNCTION_NOT_SUPPORTED, CKR_ACTION_PROHIBITED)
 *   FAULTY_P11_HIDE_PSS=1   a token without RSA-PSS: C_GetMechanismList
 *                           leaves out CKM_RSA_PKCS_PSS and
 *                           CKM_SHA{1,224,256,384,512}_RSA_PKCS_PSS;
 *                           C_GetMechanismInfo, C_SignInit and C_VerifyInit
 *                           with them return CKR_MECHANISM_INVALID
 *   FAULTY_P11_KWP=1        a token that offers CKM_AES_KEY_WRAP_KWP (0x210B,
 *                           RFC 5649): listed next to CKM_AES_KEY_WRAP_PAD,
 *                           with its mechanism info; C_UnwrapKey and
 *                           C_WrapKey with it are done by the real module's
 *                           CKM_AES_KEY_WRAP_PAD, which is RFC 5649 in
 *                           SoftHSM 2.6
 *   FAULTY_P11_WRAP_PAD=pkcs11
 *                           a token whose CKM_AES_KEY_WRAP_PAD (0x210A) is
 *                           PKCS#11's: PKCS#7 padding, then RFC 3394.
 *                           C_UnwrapKey with it unwraps with the real
 *                           module's CKM_AES_KEY_WRAP (RFC 3394) into a
 *                           session secret, checks and strips the padding
 *                           (CKR_WRAPPED_KEY_INVALID when it is wrong), and
 *                           has the real module unwrap what is left (wrapped
 *                           again with a session key of the shim's own in
 *                           SoftHSM's RFC 5649), with the caller's template
 *   FAULTY_P11_BAD_PKCS1=1  a token that signs RSA PKCS#1 v1.5 wrongly (as
 *                           openCryptoki 3.8 does under pkcs11-provider 1.0):
 *                           signatures with CKM_RSA_PKCS and
 *                           CKM_SHA*_RSA_PKCS come out with their last byte
 *                           changed
 *   FAULTY_P11_REFUSE_PSS=1 a token that lists RSA-PSS but does not sign with
 *                           it (p11-kit 0.24 remoting): C_SignInit with
 *                           CKM_RSA_PKCS_PSS or CKM_SHA*_RSA_PKCS_PSS returns
 *                           CKR_MECHANISM_INVALID
 *   FAULTY_P11_PRIVATE_CERTS=1
 *                           a token that keeps certificates private:
 *                           C_FindObjects in a session that is not logged in
 *                           (C_GetSessionInfo says a public session) never
 *                           returns a CKO_CERTIFICATE object
 *   FAULTY_P11_OUTAGE=K:SECONDS
 *                           the token goes away right after the Kth
 *                           signature (a C_Sign or C_SignFinal that returned
 *                           CKR_OK with a signature buffer; length queries do
 *                           not count) and comes back SECONDS seconds later.
 *                           At that moment the token logs out and every open
 *                           session becomes dead. During the outage:
 *                           C_Initialize, C_Finalize, C_GetInfo,
 *                           C_GetSlotList, C_GetSlotInfo, C_CloseAllSessions
 *                           and C_WaitForSlotEvent work as usual (the slot
 *                           stays listed, as a network HSM's configured slot
 *                           does); C_GetTokenInfo, C_OpenSession,
 *                           C_GetMechanismList, C_GetMechanismInfo,
 *                           C_InitToken return CKR_TOKEN_NOT_PRESENT; every
 *                           call on a session returns CKR_DEVICE_REMOVED.
 *                           After the outage everything works again
 *                           (C_OpenSession, C_Login: the token is logged
 *                           out) except calls on dead sessions, which return
 *                           CKR_SESSION_HANDLE_INVALID (C_CloseSession of a
 *                           dead session frees it and returns that too). It
 *                           happens once per process; C_Finalize and
 *                           C_CloseAllSessions forget dead sessions.
 *   FAULTY_P11_TAKE_ARGS=1  a module with initialization arguments of its
 *                           own: the string C_Initialize gets as pReserved
 *                           is taken (the report says "init-args STRING")
 *                           and the real module initialized without it
 *   FAULTY_P11_REPORT=PATH  at exit, write "calls N", "injected F", one
 *                           "func F N" line per function called, and
 *                           "strict-refused N", "outage-refused N" when
 *                           those modes refused calls, "unwrap-mech 0xM N"
 *                           per mechanism C_UnwrapKey was called with
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
static unsigned long calls, fail_at, fail_nth, func_calls;
static const char *fail_func;
static CK_RV fail_rv = CKR_DEVICE_ERROR;
static CK_FLAGS extra_token_flags;
static char injected[64];
struct attr_rule {
	CK_ATTRIBUTE_TYPE types[8];
	size_t n; /* 0: the rule is off */
	bool privkey_only;
};
static struct attr_rule read_attr, create_attr, set_attr;
static char sleep_func[64];
static long sleep_ms;
static bool hide_slot;
enum strict_mode {
	STRICT_OFF,
	STRICT_PRIVATE,
	STRICT_SECRET
};
static enum strict_mode strict;
static CK_RV strict_rv = CKR_TEMPLATE_INCONSISTENT;
static unsigned long strict_refused;
static bool hide_pss, private_certs, take_args, kwp, wrap_pad_pkcs11, bad_pkcs1, refuse_pss;

/* FAULTY_P11_BAD_PKCS1: sessions whose signature under way is to come out
 * wrong. */
static CK_SESSION_HANDLE spoiled[64];
static size_t n_spoiled;

#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x210BUL
#endif

/* C_UnwrapKey calls per mechanism, for the report. */
static struct {
	CK_MECHANISM_TYPE m;
	unsigned long n;
} unwraps[16];
static size_t n_unwraps;
static char init_args_seen[256];

/* FAULTY_P11_OUTAGE: when it starts (after the Kth signature) and ends. */
static struct {
	unsigned long after_sigs, sigs, refused;
	long seconds;
	bool started;
	struct timespec until;
} outage;

/* Sessions this process opened; dead ones were open when the token went. */
static struct {
	CK_SESSION_HANDLE h;
	bool dead;
} sessions[256];
static size_t n_sessions;

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
	{"CKR_ATTRIBUTE_READ_ONLY", CKR_ATTRIBUTE_READ_ONLY},
	{"CKR_ATTRIBUTE_SENSITIVE", CKR_ATTRIBUTE_SENSITIVE},
	{"CKR_TEMPLATE_INCONSISTENT", CKR_TEMPLATE_INCONSISTENT},
	{"CKR_ATTRIBUTE_VALUE_INVALID", CKR_ATTRIBUTE_VALUE_INVALID},
	{"CKR_FUNCTION_NOT_SUPPORTED", CKR_FUNCTION_NOT_SUPPORTED},
	{"CKR_ACTION_PROHIBITED", CKR_ACTION_PROHIBITED},
	{"CKR_MECHANISM_INVALID", CKR_MECHANISM_INVALID},
	{"CKR_KEY_FUNCTION_NOT_PERMITTED", CKR_KEY_FUNCTION_NOT_PERMITTED},
	{"CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED},
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
	{"CKA_CERTIFICATE_CATEGORY", CKA_CERTIFICATE_CATEGORY},
	{"CKA_UNWRAP", CKA_UNWRAP},
	{"CKA_DERIVE", CKA_DERIVE},
	{"CKA_LABEL", CKA_LABEL},
	{"CKA_ID", CKA_ID},
	{"CKA_ISSUER", CKA_ISSUER},
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
	hit = fail_at && calls == fail_at;
	if (fail_func && strcmp(fail_func, name) == 0)
		hit |= !fail_nth || ++func_calls == fail_nth;
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
	CK_ATTRIBUTE_TYPE named = 0;
	bool hit = false;

	for (unsigned long i = 0; i < count && !hit; i++) {
		for (size_t k = 0; k < rule->n && !hit; k++)
			hit = templ[i].type == rule->types[k];
		named = templ[i].type;
	}
	if (!hit || (rule->privkey_only && !is_privkey(session, object, templ, count)))
		return false;
	pthread_mutex_lock(&lock);
	*rv = fail_rv;
	snprintf(injected, sizeof(injected), "attribute 0x%lx", (unsigned long)named);
	pthread_mutex_unlock(&lock);
	return true;
}

static CK_OBJECT_CLASS template_class(const CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;

	for (unsigned long i = 0; i < count; i++)
		if (templ[i].type == CKA_CLASS && templ[i].pValue &&
		    templ[i].ulValueLen == sizeof(cls))
			memcpy(&cls, templ[i].pValue, sizeof(cls));
	return cls;
}

static bool template_has(const CK_ATTRIBUTE *templ, unsigned long count, CK_ATTRIBUTE_TYPE type)
{
	for (unsigned long i = 0; i < count; i++)
		if (templ[i].type == type)
			return true;
	return false;
}

/* FAULTY_P11_STRICT: key material in the clear is refused, as FIPS-mode
 * HSMs do; only C_CreateObject is checked. */
static bool strict_refuses(const CK_ATTRIBUTE *templ, unsigned long count, CK_RV *rv)
{
	static const CK_ATTRIBUTE_TYPE material[] = {
		CKA_VALUE,	CKA_PRIVATE_EXPONENT, CKA_PRIME_1,     CKA_PRIME_2,
		CKA_EXPONENT_1, CKA_EXPONENT_2,	      CKA_COEFFICIENT,
	};
	CK_OBJECT_CLASS cls = template_class(templ, count);
	bool refuse = false;

	if (strict == STRICT_OFF)
		return false;
	if (cls == CKO_PRIVATE_KEY)
		for (size_t i = 0; i < sizeof(material) / sizeof(material[0]); i++)
			refuse |= template_has(templ, count, material[i]);
	if (strict == STRICT_SECRET && cls == CKO_SECRET_KEY)
		refuse |= template_has(templ, count, CKA_VALUE);
	if (!refuse)
		return false;
	pthread_mutex_lock(&lock);
	strict_refused++;
	pthread_mutex_unlock(&lock);
	*rv = strict_rv;
	return true;
}

static bool is_pss(CK_MECHANISM_TYPE type)
{
	return type == CKM_RSA_PKCS_PSS || type == CKM_SHA1_RSA_PKCS_PSS ||
	       type == CKM_SHA224_RSA_PKCS_PSS || type == CKM_SHA256_RSA_PKCS_PSS ||
	       type == CKM_SHA384_RSA_PKCS_PSS || type == CKM_SHA512_RSA_PKCS_PSS;
}

/* FAULTY_P11_HIDE_PSS: the mechanisms a token without RSA-PSS lacks. */
static bool hidden_mechanism(CK_MECHANISM_TYPE type)
{
	return hide_pss && is_pss(type);
}

/* FAULTY_P11_HIDE_PSS and FAULTY_P11_REFUSE_PSS: C_SignInit and
 * C_VerifyInit refuse RSA-PSS (hidden: C_VerifyInit too). */
static bool refused_sign_mechanism(const CK_MECHANISM *m)
{
	return m && (hidden_mechanism(m->mechanism) || (refuse_pss && is_pss(m->mechanism)));
}

/* FAULTY_P11_BAD_PKCS1: a signature started on session s with m is to be
 * spoiled (or, with another mechanism, not). */
static void sign_started(CK_SESSION_HANDLE s, const CK_MECHANISM *m)
{
	static const CK_MECHANISM_TYPE pkcs1[] = {
		CKM_RSA_PKCS,	     CKM_SHA1_RSA_PKCS,	  CKM_SHA224_RSA_PKCS,
		CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS,
	};
	bool spoil = false;

	for (size_t i = 0; bad_pkcs1 && m && i < sizeof(pkcs1) / sizeof(pkcs1[0]); i++)
		spoil |= m->mechanism == pkcs1[i];
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_spoiled; i++)
		if (spoiled[i] == s)
			spoiled[i--] = spoiled[--n_spoiled];
	if (spoil && n_spoiled < sizeof(spoiled) / sizeof(spoiled[0]))
		spoiled[n_spoiled++] = s;
	pthread_mutex_unlock(&lock);
}

/* A signature made on session s: spoiled when sign_started() said so. */
static void signature_out(CK_SESSION_HANDLE s, unsigned char *sig, const unsigned long *len)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; sig && len && *len > 0 && i < n_spoiled; i++) {
		if (spoiled[i] == s) {
			sig[*len - 1] ^= 0x01;
			spoiled[i] = spoiled[--n_spoiled];
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

/* The real module's list without the mechanisms FAULTY_P11_HIDE_PSS hides,
 * and with CKM_AES_KEY_WRAP_KWP where FAULTY_P11_KWP offers it. */
static CK_RV adjusted_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE *list, unsigned long *count)
{
	CK_MECHANISM_TYPE *all;
	unsigned long n = 0, keep = 0;
	bool pad = false;
	CK_RV rv;

	if (!count)
		return CKR_ARGUMENTS_BAD;
	rv = real->C_GetMechanismList(slot, NULL, &n);
	if (rv != CKR_OK)
		return rv;
	all = calloc(n + 1, sizeof(*all));
	if (!all)
		return CKR_HOST_MEMORY;
	rv = real->C_GetMechanismList(slot, all, &n);
	for (unsigned long i = 0; rv == CKR_OK && i < n; i++) {
		pad |= all[i] == CKM_AES_KEY_WRAP_PAD;
		if (!hidden_mechanism(all[i]))
			all[keep++] = all[i];
	}
	if (rv == CKR_OK && kwp && pad)
		all[keep++] = CKM_AES_KEY_WRAP_KWP;
	if (rv == CKR_OK && list && *count < keep)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (rv == CKR_OK && list)
		memcpy(list, all, keep * sizeof(*all));
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
		*count = keep;
	free(all);
	return rv;
}

static void count_unwrap(CK_MECHANISM_TYPE m)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_unwraps; i++) {
		if (unwraps[i].m == m) {
			unwraps[i].n++;
			pthread_mutex_unlock(&lock);
			return;
		}
	}
	if (n_unwraps < sizeof(unwraps) / sizeof(unwraps[0])) {
		unwraps[n_unwraps].m = m;
		unwraps[n_unwraps++].n = 1;
	}
	pthread_mutex_unlock(&lock);
}

/* Session objects made for one FAULTY_P11_WRAP_PAD=pkcs11 unwrap. */
struct pad_unwrap {
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE padded, plain, own;
	unsigned char *value, *wrapped;
};

static void pad_unwrap_end(struct pad_unwrap *p)
{
	CK_OBJECT_HANDLE *hs[] = {&p->padded, &p->plain, &p->own};

	for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
		if (*hs[i] != CK_INVALID_HANDLE)
			real->C_DestroyObject(p->s, *hs[i]);
	free(p->value);
	free(p->wrapped);
}

/* The plaintext of an RFC 3394 unwrap, into p->value (its length in *len),
 * through a session secret the shim may read. */
static CK_RV unwrap_3394(struct pad_unwrap *p, CK_OBJECT_HANDLE kek, unsigned char *data,
			 unsigned long len, unsigned long *plain_len)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},	      {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &no, sizeof(no)},	      {CKA_SENSITIVE, &no, sizeof(no)},
		{CKA_EXTRACTABLE, &yes, sizeof(yes)},
	};
	CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_ATTRIBUTE v = {CKA_VALUE, NULL, 0};
	CK_RV rv;

	rv = real->C_UnwrapKey(p->s, &m, kek, data, len, t, sizeof(t) / sizeof(t[0]), &p->padded);
	if (rv != CKR_OK) {
		p->padded = CK_INVALID_HANDLE;
		return rv;
	}
	rv = real->C_GetAttributeValue(p->s, p->padded, &v, 1);
	if (rv == CKR_OK && (v.pValue = p->value = malloc(v.ulValueLen + 1)) == NULL)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = real->C_GetAttributeValue(p->s, p->padded, &v, 1);
	*plain_len = v.ulValueLen;
	return rv;
}

/* FAULTY_P11_WRAP_PAD=pkcs11: CKM_AES_KEY_WRAP_PAD read as PKCS#11 defines
 * it, on a real module that reads it as RFC 5649 (see the top comment). */
static CK_RV unwrap_pad_pkcs11(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE kek, unsigned char *data,
			       unsigned long len, CK_ATTRIBUTE *templ, unsigned long count,
			       CK_OBJECT_HANDLE *key)
{
	struct pad_unwrap p = {
		session, CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE, NULL, NULL};
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE generic = CKK_GENERIC_SECRET, aes = CKK_AES;
	CK_ULONG aes_len = 32, plain_len = 0, wlen = 0;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, pad = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_ATTRIBUTE own[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &aes, sizeof(aes)},
		{CKA_TOKEN, &no, sizeof(no)},	{CKA_VALUE_LEN, &aes_len, sizeof(aes_len)},
		{CKA_WRAP, &yes, sizeof(yes)},	{CKA_UNWRAP, &yes, sizeof(yes)},
	};
	CK_RV rv = unwrap_3394(&p, kek, data, len, &plain_len);
	unsigned n = 0;

	/* PKCS#7: 1 to 8 bytes, each the count, to a multiple of 8 */
	if (rv == CKR_OK && plain_len > 8 && plain_len % 8 == 0)
		n = p.value[plain_len - 1];
	for (unsigned i = 1; n >= 1 && n <= 8 && i <= n; i++)
		if (p.value[plain_len - i] != n)
			n = 0;
	if (rv == CKR_OK && (n < 1 || n > 8))
		rv = CKR_WRAPPED_KEY_INVALID;
	if (rv == CKR_OK) {
		CK_ATTRIBUTE plain[] = {
			{CKA_CLASS, &cls, sizeof(cls)},
			{CKA_KEY_TYPE, &generic, sizeof(generic)},
			{CKA_TOKEN, &no, sizeof(no)},
			{CKA_SENSITIVE, &no, sizeof(no)},
			{CKA_EXTRACTABLE, &yes, sizeof(yes)},
			{CKA_VALUE, p.value, plain_len - n},
		};

		rv = real->C_CreateObject(session, plain, sizeof(plain) / sizeof(plain[0]),
					  &p.plain);
	}
	if (rv == CKR_OK)
		rv = real->C_GenerateKey(session, &gen, own, sizeof(own) / sizeof(own[0]), &p.own);
	if (rv == CKR_OK)
		rv = real->C_WrapKey(session, &pad, p.own, p.plain, NULL, &wlen);
	if (rv == CKR_OK && (p.wrapped = malloc(wlen)) == NULL)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = real->C_WrapKey(session, &pad, p.own, p.plain, p.wrapped, &wlen);
	if (rv == CKR_OK)
		rv = real->C_UnwrapKey(session, &pad, p.own, p.wrapped, wlen, templ, count, key);
	pad_unwrap_end(&p);
	return rv;
}

/* FAULTY_P11_PRIVATE_CERTS: a public session finds no certificates. Asks
 * the real module again when a whole batch was certificates, so that 0
 * still means "no more objects". */
static CK_RV find_objects_hiding_certs(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *object,
				       unsigned long max, unsigned long *count)
{
	CK_SESSION_INFO si;
	unsigned long got, keep;
	CK_RV rv;

	rv = real->C_GetSessionInfo(session, &si);
	if (rv != CKR_OK || !object || !count || si.state == CKS_RO_USER_FUNCTIONS ||
	    si.state == CKS_RW_USER_FUNCTIONS || si.state == CKS_RW_SO_FUNCTIONS)
		return real->C_FindObjects(session, object, max, count);
	do {
		rv = real->C_FindObjects(session, object, max, &got);
		if (rv != CKR_OK)
			return rv;
		keep = 0;
		for (unsigned long i = 0; i < got; i++) {
			CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
			CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof(cls)};

			if (real->C_GetAttributeValue(session, object[i], &a, 1) != CKR_OK ||
			    cls != CKO_CERTIFICATE)
				object[keep++] = object[i];
		}
	} while (keep == 0 && got > 0);
	*count = keep;
	return CKR_OK;
}

static void session_closed_locked(CK_SESSION_HANDLE h)
{
	for (size_t i = 0; i < n_sessions; i++) {
		if (sessions[i].h == h) {
			sessions[i] = sessions[--n_sessions];
			return;
		}
	}
}

static void session_opened(CK_SESSION_HANDLE h)
{
	pthread_mutex_lock(&lock);
	session_closed_locked(h); /* a handle the module reused */
	if (n_sessions < sizeof(sessions) / sizeof(sessions[0])) {
		sessions[n_sessions].h = h;
		sessions[n_sessions++].dead = false;
	}
	pthread_mutex_unlock(&lock);
}

static void session_closed(CK_SESSION_HANDLE h)
{
	pthread_mutex_lock(&lock);
	session_closed_locked(h);
	pthread_mutex_unlock(&lock);
}

static void forget_sessions(void)
{
	pthread_mutex_lock(&lock);
	n_sessions = 0;
	pthread_mutex_unlock(&lock);
}

static bool session_dead_locked(CK_SESSION_HANDLE h)
{
	for (size_t i = 0; i < n_sessions; i++)
		if (sessions[i].h == h)
			return sessions[i].dead;
	return false;
}

static bool outage_now_locked(void)
{
	struct timespec now;

	if (!outage.started)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec < outage.until.tv_sec ||
	       (now.tv_sec == outage.until.tv_sec && now.tv_nsec < outage.until.tv_nsec);
}

/* FAULTY_P11_OUTAGE: the Kth signature takes the token away; it logs out
 * and every open session dies. */
static void signature_made(void)
{
	CK_SESSION_HANDLE any = CK_INVALID_HANDLE;

	pthread_mutex_lock(&lock);
	if (outage.after_sigs == 0 || outage.started || ++outage.sigs < outage.after_sigs) {
		pthread_mutex_unlock(&lock);
		return;
	}
	outage.started = true;
	clock_gettime(CLOCK_MONOTONIC, &outage.until);
	outage.until.tv_sec += outage.seconds;
	for (size_t i = 0; i < n_sessions; i++) {
		sessions[i].dead = true;
		any = sessions[i].h;
	}
	pthread_mutex_unlock(&lock);
	if (any != CK_INVALID_HANDLE)
		real->C_Logout(any);
}

/* Calls that take no session: the host-side ones work during an outage,
 * the token-side ones find no token. */
static bool host_fault(const char *name, CK_RV *rv)
{
	static const char *const host_side[] = {
		"C_Initialize",	 "C_Finalize",	       "C_GetInfo",	     "C_GetSlotList",
		"C_GetSlotInfo", "C_CloseAllSessions", "C_WaitForSlotEvent",
	};
	bool out;

	if (fault(name, rv))
		return true;
	for (size_t i = 0; i < sizeof(host_side) / sizeof(host_side[0]); i++)
		if (strcmp(name, host_side[i]) == 0)
			return false;
	pthread_mutex_lock(&lock);
	out = outage_now_locked();
	if (out)
		outage.refused++;
	pthread_mutex_unlock(&lock);
	if (out)
		*rv = CKR_TOKEN_NOT_PRESENT;
	return out;
}

/* Calls on a session: refused during an outage, and for ever on a session
 * that was open when the token went (closing one frees it). */
static bool session_fault(const char *name, CK_SESSION_HANDLE session, CK_RV *rv)
{
	bool out, dead;

	if (fault(name, rv))
		return true;
	pthread_mutex_lock(&lock);
	out = outage_now_locked();
	dead = session_dead_locked(session);
	if (out || dead)
		outage.refused++;
	pthread_mutex_unlock(&lock);
	if (!out && !dead)
		return false;
	if (dead && strcmp(name, "C_CloseSession") == 0) {
		real->C_CloseSession(session);
		session_closed(session);
	}
	*rv = out ? CKR_DEVICE_REMOVED : CKR_SESSION_HANDLE_INVALID;
	return true;
}

/* FAULTY_P11_TAKE_ARGS: C_Initialize's arguments without pReserved, which
 * is recorded; the same arguments when the mode is off. */
static void *take_init_args(void *init_args, CK_C_INITIALIZE_ARGS *copy)
{
	const CK_C_INITIALIZE_ARGS *ia = init_args;

	if (!take_args || !ia || !ia->pReserved)
		return init_args;
	pthread_mutex_lock(&lock);
	snprintf(init_args_seen, sizeof(init_args_seen), "%s", (const char *)ia->pReserved);
	pthread_mutex_unlock(&lock);
	*copy = *ia;
	copy->pReserved = NULL;
	return copy;
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
	if (strict_refused)
		fprintf(f, "strict-refused %lu\n", strict_refused);
	if (outage.refused)
		fprintf(f, "outage-refused %lu\n", outage.refused);
	for (size_t i = 0; i < n_unwraps; i++)
		fprintf(f, "unwrap-mech 0x%lx %lu\n", (unsigned long)unwraps[i].m, unwraps[i].n);
	if (init_args_seen[0])
		fprintf(f, "init-args %s\n", init_args_seen);
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

/* A comma list of attribute names or 0x numbers. */
static void parse_attr(const char *v, struct attr_rule *rule)
{
	const size_t max = sizeof(rule->types) / sizeof(rule->types[0]);

	while (v && *v && rule->n < max) {
		size_t len = strcspn(v, ",");

		for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
			if (strlen(attrs[i].name) == len && strncmp(v, attrs[i].name, len) == 0)
				rule->types[rule->n++] = attrs[i].type;
		if (strncmp(v, "0x", 2) == 0)
			rule->types[rule->n++] = strtoul(v, NULL, 16);
		v += len + (v[len] == ',');
	}
}

static void parse_rv(const char *v, CK_RV *rv)
{
	for (size_t i = 0; v && i < sizeof(rvs) / sizeof(rvs[0]); i++)
		if (strcmp(v, rvs[i].name) == 0)
			*rv = rvs[i].rv;
	if (v && strncmp(v, "0x", 2) == 0)
		*rv = strtoul(v, NULL, 16);
}

static void configure_modes(void)
{
	const char *v;

	v = getenv("FAULTY_P11_STRICT");
	if (v && strcmp(v, "private") == 0)
		strict = STRICT_PRIVATE;
	if (v && strcmp(v, "secret") == 0)
		strict = STRICT_SECRET;
	parse_rv(getenv("FAULTY_P11_STRICT_RV"), &strict_rv);
	v = getenv("FAULTY_P11_HIDE_PSS");
	hide_pss = v && strcmp(v, "1") == 0;
	v = getenv("FAULTY_P11_PRIVATE_CERTS");
	private_certs = v && strcmp(v, "1") == 0;
	v = getenv("FAULTY_P11_TAKE_ARGS");
	take_args = v && strcmp(v, "1") == 0;
	v = getenv("FAULTY_P11_BAD_PKCS1");
	bad_pkcs1 = v && strcmp(v, "1") == 0;
	v = getenv("FAULTY_P11_REFUSE_PSS");
	refuse_pss = v && strcmp(v, "1") == 0;
	v = getenv("FAULTY_P11_KWP");
	kwp = v && strcmp(v, "1") == 0;
	v = getenv("FAULTY_P11_WRAP_PAD");
	wrap_pad_pkcs11 = v && strcmp(v, "pkcs11") == 0;
	v = getenv("FAULTY_P11_OUTAGE");
	if (v && strchr(v, ':')) {
		outage.after_sigs = strtoul(v, NULL, 10);
		outage.seconds = strtol(strchr(v, ':') + 1, NULL, 10);
	}
}

static void configure(void)
{
	const char *v;

	v = getenv("FAULTY_P11_FAIL_AT");
	fail_at = v ? strtoul(v, NULL, 10) : 0;
	fail_func = getenv("FAULTY_P11_FAIL_FUNC");
	v = getenv("FAULTY_P11_FAIL_NTH");
	fail_nth = v ? strtoul(v, NULL, 10) : 0;
	parse_rv(getenv("FAULTY_P11_RV"), &fail_rv);
	configure_modes();
	extra_token_flags = parse_flags(getenv("FAULTY_P11_TOKEN_FLAGS"));
	parse_attr(getenv("FAULTY_P11_FAIL_ATTR"), &read_attr);
	v = getenv("FAULTY_P11_FAIL_ATTR_CLASS");
	read_attr.privkey_only = v && strcmp(v, "private-key") == 0;
	parse_attr(getenv("FAULTY_P11_CREATE_FAIL_ATTR"), &create_attr);
	parse_attr(getenv("FAULTY_P11_SET_FAIL_ATTR"), &set_attr);
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
