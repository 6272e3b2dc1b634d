/* clientca.c - the gateway's local client CA (see clientca.h). The CA's
 * key is generated on the token and signs through pkcs11-provider; every
 * file is written whole or not at all (outfile.c), and `init` leaves the
 * token as it was when anything fails. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "clientca.h"
#include "cli/cli.h"
#include "tls/tls.h"
#include "token/token.h"

#define CA_DAYS	    3650
#define SERVER_DAYS 3650
#define CRL_DAYS    3650

/* dir/name into buf; false when it does not fit. */
static bool path_in(char *buf, size_t size, const char *dir, const char *name)
{
	return (size_t)snprintf(buf, size, "%s/%s", dir, name) < size;
}

/* A certificate or revocation list as PEM, written whole or not at all;
 * mode 0644 (public), or 0600 for a key, owned by uid when not -1. */
typedef int (*pem_writer)(FILE *f, const void *obj);

static int write_cert(FILE *f, const void *obj)
{
	return PEM_write_X509(f, (X509 *)obj);
}

static int write_crl(FILE *f, const void *obj)
{
	return PEM_write_X509_CRL(f, (X509_CRL *)obj);
}

static int write_key(FILE *f, const void *obj)
{
	return PEM_write_PrivateKey(f, (EVP_PKEY *)obj, NULL, NULL, 0, NULL, NULL);
}

static vz_rv write_pem(const char *path, pem_writer w, const void *obj, bool secret, uid_t uid,
		       vz_err *err)
{
	FILE *f = NULL;
	size_t stale = 0;
	bool ok;

	if (vz_outfile_open(path, &f, &stale, err) != VZ_OK)
		return VZ_FAIL;
	ok = w(f, obj) == 1 && fchmod(fileno(f), secret ? 0600 : 0644) == 0 &&
	     (uid == (uid_t)-1 || fchown(fileno(f), uid, (gid_t)-1) == 0);
	if (!ok) {
		vz_err_set(err, "cannot write %s: %s", path, strerror(errno));
		vz_outfile_close(f, false, err);
		return VZ_FAIL;
	}
	return vz_outfile_close(f, true, err);
}

/* The first PEM object that read() takes from path, or NULL with a reason
 * naming what (a certificate, a revocation list). */
static void *read_pem(const char *path, void *(*read)(FILE *), const char *what, vz_err *err)
{
	FILE *f = fopen(path, "r");
	void *obj = f ? read(f) : NULL;

	if (f)
		fclose(f);
	if (!obj)
		vz_err_set(err, "cannot read %s from %s", what, path);
	return obj;
}

static void *pem_cert(FILE *f)
{
	return PEM_read_X509(f, NULL, NULL, NULL);
}

static void *pem_crl(FILE *f)
{
	return PEM_read_X509_CRL(f, NULL, NULL, NULL);
}

static X509 *read_cert(const char *path, vz_err *err)
{
	return read_pem(path, pem_cert, _("a certificate"), err);
}

static X509_CRL *read_crl(const char *path, vz_err *err)
{
	return read_pem(path, pem_crl, _("a revocation list"), err);
}

