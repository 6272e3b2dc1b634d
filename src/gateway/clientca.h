/* clientca.h - the gateway's local client CA: practice software proves who
 * it is to the gateway with a client certificate of its own (a .p12 it
 * can present like the VECOZO .pfx it used to), issued by a CA whose key is
 * made on the token and never leaves it. What the gateway reads lives in
 * one directory (`vzp11 gateway --clients DIR`):
 *   ca.crt      the client CA's certificate (also on the token, with the key)
 *   ca.crl      its revocation list, signed by the CA's key
 *   server.crt  the gateway's own HTTPS certificate, from the same CA
 *   server.key  its key (mode 0600; not on the token: it only proves the
 *               gateway to local clients)
 *   issued/     one PEM per client certificate issued, named by serial */
#ifndef VZP11_CLIENTCA_H
#define VZP11_CLIENTCA_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"

/* The label of the client CA's key and certificate on the token. */
#define VZ_CLIENTS_LABEL "vzp11-clients-ca"
/* Where the files live unless --dir says otherwise. */
#define VZ_CLIENTS_DIR "/var/lib/vzp11/clients"

/* One certificate of the client CA, as `clients list` shows it. */
typedef struct vz_client {
	char name[80];	    /* CN, cleaned for printing */
	char serial[64];    /* hex, upper case */
	char not_after[32]; /* ISO 8601, UTC */
	long days_left;	    /* negative when expired */
	bool revoked;
} vz_client;

/* Makes the client CA: an EC P-256 key pair generated on the token (label
 * VZ_CLIENTS_LABEL), its self-signed certificate (on the token and in
 * dir), an empty revocation list and the gateway's own HTTPS certificate
 * and key for the names given (besides localhost, 127.0.0.1 and ::1).
 * owner (a user name, or NULL) gets server.key, for the gateway's service
 * user. Refuses when dir or the token already holds a client CA. All or
 * nothing: on failure the token and dir are as before. */
vz_rv vz_clients_init(const vz_global *g, const char *dir, const char *const *names, size_t n_names,
		      const char *owner, vz_err *err);

/* Issues a client certificate for name (a program or workstation; 1-64
 * printable characters) valid for days, with a fresh RSA 2048 key, and
 * writes both with the CA's certificate as a PKCS#12 file out (mode 0600,
 * not over an existing file) under pass: AES-256 and a SHA-256 MAC, or
 * with legacy 3DES and SHA-1 for old Windows. Refuses a name that has a
 * valid certificate already. *info describes the new certificate. The
 * key is wiped from memory; only the .p12 holds it. */
vz_rv vz_clients_issue(const vz_global *g, const char *dir, const char *name, long days,
		       const char *out, const vz_secret *pass, bool legacy, vz_client *info,
		       vz_err *err);

/* The certificates issued from dir, oldest first (*out freed with free()),
 * and the CA itself in *ca. */
vz_rv vz_clients_list(const char *dir, vz_client **out, size_t *n, vz_client *ca, vz_err *err);

/* Revokes the certificates of a client name, or the one certificate with
 * this serial (hex): a new revocation list, signed on the token, replaces
 * ca.crl whole. The gateway applies it at its next SIGHUP. *n gets how
 * many were revoked now (0: nothing valid matched, VZ_NOT_FOUND). */
vz_rv vz_clients_revoke(const vz_global *g, const char *dir, const char *which, size_t *n,
			vz_err *err);

#endif
