/* policy.h - what the gateway lets through: service paths, hosts, labels,
 * listen addresses. Pure functions, no I/O: unit-tested in
 * tests/unit/test_gateway.c. */
#ifndef VZP11_GW_POLICY_H
#define VZP11_GW_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cli/cli.h"

/* The services the gateway serves; a metric label each. */
typedef enum vz_gw_service {
	VZ_GW_SVC_COV,
	VZ_GW_SVC_BERICHTEN,
	VZ_GW_SVC_OPS, /* /_vzp11/health and /_vzp11/metrics */
	VZ_GW_SVC_REFUSED,
	VZ_GW_SVC_N
} vz_gw_service;

/* The metric label of a service ("cov", "berichtenservice", ...). */
const char *vz_gw_service_name(vz_gw_service s);

/* The gateway's own paths, answered locally. */
#define VZ_GW_HEALTH_PATH  "/_vzp11/health"
#define VZ_GW_METRICS_PATH "/_vzp11/metrics"

/* Checks a request line's method and raw request-target (as received, not
 * unescaped). Allowed: an origin-form path under a VECOZO service prefix,
 * or an absolute-form http(s) URI whose host is upstream_host. Refused
 * before any matching: CONNECT and unknown methods, "*", a fragment, "."
 * or ".." segments, empty segments, percent-encoded '/', '.' or '\', a
 * backslash, control characters or spaces. Returns NULL and sets *path (a
 * pointer into target: path and query, to append to the upstream base) and
 * *svc; or a one-line reason for a 403. */
const char *vz_gw_check_target(const char *method, const char *target, const char *upstream_host,
			       const char **path, vz_gw_service *svc);

/* Checks the Host header (NULL: none, as in HTTP/1.0): one of the names of
 * the listen address the request came in on (see vz_gw_access_listen), any
 * port, or the upstream's host (a request in absolute form, the gateway as
 * an HTTP proxy: a web page cannot make a browser send that Host to the
 * gateway). NULL when fine, else a one-line reason. */
const char *vz_gw_check_host(const char *host, const char *upstream_host, const char (*names)[256],
			     size_t n_names);

/* Which of the labels a Vzp11-Label header value (NULL: none) picks: the
 * first without the header. NULL and *idx, or a one-line reason. */
const char *vz_gw_pick_label(const char *header, const char *const *labels, size_t n, size_t *idx);

/* A header that belongs to one connection, not to the message (RFC 9110
 * 7.6.1), or one the gateway sets itself (Host, Content-Length, Expect,
 * Vzp11-Label); connection is the Connection header's value (its tokens are
 * hop-by-hop too), or NULL. */
bool vz_gw_hop_by_hop(const char *name, const char *connection);

/* One header field as libmicrohttpd handed it: pointers into its read
 * buffer, where 0.9.75 parses the request head in place. */
typedef struct vz_gw_field {
	const char *name, *value;
	size_t name_len, value_len;
} vz_gw_field;

/* How the request body is framed (by libmicrohttpd; the gateway only
 * checks that the headers leave no doubt about it). */
typedef enum vz_gw_body {
	VZ_GW_BODY_NONE,
	VZ_GW_BODY_LENGTH,
	VZ_GW_BODY_CHUNKED
} vz_gw_body;

/* At most this many header fields in a request. */
#define VZ_GW_MAX_FIELDS 100

/* Checks a request head as libmicrohttpd handed it: head is the start of
 * the request line in its read buffer, head_size the head's length on the
 * wire (MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE), f the n fields in the
 * order received. Every byte of the head must be accounted for by the
 * fields in place, each line ending in CRLF or LF: so a folded line
 * (libmicrohttpd glues it to the field's name elsewhere in its pool) or a
 * NUL (it cuts the value short) is refused, not forwarded changed (NULs
 * right before a line end look like its CR and are dropped like it). Also
 * refused: a name that is not a token, a CR, LF, NUL or other control
 * character in a value, Content-Length with Transfer-Encoding, two
 * Transfer-Encoding fields or one other than "chunked", Content-Length
 * copies that differ or are not plain decimal. Returns NULL and sets *body
 * and *length (the body's length for VZ_GW_BODY_LENGTH), or a one-line
 * reason for a 400. */
const char *vz_gw_check_head(const char *head, size_t head_size, const vz_gw_field *f, size_t n,
			     vz_gw_body *body, unsigned long long *length);

/* A parsed --listen ADDR. */
typedef struct vz_gw_addr {
	bool is_unix;
	bool loopback;
	char host[64];		    /* numeric address, without brackets; "" for unix */
	char path[108];		    /* the socket's path for unix: */
	struct sockaddr_storage sa; /* for TCP */
	socklen_t sa_len;
} vz_gw_addr;

/* 127.0.0.1:PORT, [::1]:PORT, localhost:PORT, unix:/path, or a numeric
 * HOST:PORT (loopback false unless in 127.0.0.0/8 or ::1). */
vz_rv vz_gw_parse_listen(const char *addr, vz_gw_addr *out, vz_err *err);

/* The base URL of a VECOZO environment (tst, acc, prd): where /cov/... and
 * /berichtenservice/... live; NULL if unknown. */
const char *vz_gw_env_base(const char *env, char *buf, size_t size);

/* Checks an --upstream base URL (https://host[:port][/prefix], no query,
 * fragment or user) and copies its host (without brackets) to host. */
vz_rv vz_gw_parse_upstream(const char *url, char *host, size_t size, vz_err *err);

#endif
