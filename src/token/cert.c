/* cert.c - certificate facts for the CLI and the personal/system check. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "token/token.h"
#include "cli/cli.h"

const char *vz_kind_name(vz_kind k)
{
	switch (k) {
	case VZ_KIND_SYSTEM:
		return "system";
	case VZ_KIND_PERSONAL:
		return "personal";
	default:
		return "unknown";
	}
}

void vz_name_string(const X509_NAME *n, char *buf, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len;

	buf[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_read(b, buf, (int)size - 1);
		buf[len > 0 ? len : 0] = '\0';
	}
	BIO_free(b);
}

static void name_entry(const X509_NAME *n, int nid, char *buf, size_t size)
{
	int i = X509_NAME_get_index_by_NID(n, nid, -1);
	unsigned char *utf8 = NULL;
	int len;

	buf[0] = '\0';
	if (i < 0)
		return;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (len < 0)
		return;
	snprintf(buf, size, "%.*s", len, (const char *)utf8);
	OPENSSL_free(utf8);
}

void vz_name_cn(const X509_NAME *n, char *buf, size_t size)
{
	name_entry(n, NID_commonName, buf, size);
}

/* Words that name an organisation, a role or a machine, never a person. */
static const char *const org_words[] = {
	"praktijk", "fysio",	 "therap",    "zorg",	    "apothe",	   "tandarts", "huisarts",
	"groep",    "centrum",	 "kliniek",   "ziekenhuis", "b.v",	   "bv",       "v.o.f",
	"vof",	    "stichting", "maatschap", "systeem",    "system",	   "certific", "server",
	"ggz",	    "psycho",	 "logopedie", "instelling", "organisatie", "vecozo",   "test",
	"demo",	    "holding",	 "coop",      "verloskund", "dienst",
};

/* Dutch surname prefixes (tussenvoegsels). */
static const char *const name_prefixes[] = {
	"van", "de", "der", "den", "ter", "ten", "te",	"het", "'t",
	"la",  "le", "du",  "da",  "op",  "in",	 "von", "el",  "al",
};

static bool is_initials(const char *w)
{
	size_t n = strlen(w);

	if (n < 2 || w[n - 1] != '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		bool letter = isupper((unsigned char)w[i]);

		if (i % 2 == 0 ? !letter : w[i] != '.')
			return false;
	}
	return true;
}

static bool in_list(const char *w, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w, list[i]) == 0)
			return true;
	return false;
}

/* A capitalised word of letters, hyphens and apostrophes (UTF-8 allowed). */
static bool is_name_word(const char *w)
{
	if (!isupper((unsigned char)w[0]))
		return false;
	for (const char *p = w; *p; p++)
		if (!isalpha((unsigned char)*p) && *p != '-' && *p != '\'' &&
		    !((unsigned char)*p & 0x80))
			return false;
	return true;
}

/* "J. de Vries", "A.B. Jansen", "Jan van der Berg": initials, or name words
 * joined by a surname prefix. No digits, no organisation words. */
static bool cn_reads_as_person(const char *cn)
{
	char copy[256], lower[256];
	char *save = NULL;
	size_t words = 0, names = 0;
	bool initials = false, prefix = false;

	snprintf(copy, sizeof(copy), "%s", cn);
	for (size_t i = 0; i < sizeof(lower); i++) {
		lower[i] = (char)tolower((unsigned char)copy[i]);
		if (!copy[i])
			break;
		if (isdigit((unsigned char)copy[i]) || copy[i] == '@')
			return false;
	}
	for (size_t i = 0; i < sizeof(org_words) / sizeof(org_words[0]); i++)
		if (strstr(lower, org_words[i]))
			return false;
	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char lw[64];

		words++;
		snprintf(lw, sizeof(lw), "%s", w);
		for (char *p = lw; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (is_initials(w))
			initials = true;
		else if (in_list(lw, name_prefixes,
				 sizeof(name_prefixes) / sizeof(name_prefixes[0])))
			prefix = true;
		else if (is_name_word(w))
			names++;
		else
			return false;
	}
	if (words < 2 || words > 6 || names == 0)
		return false;
	return initials || prefix || names >= 3;
}

