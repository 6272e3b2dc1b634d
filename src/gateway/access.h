/* access.h - who may use the token's key through the gateway. The one place
 * that decides it: per listen address at start (and says so), per client
 * connection (its certificate or its Unix user) and per request (no web
 * page, only the gateway's own names as Host). */
#ifndef VZP11_GW_ACCESS_H
#define VZP11_GW_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"
#include "policy.h"

/* How the clients of one listen address prove who they are. */
typedef enum vz_gw_auth {
	VZ_GW_AUTH_UNIX, /* unix: socket, plain HTTP: its file mode, and the peer's
			    user and groups against --allow-user/--allow-group */
	VZ_GW_AUTH_CERT, /* TCP, HTTPS: a client certificate from the client CA */
	VZ_GW_AUTH_NONE, /* loopback TCP, plain HTTP, --insecure-loopback: anyone */
} vz_gw_auth;

typedef struct vz_gw_access_cfg {
	bool insecure_loopback;
	/* HTTPS towards the gateway: all four files, or none */
	const char *client_ca, *crl, *tls_cert, *tls_key;
	const char *const *allow_users;
	size_t n_users;
	const char *const *allow_groups;
	size_t n_groups;
} vz_gw_access_cfg;

typedef struct vz_gw_access vz_gw_access;

/* At most this many names a listen address answers to (Host). */
#define VZ_GW_MAX_NAMES 16

/* One listen address as the policy sees it. */
typedef struct vz_gw_listen_policy {
	vz_gw_auth auth;
	char names[VZ_GW_MAX_NAMES][256]; /* what Host may name; names[0] may be "" */
	size_t n_names;
} vz_gw_listen_policy;

/* Reads the client CA, revocation list and the gateway's own certificate
 * and key (a key file others can read is refused), resolves the users and
 * groups. VZ_USAGE for a contradiction in cfg (err says what to change). */
vz_rv vz_gw_access_new(const vz_gw_access_cfg *cfg, vz_gw_access **out, vz_err *err);
void vz_gw_access_free(vz_gw_access *a);

/* Decides how clients of listen address addr authenticate, and the names
 * they may send as Host. A TCP address without client certificates is
 * refused (VZ_USAGE, err says what to add) unless it is loopback and
 * --insecure-loopback was given. line gets the start-up line that says who
 * may use the address. */
vz_rv vz_gw_access_listen(const vz_gw_access *a, const vz_gw_addr *addr, vz_gw_listen_policy *out,
			  char *line, size_t size, vz_err *err);

/* The PEM texts libmicrohttpd serves HTTPS with (NULL without --client-ca):
 * borrowed from a, valid until vz_gw_access_free(). */
const char *vz_gw_access_cert_pem(const vz_gw_access *a);
const char *vz_gw_access_key_pem(const vz_gw_access *a);
const char *vz_gw_access_ca_pem(const vz_gw_access *a);

/* Reads the revocation list again (SIGHUP): clients checked before are
 * checked again at their next request. VZ_FAIL keeps the old list. */
vz_rv vz_gw_access_reload(vz_gw_access *a, vz_err *err);

/* Changes with every reload: a connection checked at another generation
 * is checked again. */
unsigned long vz_gw_access_generation(const vz_gw_access *a);

/* Who is on the other end of a client connection: fd is its socket,
 * tls_session its GnuTLS session (NULL without HTTPS). NULL and the
 * client's name for the log in client ("cert:NAME", "uid:USER",
 * "127.0.0.1"), or a one-line reason for a 403. */
const char *vz_gw_access_peer(const vz_gw_access *a, vz_gw_auth auth, int fd, void *tls_session,
			      char *client, size_t size);

/* A request a web browser sends for a page (an Origin header, or
 * Sec-Fetch-Site other than none or same-origin): a one-line reason for a
 * 403, or NULL. */
const char *vz_gw_access_browser(const char *origin, const char *sec_fetch_site);

#endif
