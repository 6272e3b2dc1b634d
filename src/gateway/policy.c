/* policy.c - the gateway is never an open proxy: what it lets through is
 * decided here, on the raw request, before anything is sent upstream. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <curl/curl.h>

#include "billing/billing.h"
#include "policy.h"

/* The one table of what VECOZO serves behind the gateway. */
static const struct {
	const char *prefix;
	vz_gw_service svc;
} services[] = {
	{"/cov/", VZ_GW_SVC_COV},
	{"/berichtenservice/", VZ_GW_SVC_BERICHTEN},
};

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};

static const char *const hop_by_hop[] = {"Connection", "Keep-Alive", "Proxy-Connection",
					 "Proxy-Authenticate", "Proxy-Authorization", "TE",
					 "Trailer", "Transfer-Encoding", "Upgrade",
					 /* set by the gateway itself */
					 "Host", "Content-Length", "Expect", "Vzp11-Label"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *vz_gw_service_name(vz_gw_service s)
{
	static const char *const names[] = {"cov", "berichtenservice", "vzp11", "refused"};

	return s < VZ_GW_SVC_N ? names[s] : "refused";
}

static bool hexval(char c, int *v)
{
	if (c >= '0' && c <= '9')
		*v = c - '0';
	else if (c >= 'a' && c <= 'f')
		*v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		*v = c - 'A' + 10;
	else
		return false;
	return true;
}

/* Percent-encodings and characters that could make the upstream see
 * another path than the one checked here. */
static const char *check_chars(const char *p, size_t len, bool in_path)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		int hi, lo;

		if (c <= 0x20 || c >= 0x7f)
			return "refused: the path holds a space, control or non-ASCII character";
		if (c == '\\' && in_path)
			return "refused: the path holds a backslash";
		if (c != '%' || !in_path)
			continue;
		if (i + 2 >= len)
			return "refused: the path holds a broken percent-encoding";
		if (!hexval(p[i + 1], &hi) || !hexval(p[i + 2], &lo))
			return "refused: the path holds a broken percent-encoding";
		c = (unsigned char)(hi * 16 + lo);
		if (c == '/' || c == '.' || c == '\\' || c == '%' || c < 0x20)
			return "refused: the path holds a percent-encoded '/', '.', '\\', '%' or "
			       "control character";
		i += 2;
	}
	return NULL;
}

/* "." and ".." segments and empty segments ("//"). */
static const char *check_segments(const char *p, size_t len)
{
	size_t i = 1; /* p[0] is '/' */

	while (i <= len) {
		size_t end = i;

		while (end < len && p[end] != '/')
			end++;
		if (end == i && end < len)
			return "refused: the path holds an empty segment ('//')";
		if ((end - i == 1 && p[i] == '.') ||
		    (end - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return "refused: the path holds a '.' or '..' segment";
		i = end + 1;
	}
	return NULL;
}

/* An absolute-form target: its host must be the upstream's; *rest is its
 * path. */
static const char *strip_absolute(const char *target, const char *upstream_host, const char **rest)
{
	const char *auth, *end, *colon;
	char host[256];
	size_t hl;

	if (strncasecmp(target, "http://", 7) == 0)
		auth = target + 7;
	else if (strncasecmp(target, "https://", 8) == 0)
		auth = target + 8;
	else
		return "refused: the request target is neither a path nor an http(s) URI";
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)))
		return "refused: user information in the request URI";
	if (*auth == '[') {
		colon = memchr(auth, ']', (size_t)(end - auth));
		if (!colon)
			return "refused: a broken host in the request URI";
		auth++;
		hl = (size_t)(colon - auth);
	} else {
		colon = memchr(auth, ':', (size_t)(end - auth));
		hl = (size_t)((colon ? colon : end) - auth);
	}
	if (hl == 0 || hl >= sizeof(host))
		return "refused: a broken host in the request URI";
	memcpy(host, auth, hl);
	host[hl] = '\0';
	if (!upstream_host || strcasecmp(host, upstream_host) != 0)
		return "refused: the gateway only forwards to its configured VECOZO host, not to "
		       "another host";
	if (*end != '/')
		return "refused: the request URI has no path";
	*rest = end;
	return NULL;
}

