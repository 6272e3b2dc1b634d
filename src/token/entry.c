/* entry.c - text and JSON views of token entries. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "token/token.h"
#include "cli/cli.h"

static char *obj_uri(const tok_token *t, tok_class cls, const tok_obj *o)
{
	tok_bytes id = {o->id, o->id_len};

	return tok_uri(t, cls, o->label, id);
}

static int key_bits(const vz_entry *e)
{
	return e->key->bits ? (int)e->key->bits : e->info.key_bits;
}

/* A token's answer as JSON: true, false, or null when it gave none. */
static json_t *flag_json(tok_flag f)
{
	return f == TOK_FLAG_UNKNOWN ? json_null() : json_boolean(f == TOK_FLAG_YES);
}

const char *vz_out_arrival_name(tok_arrival a)
{
	switch (a) {
	case TOK_ARRIVAL_CREATED:
		return "created";
	case TOK_ARRIVAL_UNWRAPPED:
		return "unwrapped";
	case TOK_ARRIVAL_GENERATED:
		return "generated";
	case TOK_ARRIVAL_UNKNOWN:
		break;
	}
	return NULL;
}

/* Sign only: every other use off and the mechanisms limited to signing. */
static tok_flag sign_only(const tok_obj *k)
{
	const tok_flag off[] = {k->can_decrypt, k->can_unwrap, k->can_derive, k->can_sign_recover};
	tok_flag r = k->sign_only_mechs;

	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		if (off[i] == TOK_FLAG_YES)
			return TOK_FLAG_NO;
		if (off[i] == TOK_FLAG_UNKNOWN && r == TOK_FLAG_YES)
			r = TOK_FLAG_UNKNOWN;
	}
	return r;
}

/* The attributes vzp11 writes that the token did not keep for this
 * certificate and its key, by their PKCS#11 names. */
static json_t *not_kept(const vz_entry *e)
{
	json_t *a = json_array();

	if (e->cert->lacks & TOK_LACKS_CATEGORY)
		json_array_append_new(a, json_string("CKA_CERTIFICATE_CATEGORY"));
	if (e->key->lacks & TOK_LACKS_ALLOWED_MECHS)
		json_array_append_new(a, json_string("CKA_ALLOWED_MECHANISMS"));
	return a;
}

json_t *vz_out_entry_json(const tok_token *t, const vz_entry *e)
{
	char *id = vz_hex(e->cert->id, e->cert->id_len);
	char *kuri = obj_uri(t, TOK_PRIVKEY, e->key);
	char *curi = obj_uri(t, TOK_CERT, e->cert);
	json_t *chain = json_array();
	json_t *j;

	for (int i = 0; i < sk_X509_num(e->chain); i++) {
		char name[512];

		vz_name_string(X509_get_subject_name(sk_X509_value(e->chain, i)), name,
			       sizeof(name));
		json_array_append_new(chain, json_string(name));
	}
	j = json_pack("{s:s?, s:s?, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, "
		      "s:{s:s, s:i, s:o, s:o, s:o, s:o, s:s?}, s:{s:s?, s:s?}, s:o, s:o}",
		      "label", e->cert->label, "id", id, "subject", e->info.subject, "issuer",
		      e->info.issuer, "serial", e->info.serial, "not_before", e->info.not_before,
		      "not_after", e->info.not_after, "days_left", (json_int_t)e->info.days_left,
		      "kind", vz_kind_name(e->info.kind), "fingerprint_sha256", e->info.fingerprint,
		      "key", "type",
		      e->key->key_type == TOK_KEY_RSA  ? "rsa"
		      : e->key->key_type == TOK_KEY_EC ? "ec"
						       : "other",
		      "bits", key_bits(e), "sensitive", flag_json(e->key->sensitive), "extractable",
		      flag_json(e->key->extractable), "value_readable",
		      flag_json(e->key->value_readable), "sign_only", flag_json(sign_only(e->key)),
		      "arrived", vz_out_arrival_name(e->key->arrival), "uri", "key", kuri, "cert",
		      curi, "chain", chain, "not_kept", not_kept(e));
	free(id);
	free(kuri);
	free(curi);
	return j;
}

static void date_only(const char *iso, char *buf, size_t size)
{
	snprintf(buf, size, "%.10s", iso);
}

void vz_out_entry_line(FILE *f, const vz_entry *e)
{
	char until[16];

	date_only(e->info.not_after, until, sizeof(until));
	fprintf(f, _("%-20s %s  expires %s (%ld days)  %s-%d%s\n"),
		e->cert->label ? e->cert->label : "", e->info.subject, until, e->info.days_left,
		e->key->key_type == TOK_KEY_EC ? "ec" : "rsa", key_bits(e),
		e->info.expired		? _("  EXPIRED")
		: e->info.not_yet_valid ? _("  NOT YET VALID")
					: "");
}

