/* tls.h - TLS with the token's key (pkcs11-provider in OpenSSL, for
 * libcurl) and the HTTP helpers the clients share. */
#ifndef VZP11_TLS_TLS_H
#define VZP11_TLS_TLS_H

#include <stdbool.h>
#include <time.h>
#include <curl/curl.h>
#include <openssl/x509.h>

#include "cli/cli.h"
#include "token/token.h"

/* ---- HTTP details shared by the VECOZO clients. */

#define VZ_RETRY_AFTER_MAX 120 /* seconds: a longer wish is cut to this */

/* Seconds to wait from a Retry-After value (delay-seconds or an HTTP date,
 * RFC 9110) received at now; 0 when it is unreadable or in the past. */
long vz_retry_after_s(const char *value, time_t now);

/* A transfer error in words, with what to check. */
const char *vz_http_curl_reason(CURLcode c);

/* A transfer error worth another try (the network, not the request). */
bool vz_http_transient(CURLcode c);

/* A transfer error that happened before the request could reach the
 * server (so nothing was sent). */
bool vz_http_not_sent(CURLcode c);

/* How long to wait before try attempt+1: exponential from 250 ms, or what
 * the server asked for (Retry-After), at most max_ms, plus random jitter. */
long vz_http_backoff_ms(unsigned attempt, long retry_after_s, long max_ms);

/* ---- mutual TLS with the key on the token, for libcurl. */

typedef struct vz_tls vz_tls;

/* Finds the certificate with this label and its CA chain on the token
 * (without logging in; after a login when the token shows certificates only
 * then, and that session stays open so the provider shares its login), then
 * loads pkcs11-provider into the default library context (default provider
 * first) and the private key through it. The PIN is read from
 * g->pin_source once, only if the token asks, and is never passed to the
 * provider as a file or argument. The key signs once in each scheme TLS
 * may use, verified with the certificate; an RSA key on a token without
 * RSA-PSS, or one that offers it but does not sign with it, is held to TLS
 * 1.2 with PKCS#1 v1.5 signatures (see vz_tls_rsa_scheme()). A key that
 * signs in no scheme is not refused here (its handshakes fail as they
 * would have; vz_tls_note() says why). */
vz_rv vz_tls_open(const vz_global *g, const char *label, vz_tls **out, vz_err *err);

/* Loads the private key with this CKA_ID from the token tk names (opened
 * by the caller, and logged in when its keys need a login: the provider
 * shares that login) through pkcs11-provider, without a certificate: for
 * signing other things than handshakes (the gateway's client CA). Only
 * vz_tls_key() and vz_tls_close() apply to the result. */
vz_rv vz_tls_open_key(const vz_global *g, const vz_token *tk, const unsigned char *id,
		      size_t id_len, vz_tls **out, vz_err *err);

/* vz_tls_open() in its two steps, for `selftest`, which reports each: the
 * key loaded but not tried yet (handshakes sign as the token's mechanism
 * list says), then tried (vz_tls_rsa_scheme() set from what it did; a key
 * that signs in no scheme, or a token that went away meanwhile, fails with
 * the reason and decides nothing). */
vz_rv vz_tls_open_untried(const vz_global *g, const char *label, vz_tls **out, vz_err *err);
vz_rv vz_tls_try_key(vz_tls *t, vz_err *err);

/* Prepares a curl handle: the token's certificate, chain and key for the
 * client side; the server verified against cacert alone (NULL: the system
 * store) with its host name; TLS 1.2 or newer (only 1.2 without RSA-PSS).
 * There is no way to turn verification off. */
vz_rv vz_tls_setup_curl(vz_tls *t, CURL *h, const char *cacert, vz_err *err);

/* TLS connections set up so far (each one a full or resumed handshake). */
size_t vz_tls_connections(const vz_tls *t);

/* Handshakes so far in which the token's key could not be used (the key
 * not accepted into the SSL_CTX, or the CertificateVerify not signed), and
 * handshakes that completed. A rising failure count while transfers fail
 * means the token may be gone: see vz_tls_reconnect(). */
size_t vz_tls_key_failures(const vz_tls *t);
size_t vz_tls_handshakes(const vz_tls *t);