const char *vz_gw_check_target(const char *method, const char *target, const char *upstream_host,
			       const char **path, vz_gw_service *svc)
{
	const char *p = target, *why;
	size_t plen;
	bool known = false;

	if (!method || strcmp(method, "CONNECT") == 0)
		return "refused: CONNECT is not served; the gateway is not an open proxy";
	for (size_t i = 0; i < N(methods); i++)
		known = known || strcmp(method, methods[i]) == 0;
	if (!known)
		return "refused: this HTTP method is not forwarded";
	if (!target || !*target)
		return "refused: an empty request target";
	if (strchr(target, '#'))
		return "refused: a fragment ('#') in the request target";
	if (*target != '/') {
		why = strip_absolute(target, upstream_host, &p);
		if (why)
			return why;
	}
	plen = strcspn(p, "?");
	why = check_chars(p, plen, true);
	if (!why)
		why = check_chars(p + plen, strlen(p + plen), false);
	if (!why)
		why = check_segments(p, plen);
	if (why)
		return why;
	if ((plen == strlen(VZ_GW_HEALTH_PATH) && strncmp(p, VZ_GW_HEALTH_PATH, plen) == 0) ||
	    (plen == strlen(VZ_GW_METRICS_PATH) && strncmp(p, VZ_GW_METRICS_PATH, plen) == 0)) {
		if (p != target)
			return "refused: the gateway's own paths take no absolute URI";
		*path = p;
		*svc = VZ_GW_SVC_OPS;
		return NULL;
	}
	for (size_t i = 0; i < N(services); i++) {
		size_t n = strlen(services[i].prefix);

		if (plen > n && strncmp(p, services[i].prefix, n) == 0) {
			*path = p;
			*svc = services[i].svc;
			return NULL;
		}
	}
	return "refused: not a VECOZO service path (allowed: /cov/..., /berichtenservice/...)";
}

/* host without its port and brackets, into buf. */
static bool host_only(const char *h, char *buf, size_t size)
{
	size_t n;

	if (*h == '[') {
		const char *e = strchr(h, ']');

		if (!e || (e[1] && e[1] != ':'))
			return false;
		n = (size_t)(e - h - 1);
		h++;
	} else {
		const char *c = strchr(h, ':');

		n = c ? (size_t)(c - h) : strlen(h);
		if (c && strchr(c + 1, ':'))
			return false;
	}
	if (n == 0 || n >= size)
		return false;
	memcpy(buf, h, n);
	buf[n] = '\0';
	return true;
}

static bool is_loopback_host(const char *h)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcasecmp(h, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

const char *vz_gw_check_host(const char *host, const char *upstream_host, const char (*names)[256],
			     size_t n_names)
{
	char h[256];

	if (!host)
		return NULL;
	if (!host_only(host, h, sizeof(h)))
		return "refused: a malformed Host header";
	if (upstream_host && strcasecmp(h, upstream_host) == 0)
		return NULL;
	for (size_t i = 0; i < n_names; i++)
		if (names[i][0] && strcasecmp(h, names[i]) == 0)
			return NULL;
	return "refused: the Host header names neither the gateway nor its VECOZO host";
}

const char *vz_gw_pick_label(const char *header, const char *const *labels, size_t n, size_t *idx)
{
	if (!header) {
		if (n == 0)
			return "refused: the gateway serves no certificate label";
		*idx = 0;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(header, labels[i]) == 0) {
			*idx = i;
			return NULL;
		}
	}
	return "refused: the gateway does not serve the certificate label named in Vzp11-Label";
}

/* Whether the comma-separated list holds name as a token. */
static bool list_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (list && *list) {
		size_t len;

		while (*list == ' ' || *list == '\t' || *list == ',')
			list++;
		len = strcspn(list, " \t,");
		if (len == n && strncasecmp(list, name, n) == 0)
			return true;
		list += len;
	}
	return false;
}

bool vz_gw_hop_by_hop(const char *name, const char *connection)
{
	size_t len = strlen(name);

	/* every header of every request passes here: compare only names of
	 * the same length */
	for (size_t i = 0; i < N(hop_by_hop); i++)
		if (len == strlen(hop_by_hop[i]) && strcasecmp(name, hop_by_hop[i]) == 0)
			return true;
	return connection && list_has(connection, name);
}