/* A random positive 128-bit serial number. */
static bool set_serial(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn;
	bool ok;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return false;
	r[0] &= 0x7f;
	r[0] |= 0x40; /* always 16 bytes long */
	bn = BN_bin2bn(r, sizeof(r), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	bool ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = e && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* A certificate for pub under subject, from issuer (NULL: itself), valid
 * from an hour ago for days; signed later. */
static X509 *new_cert(const X509_NAME *subject, X509 *issuer, EVP_PKEY *pub, long days)
{
	X509 *x = X509_new();

	if (!x || X509_set_version(x, 2) != 1 || !set_serial(x) ||
	    X509_set_subject_name(x, subject) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject) != 1 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) ||
	    X509_set_pubkey(x, pub) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static X509_NAME *name_cn(const char *org, const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (n && org &&
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1,
				       0) != 1) {
		X509_NAME_free(n);
		return NULL;
	}
	if (n && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					    -1, 0) != 1) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* The EC P-256 public key of a point the token generated. */
static EVP_PKEY *ec_public(const unsigned char *pt, size_t len)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1",
						 0),
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, len),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY *k = NULL;

	if (!pc || EVP_PKEY_fromdata_init(pc) != 1 ||
	    EVP_PKEY_fromdata(pc, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
		k = NULL;
	EVP_PKEY_CTX_free(pc);
	return k;
}

/* The client CA's self-signed certificate for the key on the token. */
static X509 *make_ca(const tok_genkey *gk, EVP_PKEY *key)
{
	char host[128] = "localhost", cn[200];
	EVP_PKEY *pub = ec_public(gk->point, gk->point_len);
	X509_NAME *n;
	X509 *x = NULL;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(cn, sizeof(cn), "vzp11 gateway clients CA %s", host);
	n = name_cn("vzp11", cn);
	if (pub && n)
		x = new_cert(n, NULL, pub, CA_DAYS);
	if (x && (!add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
		  !add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign") ||
		  !add_ext(x, NULL, NID_subject_key_identifier, "hash") ||
		  X509_sign(x, key, EVP_sha256()) <= 0)) {
		X509_free(x);
		x = NULL;
	}
	X509_NAME_free(n);
	EVP_PKEY_free(pub);
	return x;
}

/* The gateway's HTTPS certificate: localhost, 127.0.0.1, ::1 and names. */
static X509 *make_server(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub, const char *const *names,
			 size_t n_names)
{
	char san[2048] = "DNS:localhost,IP:127.0.0.1,IP:::1";
	size_t used = strlen(san);
	X509_NAME *n = name_cn("vzp11", n_names ? names[0] : "localhost");
	X509 *x = n ? new_cert(n, ca, pub, SERVER_DAYS) : NULL;

	for (size_t i = 0; i < n_names && used < sizeof(san); i++) {
		unsigned char buf[16];
		bool ip = inet_pton(AF_INET, names[i], buf) == 1 ||
			  inet_pton(AF_INET6, names[i], buf) == 1;

		used += (size_t)snprintf(san + used, sizeof(san) - used, ",%s:%s",
					 ip ? "IP" : "DNS", names[i]);
	}
	if (x &&
	    (used >= sizeof(san) || !add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	     !add_ext(x, ca, NID_key_usage, "critical,digitalSignature") ||
	     !add_ext(x, ca, NID_ext_key_usage, "serverAuth") ||
	     !add_ext(x, ca, NID_subject_alt_name, san) ||
	     !add_ext(x, ca, NID_authority_key_identifier, "keyid") ||
	     X509_sign(x, ca_key, EVP_sha256()) <= 0)) {
		X509_free(x);
		x = NULL;
	}
	X509_NAME_free(n);
	return x;
}

/* A revocation list (version 2) of ca: the entries of old (may be NULL)
 * plus serials, numbered one past old's number, signed on the token. */
static X509_CRL *make_crl(X509 *ca, EVP_PKEY *key, const X509_CRL *old,
			  const ASN1_INTEGER *const *serials, size_t n)
{
	X509_CRL *crl = old ? X509_CRL_dup(old) : X509_CRL_new();
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	ASN1_TIME *next = X509_time_adj_ex(NULL, CRL_DAYS, 0, NULL);
	ASN1_INTEGER *num = NULL;
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	long number = 1;
	bool ok = crl && now && next && akid;

	if (ok && old) {
		ASN1_INTEGER *was = X509_CRL_get_ext_d2i(old, NID_crl_number, NULL, NULL);

		number = was ? ASN1_INTEGER_get(was) + 1 : 1;
		ASN1_INTEGER_free(was);
	}
	num = ok ? ASN1_INTEGER_new() : NULL;
	ok = ok && num && ASN1_INTEGER_set(num, number) == 1 && X509_CRL_set_version(crl, 1) == 1 &&
	     X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) == 1 &&
	     X509_CRL_set1_lastUpdate(crl, now) == 1 && X509_CRL_set1_nextUpdate(crl, next) == 1 &&
	     X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, X509V3_ADD_REPLACE) == 1;
	if (ok) {
		akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(ca));
		ok = akid->keyid && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid,
							  0, X509V3_ADD_REPLACE) == 1;
	}
	for (size_t i = 0; ok && i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();

		ok = r && X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)serials[i]) == 1 &&
		     X509_REVOKED_set_revocationDate(r, now) == 1 &&
		     X509_CRL_add0_revoked(crl, r) == 1;
		if (!ok)
			X509_REVOKED_free(r);
	}
	ok = ok && X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, key, EVP_sha256()) > 0;
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(num);
	AUTHORITY_KEYID_free(akid);
	if (!ok) {
		X509_CRL_free(crl);
		crl = NULL;
	}
	return crl;
}

