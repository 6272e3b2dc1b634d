/* mech.c - which signature mechanisms a token's slot offers. Many HSMs and
 * smartcards lack RSA-PSS, which TLS 1.3 needs for an RSA key; the TLS
 * layer reads this to fall back to TLS 1.2 with PKCS#1 v1.5. */
#include <stdlib.h>
#include <string.h>

#include "tok-int.h"

/* The slot's mechanism list; the count may grow between the length query
 * and the list (CKR_BUFFER_TOO_SMALL): ask again, a few times. */
static tok_rv mech_list(const struct tok_token *t, CK_MECHANISM_TYPE **out, CK_ULONG *n,
			tok_err *err)
{
	CK_MECHANISM_TYPE *list = NULL;
	CK_ULONG count = 0;
	CK_RV rv = CKR_BUFFER_TOO_SMALL;

	for (int tries = 0; tries < 5 && rv == CKR_BUFFER_TOO_SMALL; tries++) {
		CK_MECHANISM_TYPE *grown;

		rv = t->f->C_GetMechanismList(t->slot, NULL, &count);
		if (rv != CKR_OK)
			break;
		grown = realloc(list, (count + 1) * sizeof(*list));
		if (!grown) {
			free(list);
			tok_err_set(err, "out of memory");
			return TOK_ERR;
		}
		list = grown;
		rv = count ? t->f->C_GetMechanismList(t->slot, list, &count) : CKR_OK;
	}
	if (rv != CKR_OK) {
		free(list);
		return tok_err_ckr(err, "C_GetMechanismList", rv);
	}
	*out = list;
	*n = count;
	return TOK_OK;
}

/* Listed and able to sign: a token may list a mechanism for verifying only. */
static bool can_sign(const struct tok_token *t, CK_MECHANISM_TYPE m)
{
	CK_MECHANISM_INFO info;

	return t->f->C_GetMechanismInfo(t->slot, m, &info) == CKR_OK && (info.flags & CKF_SIGN);
}

tok_rv tok_token_mech_caps(const tok_token *t, tok_mech_caps *out, tok_err *err)
{
	static const CK_MECHANISM_TYPE pss[] = {
		CKM_RSA_PKCS_PSS,	 CKM_SHA1_RSA_PKCS_PSS,	  CKM_SHA224_RSA_PKCS_PSS,
		CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS,
	};
	size_t n_rsa, n_ec;
	const CK_MECHANISM_TYPE *rsa = tok_sign_mechs(CKK_RSA, &n_rsa);
	const CK_MECHANISM_TYPE *ec = tok_sign_mechs(CKK_EC, &n_ec);
	tok_mech_caps caps = {0};
	CK_MECHANISM_TYPE *list = NULL;
	CK_ULONG n = 0;
	tok_rv ret;

	ret = mech_list(t, &list, &n, err);
	if (ret != TOK_OK)
		return ret;
	for (CK_ULONG i = 0; i < n; i++) {
		bool is_pss = false, is_rsa = false, is_ec = false;

		for (size_t k = 0; k < ARRAY_SIZE(pss); k++)
			is_pss |= list[i] == pss[k];
		for (size_t k = 0; k < n_rsa; k++)
			is_rsa |= list[i] == rsa[k];
		for (size_t k = 0; k < n_ec; k++)
			is_ec |= list[i] == ec[k];
		/* C_GetMechanismInfo only where the answer would add something. */
		if ((!is_rsa || caps.rsa_sign) && (!is_pss || caps.rsa_pss) &&
		    (list[i] != CKM_RSA_PKCS || caps.rsa_pkcs) && (!is_ec || caps.ec_sign) &&
		    (list[i] != CKM_ECDSA || caps.ecdsa))
			continue;
		if (!can_sign(t, list[i]))
			continue;
		caps.rsa_pkcs |= list[i] == CKM_RSA_PKCS;
		caps.ecdsa |= list[i] == CKM_ECDSA;
		caps.rsa_pss |= is_pss;
		caps.rsa_sign |= is_rsa;
		caps.ec_sign |= is_ec;
	}
	free(list);
	*out = caps;
	return TOK_OK;
}