static const char *yn(tok_flag f)
{
	return f == TOK_FLAG_YES ? "yes" : f == TOK_FLAG_NO ? "no" : "unknown";
}

static const char *mechs_text(tok_flag f)
{
	return f == TOK_FLAG_YES ? "signature-only" : f == TOK_FLAG_NO ? "any" : "unknown";
}

/* The key's mechanisms are not limited: what that means for this key,
 * by what it can do besides signing. */
static void not_kept_mechs(FILE *f, const tok_obj *k)
{
	if (k->can_decrypt == TOK_FLAG_NO && k->can_unwrap == TOK_FLAG_NO)
		fprintf(f, _("not kept:     CKA_ALLOWED_MECHANISMS (the token does not limit the "
			     "key to signature mechanisms; it still cannot decrypt)\n"));
	else if (k->can_decrypt == TOK_FLAG_YES || k->can_unwrap == TOK_FLAG_YES)
		fprintf(f, _("not kept:     CKA_ALLOWED_MECHANISMS (the token does not limit the "
			     "key to signature mechanisms, and the key may decrypt or unwrap too, "
			     "see 'key use'; switch that off with the token's own tool where it "
			     "allows)\n"));
	else
		fprintf(f, _("not kept:     CKA_ALLOWED_MECHANISMS (the token does not limit the "
			     "key to signature mechanisms)\n"));
}

void vz_out_entry_full(FILE *f, const tok_token *t, const vz_entry *e)
{
	char *id = vz_hex(e->cert->id, e->cert->id_len);
	char *kuri = obj_uri(t, TOK_PRIVKEY, e->key);
	char *curi = obj_uri(t, TOK_CERT, e->cert);

	fprintf(f, _("label:        %s\n"), e->cert->label ? e->cert->label : "");
	fprintf(f, _("subject:      %s\n"), e->info.subject);
	fprintf(f, _("issuer:       %s\n"), e->info.issuer);
	fprintf(f, _("serial:       %s\n"), e->info.serial);
	fprintf(f, _("valid:        %s to %s (%ld days left)%s\n"), e->info.not_before,
		e->info.not_after, e->info.days_left,
		e->info.expired		? _(" EXPIRED")
		: e->info.not_yet_valid ? " NOT YET VALID"
					: "");
	fprintf(f, _("kind:         %s%s%s\n"), vz_kind_name(e->info.kind),
		e->info.kind_reason[0] ? ": " : "", e->info.kind_reason);
	fprintf(f, _("key:          %s %d bits\n"), e->key->key_type == TOK_KEY_EC ? "ec" : "rsa",
		key_bits(e));
	fprintf(f, _("key on token: sensitive=%s extractable=%s value-readable=%s private=%s\n"),
		yn(e->key->sensitive), yn(e->key->extractable), yn(e->key->value_readable),
		yn(e->key->is_private));
	fprintf(f,
		_("key use:      sign=%s decrypt=%s unwrap=%s derive=%s sign-recover=%s "
		  "mechanisms=%s\n"),
		yn(e->key->can_sign), yn(e->key->can_decrypt), yn(e->key->can_unwrap),
		yn(e->key->can_derive), yn(e->key->can_sign_recover),
		mechs_text(e->key->sign_only_mechs));
	fprintf(f, _("key arrived:  %s\n"),
		vz_out_arrival_name(e->key->arrival) ? vz_out_arrival_name(e->key->arrival)
						     : "unknown");
	if (e->cert->lacks & TOK_LACKS_CATEGORY)
		fprintf(f, _("not kept:     CKA_CERTIFICATE_CATEGORY (the token has no "
			     "certificate categories; vzp11 tells CA certificates apart by their "
			     "basic constraints)\n"));
	else if (e->cert->lacks & TOK_LACKS_CATEGORY_VALUE)
		fprintf(f, _("category:     unspecified (this certificate's "
			     "CKA_CERTIFICATE_CATEGORY says nothing, as other tools write it; "
			     "vzp11 tells CA certificates apart by their basic constraints)\n"));
	if (e->key->lacks & TOK_LACKS_ALLOWED_MECHS)
		not_kept_mechs(f, e->key);
	fprintf(f, _("fingerprint:  SHA-256 %s\n"), e->info.fingerprint);
	fprintf(f, _("id:           %s\n"), id ? id : "");
	fprintf(f, _("key URI:      %s\n"), kuri ? kuri : "");
	fprintf(f, _("cert URI:     %s\n"), curi ? curi : "");
	if (sk_X509_num(e->chain) == 0)
		fprintf(f, _("chain:        (no CA certificate on the token)\n"));
	for (int i = 0; i < sk_X509_num(e->chain); i++) {
		char name[512];

		vz_name_string(X509_get_subject_name(sk_X509_value(e->chain, i)), name,
			       sizeof(name));
		fprintf(f, "%s%s\n", i ? "              " : "chain:        ", name);
	}
	free(id);
	free(kuri);
	free(curi);
}
