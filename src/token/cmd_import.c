/* cmd_import.c - `vzp11 import`: move a system certificate from a .pfx file
 * onto the token, all or nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "token/token.h"
#include "cli/cli.h"

#define MAX_P12 (10 * 1024 * 1024)

/* The whole file in memory (a .pfx is small); wiped by the caller. */
static vz_rv read_whole(const char *path, unsigned char **out, size_t *len, vz_err *err)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		vz_err_set(err, "cannot open %s: %s", path, strerror(errno));
		return VZ_FAIL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		vz_err_set(err, "%s is not a regular file", path);
		close(fd);
		return VZ_FAIL;
	}
	if (st.st_size > MAX_P12) {
		vz_err_set(err, "%s is larger than 10 MiB; it is not a certificate export", path);
		close(fd);
		return VZ_FAIL;
	}
	buf = OPENSSL_malloc((size_t)st.st_size + 1);
	if (!buf) {
		vz_err_set(err, "out of memory");
		close(fd);
		return VZ_FAIL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = got;
	return VZ_OK;
}

/* Everything taken from the file, checked before the token is touched. */

void vz_import_src_free(struct vz_import_src *s)
{
	vz_keymat_wipe(&s->km);
	sk_X509_free(s->chain);
	vz_p12_free(s->p12);
	memset(s, 0, sizeof(*s));
}

static vz_rv check_dates(const vz_cert_info *i, vz_err *err)
{
	if (i->expired) {
		vz_err_set(err, "the certificate expired on %s (%ld days ago); it was not imported",
			   i->not_after, -i->days_left);
		vz_err_hint(err, "renew the system certificate at VECOZO and export the new one");
		return VZ_FAIL;
	}
	if (i->not_yet_valid) {
		vz_err_set(err,
			   "the certificate is not valid yet: it starts on %s; it was not "
			   "imported",
			   i->not_before);
		vz_err_hint(err, "check the computer's clock, or import it from that date on");
		return VZ_FAIL;
	}
	return VZ_OK;
}

vz_rv vz_import_load(const struct vz_import_opts *o, struct vz_import_src *src, vz_err *err)
{
	unsigned char *der = NULL;
	size_t der_len = 0;
	vz_secret pass;
	char what[320];
	vz_rv r;

	memset(src, 0, sizeof(*src));
	r = read_whole(o->file, &der, &der_len, err);
	if (r != VZ_OK)
		return r;
	snprintf(what, sizeof(what), _("password for %s"), o->file);
	r = vz_secret_read(o->password_source, what, &pass, err);
	if (r == VZ_OK)
		r = vz_p12_parse(der, der_len, pass.buf, pass.len, &src->p12, err);
	vz_secret_wipe(&pass);
	OPENSSL_clear_free(der, der_len);
	if (r != VZ_OK)
		return r == VZ_USAGE ? VZ_USAGE : VZ_FAIL;
	if (!vz_p12_key(src->p12)) {
		vz_err_set(err, "%s holds no private key, only certificates", o->file);
		vz_err_hint(err, "export again with the private key (choose 'export the private "
				 "key' in the browser's export dialog)");
		return VZ_FAIL;
	}
	src->leaf = vz_cert_for_key(vz_p12_certs(src->p12), vz_p12_key(src->p12));
	if (!src->leaf) {
		vz_err_set(err, "the private key in %s matches none of its %d certificate(s)",
			   o->file, sk_X509_num(vz_p12_certs(src->p12)));
		vz_err_hint(err, "export the system certificate again, together with its own key");
		return VZ_FAIL;
	}
	r = vz_cert_info_get(src->leaf, &src->info, err);
	if (r == VZ_OK)
		r = check_dates(&src->info, err);
	if (r != VZ_OK)
		return r;
	if (src->info.kind == VZ_KIND_PERSONAL && !o->allow_personal) {
		vz_err_set(err,
			   "this is a personal certificate (%s); COV and billing need the "
			   "organisation's system certificate, which has no person's name",
			   src->info.kind_reason);
		vz_err_hint(err, "export the system certificate (no name, latest expiry date), or "
				 "pass --allow-personal to import this one anyway");
		return VZ_FAIL;
	}
	r = vz_keymat_from_pkey(vz_p12_key(src->p12), &src->km, err);
	if (r != VZ_OK)
		return r;
	src->chain = vz_cert_chain(src->leaf, vz_p12_certs(src->p12), &src->unrelated);
	if (!src->chain) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	return vz_cert_key_id(src->leaf, src->id, err);
}

