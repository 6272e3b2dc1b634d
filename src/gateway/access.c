/* access.c - who may use the token's key through the gateway (see
 * access.h). A TCP listener needs client certificates from the client CA,
 * loopback included, unless the admin says --insecure-loopback; a unix:
 * socket is guarded by its file mode and, when given, by the peer's user
 * and groups; a browser is never served. */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/crypto.h>

#include "access.h"
#include "cli/cli.h"

#define MAX_IDS 32

struct vz_gw_access {
	vz_gw_access_cfg cfg;
	char *cert_pem, *key_pem, *ca_pem;
	char san[VZ_GW_MAX_NAMES][256]; /* names in the gateway's own certificate */
	size_t n_san;
	unsigned uids[MAX_IDS]; /* uid_t and gid_t */
	size_t n_uids;
	unsigned gids[MAX_IDS];
	size_t n_gids;
	pthread_rwlock_t lock; /* trust, revoked, generation */
	gnutls_x509_trust_list_t trust;
	size_t revoked; /* entries in the revocation list */
	unsigned long generation;
};

/* A PEM file into memory; a key others can read is refused. */
static char *slurp(const char *path, bool secret, vz_err *err)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf = NULL;
	size_t n;

	if (!f || fstat(fileno(f), &st) != 0) {
		vz_err_set(err, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (secret && (st.st_mode & 077)) {
		vz_err_set(err, "%s can be read by group or others; make it mode 0600", path);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		vz_err_set(err, "out of memory");
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	buf[n] = '\0';
out:
	if (f)
		fclose(f);
	return buf;
}

/* The client CA and its revocation list (verified against the CA) as a
 * GnuTLS trust list; *revoked gets the number of revoked certificates. */
static vz_rv load_trust(const vz_gw_access *a, gnutls_x509_trust_list_t *out, size_t *revoked,
			vz_err *err)
{
	gnutls_x509_trust_list_t tl = NULL;
	gnutls_datum_t ca = {(unsigned char *)a->ca_pem, (unsigned)strlen(a->ca_pem)};
	gnutls_datum_t crl = {NULL, 0};
	gnutls_x509_crl_t *crls = NULL;
	unsigned n_crls = 0;
	char *crl_pem = NULL;
	int r;

	*revoked = 0;
	if (a->cfg.crl) {
		crl_pem = slurp(a->cfg.crl, false, err);
		if (!crl_pem)
			return VZ_FAIL;
		crl.data = (unsigned char *)crl_pem;
		crl.size = (unsigned)strlen(crl_pem);
		if (gnutls_x509_crl_list_import2(&crls, &n_crls, &crl, GNUTLS_X509_FMT_PEM, 0) <
			    0 ||
		    n_crls == 0) {
			vz_err_set(err, "%s holds no certificate revocation list (PEM)",
				   a->cfg.crl);
			free(crl_pem);
			return VZ_FAIL;
		}
		for (unsigned i = 0; i < n_crls; i++) {
			int k = gnutls_x509_crl_get_crt_count(crls[i]);

			*revoked += k > 0 ? (size_t)k : 0;
			gnutls_x509_crl_deinit(crls[i]);
		}
		gnutls_free(crls);
	}
	if (gnutls_x509_trust_list_init(&tl, 0) < 0) {
		free(crl_pem);
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	r = gnutls_x509_trust_list_add_trust_mem(tl, &ca, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
	if (r <= 0) {
		vz_err_set(err, "%s holds no CA certificate (PEM)", a->cfg.client_ca);
		goto fail;
	}
	if (crl.data) {
		/* Only a list the client CA signed is taken. */
		r = gnutls_x509_trust_list_add_trust_mem(
			tl, NULL, &crl, GNUTLS_X509_FMT_PEM,
			GNUTLS_TL_VERIFY_CRL | GNUTLS_TL_FAIL_ON_INVALID_CRL, 0);
		if (r < 0) {
			vz_err_set(err, "%s is not a revocation list signed by the client CA %s",
				   a->cfg.crl, a->cfg.client_ca);
			goto fail;
		}
	}
	free(crl_pem);
	*out = tl;
	return VZ_OK;
fail:
	free(crl_pem);
	gnutls_x509_trust_list_deinit(tl, 1);
	return VZ_FAIL;
}

/* The DNS names and IP addresses in the gateway's own certificate: what
 * clients connect to, so what they send as Host. */
static vz_rv read_san(vz_gw_access *a, vz_err *err)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t pem = {(unsigned char *)a->cert_pem, (unsigned)strlen(a->cert_pem)};

	if (gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) < 0) {
		vz_err_set(err, "%s holds no certificate (PEM)", a->cfg.tls_cert);
		gnutls_x509_crt_deinit(crt);
		return VZ_FAIL;
	}
	for (unsigned i = 0; a->n_san < VZ_GW_MAX_NAMES; i++) {
		unsigned char buf[256];
		size_t size = sizeof(buf) - 1;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, NULL);
		char *name = a->san[a->n_san];

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_SAN_DNSNAME && size < sizeof(a->san[0])) {
			memcpy(name, buf, size);
			name[size] = '\0';
			a->n_san++;
		} else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
			if (inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, name, sizeof(a->san[0])))
				a->n_san++;
		}
	}
	gnutls_x509_crt_deinit(crt);
	return VZ_OK;
}

