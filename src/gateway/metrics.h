/* metrics.h - the gateway's counters, shown in Prometheus text format. */
#ifndef VZP11_GW_METRICS_H
#define VZP11_GW_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "policy.h"

typedef struct vz_gw_metrics vz_gw_metrics;

/* Zeroed counters; NULL when out of memory. */
vz_gw_metrics *vz_gw_metrics_new(void);
void vz_gw_metrics_free(vz_gw_metrics *m);

/* One finished request: its service, the status answered (0: none, the
 * connection dropped), the seconds it took and the bytes of both bodies.
 * Safe from any thread. */
void vz_gw_metrics_request(vz_gw_metrics *m, vz_gw_service svc, unsigned status, double seconds,
			   size_t bytes_in, size_t bytes_out);

/* Writes the request counters and the latency histogram to f. */
void vz_gw_metrics_write(const vz_gw_metrics *m, FILE *f);

#endif