/* The DER of a name or serial, for the token's certificate object. */
static tok_bytes der_of(int (*i2d)(const void *, unsigned char **), const void *obj,
			unsigned char **keep)
{
	int len = i2d(obj, keep);

	return len > 0 ? (tok_bytes){*keep, (size_t)len} : (tok_bytes){NULL, 0};
}

static int i2d_name(const void *o, unsigned char **p)
{
	return i2d_X509_NAME((X509_NAME *)o, p);
}

static int i2d_int(const void *o, unsigned char **p)
{
	return i2d_ASN1_INTEGER((ASN1_INTEGER *)o, p);
}

static int i2d_x509(const void *o, unsigned char **p)
{
	return i2d_X509((X509 *)o, p);
}

/* The CA's certificate as an authority certificate object on the token,
 * next to its key. */
static tok_rv store_ca(tok_txn *x, X509 *ca, const tok_genkey *gk, tok_err *te)
{
	unsigned char *der = NULL, *subject = NULL, *serial = NULL;
	tok_cert c = {.label = VZ_CLIENTS_LABEL, .authority = true, .id = {gk->id, sizeof(gk->id)}};
	tok_rv r = TOK_ERR;

	c.der = der_of(i2d_x509, ca, &der);
	c.subject = der_of(i2d_name, X509_get_subject_name(ca), &subject);
	c.issuer = c.subject;
	c.serial = der_of(i2d_int, X509_get0_serialNumber(ca), &serial);
	if (c.der.p && c.subject.p && c.serial.p)
		r = tok_txn_add_cert(x, &c, te);
	else
		snprintf(te->msg, sizeof(te->msg), "out of memory");
	OPENSSL_free(der);
	OPENSSL_free(subject);
	OPENSSL_free(serial);
	return r;
}

/* Whether the token holds an object named VZ_CLIENTS_LABEL already. */
static vz_rv none_on_token(const vz_token *tk, vz_err *err)
{
	tok_class classes[] = {TOK_PRIVKEY, TOK_CERT};

	for (size_t i = 0; i < 2; i++) {
		tok_obj *objs = NULL;
		size_t n = 0;
		tok_err te = {0};
		tok_rv r = tok_find(tk->s, classes[i], VZ_CLIENTS_LABEL, (tok_bytes){NULL, 0},
				    &objs, &n, &te);

		tok_objs_free(objs, n);
		if (r != TOK_OK)
			return vz_err_from_tok(err, &te, r);
		if (n) {
			vz_err_set(err, "token '%s' already holds a client CA ('%s')",
				   tok_token_info_of(tk->tok)->label, VZ_CLIENTS_LABEL);
			vz_err_hint(err,
				    "issue client certificates from the directory it was made "
				    "in; to start over, delete its key and certificate from the "
				    "token first");
			return VZ_FAIL;
		}
	}
	return VZ_OK;
}

static vz_rv owner_uid(const char *owner, uid_t *uid, vz_err *err)
{
	struct passwd *pw;

	*uid = (uid_t)-1;
	if (!owner)
		return VZ_OK;
	pw = getpwnam(owner);
	if (!pw) {
		vz_err_set(err, "--owner %s: no such user on this machine", owner);
		return VZ_USAGE;
	}
	*uid = pw->pw_uid;
	return VZ_OK;
}

/* The files init writes, in order; removed again when it fails. */
static const char *const init_files[] = {"server.key", "server.crt", "ca.crl", "ca.crt"};

static void remove_init_files(const char *dir)
{
	char p[4096];

	for (size_t i = 0; i < sizeof(init_files) / sizeof(init_files[0]); i++)
		if (path_in(p, sizeof(p), dir, init_files[i]))
			unlink(p);
}