/* A user or group by name, or by number. */
static bool lookup_id(const char *name, bool group, unsigned *id)
{
	char *end = NULL;
	unsigned long n = strtoul(name, &end, 10);
	struct passwd *pw = group ? NULL : getpwnam(name);
	struct group *gr = group ? getgrnam(name) : NULL;

	if (pw || gr)
		*id = pw ? pw->pw_uid : gr->gr_gid;
	else if (end != name && !*end)
		*id = (unsigned)n;
	else
		return false;
	return true;
}

/* --allow-user (group false) or --allow-group names as ids. */
static vz_rv resolve_ids(const char *const *names, size_t n, bool group, unsigned *ids,
			 size_t *n_ids, vz_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (*n_ids == MAX_IDS) {
			if (group)
				vz_err_set(err, "at most %d --allow-group", MAX_IDS);
			else
				vz_err_set(err, "at most %d --allow-user", MAX_IDS);
			return VZ_USAGE;
		}
		if (!lookup_id(names[i], group, &ids[*n_ids])) {
			if (group)
				vz_err_set(err, "--allow-group %s: no such group on this machine",
					   names[i]);
			else
				vz_err_set(err, "--allow-user %s: no such user on this machine",
					   names[i]);
			return VZ_USAGE;
		}
		(*n_ids)++;
	}
	return VZ_OK;
}

vz_rv vz_gw_access_new(const vz_gw_access_cfg *cfg, vz_gw_access **out, vz_err *err)
{
	vz_gw_access *a = calloc(1, sizeof(*a));
	bool some = cfg->client_ca || cfg->tls_cert || cfg->tls_key || cfg->crl;
	bool all = cfg->client_ca && cfg->tls_cert && cfg->tls_key;
	vz_rv r = VZ_FAIL;

	if (!a) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	a->cfg = *cfg;
	pthread_rwlock_init(&a->lock, NULL);
	if (some && !all) {
		vz_err_set(err,
			   "--client-ca, --tls-cert and --tls-key go together (and --crl with "
			   "them): the client CA, and the gateway's own certificate and key for "
			   "HTTPS");
		vz_err_hint(err, "'vzp11 clients init' makes all of them; then give --clients DIR");
		r = VZ_USAGE;
		goto fail;
	}
	r = resolve_ids(cfg->allow_users, cfg->n_users, false, a->uids, &a->n_uids, err);
	if (r == VZ_OK)
		r = resolve_ids(cfg->allow_groups, cfg->n_groups, true, a->gids, &a->n_gids, err);
	if (r != VZ_OK)
		goto fail;
	r = VZ_FAIL;
	if (all) {
		a->cert_pem = slurp(cfg->tls_cert, false, err);
		a->key_pem = a->cert_pem ? slurp(cfg->tls_key, true, err) : NULL;
		a->ca_pem = a->key_pem ? slurp(cfg->client_ca, false, err) : NULL;
		if (!a->ca_pem || read_san(a, err) != VZ_OK ||
		    load_trust(a, &a->trust, &a->revoked, err) != VZ_OK)
			goto fail;
	}
	*out = a;
	return VZ_OK;
fail:
	vz_gw_access_free(a);
	return r;
}

void vz_gw_access_free(vz_gw_access *a)
{
	if (!a)
		return;
	if (a->trust)
		gnutls_x509_trust_list_deinit(a->trust, 1);
	free(a->cert_pem);
	if (a->key_pem)
		OPENSSL_cleanse(a->key_pem, strlen(a->key_pem));
	free(a->key_pem);
	free(a->ca_pem);
	pthread_rwlock_destroy(&a->lock);
	free(a);
}

const char *vz_gw_access_cert_pem(const vz_gw_access *a)
{
	return a->cert_pem;
}

const char *vz_gw_access_key_pem(const vz_gw_access *a)
{
	return a->key_pem;
}