static bool parse_port(const char *s, unsigned short *port)
{
	char *end = NULL;
	long v;

	if (!*s || !isdigit((unsigned char)*s))
		return false;
	v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 65535)
		return false;
	*port = (unsigned short)v;
	return true;
}

vz_rv vz_gw_parse_listen(const char *addr, vz_gw_addr *out, vz_err *err)
{
	vz_gw_addr a;
	const char *colon;
	unsigned short port;
	size_t hl;

	memset(&a, 0, sizeof(a));
	if (strncmp(addr, "unix:", 5) == 0) {
		if (addr[5] != '/' || strlen(addr + 5) >= sizeof(a.path)) {
			vz_err_set(err,
				   "--listen %s: give an absolute socket path shorter than %zu "
				   "characters",
				   addr, sizeof(a.path));
			return VZ_USAGE;
		}
		a.is_unix = true;
		a.loopback = true;
		snprintf(a.path, sizeof(a.path), "%s", addr + 5);
		*out = a;
		return VZ_OK;
	}
	if (*addr == '[') {
		const char *e = strchr(addr, ']');

		colon = e && e[1] == ':' ? e + 1 : NULL;
		hl = e ? (size_t)(e - addr - 1) : 0;
		addr++;
	} else {
		colon = strrchr(addr, ':');
		hl = colon ? (size_t)(colon - addr) : 0;
	}
	if (!colon || hl == 0 || hl >= sizeof(a.host) || !parse_port(colon + 1, &port)) {
		vz_err_set(err,
			   "--listen %s: give 127.0.0.1:PORT, [::1]:PORT, unix:/PATH or "
			   "HOST:PORT",
			   addr);
		return VZ_USAGE;
	}
	memcpy(a.host, addr, hl);
	a.host[hl] = '\0';
	if (strcmp(a.host, "localhost") == 0)
		snprintf(a.host, sizeof(a.host), "127.0.0.1");
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a.sa;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.sa;

		if (inet_pton(AF_INET, a.host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons(port);
			a.sa_len = sizeof(*s4);
		} else if (inet_pton(AF_INET6, a.host, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(port);
			a.sa_len = sizeof(*s6);
		} else {
			vz_err_set(err, "--listen %s: the host must be a numeric IP address", addr);
			return VZ_USAGE;
		}
	}
	a.loopback = is_loopback_host(a.host);
	*out = a;
	return VZ_OK;
}

const char *vz_gw_env_base(const char *env, char *buf, size_t size)
{
	static const char suffix[] = "/berichtenservice";
	const char *url = vz_br_endpoint(env);
	size_t n;

	if (!url)
		return NULL;
	n = strlen(url);
	if (n < sizeof(suffix) || strcmp(url + n - (sizeof(suffix) - 1), suffix) != 0 ||
	    n - (sizeof(suffix) - 1) >= size)
		return NULL;
	memcpy(buf, url, n - (sizeof(suffix) - 1));
	buf[n - (sizeof(suffix) - 1)] = '\0';
	return buf;
}

vz_rv vz_gw_parse_upstream(const char *url, char *host, size_t size, vz_err *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *h = NULL, *user = NULL, *query = NULL, *frag = NULL;
	vz_rv ret = VZ_USAGE;

	if (!u) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || strcmp(scheme, "https") != 0) {
		vz_err_set(err, "--upstream %s: give an https:// URL", url);
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	if (user || query || frag || strchr(url, '?') || strchr(url, '#')) {
		vz_err_set(err, "--upstream %s: a base URL takes no user, query or fragment", url);
		goto out;
	}
	if (*h == '[') { /* curl keeps an IPv6 host in brackets */
		size_t n = strlen(h);

		memmove(h, h + 1, n - 1);
		h[n - 2] = '\0';
	}
	if (strlen(h) >= size) {
		vz_err_set(err, "--upstream %s: the host name is too long", url);
		goto out;
	}
	snprintf(host, size, "%s", h);
	ret = VZ_OK;
out:
	curl_free(scheme);
	curl_free(h);
	curl_free(user);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(u);
	return ret;
}

/* RFC 9110 5.6.2 tchar. */
static bool tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The bytes from p to q end one line: a CRLF or LF, both turned to NULs. */
static bool line_end(const char *p, const char *q)
{
	return (q - p == 1 || q - p == 2) && !p[0] && !p[q - p - 1];
}

/* Whether the fields lie in place in [head, head + size), in order, with
 * nothing between them but the colon, blanks before the value and line
 * ends (see vz_gw_check_head). */
static bool head_in_place(const char *head, size_t size, const vz_gw_field *f, size_t n)
{
	uintptr_t lo = (uintptr_t)head, hi = lo + size, at;
	const char *p = head;

	if (!head || !size || !n)
		return head && size; /* no fields: nothing MHD could have changed */
	for (size_t i = 0; i < n; i++) {
		uintptr_t nm = (uintptr_t)f[i].name, v = (uintptr_t)f[i].value;

		/* compare as numbers first: a glued name lies elsewhere */
		if (nm < (uintptr_t)p || nm + f[i].name_len + 1 > v || v + f[i].value_len > hi ||
		    nm >= hi || v < lo)
			return false;
		if (i == 0) {
			const char *q = f[0].name;

			/* the request line ends in CR LF or LF, NULs now */
			if (q - head < 3 || q[-1])
				return false;
		} else if (!line_end(p, f[i].name)) {
			return false;
		}
		for (const char *c = f[i].name + f[i].name_len + 1; c < f[i].value; c++)
			if (*c != ' ' && *c != '\t')
				return false;
		if (f[i].name[f[i].name_len])
			return false;
		p = f[i].value + f[i].value_len;
	}
	/* the last line's end and the empty line's */
	at = (uintptr_t)p;
	if (hi - at < 2 || hi - at > 4)
		return false;
	for (const char *c = p; (uintptr_t)c < hi; c++)
		if (*c)
			return false;
	return true;
}

static bool plain_decimal(const char *v, size_t len, unsigned long long *out)
{
	unsigned long long n = 0;

	if (!len || len > 18)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (unsigned long long)(v[i] - '0');
	}
	*out = n;
	return true;
}

