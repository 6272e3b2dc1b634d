/* fuzz_gwhead.c - libFuzzer target: the gateway's request-head check
 * (vz_gw_check_head, src/gateway/policy.c) on heads laid out the way
 * libmicrohttpd 0.9.75 leaves them in its read buffer. Besides not
 * crashing, a head it lets through must be one the upstream reads as the
 * gateway does: no line was folded or cut at a NUL, no value holds a
 * control character, no Content-Length next to Transfer-Encoding, and the
 * body's length is the one every Content-Length copy names. A breach
 * aborts, so libFuzzer reports it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEAD 8192

/* The model of libmicrohttpd 0.9.75's head parser, written apart from the
 * check: lines end at LF (a CR before it dropped); the first line is the
 * request line; a line starting with a blank continues the field before,
 * its text glued to that field's name in a copy (folded); a NUL ends a
 * value early (cut, when anything but NULs follows it); a line without a colon makes libmicrohttpd
 * refuse the request itself (returns false). */
struct model {
	char buf[MAX_HEAD + 1];
	char glued[VZ_GW_MAX_FIELDS + 1][MAX_HEAD + 1];
	vz_gw_field f[VZ_GW_MAX_FIELDS + 1];
	size_t n, size;
	bool folded, cut;
};

static bool lay_out(struct model *m, const uint8_t *data, size_t size)
{
	char *p = m->buf, *end;
	bool first = true;

	if (size > MAX_HEAD)
		return false;
	memcpy(m->buf, data, size);
	m->buf[size] = '\0';
	end = m->buf + size;
	/* the head ends at the first empty line; nothing after it */
	for (;;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *line = p, *colon, *v;
		size_t len;

		if (!nl)
			return false;
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		len = (size_t)(nl - p) - (nl > p && !nl[-1] ? 1 : 0);
		p = nl + 1;
		if (first) {
			if (!len || memchr(line, '\0', len))
				return false;
			first = false;
			continue;
		}
		if (!len)
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			char *t = line;

			if (!m->n)
				return false;
			while (*t == ' ' || *t == '\t')
				t++;
			if (strlen(m->glued[m->n - 1]) + strlen(t) > MAX_HEAD)
				return false;
			strcat(m->glued[m->n - 1], t);
			m->f[m->n - 1].name = m->glued[m->n - 1];
			m->f[m->n - 1].name_len = strlen(m->glued[m->n - 1]);
			m->folded = true;
			continue;
		}
		colon = strchr(line, ':');
		if (!colon || m->n == VZ_GW_MAX_FIELDS + 1)
			return false;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		/* NULs right before the line end look like its CR in place:
		 * dropped like it, nothing hides behind them */
		for (char *c = v + strlen(v); c < line + len; c++)
			if (*c)
				m->cut = true;
		memcpy(m->glued[m->n], line, strlen(line) + 1);
		m->f[m->n] = (vz_gw_field){line, v, strlen(line), strlen(v)};
		m->n++;
	}
	m->size = (size_t)(p - m->buf);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct model m;
	vz_gw_body body = VZ_GW_BODY_NONE;
	unsigned long long len = 0;
	bool te = false, cl = false;

	memset(&m, 0, sizeof(m));
	if (!lay_out(&m, data, size))
		return 0;
	if (vz_gw_check_head(m.buf, m.size, m.f, m.n, &body, &len))
		return 0;
	if (m.folded || m.cut)
		abort(); /* forwarded changed */
	for (size_t i = 0; i < m.n; i++) {
		for (size_t k = 0; k < m.f[i].value_len; k++) {
			unsigned char c = (unsigned char)m.f[i].value[k];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				abort();
		}
		if (strcasecmp(m.f[i].name, "Transfer-Encoding") == 0)
			te = true;
		if (strcasecmp(m.f[i].name, "Content-Length") == 0) {
			char *e = NULL;
			unsigned long long v = strtoull(m.f[i].value, &e, 10);

			cl = true;
			if (*e || v != len)
				abort(); /* two lengths */
		}
	}
	if (te && cl)
		abort();
	if (body == VZ_GW_BODY_CHUNKED ? !te : body == VZ_GW_BODY_LENGTH ? !cl || !len : te)
		abort();
	return 0;
}