const char *vz_gw_access_ca_pem(const vz_gw_access *a)
{
	return a->ca_pem;
}

static void add_name(vz_gw_listen_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_names; i++)
		if (strcasecmp(p->names[i], name) == 0)
			return;
	if (p->n_names < VZ_GW_MAX_NAMES && strlen(name) < sizeof(p->names[0]))
		snprintf(p->names[p->n_names++], sizeof(p->names[0]), "%s", name);
}

/* "users alice, bob; groups vzp11" for the start-up line. */
static void describe_ids(const vz_gw_access *a, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->cfg.n_users && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "users ",
					 a->cfg.allow_users[i]);
	for (size_t i = 0; i < a->cfg.n_groups && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s",
					 i ? ", " : (used ? "; groups " : "groups "),
					 a->cfg.allow_groups[i]);
}

vz_rv vz_gw_access_listen(const vz_gw_access *a, const vz_gw_addr *addr, vz_gw_listen_policy *out,
			  char *line, size_t size, vz_err *err)
{
	vz_gw_listen_policy p = {.n_names = 0};
	char ids[400];

	if (addr->is_unix) {
		p.auth = VZ_GW_AUTH_UNIX;
		add_name(&p, "localhost");
		describe_ids(a, ids, sizeof(ids));
		if (ids[0])
			snprintf(
				line, size,
				"unix:%s: plain HTTP for %s (checked by the peer's credentials; the "
				"socket is mode 0660)",
				addr->path, ids);
		else
			snprintf(line, size,
				 "unix:%s: plain HTTP for every user who may open the socket (mode "
				 "0660: its owner and group)",
				 addr->path);
	} else if (a->trust) {
		p.auth = VZ_GW_AUTH_CERT;
		add_name(&p, addr->host);
		if (addr->loopback)
			add_name(&p, "localhost");
		for (size_t i = 0; i < a->n_san; i++)
			add_name(&p, a->san[i]);
		snprintf(line, size,
			 "%s: HTTPS for clients with a certificate from %s (%zu revoked in %s)",
			 addr->host, a->cfg.client_ca, a->revoked,
			 a->cfg.crl ? a->cfg.crl : "none");
	} else if (addr->loopback && a->cfg.insecure_loopback) {
		p.auth = VZ_GW_AUTH_NONE;
		add_name(&p, addr->host);
		add_name(&p, "localhost");
		snprintf(line, size,
			 "WARNING: %s: plain HTTP without client authentication "
			 "(--insecure-loopback): every user and program on this machine can use "
			 "the token's key through it; only for a single-user machine",
			 addr->host);
	} else {
		if (addr->loopback) {
			vz_err_set(
				err,
				"refusing to serve %s without client authentication: every user "
				"and program on this machine could use the token's key through it",
				addr->host);
			vz_err_hint(err, "make client certificates with 'vzp11 clients init' and "
					 "give --clients DIR, listen on a unix: socket, or give "
					 "--insecure-loopback on a single-user machine");
		} else {
			vz_err_set(
				err,
				"refusing to listen on %s without client certificates: only unix: "
				"sockets and HTTPS with client certificates may serve clients",
				addr->host);
			vz_err_hint(err,
				    "make client certificates with 'vzp11 clients init' and "
				    "give --clients DIR (or --client-ca, --tls-cert, --tls-key)");
		}
		return VZ_USAGE;
	}
	*out = p;
	return VZ_OK;
}

vz_rv vz_gw_access_reload(vz_gw_access *a, vz_err *err)
{
	gnutls_x509_trust_list_t tl, old;
	size_t revoked;

	if (!a->trust)
		return VZ_OK;
	if (load_trust(a, &tl, &revoked, err) != VZ_OK)
		return VZ_FAIL;
	pthread_rwlock_wrlock(&a->lock);
	old = a->trust;
	a->trust = tl;
	a->revoked = revoked;
	a->generation++;
	pthread_rwlock_unlock(&a->lock);
	gnutls_x509_trust_list_deinit(old, 1);
	return VZ_OK;
}

unsigned long vz_gw_access_generation(const vz_gw_access *a)
{
	unsigned long g;

	pthread_rwlock_rdlock((pthread_rwlock_t *)&a->lock);
	g = a->generation;
	pthread_rwlock_unlock((pthread_rwlock_t *)&a->lock);
	return g;
}

/* A name safe for a log line: printable ASCII, the rest as '?'. */
static void clean_name(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"')
			*s = '?';
}

/* The client's certificate chain verified against the client CA and its
 * revocation list, for TLS client authentication. */