/* The directory, made if missing (0755: the gateway's user reads it). */
static vz_rv prepare_dir(const char *dir, vz_err *err)
{
	char p[4096];
	struct stat st;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		vz_err_set(err, "cannot make the directory %s: %s", dir, strerror(errno));
		return VZ_FAIL;
	}
	if (!path_in(p, sizeof(p), dir, "issued")) {
		vz_err_set(err, "the directory's name is too long");
		return VZ_FAIL;
	}
	if (mkdir(p, 0755) != 0 && errno != EEXIST) {
		vz_err_set(err, "cannot make the directory %s: %s", p, strerror(errno));
		return VZ_FAIL;
	}
	path_in(p, sizeof(p), dir, "ca.crt");
	if (stat(p, &st) == 0) {
		vz_err_set(err, "%s already holds a client CA (%s)", dir, p);
		vz_err_hint(err, "issue client certificates with 'vzp11 clients issue NAME'");
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* Writes the four files of a new CA; on failure none is left. */
static vz_rv write_init_files(const char *dir, X509 *ca, X509_CRL *crl, X509 *server,
			      EVP_PKEY *server_key, uid_t owner, vz_err *err)
{
	char p[4096];
	vz_rv r;

	r = path_in(p, sizeof(p), dir, "server.key")
		    ? write_pem(p, write_key, server_key, true, owner, err)
		    : VZ_FAIL;
	if (r == VZ_OK && path_in(p, sizeof(p), dir, "server.crt"))
		r = write_pem(p, write_cert, server, false, (uid_t)-1, err);
	if (r == VZ_OK && path_in(p, sizeof(p), dir, "ca.crl"))
		r = write_pem(p, write_crl, crl, false, (uid_t)-1, err);
	if (r == VZ_OK && path_in(p, sizeof(p), dir, "ca.crt"))
		r = write_pem(p, write_cert, ca, false, (uid_t)-1, err);
	if (r != VZ_OK)
		remove_init_files(dir);
	return r;
}

vz_rv vz_clients_init(const vz_global *g, const char *dir, const char *const *names, size_t n_names,
		      const char *owner, vz_err *err)
{
	vz_token tk = {0};
	tok_txn *x = NULL;
	tok_genkey gk;
	tok_err te = {0};
	tok_rv tr;
	vz_tls *t = NULL;
	X509 *ca = NULL, *server = NULL;
	X509_CRL *crl = NULL;
	EVP_PKEY *server_key = NULL;
	uid_t uid;
	vz_rv r = owner_uid(owner, &uid, err);

	if (r == VZ_OK)
		r = prepare_dir(dir, err);
	if (r == VZ_OK)
		r = vz_token_open(g, true, true, &tk, err);
	if (r == VZ_OK)
		r = none_on_token(&tk, err);
	if (r != VZ_OK)
		goto out;
	tr = tok_txn_begin(tk.s, &x, &te);
	if (tr == TOK_OK)
		tr = tok_txn_generate_ec(x, VZ_CLIENTS_LABEL, (tok_bytes){NULL, 0}, &gk, &te);
	if (tr != TOK_OK) {
		r = vz_err_from_tok(err, &te, tr);
		goto out;
	}
	r = vz_tls_open_key(g, &tk, gk.id, sizeof(gk.id), &t, err);
	if (r != VZ_OK)
		goto out;
	r = VZ_FAIL;
	ca = make_ca(&gk, vz_tls_key(t));
	server_key = ca ? EVP_EC_gen("P-256") : NULL;
	server = server_key ? make_server(ca, vz_tls_key(t), server_key, names, n_names) : NULL;
	crl = server ? make_crl(ca, vz_tls_key(t), NULL, NULL, 0) : NULL;
	if (!crl) {
		vz_err_set(err,
			   "cannot make the client CA's certificates with the key on the token");
		vz_err_openssl(err);
		goto out;
	}
	tr = store_ca(x, ca, &gk, &te);
	if (tr != TOK_OK) {
		vz_err_from_tok(err, &te, tr);
		goto out;
	}
	r = write_init_files(dir, ca, crl, server, server_key, uid, err);
out:
	if (x && r == VZ_OK)
		tok_txn_commit(x);
	else if (x)
		vz_err_abort(err, x, _("; the token is unchanged"));
	vz_tls_close(t);
	vz_token_close(&tk);
	X509_free(ca);
	X509_free(server);
	X509_CRL_free(crl);
	EVP_PKEY_free(server_key);
	return r;
}

/* The CA of dir and its key on the token: the token opened (logged in) in
 * *tk, the key in *t; refused when the token's key is not the
 * certificate's. */
static vz_rv open_ca(const vz_global *g, const char *dir, vz_token *tk, vz_tls **t, X509 **ca,
		     vz_err *err)
{
	char p[4096];
	const ASN1_BIT_STRING *bits;
	unsigned char id[SHA_DIGEST_LENGTH];
	vz_rv r;

	if (!path_in(p, sizeof(p), dir, "ca.crt")) {
		vz_err_set(err, "the directory's name is too long");
		return VZ_FAIL;
	}
	*ca = read_cert(p, err);
	if (!*ca) {
		vz_err_hint(err, "make the client CA first: 'vzp11 clients init'");
		return VZ_FAIL;
	}
	bits = X509_get0_pubkey_bitstr(*ca);
	SHA1(bits->data, (size_t)bits->length, id);
	r = vz_token_open(g, false, true, tk, err);
	if (r == VZ_OK)
		r = vz_tls_open_key(g, tk, id, sizeof(id), t, err);
	if (r == VZ_OK && X509_check_private_key(*ca, vz_tls_key(*t)) != 1) {
		vz_err_set(err, "the client CA's key on token '%s' is not the key of %s",
			   tok_token_info_of(tk->tok)->label, p);
		r = VZ_FAIL;
	}
	if (r != VZ_OK) {
		vz_tls_close(*t);
		*t = NULL;
		vz_token_close(tk);
		X509_free(*ca);
		*ca = NULL;
	}
	ERR_clear_error();
	return r;
}

static void iso_time(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(buf, size, "?");
}

/* What list shows of one certificate; revoked from crl (may be NULL). */
static void describe(X509 *x, const X509_CRL *crl, vz_client *c)
{
	X509_NAME *n = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	X509_REVOKED *rev = NULL;
	int days = 0, secs = 0;

	memset(c, 0, sizeof(*c));
	if (i >= 0 &&
	    ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i))) >= 0 &&
	    utf8)
		snprintf(c->name, sizeof(c->name), "%s", (char *)utf8);
	for (char *s = c->name; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
	snprintf(c->serial, sizeof(c->serial), "%s", hex ? hex : "?");
	iso_time(X509_get0_notAfter(x), c->not_after, sizeof(c->not_after));
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
	c->days_left = days - (secs < 0 && days <= 0 ? 1 : 0);
	c->revoked = crl &&
		     X509_CRL_get0_by_serial((X509_CRL *)crl, &rev, X509_get0_serialNumber(x)) == 1;
	OPENSSL_free(utf8);
	OPENSSL_free(hex);
	BN_free(bn);
}

