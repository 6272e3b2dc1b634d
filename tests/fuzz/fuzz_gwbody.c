/* fuzz_gwbody.c - libFuzzer target: raw request bytes through a real
 * libmicrohttpd daemon set up as the gateway's listeners are (pedantic,
 * the gateway's connection memory) with the gateway's head check on top.
 * When the first request of the input reaches its end (what the gateway
 * would forward), the body libmicrohttpd handed over must be the body a
 * strict reading of the same bytes gives, written here apart from both:
 * Content-Length bytes after the head, or the data of the chunks. Refusing
 * is always allowed; a different body aborts, so libFuzzer reports it.
 * libmicrohttpd before 1.0 takes a bare LF for CRLF in chunk lines and
 * cannot be told otherwise (see tests/tools/framing-diff): on those
 * versions the strict reading does too. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "gw.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY (256 * 1024)

/* What the daemon did with the input's first request. */
struct seen_req {
	unsigned requests;  /* begun on the connection */
	bool refused;	    /* the head check or libmicrohttpd refused it */
	bool complete;	    /* its body reached its end */
	vz_gw_body framing; /* as the head check read the head */
	unsigned long long length;
	size_t head_size;
	unsigned char body[MAX_BODY];
	size_t body_len;
	bool too_long;
};
static struct seen_req seen;

struct fields {
	vz_gw_field f[VZ_GW_MAX_FIELDS + 1];
	size_t n;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
			       const char *value, size_t value_size)
{
	struct fields *fs = cls;

	(void)kind;
	if (fs->n == VZ_GW_MAX_FIELDS + 1)
		return MHD_NO;
	fs->f[fs->n++] = (vz_gw_field){key, value ? value : "", key_size, value ? value_size : 0};
	return MHD_YES;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = r ? MHD_queue_response(c, status, r) : MHD_NO;

	MHD_destroy_response(r);
	return ret;
}

/* The gateway's first call (its framing check), the body pieces, the end. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	const union MHD_ConnectionInfo *ci;
	struct fields fs = {.n = 0};
	bool first;

	(void)cls;
	(void)url;
	(void)version;
	if (!*con_cls) {
		*con_cls = c;
		first = seen.requests++ == 0;
		if (!first)
			return answer(c, 200); /* only the first request is judged */
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
		seen.head_size = ci ? ci->header_size : 0;
		MHD_get_connection_values_n(c, MHD_HEADER_KIND, collect, &fs);
		if (vz_gw_check_head(method, seen.head_size, fs.f, fs.n, &seen.framing,
				     &seen.length)) {
			seen.refused = true;
			return answer(c, 400);
		}
		return MHD_YES;
	}
	if (seen.requests > 1 || seen.refused)
		return *upload_size = 0, MHD_YES;
	if (*upload_size) {
		if (seen.body_len + *upload_size > MAX_BODY)
			seen.too_long = true;
		else
			memcpy(seen.body + seen.body_len, upload, *upload_size);
		seen.body_len += *upload_size;
		*upload_size = 0;
		return MHD_YES;
	}
	seen.complete = true;
	return answer(c, 200);
}

/* The end of a line in a chunked body: CRLF, or (lenient) a bare LF; the
 * bytes it takes, 0 when there is none at p. */
static size_t line_end(const uint8_t *p, const uint8_t *end, bool lenient)
{
	if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	if (lenient && p < end && p[0] == '\n')
		return 1;
	return 0;
}

/* The strict reading of a chunked body at p: the chunks' data into out;
 * false when the framing is not one RFC 9112 allows (or it ends early). */
static bool dechunk(const uint8_t *p, const uint8_t *end, bool lenient, unsigned char *out,
		    size_t *out_len)
{
	size_t len = 0;

	for (;;) {
		unsigned long long n = 0;
		size_t digits = 0, e;

		for (; p < end && strchr("0123456789abcdefABCDEF", *p) && *p; p++, digits++) {
			if (n >> 60)
				return false; /* too big to be real */
			n = n * 16 +
			    (unsigned long long)(*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10);
		}
		if (!digits)
			return false;
		/* extensions: skipped to the line's end (libmicrohttpd before 1.0
		 * skips to the LF, a CR on the way included) */
		if (p < end && *p == ';') {
			while (p < end && *p != '\n' && (lenient || *p != '\r'))
				p++;
			e = lenient && p < end ? 1 : line_end(p, end, lenient);
		} else {
			e = line_end(p, end, lenient);
		}
		if (!e)
			return false;
		p += e;
		if (n == 0)
			break;
		if ((unsigned long long)(end - p) < n || len + n > MAX_BODY)
			return false;
		memcpy(out + len, p, (size_t)n);
		len += (size_t)n;
		p += n;
		e = line_end(p, end, lenient);
		if (!e)
			return false;
		p += e;
	}
	*out_len = len;
	return true;
}

static struct MHD_Daemon *daemon_once(void)
{
	static struct MHD_Daemon *d;

	if (!d)
		d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, handle, NULL,
				     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)VZ_GW_POOL,
				     MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_CONNECTION_TIMEOUT,
				     0U, MHD_OPTION_END);
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char want[MAX_BODY];
	struct MHD_Daemon *d = daemon_once();
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *v = MHD_get_version();
	bool lenient = v && strncmp(v, "0.", 2) == 0;
	size_t want_len = 0, off = 0;
	char sink[4096];
	int s[2];

	if (!d || size > 65536 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0)
		return 0;
	memset(&seen, 0, offsetof(struct seen_req, body));
	seen.body_len = 0;
	seen.too_long = false;
	fcntl(s[1], F_SETFL, O_NONBLOCK);
	if (MHD_add_connection(d, s[0], (struct sockaddr *)&sun, sizeof(sa_family_t)) != MHD_YES) {
		close(s[1]);
		return 0;
	}
	/* the input, then its end; the answers read away as they come */
	for (int turn = 0; turn < 400; turn++) {
		if (off < size) {
			ssize_t w = write(s[1], data + off, size - off);

			if (w > 0)
				off += (size_t)w;
			if (off == size)
				shutdown(s[1], SHUT_WR);
		}
		while (read(s[1], sink, sizeof(sink)) > 0)
			;
		MHD_run(d);
		if (seen.complete || seen.refused)
			break;
	}
	close(s[1]);
	for (int turn = 0; turn < 4; turn++)
		MHD_run(d);
	if (!seen.complete || seen.refused)
		return 0; /* refused, or never whole: nothing would go upstream */
	if (seen.framing == VZ_GW_BODY_LENGTH) {
		if (seen.head_size > size || size - seen.head_size < seen.length)
			abort(); /* a whole body libmicrohttpd cannot have received */
		want_len = (size_t)seen.length;
		memcpy(want, data + seen.head_size, want_len < MAX_BODY ? want_len : MAX_BODY);
	} else if (seen.framing == VZ_GW_BODY_CHUNKED) {
		if (seen.head_size > size ||
		    !dechunk(data + seen.head_size, data + size, lenient, want, &want_len))
			abort(); /* libmicrohttpd took framing the strict reading refuses */
	}
	if (seen.too_long || want_len > MAX_BODY)
		return 0;
	if (seen.body_len != want_len || memcmp(seen.body, want, want_len) != 0)
		abort(); /* another body than the bytes say */
	return 0;
}