const char *vz_gw_check_head(const char *head, size_t head_size, const vz_gw_field *f, size_t n,
			     vz_gw_body *body, unsigned long long *length)
{
	unsigned long long clen = 0, v;
	bool have_clen = false, have_te = false;

	if (n > VZ_GW_MAX_FIELDS)
		return "refused: the request has more header fields than the gateway takes";
	if (!head_in_place(head, head_size, f, n))
		return "refused: a header line is folded (starts with a space or tab) or holds a "
		       "NUL; send each field on one line";
	for (size_t i = 0; i < n; i++) {
		if (!f[i].name_len)
			return "refused: a header field has an empty name";
		for (size_t k = 0; k < f[i].name_len; k++)
			if (!tchar((unsigned char)f[i].name[k]))
				return "refused: a header field name holds a space, control or "
				       "separator character";
		for (size_t k = 0; k < f[i].value_len; k++) {
			unsigned char c = (unsigned char)f[i].value[k];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return "refused: a header field value holds a CR, LF, NUL or other "
				       "control character";
		}
		if (f[i].name_len == 17 && strncasecmp(f[i].name, "Transfer-Encoding", 17) == 0) {
			if (have_te)
				return "refused: the request has two Transfer-Encoding fields";
			have_te = true;
			if (f[i].value_len != 7 || strncasecmp(f[i].value, "chunked", 7) != 0)
				return "refused: the gateway takes no Transfer-Encoding other than "
				       "chunked";
		} else if (f[i].name_len == 14 &&
			   strncasecmp(f[i].name, "Content-Length", 14) == 0) {
			if (!plain_decimal(f[i].value, f[i].value_len, &v))
				return "refused: the Content-Length is not a plain decimal number";
			if (have_clen && v != clen)
				return "refused: the request has Content-Length fields that differ";
			have_clen = true;
			clen = v;
		}
	}
	if (have_te && have_clen)
		return "refused: the request has both Content-Length and Transfer-Encoding; send "
		       "one";
	*body = have_te		    ? VZ_GW_BODY_CHUNKED
		: have_clen && clen ? VZ_GW_BODY_LENGTH
				    : VZ_GW_BODY_NONE;
	*length = clen;
	return NULL;
}