/* The issued certificates of dir (with their X509 in *xs, when asked). */
static vz_rv load_issued(const char *dir, const X509_CRL *crl, vz_client **out, X509 ***xs,
			 size_t *n, vz_err *err)
{
	char p[4096];
	DIR *d;
	struct dirent *e;
	vz_client *list = NULL;
	X509 **certs = NULL;
	size_t cnt = 0;

	if (!path_in(p, sizeof(p), dir, "issued") || !(d = opendir(p))) {
		vz_err_set(err, "cannot read %s/issued: %s", dir, strerror(errno));
		return VZ_FAIL;
	}
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char f[4400];
		vz_client *gl;
		X509 **gx;
		X509 *x;

		if (len < 5 || strcmp(e->d_name + len - 4, ".pem") != 0 || e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
		x = read_cert(f, err);
		gl = x ? realloc(list, (cnt + 1) * sizeof(*list)) : NULL;
		gx = gl ? realloc(certs, (cnt + 1) * sizeof(*certs)) : NULL;
		if (gl)
			list = gl;
		if (gx)
			certs = gx;
		if (!gx) {
			X509_free(x);
			continue; /* unreadable: not listed (err holds why) */
		}
		describe(x, crl, &list[cnt]);
		certs[cnt++] = x;
	}
	closedir(d);
	/* oldest first: by expiry, then name */
	for (size_t i = 1; i < cnt; i++)
		for (size_t k = i; k > 0 && strcmp(list[k].not_after, list[k - 1].not_after) < 0;
		     k--) {
			vz_client tc = list[k];
			X509 *tx = certs[k];

			list[k] = list[k - 1];
			list[k - 1] = tc;
			certs[k] = certs[k - 1];
			certs[k - 1] = tx;
		}
	*out = list;
	*n = cnt;
	if (xs) {
		*xs = certs;
	} else {
		for (size_t i = 0; i < cnt; i++)
			X509_free(certs[i]);
		free(certs);
	}
	return VZ_OK;
}