static bool has_id(const tok_obj *o, const unsigned char id[20])
{
	return o->id_len == 20 && memcmp(o->id, id, 20) == 0;
}

static tok_bytes der_of(int (*i2d)(const void *, unsigned char **), const void *v,
			unsigned char **keep)
{
	tok_bytes b = {0};
	int len = i2d(v, keep);

	if (len > 0) {
		b.p = *keep;
		b.len = (size_t)len;
	}
	return b;
}

static int i2d_name(const void *n, unsigned char **out)
{
	return i2d_X509_NAME((const X509_NAME *)n, out);
}

static int i2d_int(const void *i, unsigned char **out)
{
	return i2d_ASN1_INTEGER((const ASN1_INTEGER *)i, out);
}

static int i2d_cert(const void *c, unsigned char **out)
{
	return i2d_X509((const X509 *)c, out);
}

/* Writes one certificate object within the transaction. */
static tok_rv add_cert(tok_txn *x, const X509 *c, const char *label, const unsigned char id[20],
		       bool authority, tok_err *te)
{
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
	tok_cert tc = {0};
	tok_rv r = TOK_ERR;

	tc.der = der_of(i2d_cert, c, &der);
	tc.subject = der_of(i2d_name, X509_get_subject_name(c), &subj);
	tc.issuer = der_of(i2d_name, X509_get_issuer_name(c), &iss);
	tc.serial = der_of(i2d_int, X509_get0_serialNumber(c), &ser);
	tc.id = (tok_bytes){id, 20};
	tc.label = label;
	tc.authority = authority;
	if (tc.der.p && tc.subject.p && tc.issuer.p && tc.serial.p)
		r = tok_txn_add_cert(x, &tc, te);
	else
		snprintf(te->msg, sizeof(te->msg), _("cannot encode a certificate for the token"));
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	return r;
}

/* Finds the entry of label and id after writing, to show what the token says. */
const vz_entry *vz_import_find(const vz_store *st, const char *label, const unsigned char id[20])
{
	for (size_t i = 0; i < st->n_entries; i++)
		if (vz_obj_has_label(st->entries[i].cert, label) && has_id(st->entries[i].cert, id))
			return &st->entries[i];
	return NULL;
}

/* Destroys, within x, the objects of label that the import replaces:
 * private keys only when privkeys is set (they cannot be restored, so they
 * go last), never a kept key pair, never CA certificates. */
static tok_rv destroy_old(tok_txn *x, const vz_store *st, const char *label, bool reuse_key,
			  const unsigned char id[20], bool privkeys, tok_err *te)
{
	const struct {
		const tok_obj *objs;
		size_t n;
	} sets[] = {
		{st->certs, st->n_certs},
		{st->pubs, st->n_pubs},
		{st->keys, st->n_keys},
	};

	for (size_t k = 0; k < sizeof(sets) / sizeof(sets[0]); k++) {
		for (size_t i = 0; i < sets[k].n; i++) {
			const tok_obj *o = &sets[k].objs[i];
			tok_rv r;

			if (!vz_obj_has_label(o, label) || (o->cls == TOK_PRIVKEY) != privkeys ||
			    (o->cls == TOK_CERT && o->authority) ||
			    (o->cls != TOK_CERT && reuse_key && has_id(o, id)))
				continue;
			r = tok_txn_destroy(x, o->handle, te);
			if (r != TOK_OK)
				return r;
		}
	}
	return TOK_OK;
}

