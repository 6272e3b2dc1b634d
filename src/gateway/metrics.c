/* metrics.c - lock-free counters for requests and latency. */
#include <stdatomic.h>
#include <stdlib.h>

#include "metrics.h"

#define MAX_STATUS 600

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				 0.1,	 0.25,	0.5,	1,     2.5,  5,	    10};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct vz_gw_metrics {
	atomic_ulong requests[VZ_GW_SVC_N][MAX_STATUS]; /* status 0: dropped */
	atomic_ulong le[N_BUCKETS + 1];			/* the last one is +Inf */
	atomic_ulong micros, count, bytes_in, bytes_out;
};

vz_gw_metrics *vz_gw_metrics_new(void)
{
	return calloc(1, sizeof(vz_gw_metrics));
}

void vz_gw_metrics_free(vz_gw_metrics *m)
{
	free(m);
}

void vz_gw_metrics_request(vz_gw_metrics *m, vz_gw_service svc, unsigned status, double seconds,
			   size_t bytes_in, size_t bytes_out)
{
	size_t b = 0;

	if (svc >= VZ_GW_SVC_N)
		svc = VZ_GW_SVC_REFUSED;
	if (status >= MAX_STATUS)
		status = 0;
	atomic_fetch_add(&m->requests[svc][status], 1);
	while (b < N_BUCKETS && seconds > buckets[b])
		b++;
	atomic_fetch_add(&m->le[b], 1);
	atomic_fetch_add(&m->micros, (unsigned long)(seconds * 1e6));
	atomic_fetch_add(&m->count, 1);
	atomic_fetch_add(&m->bytes_in, bytes_in);
	atomic_fetch_add(&m->bytes_out, bytes_out);
}

void vz_gw_metrics_write(const vz_gw_metrics *m, FILE *f)
{
	unsigned long cum = 0;

	fprintf(f, "# HELP vzp11_gateway_requests_total Requests answered, by service and "
		   "status (0: connection dropped).\n"
		   "# TYPE vzp11_gateway_requests_total counter\n");
	for (int s = 0; s < VZ_GW_SVC_N; s++)
		for (unsigned c = 0; c < MAX_STATUS; c++) {
			unsigned long n = atomic_load(&m->requests[s][c]);

			if (n)
				fprintf(f,
					"vzp11_gateway_requests_total{service=\"%s\",status=\"%u\"} "
					"%lu\n",
					vz_gw_service_name((vz_gw_service)s), c, n);
		}
	fprintf(f, "# HELP vzp11_gateway_request_duration_seconds Time from request to the "
		   "end of the answer.\n"
		   "# TYPE vzp11_gateway_request_duration_seconds histogram\n");
	for (size_t b = 0; b <= N_BUCKETS; b++) {
		cum += atomic_load(&m->le[b]);
		if (b < N_BUCKETS)
			fprintf(f, "vzp11_gateway_request_duration_seconds_bucket{le=\"%g\"} %lu\n",
				buckets[b], cum);
		else
			fprintf(f,
				"vzp11_gateway_request_duration_seconds_bucket{le=\"+Inf\"} %lu\n",
				cum);
	}
	fprintf(f,
		"vzp11_gateway_request_duration_seconds_sum %.6f\n"
		"vzp11_gateway_request_duration_seconds_count %lu\n",
		atomic_load(&m->micros) / 1e6, atomic_load(&m->count));
	fprintf(f,
		"# TYPE vzp11_gateway_request_bytes_total counter\n"
		"vzp11_gateway_request_bytes_total %lu\n"
		"# TYPE vzp11_gateway_response_bytes_total counter\n"
		"vzp11_gateway_response_bytes_total %lu\n",
		atomic_load(&m->bytes_in), atomic_load(&m->bytes_out));
}
