/* tls.h - mutual TLS with the key on the token, for libcurl. */
#ifndef VZP11_TLS_H
#define VZP11_TLS_H

#include <curl/curl.h>

#include "cli.h"
#include "err.h"

typedef struct vz_tls vz_tls;

/* Finds the certificate with this label and its CA chain on the token
 * (without logging in), then loads pkcs11-provider into the default
 * library context (default provider first) and the private key through
 * it. The PIN is read from g->pin_source once, only if the token asks, and
 * is never passed to the provider as a file or argument. */
vz_rv vz_tls_open(const vz_global *g, const char *label, vz_tls **out, vz_err *err);

/* Prepares a curl handle: the token's certificate, chain and key for the
 * client side; the server verified against cacert alone (NULL: the system
 * store) with its host name; TLS 1.2 or newer. There is no way to turn
 * verification off. */
vz_rv vz_tls_setup_curl(vz_tls *t, CURL *h, const char *cacert, vz_err *err);

/* TLS connections set up so far (each one a full or resumed handshake). */
size_t vz_tls_connections(const vz_tls *t);

/* Subject of the client certificate, for messages. */
const char *vz_tls_subject(const vz_tls *t);

/* Frees everything, wipes the cached PIN. The provider stays loaded: the
 * module must not be finalized under it before the process ends. */
void vz_tls_close(vz_tls *t);

#endif