/* The key as read back must be sensitive, not extractable and its value
 * unreadable, each by a clear answer: a read that failed is no proof. */
static vz_rv check_protected(const vz_entry *e, vz_err *err)
{
	const tok_obj *k = e ? e->key : NULL;

	if (!k) {
		vz_err_set(err, "the token did not keep the key where it was written");
		vz_err_hint(err, "this token cannot protect the key; use another token or HSM");
		return VZ_FAIL;
	}
	if (k->sensitive == TOK_FLAG_NO || k->extractable == TOK_FLAG_YES ||
	    k->value_readable == TOK_FLAG_YES) {
		vz_err_set(err, "the token did not keep the key sensitive and non-extractable");
		vz_err_hint(err, "this token cannot protect the key; use another token or HSM");
		return VZ_FAIL;
	}
	if (k->sensitive != TOK_FLAG_YES || k->extractable != TOK_FLAG_NO ||
	    k->value_readable != TOK_FLAG_NO) {
		vz_err_set(err,
			   "could not confirm that the token keeps the key sensitive and "
			   "non-extractable: no clear answer for %s",
			   k->unclear[0] ? k->unclear : "the key's attributes");
		vz_err_hint(err, "the token may be failing; check it (and its connection) and "
				 "import again");
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* A token that offers no signature mechanism for the key's type would keep
 * the key and never sign with it (openCryptoki 3.8 takes an EC key and
 * offers no ECDSA): refused before anything is written. A list that cannot
 * be read is no reason to refuse. */
static vz_rv check_can_sign(const vz_token *tk, tok_keytype type, vz_err *err)
{
	const char *label = tok_token_info_of(tk->tok)->label;
	tok_mech_caps caps;
	tok_err te = {0};

	if (tok_token_mech_caps(tk->tok, &caps, &te) != TOK_OK)
		return VZ_OK;
	if (type == TOK_KEY_EC && !caps.ec_sign) {
		vz_err_set(err,
			   "token '%s' cannot sign with an EC key: it offers no ECDSA mechanism "
			   "(CKM_ECDSA) for signing; nothing was changed",
			   label);
		vz_err_hint(err, "use a token that offers ECDSA, or ask VECOZO for a system "
				 "certificate with an RSA key");
		return VZ_FAIL;
	}
	if (type == TOK_KEY_RSA && !caps.rsa_sign) {
		vz_err_set(err,
			   "token '%s' cannot sign with an RSA key: it offers no RSA signature "
			   "mechanism (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS); nothing was changed",
			   label);
		vz_err_hint(err, "use a token that offers RSA signatures, or ask VECOZO for a "
				 "system certificate with an EC key");
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* The whole change in one transaction: key pair (unless kept), certificate,
 * CA certificates the token lacks, the replaced public objects; then a read
 * back that must show a sensitive, non-extractable key; the replaced
 * private key goes last. Any failure puts the token back as it was. */
vz_rv vz_import_apply(vz_token *tk, const vz_store *st, const struct vz_import_src *src,
		      const struct vz_import_opts *o, bool reuse_key, bool has_old,
		      tok_arrival *how, vz_store **after, vz_err *err)
{
	const char *label = o->label;
	unsigned char *subj = NULL;
	const vz_entry *e;
	tok_txn *x = NULL;
	tok_err te = {0};
	vz_rv ret = VZ_FAIL;
	tok_rv r;

	if (!reuse_key && check_can_sign(tk, src->km.key.type, err) != VZ_OK)
		return VZ_FAIL;
	r = tok_txn_begin(tk->s, &x, &te);
	if (r != TOK_OK) {
		vz_err_from_tok(err, &te, r);
		return VZ_FAIL;
	}
	if (!reuse_key && src->adopt) {
		tok_bytes s = der_of(i2d_name, X509_get_subject_name(src->leaf), &subj);

		r = tok_txn_adopt_keypair(x, src->token_priv, src->token_pub, label,
					  (tok_bytes){src->id, 20}, s, &src->km.key, &te);
	} else if (!reuse_key) {
		tok_bytes s = der_of(i2d_name, X509_get_subject_name(src->leaf), &subj);

		r = tok_txn_import_keypair(x, label, (tok_bytes){src->id, 20}, s, &src->km.key,
					   o->unwrap ? TOK_IMPORT_UNWRAP : TOK_IMPORT_AUTO, how,
					   &te);
	}
	if (r == TOK_OK)
		r = add_cert(x, src->leaf, label, src->id, false, &te);
	for (int i = 0; r == TOK_OK && i < sk_X509_num(src->chain); i++) {
		const X509 *ca = sk_X509_value(src->chain, i);
		unsigned char ca_id[20];
		char cn[128];

		if (vz_store_find_cert(st, ca) >= 0)
			continue;
		if (vz_cert_key_id(ca, ca_id, err) != VZ_OK)
			goto abort;
		vz_name_cn(X509_get_subject_name(ca), cn, sizeof(cn));
		r = add_cert(x, ca, cn[0] ? cn : "CA", ca_id, true, &te);
	}
	if (r == TOK_OK && has_old)
		r = destroy_old(x, st, label, reuse_key, src->id, false, &te);
	/* Last before the read-back: it cannot be undone. */
	if (r == TOK_OK && src->token_priv)
		r = tok_txn_protect_key(x, src->token_priv, &te);
	if (r != TOK_OK) {
		vz_err_from_tok(err, &te, r);
		goto abort;
	}
	if (vz_store_load(tk->s, after, err) != VZ_OK)
		goto abort;
	e = vz_import_find(*after, label, src->id);
	if (check_protected(e, err) != VZ_OK)
		goto abort;
	if (has_old) {
		r = destroy_old(x, st, label, reuse_key, src->id, true, &te);
		if (r != TOK_OK) {
			vz_err_from_tok(err, &te, r);
			goto abort;
		}
	}
	tok_txn_commit(x);
	x = NULL;
	ret = VZ_OK;
abort:
	if (x) {
		vz_err_abort(err, x, _("; the token is unchanged"));
		vz_store_free(*after);
		*after = NULL;
	}
	OPENSSL_free(subj);
	return ret;
}

void vz_import_audit(const vz_token *tk, const char *action, const vz_store *before,
		     const vz_store *after, const struct vz_import_src *src,
		     const struct vz_import_opts *o, bool replace, tok_arrival how,
		     const vz_err *failed)
{
	const vz_entry *e = after && !failed ? vz_import_find(after, o->label, src->id) : NULL;
	vz_audit_rec r = vz_audit_rec_of(action ? action : replace ? "replace" : "import", e);

	for (size_t i = 0; i < before->n_entries && !r.previous; i++)
		if (vz_obj_has_label(before->entries[i].cert, o->label))
			r.previous = &before->entries[i].info;
	if (!e) {
		r.label = o->label;
		r.cert = &src->info;
		r.id = src->id;
		r.id_len = sizeof(src->id);
		r.failed = true;
		r.error = failed ? failed->msg : _("the objects cannot be read back");
	} else if (src->adopt) {
		r.detail = "key adopted";
	} else if (how == TOK_ARRIVAL_UNKNOWN) {
		r.detail = "key kept";
	}
	vz_audit(tk, &r);
	for (int i = 0; e && i < sk_X509_num(src->chain); i++) {
		long idx = vz_store_find_cert(after, sk_X509_value(src->chain, i));
		vz_cert_info info;
		vz_err ignored = {0};

		if (idx < 0 || vz_store_find_cert(before, sk_X509_value(src->chain, i)) >= 0 ||
		    vz_cert_info_get(after->x509s[idx], &info, &ignored) != VZ_OK)
			continue;
		vz_audit(tk, &(vz_audit_rec){.action = "import-ca",
					     .label = after->certs[idx].label,
					     .cert = &info,
					     .id = after->certs[idx].id,
					     .id_len = after->certs[idx].id_len});
	}
}

const char *vz_import_way(tok_arrival how)
{
	return how == TOK_ARRIVAL_CREATED     ? "created"
	       : how == TOK_ARRIVAL_UNWRAPPED ? "unwrapped"
					      : NULL;
}

const char *vz_import_key_way(const struct vz_import_src *src, tok_arrival how)
{
	return src->adopt ? "adopted" : vz_import_way(how);
}

/* An adopted key's uses besides signing that the token would not switch
 * off: said, with what to do. */
static void print_uses_kept(const tok_obj *k)
{
	const struct {
		tok_flag on;
		const char *name;
	} uses[] = {
		{k->can_decrypt, "decrypt"},
		{k->can_unwrap, "unwrap"},
		{k->can_derive, "derive"},
		{k->can_sign_recover, "sign-recover"},
	};
	char list[64] = "";

	for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++)
		if (uses[i].on == TOK_FLAG_YES)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 list[0] ? ", " : "", uses[i].name);
	if (list[0])
		printf(_("The token would not switch off the key's other uses (%s): vzp11 only "
			 "signs with it; switch them off with the token's own tool where it "
			 "allows.\n"),
		       list);
}

static void print_result(const vz_global *g, const vz_token *tk, const vz_entry *e,
			 const char *status, tok_arrival how, const struct vz_import_opts *o,
			 const struct vz_import_src *src)
{
	const char *way = vz_import_key_way(src, how);

	static const char reminder[] = /* English in the JSON, translated in text */
		"the .pfx file still holds the private key; delete it (and any copies) now that "
		"the key is on the token";

	if (g->json) {
		json_t *j = vz_out_entry_json(tk->tok, e);

		json_object_set_new(j, "status", json_string(status));
		json_object_set_new(j, "key_import", way ? json_string(way) : json_null());
		json_object_set_new(j, "token", json_string(tok_token_info_of(tk->tok)->label));
		json_object_set_new(j, "unrelated_certificates_ignored",
				    json_integer((json_int_t)src->unrelated));
		json_object_set_new(j, "reminder", json_string(reminder));
		vz_out_json(stdout, j);
		return;
	}
	if (strcmp(status, "unchanged") == 0)
		printf(_("'%s' is already on the token '%s'; nothing was changed.\n"),
		       e->cert->label, tok_token_info_of(tk->tok)->label);
	else
		printf(strcmp(status, "replaced") ? _("Imported '%s' on token '%s'.\n")
						  : _("Replaced '%s' on token '%s'.\n"),
		       e->cert->label, tok_token_info_of(tk->tok)->label);
	if (src->adopt) {
		printf("%s\n", _("The key already on the token was adopted: it got the label and "
				 "CKA_ID, and is sensitive and not extractable."));
		print_uses_kept(e->key);
	} else if (vz_import_way(how))
		printf("%s\n",
		       how == TOK_ARRIVAL_UNWRAPPED
			       ? _("The key was unwrapped on the token (C_UnwrapKey, it never "
				   "crossed in the clear).")
			       : _("The key was created on the token (C_CreateObject)."));
	vz_out_entry_full(stdout, tk->tok, e);
	if (src->unrelated)
		vz_note(g,
			"%zu certificate(s) in the file belong to neither the key nor its chain "
			"and were ignored",
			src->unrelated);
	if (!g->quiet)
		printf(_("Reminder: %s: %s\n"), o->file, _(reminder));
}

vz_rv vz_import_token_key(vz_token *tk, const vz_store *st, struct vz_import_src *src,
			  const struct vz_import_opts *o, vz_err *err)
{
	const char *token = tok_token_info_of(tk->tok)->label;
	tok_obj *keys = NULL, *pubs = NULL;
	size_t nk = 0, np = 0;
	const tok_obj *k;
	tok_err te = {0};
	vz_rv ret = VZ_FAIL;
	tok_rv r;

	r = tok_find_by_public(tk->s, &src->km.key, &keys, &nk, &pubs, &np, &te);
	if (r != TOK_OK) {
		vz_err_from_tok(err, &te, r);
		return VZ_FAIL;
	}
	if (nk != 1) {
		vz_err_set(err,
			   nk ? N_("%zu private keys on token '%s' have the public key of this "
				   "certificate; nothing was changed")
			      : N_("%zu private keys on token '%s' have the public key of this "
				   "certificate: there is none to adopt; nothing was changed"),
			   nk, token);
		vz_err_hint(err,
			    nk ? N_("remove the extra copies with the token's own tool")
			       : N_("put the key on the token with its own tool first (a TPM 2.0: "
				    "tpm2_ptool import, see vzp11-import(1)), or import without "
				    "--use-token-key"));
		goto out;
	}
	k = &keys[0];
	/* Taking another certificate's key away from it would break that one. */
	for (size_t i = 0; i < st->n_certs; i++) {
		const tok_obj *c = &st->certs[i];

		if (c->authority || !k->id_len || c->id_len != k->id_len ||
		    memcmp(c->id, k->id, k->id_len) != 0 || vz_obj_has_label(c, o->label))
			continue;
		if (st->x509s[i] && X509_cmp(st->x509s[i], src->leaf) == 0)
			continue;
		vz_err_set(err,
			   "the key on token '%s' belongs to the certificate '%s' there (the same "
			   "CKA_ID); nothing was changed",
			   token, c->label ? c->label : "");
		vz_err_hint(err, "renew that certificate with --label %s --replace",
			    c->label ? c->label : "LABEL");
		goto out;
	}
	src->token_priv = k->handle;
	src->token_pub = 0;
	for (size_t i = 0; i < np; i++)
		if (!src->token_pub ||
		    (pubs[i].id_len == k->id_len && memcmp(pubs[i].id, k->id, k->id_len) == 0))
			src->token_pub = pubs[i].handle;
	/* Adopted before (a run that stopped after it): only what is missing. */
	src->adopt = !(vz_obj_has_label(k, o->label) && k->id_len == sizeof(src->id) &&
		       memcmp(k->id, src->id, sizeof(src->id)) == 0);
	ret = VZ_OK;
out:
	tok_objs_free(keys, nk);
	tok_objs_free(pubs, np);
	return ret;
}

/* An object of the label that --use-token-key adopts is not "another"
 * object under that label. */
static bool adopted(const struct vz_import_src *src, const tok_obj *o)
{
	return src->token_priv && (o->handle == src->token_priv || o->handle == src->token_pub);
}

vz_rv vz_import_check(const vz_store *st, const struct vz_import_src *src,
		      const struct vz_import_opts *o, bool *same, bool *has_old, bool *reuse_key,
		      vz_err *err)
{
	long idx = vz_store_find_cert(st, src->leaf);

	*same = *has_old = *reuse_key = false;
	if (idx >= 0 && !st->certs[idx].authority && !vz_obj_has_label(&st->certs[idx], o->label)) {
		vz_err_set(err, "this certificate is already on the token with the label '%s'",
			   st->certs[idx].label ? st->certs[idx].label : "");
		vz_err_hint(err, "use that label, or remove it first with 'vzp11 remove'");
		return VZ_FAIL;
	}
	for (size_t i = 0; i < st->n_keys; i++) {
		if (has_id(&st->keys[i], src->id) && !vz_obj_has_label(&st->keys[i], o->label)) {
			vz_err_set(err, "this key is already on the token with the label '%s'",
				   st->keys[i].label ? st->keys[i].label : "");
			vz_err_hint(err, "use --label %s --replace to renew that certificate",
				    st->keys[i].label ? st->keys[i].label : "LABEL");
			return VZ_FAIL;
		}
	}
	if (idx >= 0 && vz_obj_has_label(&st->certs[idx], o->label)) {
		const vz_entry *e = vz_import_find(st, o->label, src->id);

		if (e) {
			*same = true;
			return VZ_OK;
		}
	}
	for (size_t i = 0; i < st->n_keys; i++) {
		if (vz_obj_has_label(&st->keys[i], o->label) && !adopted(src, &st->keys[i])) {
			*has_old = true;
			*reuse_key |= has_id(&st->keys[i], src->id);
		}
	}
	for (size_t i = 0; i < st->n_certs; i++)
		*has_old |= vz_obj_has_label(&st->certs[i], o->label) && !st->certs[i].authority;
	for (size_t i = 0; i < st->n_pubs; i++)
		*has_old |= vz_obj_has_label(&st->pubs[i], o->label) && !adopted(src, &st->pubs[i]);
	/* Adopted before: the key is the one to keep. */
	*reuse_key |= src->token_priv && !src->adopt;
	if (*has_old && !o->replace) {
		const vz_entry *old = NULL;

		for (size_t i = 0; i < st->n_entries && !old; i++)
			if (vz_obj_has_label(st->entries[i].cert, o->label))
				old = &st->entries[i];
		if (old)
			vz_err_set(err,
				   "the label '%s' already holds another certificate (%s, "
				   "expires %.10s); nothing was changed",
				   o->label, old->info.subject, old->info.not_after);
		else
			vz_err_set(err,
				   "the label '%s' is already used by other objects on the "
				   "token; nothing was changed",
				   o->label);
		vz_err_hint(err, "pass --replace to put the new certificate in its place, or "
				 "choose another --label");
		return VZ_FAIL;
	}
	return VZ_OK;
}

enum {
	O_PASSWORD_SOURCE = 1,
	O_LABEL,
	O_REPLACE,
	O_ALLOW_PERSONAL,
	O_UNWRAP,
	O_USE_TOKEN_KEY
};

static const vz_opt import_opts[] = {
	VZ_OPT("password-source", O_PASSWORD_SOURCE, "SRC",
	       N_("the file's password: env:VAR, file:PATH (mode 0600),\n"
		  "fd:N, stdin or prompt (default on a terminal)")),
	{"label", O_LABEL, "LABEL", N_("label on the token (default: %s)"), VZ_AS_LABEL},
	VZ_OPT("replace", O_REPLACE, NULL,
	       N_("put this certificate in place of another one with the\n"
		  "same label; the old objects go only after the new ones\n"
		  "are written")),
	VZ_OPT("allow-personal", O_ALLOW_PERSONAL, NULL,
	       N_("import a personal certificate anyway (COV and billing\n"
		  "need the system certificate)")),
	VZ_OPT("unwrap", O_UNWRAP, NULL,
	       N_("always bring the key wrapped (C_UnwrapKey), never in the\n"
		  "clear (C_CreateObject)")),
	VZ_OPT("use-token-key", O_USE_TOKEN_KEY, NULL,
	       N_("take no key from the file: adopt the private key already\n"
		  "on the token whose public key is the certificate's,\n"
		  "whatever its label and CKA_ID (a TPM 2.0 after\n"
		  "'tpm2_ptool import'): it gets the label and CKA_ID, is\n"
		  "made sensitive and not extractable, and the\n"
		  "certificate, public key and chain are written")),
	{0},
};

static int cmd_import(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_import = {
	.name = "import",
	.run = cmd_import,
	.synopsis =
		"import FILE.p12 [--password-source SRC] [--label LABEL] [--replace] [--allow-personal]",
	.usage = N_("import FILE.p12 [--password-source SRC] [--label LABEL]\n"
		    "                                  [--replace] [--allow-personal]\n"
		    "                                  [--unwrap | --use-token-key]"),
	.about = N_("Import a VECOZO system certificate with its private key and chain from a\n"
		    "PKCS#12 (.pfx/.p12) file onto the token. The key is stored sensitive and not\n"
		    "extractable and may only sign; if any write fails, everything written is\n"
		    "removed again. A token that refuses a private key in the clear (an HSM in\n"
		    "FIPS mode) gets it wrapped: a session AES key on the token, the key wrapped\n"
		    "with it on the host, C_UnwrapKey on the token.\n"),
	.opts = import_opts,
};

/* -1 after --help, 0 when the options are good, else the exit code. */
static int parse_args(vz_global *g, int argc, char **argv, struct vz_import_opts *o)
{
	vz_err err = {0};
	const char *arg;
	int id;

	while ((id = vz_opt_next(g, &vz_cmd_import, argc, argv, &arg)) > 0) {
		switch (id) {
		case O_PASSWORD_SOURCE:
			o->password_source = arg;
			break;
		case O_LABEL:
			o->label = arg;
			break;
		case O_REPLACE:
			o->replace = true;
			break;
		case O_ALLOW_PERSONAL:
			o->allow_personal = true;
			break;
		case O_UNWRAP:
			o->unwrap = true;
			break;
		case O_USE_TOKEN_KEY:
			o->use_token_key = true;
			break;
		}
	}
	if (id == VZ_OPT_HELP)
		return -1;
	if (id != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_import, id, argv);
	if (optind + 1 != argc)
		return vz_usage("import", optind == argc ? _("FILE.p12 is missing")
							 : _("too many arguments"));
	o->file = argv[optind];
	if (o->label[0] == '\0' || strlen(o->label) > 128)
		return vz_usage("import", "the label must be 1 to 128 characters long");
	if (o->unwrap && o->use_token_key)
		return vz_usage("import", "--unwrap brings the file's key onto the token, "
					  "--use-token-key takes the one already there: give one");
	if (o->password_source && vz_secret_check_source(o->password_source, &err) != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_USAGE;
	}
	return 0;
}

static int cmd_import(vz_global *g, int argc, char **argv)
{
	struct vz_import_opts o = {.label = VZ_DEFAULT_LABEL};
	struct vz_import_src src;
	vz_token tk = {0};
	vz_store *st = NULL, *after = NULL;
	const vz_entry *e;
	vz_err err = {0};
	bool same, has_old, reuse_key;
	const char *status = "imported";
	tok_arrival how = TOK_ARRIVAL_UNKNOWN;
	int ret = VZ_EXIT_FAIL, lock = -1;
	vz_rv r;

	r = (vz_rv)parse_args(g, argc, argv, &o);
	if ((int)r == -1)
		return VZ_EXIT_OK;
	if (r != 0)
		return (int)r;
	r = vz_import_load(&o, &src, &err);
	if (r == VZ_OK)
		r = vz_token_open(g, true, true, &tk, &err);
	if (r == VZ_OK)
		r = vz_toklock_take(g, tok_token_info_of(tk.tok), &lock, &err);
	if (r == VZ_OK)
		r = vz_store_load(tk.s, &st, &err);
	if (r == VZ_OK && o.use_token_key)
		r = vz_import_token_key(&tk, st, &src, &o, &err);
	if (r == VZ_OK)
		r = vz_import_check(st, &src, &o, &same, &has_old, &reuse_key, &err);
	if (r == VZ_OK && same) {
		status = "unchanged";
	} else if (r == VZ_OK) {
		r = vz_import_apply(&tk, st, &src, &o, reuse_key, has_old, &how, &after, &err);
		if (has_old)
			status = "replaced";
		vz_import_audit(&tk, NULL, st, after, &src, &o, has_old, how,
				r == VZ_OK ? NULL : &err);
	}
	if (r != VZ_OK) {
		vz_report(&err);
		ret = vz_exit_code(r == VZ_USAGE ? VZ_USAGE : VZ_FAIL);
		goto out;
	}
	e = vz_import_find(after ? after : st, o.label, src.id);
	if (!e) {
		fprintf(stderr,
			_("vzp11: the objects were written but cannot be read back from the "
			  "token\n"));
		goto out;
	}
	print_result(g, &tk, e, status, how, &o, &src);
	ret = VZ_EXIT_OK;
out:
	vz_store_free(after);
	vz_store_free(st);
	vz_token_close(&tk);
	vz_toklock_release(lock);
	vz_import_src_free(&src);
	return ret;
}