static const char *check_cert(const vz_gw_access *a, gnutls_session_t s, char *client, size_t size)
{
	unsigned n = 0, status = 0;
	const gnutls_datum_t *der = gnutls_certificate_get_peers(s, &n);
	gnutls_x509_crt_t crts[8];
	gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
					 .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
	const char *why = NULL;
	char cn[128] = "";
	size_t cn_len = sizeof(cn) - 1;
	unsigned k = 0;
	int r;

	if (!der || n == 0)
		return "refused: no client certificate (the gateway serves only clients with a "
		       "certificate from its client CA)";
	for (; k < n && k < 8; k++) {
		if (gnutls_x509_crt_init(&crts[k]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[k], &der[k], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[k]);
			break;
		}
	}
	if (k == 0)
		return "refused: the client certificate cannot be read";
	pthread_rwlock_rdlock((pthread_rwlock_t *)&a->lock);
	r = gnutls_x509_trust_list_verify_crt2(a->trust, crts, k, &purpose, 1, 0, &status, NULL);
	pthread_rwlock_unlock((pthread_rwlock_t *)&a->lock);
	if (r < 0 || status) {
		why = status & GNUTLS_CERT_REVOKED   ? "refused: the client certificate was revoked"
		      : status & GNUTLS_CERT_EXPIRED ? "refused: the client certificate has expired"
		      : status & GNUTLS_CERT_NOT_ACTIVATED
			      ? "refused: the client certificate is not valid yet"
		      : status & GNUTLS_CERT_PURPOSE_MISMATCH
			      ? "refused: the client certificate is not for TLS client "
				"authentication"
			      : "refused: the client certificate is not from the gateway's client "
				"CA";
	} else if (gnutls_x509_crt_get_dn_by_oid(crts[0], GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn,
						 &cn_len) < 0) {
		snprintf(cn, sizeof(cn), "?");
	}
	for (unsigned i = 0; i < k; i++)
		gnutls_x509_crt_deinit(crts[i]);
	if (why)
		return why;
	clean_name(cn);
	snprintf(client, size, "cert:%s", cn);
	return NULL;
}

/* Whether id is one of ids. */
static bool has_id(const unsigned *ids, size_t n, unsigned id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* The peer of a unix: socket, by its credentials (SO_PEERCRED and the
 * supplementary groups, SO_PEERGROUPS). */
static const char *check_unix(const vz_gw_access *a, int fd, char *client, size_t size)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	gid_t groups[256];
	socklen_t glen = sizeof(groups);
	struct passwd pw, *found = NULL;
	char buf[1024];
	bool allowed;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0)
		return "refused: the client's user cannot be told (SO_PEERCRED)";
	if (getpwuid_r(uc.uid, &pw, buf, sizeof(buf), &found) == 0 && found)
		snprintf(client, size, "uid:%s", found->pw_name);
	else
		snprintf(client, size, "uid:%u", (unsigned)uc.uid);
	clean_name(client);
	if (!a->n_uids && !a->n_gids)
		return NULL;
	allowed = has_id(a->uids, a->n_uids, uc.uid) || has_id(a->gids, a->n_gids, uc.gid);
	if (!allowed && a->n_gids &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0) {
		for (size_t i = 0; i < glen / sizeof(gid_t) && !allowed; i++)
			allowed = has_id(a->gids, a->n_gids, groups[i]);
	}
	return allowed ? NULL
		       : "refused: this user is not allowed to use the gateway (see its "
			 "--allow-user and --allow-group)";
}

const char *vz_gw_access_peer(const vz_gw_access *a, vz_gw_auth auth, int fd, void *tls_session,
			      char *client, size_t size)
{
	switch (auth) {
	case VZ_GW_AUTH_UNIX:
		return check_unix(a, fd, client, size);
	case VZ_GW_AUTH_CERT:
		if (!tls_session)
			return "refused: no TLS session";
		return check_cert(a, (gnutls_session_t)tls_session, client, size);
	case VZ_GW_AUTH_NONE:
		return NULL;
	}
	return "refused";
}

const char *vz_gw_access_browser(const char *origin, const char *sec_fetch_site)
{
	if (origin)
		return "refused: a request from a web page (it has an Origin header); the gateway "
		       "serves practice software, never a browser";
	if (sec_fetch_site && strcasecmp(sec_fetch_site, "none") != 0 &&
	    strcasecmp(sec_fetch_site, "same-origin") != 0)
		return "refused: a request a web page made (Sec-Fetch-Site is not none or "
		       "same-origin); the gateway serves practice software, never a browser";
	return NULL;
}
