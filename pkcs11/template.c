/* template.c - templates that degrade attribute by attribute: a token that
 * does not know an attribute vzp11 would like to set (openCryptoki 3.8:
 * CKA_CERTIFICATE_CATEGORY, CKA_ALLOWED_MECHANISMS) gets the object
 * without it, and nothing else changes. What the token did not keep is
 * read back later (tok_obj.lacks), never assumed. */
#include <string.h>

#include "tok-int.h"

#define MAX_TEMPLATE 32
#define MAX_OPTIONAL 4

/* The answers with which a token says it does not know an attribute: the
 * standard one, and NSS softoken's CKR_GENERAL_ERROR. */
static bool unknown_attribute(CK_RV rv)
{
	return rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_GENERAL_ERROR;
}

static unsigned popcount(unsigned v)
{
	unsigned n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

CK_RV tok_try_degrading(CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ULONG n_opt, tok_try_fn try_once,
			void *ctx, unsigned *dropped)
{
	CK_ATTRIBUTE t[MAX_TEMPLATE];
	CK_ULONG base;
	CK_RV rv;

	*dropped = 0;
	rv = try_once(ctx, tmpl, n);
	if (rv == CKR_OK || !unknown_attribute(rv) || n_opt == 0 || n_opt > MAX_OPTIONAL ||
	    n > MAX_TEMPLATE || n_opt > n)
		return rv;
	base = n - n_opt;
	/* Fewest attributes left out first: one, then two, ... */
	for (unsigned size = 1; size <= n_opt; size++) {
		for (unsigned mask = 1; mask < (1u << n_opt); mask++) {
			CK_ULONG nt = base;

			if (popcount(mask) != size)
				continue;
			memcpy(t, tmpl, base * sizeof(*t));
			for (CK_ULONG i = 0; i < n_opt; i++)
				if (!(mask & (1u << i)))
					t[nt++] = tmpl[base + i];
			rv = try_once(ctx, t, nt);
			if (rv == CKR_OK) {
				*dropped = mask;
				return rv;
			}
			if (!unknown_attribute(rv))
				return rv; /* a real failure: never hidden behind another try */
		}
	}
	return rv;
}
