/* csv.c - a strict line-based RFC 4180 reader, and the writer. */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cov/cov.h"
#include "cli/cli.h"

/* Windows-1252 needs up to three UTF-8 bytes per byte. */
#define TEXT_MAX (3 * VZ_CSV_MAX_RECORD)

struct vz_csv {
	FILE *in;
	char *raw; /* the line as read */
	size_t raw_len;
	char *text; /* the line as UTF-8, then its fields NUL-separated */
	char **fields;
	size_t nfields, capfields;
	size_t line, next_line;
	size_t converted;
	const char *problem;
	iconv_t cp1252; /* (iconv_t)-1 when the system has no converter */
	char sep;
	bool first;
	long offset;
};

vz_csv *vz_csv_new(FILE *in)
{
	vz_csv *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->raw = malloc(VZ_CSV_MAX_RECORD + 1);
	c->text = malloc(TEXT_MAX + 1);
	if (!c->raw || !c->text) {
		vz_csv_free(c);
		return NULL;
	}
	c->in = in;
	c->first = true;
	c->next_line = 1;
	c->sep = ',';
	c->cp1252 = iconv_open("UTF-8", "WINDOWS-1252");
	return c;
}

void vz_csv_free(vz_csv *c)
{
	if (!c)
		return;
	if (c->text && c->cp1252 != (iconv_t)-1)
		iconv_close(c->cp1252);
	free(c->raw);
	free(c->text);
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

size_t vz_csv_converted(const vz_csv *c)
{
	return c->converted;
}

const char *vz_csv_problem(const vz_csv *c)
{
	return c->problem ? c->problem : "";
}

/* Reads one line (without its LF and one CR before it) into raw. Returns
 * false at the end of input with nothing read; *too_long when the line was
 * cut at VZ_CSV_MAX_RECORD (the rest is skipped). */
static bool read_line(vz_csv *c, bool *too_long)
{
	size_t len = 0;
	bool any = false;
	int ch;

	*too_long = false;
	c->line = c->next_line;
	for (ch = getc(c->in); ch != EOF; ch = getc(c->in)) {
		c->offset++;
		any = true;
		if (ch == '\n') {
			c->next_line++;
			break;
		}
		if (len < VZ_CSV_MAX_RECORD)
			c->raw[len++] = (char)ch;
		else
			*too_long = true;
	}
	if (len > 0 && c->raw[len - 1] == '\r' && !*too_long)
		len--;
	c->raw[len] = '\0';
	c->raw_len = len;
	return any;
}

/* Only spaces, tabs and separators: no data. Before the header the
 * separator is not known, so both count. */
static bool blank(const vz_csv *c)
{
	for (size_t i = 0; i < c->raw_len; i++) {
		char ch = c->raw[i];

		if (ch != ' ' && ch != '\t' && ch != c->sep &&
		    !(c->first && (ch == ',' || ch == ';')))
			return false;
	}
	return true;
}

/* raw -> text as UTF-8; Windows-1252 when raw is not UTF-8. */
static bool to_utf8(vz_csv *c)
{
	char *in = c->raw, *out = c->text;
	size_t inleft = c->raw_len, outleft = TEXT_MAX;

	if (memchr(c->raw, '\0', c->raw_len)) {
		c->problem = "the line holds a NUL byte";
		return false;
	}
	if (vz_utf8_valid(c->raw, c->raw_len)) {
		memcpy(c->text, c->raw, c->raw_len + 1);
		return true;
	}
	if (c->cp1252 == (iconv_t)-1 ||
	    iconv(c->cp1252, &in, &inleft, &out, &outleft) == (size_t)-1) {
		if (c->cp1252 != (iconv_t)-1)
			iconv(c->cp1252, NULL, NULL, NULL, NULL);
		c->problem = "the line is neither UTF-8 nor Windows-1252 text; save the file as "
			     "CSV UTF-8";
		return false;
	}
	*out = '\0';
	c->converted++;
	return true;
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

/* Unquotes one quoted field starting at *r (on its opening quote), writing
 * at *w. Sets c->problem when the field is malformed. */
static bool quoted_field(vz_csv *c, char **r, char **w)
{
	char *p = *r + 1;

	for (;;) {
		if (*p == '\0') {
			c->problem =
				"a quoted field has no closing quote (a field cannot span lines)";
			return false;
		}
		if (*p == '"' && p[1] == '"') {
			*(*w)++ = '"';
			p += 2;
		} else if (*p == '"') {
			p++;
			break;
		} else {
			*(*w)++ = *p++;
		}
	}
	if (*p != '\0' && *p != c->sep) {
		c->problem = "text follows a closing quote (write a quote inside a quoted field "
			     "as \"\")";
		return false;
	}
	*r = p;
	return true;
}

/* Splits text in place into fields. false: malformed (c->problem) or out of
 * memory (no problem set). */
static bool split(vz_csv *c)
{
	char *r = c->text, *w = c->text;

	c->nfields = 0;
	for (;;) {
		char *start = w;

		if (*r == '"') {
			if (!quoted_field(c, &r, &w))
				return false;
		} else {
			while (*r != '\0' && *r != c->sep)
				*w++ = *r++;
		}
		/* w never passes r: unquoting only shortens. */
		if (*r == '\0') {
			*w = '\0';
			return push_field(c, start);
		}
		r++;
		*w++ = '\0';
		if (!push_field(c, start))
			return false;
	}
}

int vz_csv_read(vz_csv *c, char ***fields, size_t *n, vz_err *err)
{
	bool too_long;

	*fields = NULL;
	*n = 0;
	c->problem = NULL;
	do {
		if (!read_line(c, &too_long)) {
			if (ferror(c->in)) {
				vz_err_set(err, "cannot read the input after line %zu: %s", c->line,
					   strerror(errno));
				return -1;
			}
			return 0;
		}
		/* A byte order mark from a spreadsheet export is not data. */
		if (c->line == 1 && c->raw_len >= 3 && memcmp(c->raw, "\xEF\xBB\xBF", 3) == 0) {
			memmove(c->raw, c->raw + 3, c->raw_len - 2);
			c->raw_len -= 3;
		}
	} while (!too_long && blank(c));
	/* The first line with data (the header) sets the separator, even when
	 * it is malformed. */
	if (c->first) {
		c->sep = guess_sep(c->raw);
		c->first = false;
	}
	if (too_long) {
		c->problem = "the line is longer than 65536 bytes";
		return 2;
	}
	if (!to_utf8(c))
		return 2;
	if (!split(c)) {
		if (c->problem)
			return 2;
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
		/* A spreadsheet takes such a cell for a formula: an apostrophe
		 * keeps it text (the JSON output carries the value as it is). */
		bool formula = v[0] && strchr("=+-@\t\r", v[0]);

		if (i)
			putc(sep, f);
		if (strchr(v, sep) || strpbrk(v, "\"\r\n")) {
			putc('"', f);
			if (formula)
				putc('\'', f);
			for (; *v; v++) {
				if (*v == '"')
					putc('"', f);
				putc(*v, f);
			}
			putc('"', f);
		} else {
			if (formula)
				putc('\'', f);
			fputs(v, f);
		}
	}
	putc('\n', f);
}