static X509_CRL *dir_crl(const char *dir, vz_err *err)
{
	char p[4096];

	return path_in(p, sizeof(p), dir, "ca.crl") ? read_crl(p, err) : NULL;
}

vz_rv vz_clients_list(const char *dir, vz_client **out, size_t *n, vz_client *ca_info, vz_err *err)
{
	char p[4096];
	X509 *ca = path_in(p, sizeof(p), dir, "ca.crt") ? read_cert(p, err) : NULL;
	X509_CRL *crl = ca ? dir_crl(dir, err) : NULL;
	vz_rv r = VZ_FAIL;

	if (!ca) {
		vz_err_hint(err, "make the client CA first: 'vzp11 clients init --dir %s'", dir);
	} else if (crl) {
		describe(ca, NULL, ca_info);
		r = load_issued(dir, crl, out, NULL, n, err);
	}
	X509_free(ca);
	X509_CRL_free(crl);
	return r;
}

/* A client name: 1-64 of letters, digits, space and ._@()+- */
static bool good_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(" ._@()+-", *s)))
			return false;
	return true;
}

/* The client certificate for name: its own RSA key, signed on the token. */
static X509 *make_client(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *name, long days)
{
	X509_NAME *n = name_cn("vzp11 gateway client", name);
	X509 *x = n ? new_cert(n, ca, key, days) : NULL;

	if (x && (!add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
		  !add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
		  !add_ext(x, ca, NID_ext_key_usage, "clientAuth") ||
		  !add_ext(x, ca, NID_authority_key_identifier, "keyid") ||
		  X509_sign(x, ca_key, EVP_sha256()) <= 0)) {
		X509_free(x);
		x = NULL;
	}
	X509_NAME_free(n);
	return x;
}

/* The key, certificate and CA as PKCS#12 under pass. */
static PKCS12 *make_p12(EVP_PKEY *key, X509 *cert, X509 *ca, const char *name,
			const vz_secret *pass, bool legacy)
{
	STACK_OF(X509) *cas = sk_X509_new_null();
	int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
	char pw[VZ_SECRET_MAX + 1];
	PKCS12 *p12 = NULL;

	memcpy(pw, pass->buf, pass->len);
	pw[pass->len] = '\0';
	if (cas && sk_X509_push(cas, ca)) {
		p12 = PKCS12_create(pw, name, key, cert, cas, nid, nid, PKCS12_DEFAULT_ITER, -1, 0);
		if (p12 && PKCS12_set_mac(p12, pw, -1, NULL, 0, PKCS12_DEFAULT_ITER,
					  legacy ? EVP_sha1() : EVP_sha256()) != 1) {
			PKCS12_free(p12);
			p12 = NULL;
		}
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	sk_X509_free(cas);
	return p12;
}

static int write_p12(FILE *f, const void *obj)
{
	return i2d_PKCS12_fp(f, (PKCS12 *)obj);
}

/* Whether name has a certificate that is neither revoked nor expired. */
static bool name_taken(const vz_client *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!list[i].revoked && list[i].days_left >= 0 && strcmp(list[i].name, name) == 0)
			return true;
	return false;
}

