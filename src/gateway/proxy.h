/* proxy.h - the gateway: HTTP(S) from the practice software in, through
 * libmicrohttpd, to the upstream threads (upstream.c). */
#ifndef VZP11_GW_PROXY_H
#define VZP11_GW_PROXY_H

#include "gw.h"

typedef struct vz_gw vz_gw;

/* Starts one upstream per label, taking tls[i] for cfg->labels[i] (each
 * closed by the gateway, also on failure); logs through cfg->log. */
vz_rv vz_gw_new(const vz_gw_cfg *cfg, vz_tls **tls, vz_gw **out, vz_err *err);

/* Serves on a listening socket fd (taken), as pol says (from
 * vz_gw_access_listen: plain HTTP, or HTTPS with client certificates). */
vz_rv vz_gw_serve(vz_gw *gw, int fd, const vz_gw_listen_policy *pol, vz_err *err);

/* New upstreams with tls[i] (taken) for new requests; the old ones finish
 * what they have and are freed by vz_gw_reap(). */
vz_rv vz_gw_reload(vz_gw *gw, vz_tls **tls, vz_err *err);
void vz_gw_reap(vz_gw *gw);

/* Stops accepting connections; answers from now on close their
 * connection. */
void vz_gw_quiesce(vz_gw *gw);
/* Requests begun and not yet answered. */
long vz_gw_in_flight(vz_gw *gw);

/* Aborts what is left and frees everything. */
void vz_gw_free(vz_gw *gw);

#endif
