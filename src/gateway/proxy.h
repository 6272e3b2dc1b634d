/* proxy.h - the gateway: HTTP(S) from the practice software in, through
 * libmicrohttpd (proxy.c), to VECOZO through libcurl (upstream.c), in one
 * event loop (gateway.c). */
#ifndef VZP11_GW_PROXY_H
#define VZP11_GW_PROXY_H

#include <signal.h>

#include "gw.h"

/* One upstream per label, taking tls[i] for cfg->labels[i] (each closed by
 * the gateway, also on failure); logs through cfg->log. */
vz_rv vz_gw_new(const vz_gw_cfg *cfg, vz_tls **tls, vz_gw **out, vz_err *err);

/* Serves on a listening socket fd (taken), as pol says (from
 * vz_gw_access_listen: plain HTTP, or HTTPS with client certificates). */
vz_rv vz_gw_serve(vz_gw *gw, int fd, const vz_gw_listen_policy *pol, vz_err *err);

/* Runs the gateway until one of sigs arrives (they must be blocked);
 * returns the signal, -1 when the signal fd cannot be made. */
int vz_gw_run(vz_gw *gw, const sigset_t *sigs);

/* New upstreams with tls[i] (taken) for new requests; the old ones finish
 * what they have and are freed once idle. */
vz_rv vz_gw_reload(vz_gw *gw, vz_tls **tls, vz_err *err);

/* Stops accepting connections; answers from now on close their
 * connection. */
void vz_gw_quiesce(vz_gw *gw);
/* Runs until no request is in flight or until_us (vz_gw_now_us() time);
 * returns the requests still in flight. */
long vz_gw_drain(vz_gw *gw, long long until_us);

/* Aborts what is left and frees everything. */
void vz_gw_free(vz_gw *gw);

#endif
