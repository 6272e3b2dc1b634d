/* probe.h - a signature with the token's key, for the health check. */
#ifndef VZP11_GW_PROBE_H
#define VZP11_GW_PROBE_H

#include <stddef.h>

#include "tls/tls.h"

typedef enum vz_gw_probe {
	VZ_GW_PROBE_OK,
	VZ_GW_PROBE_NO_SIGNATURE, /* the token did not sign: away, or the key unusable */
	VZ_GW_PROBE_MISMATCH,	  /* signed, but not with the certificate's key */
} vz_gw_probe;

/* Signs a random challenge with t's key and verifies the signature with
 * its certificate's public key; on failure a one-line reason in why. Call
 * it on the thread that makes t's handshakes. */
vz_gw_probe vz_gw_sign_probe(vz_tls *t, char *why, size_t size);

#endif