vz_rv vz_clients_issue(const vz_global *g, const char *dir, const char *name, long days,
		       const char *out, const vz_secret *pass, bool legacy, vz_client *info,
		       vz_err *err)
{
	vz_token tk = {0};
	vz_tls *t = NULL;
	X509 *ca = NULL, *cert = NULL;
	X509_CRL *crl = NULL;
	EVP_PKEY *key = NULL;
	PKCS12 *p12 = NULL;
	vz_client *list = NULL;
	size_t n = 0;
	char p[4096];
	struct stat st;
	vz_rv r = VZ_FAIL;

	if (!good_name(name)) {
		vz_err_set(err,
			   "'%s' is not a client name: give 1 to 64 letters, digits, spaces "
			   "or ._@()+-",
			   name);
		return VZ_USAGE;
	}
	if (stat(out, &st) == 0) {
		vz_err_set(err, "%s exists already; vzp11 does not write over it", out);
		vz_err_hint(err, "give another --out, or remove the file first");
		return VZ_FAIL;
	}
	crl = dir_crl(dir, err);
	if (!crl || load_issued(dir, crl, &list, NULL, &n, err) != VZ_OK)
		goto out;
	if (name_taken(list, n, name)) {
		vz_err_set(err, "'%s' has a valid client certificate already", name);
		vz_err_hint(err,
			    "revoke it first ('vzp11 clients revoke %s'), or give another "
			    "name",
			    name);
		goto out;
	}
	if (open_ca(g, dir, &tk, &t, &ca, err) != VZ_OK)
		goto out;
	key = EVP_RSA_gen(2048);
	cert = key ? make_client(ca, vz_tls_key(t), key, name, days) : NULL;
	p12 = cert ? make_p12(key, cert, ca, name, pass, legacy) : NULL;
	if (!p12) {
		vz_err_set(err, "cannot make the client certificate with the key on the token");
		vz_err_openssl(err);
		goto out;
	}
	describe(cert, NULL, info);
	if (!path_in(p, sizeof(p), dir, "issued/") ||
	    (size_t)snprintf(p + strlen(p), sizeof(p) - strlen(p), "%s.pem", info->serial) >=
		    sizeof(p) - strlen(p)) {
		vz_err_set(err, "the directory's name is too long");
		goto out;
	}
	/* The record first: a .p12 the CA knows nothing of could not be revoked
	 * by name. */
	r = write_pem(p, write_cert, cert, false, (uid_t)-1, err);
	if (r == VZ_OK) {
		r = write_pem(out, write_p12, p12, true, (uid_t)-1, err);
		if (r != VZ_OK)
			unlink(p);
	}
out:
	free(list);
	PKCS12_free(p12);
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(ca);
	X509_CRL_free(crl);
	vz_tls_close(t);
	vz_token_close(&tk);
	return r;
}

vz_rv vz_clients_revoke(const vz_global *g, const char *dir, const char *which, size_t *count,
			vz_err *err)
{
	vz_token tk = {0};
	vz_tls *t = NULL;
	X509 *ca = NULL, **xs = NULL;
	X509_CRL *crl = dir_crl(dir, err), *fresh = NULL;
	const ASN1_INTEGER *serials[64];
	vz_client *list = NULL;
	size_t n = 0, k = 0;
	char p[4096];
	vz_rv r = VZ_FAIL;

	if (!crl || load_issued(dir, crl, &list, &xs, &n, err) != VZ_OK)
		goto out;
	for (size_t i = 0; i < n && k < 64; i++)
		if (!list[i].revoked &&
		    (strcmp(list[i].name, which) == 0 || strcasecmp(list[i].serial, which) == 0))
			serials[k++] = X509_get0_serialNumber(xs[i]);
	if (!k) {
		vz_err_set(err,
			   "no client certificate named '%s' (or with that serial) that is not "
			   "revoked already",
			   which);
		vz_err_hint(err, "see 'vzp11 clients list'");
		r = VZ_NOT_FOUND;
		goto out;
	}
	if (open_ca(g, dir, &tk, &t, &ca, err) != VZ_OK)
		goto out;
	fresh = make_crl(ca, vz_tls_key(t), crl, serials, k);
	if (!fresh) {
		vz_err_set(err, "cannot sign the new revocation list with the key on the token");
		vz_err_openssl(err);
		goto out;
	}
	r = path_in(p, sizeof(p), dir, "ca.crl")
		    ? write_pem(p, write_crl, fresh, false, (uid_t)-1, err)
		    : VZ_FAIL;
	if (r == VZ_OK)
		*count = k;
out:
	for (size_t i = 0; xs && i < n; i++)
		X509_free(xs[i]);
	free(xs);
	free(list);
	X509_free(ca);
	X509_CRL_free(crl);
	X509_CRL_free(fresh);
	vz_tls_close(t);
	vz_token_close(&tk);
	return r;
}