vz_kind vz_cert_classify(const X509 *c, char *reason, size_t reason_size)
{
	static const int person_nids[] = {NID_givenName, NID_surname, NID_initials, NID_pseudonym};
	const X509_NAME *n = X509_get_subject_name(c);
	char cn[256], org[256], tmp[8];

	if (!reason) {
		reason = tmp;
		reason_size = sizeof(tmp);
	}
	reason[0] = '\0';
	for (size_t i = 0; i < sizeof(person_nids) / sizeof(person_nids[0]); i++) {
		if (X509_NAME_get_index_by_NID(n, person_nids[i], -1) >= 0) {
			snprintf(reason, reason_size, _("the subject has a %s attribute"),
				 OBJ_nid2ln(person_nids[i]));
			return VZ_KIND_PERSONAL;
		}
	}
	vz_name_cn(n, cn, sizeof(cn));
	name_entry(n, NID_organizationName, org, sizeof(org));
	if (cn[0] && cn_reads_as_person(cn)) {
		snprintf(reason, reason_size, _("the common name '%s' reads as a person's name"), cn);
		return VZ_KIND_PERSONAL;
	}
	if (cn[0] || org[0])
		return VZ_KIND_SYSTEM;
	snprintf(reason, reason_size, _("the subject has neither a common name nor an organisation"));
	return VZ_KIND_UNKNOWN;
}

static void iso_time(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	buf[0] = '\0';
	if (ASN1_TIME_to_tm(t, &tm))
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

vz_rv vz_cert_info_get(const X509 *c, vz_cert_info *out, vz_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_PKEY *pk = X509_get0_pubkey(c);
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int days = 0, secs = 0;

	memset(out, 0, sizeof(*out));
	vz_name_string(X509_get_subject_name(c), out->subject, sizeof(out->subject));
	vz_name_string(X509_get_issuer_name(c), out->issuer, sizeof(out->issuer));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(out->serial, sizeof(out->serial), "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	iso_time(X509_get0_notBefore(c), out->not_before, sizeof(out->not_before));
	iso_time(X509_get0_notAfter(c), out->not_after, sizeof(out->not_after));
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(c)))
		out->days_left = days - (secs < 0); /* floor: days and secs share a sign */
	out->expired = X509_cmp_current_time(X509_get0_notAfter(c)) < 0;
	out->not_yet_valid = X509_cmp_current_time(X509_get0_notBefore(c)) > 0;
	if (!X509_digest(c, EVP_sha256(), md, &mdlen)) {
		vz_err_set(err, "cannot compute the certificate's fingerprint");
		vz_err_openssl(err);
		return VZ_FAIL;
	}
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(out->fingerprint + i * 3, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
	if (pk) {
		snprintf(out->key_type, sizeof(out->key_type), "%s",
			 EVP_PKEY_is_a(pk, "RSA")  ? "rsa"
			 : EVP_PKEY_is_a(pk, "EC") ? "ec"
						   : "?");
		out->key_bits = EVP_PKEY_get_bits(pk);
	}
	out->kind = vz_cert_classify(c, out->kind_reason, sizeof(out->kind_reason));
	return VZ_OK;
}

vz_rv vz_cert_key_id(const X509 *c, unsigned char id[20], vz_err *err)
{
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(c);
	unsigned int len = 0;

	if (!bits || !EVP_Digest(bits->data, (size_t)bits->length, id, &len, EVP_sha1(), NULL) ||
	    len != 20) {
		vz_err_set(err, "cannot compute the key identifier of the certificate");
		vz_err_openssl(err);
		return VZ_FAIL;
	}
	return VZ_OK;
}

X509 *vz_cert_for_key(STACK_OF(X509) *certs, EVP_PKEY *key)
{
	for (int i = 0; key && i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i);
		EVP_PKEY *pub = X509_get0_pubkey(c);

		if (pub && EVP_PKEY_eq(pub, key) == 1)
			return c;
	}
	return NULL;
}

static bool self_issued(X509 *c)
{
	return X509_check_issued(c, c) == X509_V_OK;
}

STACK_OF(X509) *vz_cert_chain(const X509 *leaf, STACK_OF(X509) *pool, size_t *unrelated)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509 *cur = (X509 *)leaf;

	if (!chain)
		return NULL;
	for (int depth = 0; depth < 10 && !self_issued(cur); depth++) {
		X509 *next = NULL;

		for (int i = 0; i < sk_X509_num(pool) && !next; i++) {
			X509 *cand = sk_X509_value(pool, i);

			if (cand != cur && X509_cmp(cand, leaf) != 0 &&
			    X509_check_issued(cand, cur) == X509_V_OK)
				next = cand;
		}
		if (!next || !sk_X509_push(chain, next))
			break;
		cur = next;
	}
	if (unrelated) {
		*unrelated = 0;
		for (int i = 0; i < sk_X509_num(pool); i++) {
			X509 *c = sk_X509_value(pool, i);
			bool used = X509_cmp(c, leaf) == 0;

			for (int j = 0; j < sk_X509_num(chain) && !used; j++)
				used = X509_cmp(c, sk_X509_value(chain, j)) == 0;
			if (!used)
				(*unrelated)++;
		}
	}
	return chain;
}