/* Re-opens the module (C_Finalize, C_Initialize), loads pkcs11-provider
 * into a fresh library context that becomes this thread's default, and
 * loads the key there, reading the PIN again from its source if the token
 * asks; later handshakes use the new key, connections already made keep
 * theirs. Call it from the thread that runs the transfers, with no
 * transfer in a handshake. On failure *final says whether a later try is
 * pointless (the PIN failed, now or before: it is never sent again). */
vz_rv vz_tls_reconnect(vz_tls *t, bool *final, vz_err *err);

/* Makes t's library context the calling thread's default (libcurl makes
 * each connection's SSL_CTX there, and libssl signs through its provider):
 * for a thread that drives the transfers of several keys, before each
 * one's. vz_tls_leave() puts the process's own default back (before
 * vz_tls_open(), which loads keys there). */
void vz_tls_enter(const vz_tls *t);
void vz_tls_leave(void);

/* The token went away: the key's provider instance is dead. The key is
 * kept unused until the process ends instead of being freed (freeing it
 * with the token logged out makes pkcs11-provider 1.0 ask for the PIN on
 * the terminal); handshakes fail (a key failure) until vz_tls_reconnect(),
 * which forgets the old key itself. */
void vz_tls_forget_key(vz_tls *t);

/* Successful vz_tls_reconnect() calls. */
size_t vz_tls_reconnects(const vz_tls *t);

/* Subject of the client certificate, for messages. */
const char *vz_tls_subject(const vz_tls *t);

/* The key (through the provider) and the client certificate in use,
 * borrowed from t. */
EVP_PKEY *vz_tls_key(const vz_tls *t);
X509 *vz_tls_cert(const vz_tls *t);

/* What the token allows TLS to do with the key, for -v; "" for EC keys. */
const char *vz_tls_note(const vz_tls *t);

/* How an RSA key signs TLS handshakes, as decided when it was loaded. */
typedef enum vz_tls_rsa_sig {
	VZ_TLS_SIG_NOT_RSA = 0,
	VZ_TLS_SIG_PSS,		   /* it signed RSA-PSS: TLS 1.3 when the server offers it */
	VZ_TLS_SIG_PKCS1_UNLISTED, /* the token offers no RSA-PSS: TLS 1.2, PKCS#1 v1.5 */
	VZ_TLS_SIG_PKCS1_FALLBACK, /* the token offers RSA-PSS but did not sign with it
				      (vz_tls_note() says why): TLS 1.2, PKCS#1 v1.5; say
				      so once */
	VZ_TLS_SIG_PSS_ONLY,	   /* its PKCS#1 v1.5 signature does not verify: RSA-PSS
				      only, in TLS 1.2 too (vz_tls_note() says why) */
} vz_tls_rsa_sig;
vz_tls_rsa_sig vz_tls_rsa_scheme(const vz_tls *t);
/* The key signs otherwise than the token's mechanism list promised
 * (VZ_TLS_SIG_PKCS1_FALLBACK, VZ_TLS_SIG_PSS_ONLY): callers say
 * vz_tls_note() once, without -v too. */
bool vz_tls_fell_back(const vz_tls *t);

/* Signs 32 random bytes with key (digest md; RSA-PSS with the salt as long
 * as the digest when pss, as TLS does) and verifies the signature with pub
 * in OpenSSL's default provider: 1 verified, 0 signed but did not verify,
 * -1 could not sign (why, never empty then, says what the provider said),
 * -2 could not sign because the token went away (CKR_DEVICE_ERROR, ...).
 * The error queue is left empty. */
int vz_tls_try_sign(EVP_PKEY *key, EVP_PKEY *pub, const char *md, bool pss, char *why,
		    size_t why_size);

/* Whether the key is the certificate's (its public key, as the provider
 * exports it, is the certificate's): 1 yes, 0 no, -1 cannot tell. */
int vz_tls_key_matches(const vz_tls *t);

/* Frees everything, wipes the cached PIN, closes a session held for its
 * login. The provider stays loaded: the process is to end soon after. */
void vz_tls_close(vz_tls *t);

#endif
