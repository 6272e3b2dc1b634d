/* csv.c - a small RFC 4180 reader and writer. */
#include <stdlib.h>
#include <string.h>

#include "csv.h"

struct vz_csv {
	FILE *in;
	char *buf; /* the record's fields, NUL-separated */
	size_t len;
	char **fields;
	size_t nfields, capfields;
	size_t line, next_line;
	char sep;
	bool first;
	long offset;
};

vz_csv *vz_csv_new(FILE *in)
{
	vz_csv *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->buf = malloc(VZ_CSV_MAX_RECORD + 1);
	if (!c->buf) {
		free(c);
		return NULL;
	}
	c->in = in;
	c->first = true;
	c->next_line = 1;
	c->sep = ',';
	return c;
}

void vz_csv_free(vz_csv *c)
{
	if (!c)
		return;
	free(c->buf);
	free(c->fields);
	free(c);
}

size_t vz_csv_line(const vz_csv *c)
{
	return c->line;
}

char vz_csv_sep(const vz_csv *c)
{
	return c->sep;
}

long vz_csv_offset(const vz_csv *c)
{
	return c->offset;
}

static int next_char(vz_csv *c)
{
	int ch = getc(c->in);

	if (ch != EOF)
		c->offset++;
	return ch;
}

/* Reads one physical record into buf (quotes kept), ending at an unquoted
 * newline. Returns the length, -1 at EOF with nothing read, -2 when too
 * long (the rest of the record is skipped). */
static long read_record(vz_csv *c, bool *unclosed)
{
	bool quoted = false, overflow = false;
	size_t len = 0;
	int ch;

	*unclosed = false;
	c->line = c->next_line;
	while ((ch = next_char(c)) != EOF) {
		if (ch == '"')
			quoted = !quoted;
		if (ch == '\n') {
			c->next_line++;
			if (!quoted)
				break;
		}
		if (len < VZ_CSV_MAX_RECORD)
			c->buf[len++] = (char)ch;
		else
			overflow = true;
	}
	if (ch == EOF && len == 0 && !overflow)
		return -1;
	if (len > 0 && c->buf[len - 1] == '\r')
		len--;
	c->buf[len] = '\0';
	*unclosed = quoted;
	return overflow ? -2 : (long)len;
}

static char guess_sep(const char *s)
{
	size_t commas = 0, semis = 0;
	bool quoted = false;

	for (; *s; s++) {
		if (*s == '"')
			quoted = !quoted;
		else if (!quoted && *s == ',')
			commas++;
		else if (!quoted && *s == ';')
			semis++;
	}
	return semis > commas ? ';' : ',';
}

static bool push_field(vz_csv *c, char *f)
{
	if (c->nfields == c->capfields) {
		size_t ncap = c->capfields ? c->capfields * 2 : 8;
		char **g = realloc(c->fields, ncap * sizeof(*g));

		if (!g)
			return false;
		c->fields = g;
		c->capfields = ncap;
	}
	c->fields[c->nfields++] = f;
	return true;
}

/* Splits buf in place: unquotes "..." and "" inside quotes. */
static bool split(vz_csv *c)
{
	char *r = c->buf, *w = c->buf, *start = c->buf;
	bool quoted = false;

	c->nfields = 0;
	for (;; r++) {
		if (quoted) {
			if (*r == '"' && r[1] == '"') {
				*w++ = '"';
				r++;
			} else if (*r == '"') {
				quoted = false;
			} else if (*r == '\0') {
				break;
			} else {
				*w++ = *r;
			}
			continue;
		}
		if (*r == '"') {
			quoted = true;
		} else if (*r == c->sep || *r == '\0') {
			bool end = *r == '\0';

			*w++ = '\0';
			if (!push_field(c, start))
				return false;
			start = w;
			if (end)
				break;
		} else {
			*w++ = *r;
		}
	}
	return true;
}

int vz_csv_read(vz_csv *c, char ***fields, size_t *n, vz_err *err)
{
	bool unclosed;
	long len;

	do {
		len = read_record(c, &unclosed);
	} while (len == 0);
	if (len == -1) {
		if (ferror(c->in)) {
			vz_err_set(err, "cannot read the input after line %zu", c->line);
			return -1;
		}
		return 0;
	}
	if (len == -2 || unclosed) {
		*fields = NULL;
		*n = 0;
		return 2;
	}
	if (c->first) {
		/* A byte order mark from a spreadsheet export is not data. */
		if ((unsigned char)c->buf[0] == 0xEF && (unsigned char)c->buf[1] == 0xBB &&
		    (unsigned char)c->buf[2] == 0xBF)
			memmove(c->buf, c->buf + 3, strlen(c->buf + 3) + 1);
		c->sep = guess_sep(c->buf);
		c->first = false;
	}
	if (!split(c)) {
		vz_err_set(err, "out of memory");
		return -1;
	}
	*fields = c->fields;
	*n = c->nfields;
	return 1;
}

void vz_csv_write(FILE *f, char sep, const char *const *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = fields[i] ? fields[i] : "";

		if (i)
			putc(sep, f);
		if (strchr(v, sep) || strpbrk(v, "\"\r\n")) {
			putc('"', f);
			for (; *v; v++) {
				if (*v == '"')
					putc('"', f);
				putc(*v, f);
			}
			putc('"', f);
		} else {
			fputs(v, f);
		}
	}
	putc('\n', f);
}
