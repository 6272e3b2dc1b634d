/* uri.c - RFC 7512 URIs for tokens and objects, through p11-kit. */
#include <stdlib.h>
#include <string.h>

#include <p11-kit/uri.h>

#include "tok-int.h"

/* From the first NUL on, a field is padding: some tokens (tpm2-pkcs11) pad
 * with NULs where PKCS#11 says blanks, and p11-kit strips only blanks. */
static void blank_pad(unsigned char *f, size_t len)
{
	unsigned char *nul = memchr(f, '\0', len);

	if (nul)
		memset(nul, ' ', len - (size_t)(nul - f));
}

void tok_token_info_clean(CK_TOKEN_INFO *ck)
{
	blank_pad(ck->label, sizeof(ck->label));
	blank_pad(ck->manufacturerID, sizeof(ck->manufacturerID));
	blank_pad(ck->model, sizeof(ck->model));
	blank_pad(ck->serialNumber, sizeof(ck->serialNumber));
}

void tok_module_info_clean(CK_INFO *mi)
{
	blank_pad(mi->manufacturerID, sizeof(mi->manufacturerID));
	blank_pad(mi->libraryDescription, sizeof(mi->libraryDescription));
}

char *tok_uri(const tok_token *t, tok_class cls, const char *label, tok_bytes id)
{
	P11KitUri *uri = p11_kit_uri_new();
	CK_OBJECT_CLASS klass;
	char *s = NULL;
	int type = P11_KIT_URI_FOR_TOKEN;

	if (!uri)
		return NULL;
	memcpy(p11_kit_uri_get_token_info(uri), &t->ck, sizeof(t->ck));
	tok_token_info_clean(p11_kit_uri_get_token_info(uri));
	if (cls) {
		CK_ATTRIBUTE a;

		klass = cls == TOK_CERT	     ? CKO_CERTIFICATE
			: cls == TOK_PRIVKEY ? CKO_PRIVATE_KEY
					     : CKO_PUBLIC_KEY;
		a = (CK_ATTRIBUTE){CKA_CLASS, &klass, sizeof(klass)};
		p11_kit_uri_set_attribute(uri, &a);
		if (label) {
			a = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
			p11_kit_uri_set_attribute(uri, &a);
		}
		if (id.p) {
			a = (CK_ATTRIBUTE){CKA_ID, (void *)id.p, id.len};
			p11_kit_uri_set_attribute(uri, &a);
		}
		type = P11_KIT_URI_FOR_OBJECT_ON_TOKEN;
	}
	if (p11_kit_uri_format(uri, type, &s) != P11_KIT_URI_OK)
		s = NULL;
	p11_kit_uri_free(uri);
	return s;
}
