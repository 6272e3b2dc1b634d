/* fuzz_csv.c - libFuzzer target: the batch CSV reader. Besides not
 * crashing, it must keep the row invariant: one record (read or malformed)
 * per line that holds data, in order, whatever the bytes; every field it
 * hands out is UTF-8. A breach aborts, so libFuzzer reports it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cov/cov.h"
#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The model, written apart from the reader: lines end at LF; a line longer
 * than VZ_CSV_MAX_RECORD bytes always holds data; else one CR before the
 * LF and a BOM on line 1 are dropped, and a line holds data unless it is
 * only spaces, tabs and separators (sep 0: ',' and ';'). */
static bool data_line(const uint8_t *d, size_t len, size_t line, char sep)
{
	if (len > VZ_CSV_MAX_RECORD)
		return true;
	if (len > 0 && d[len - 1] == '\r')
		len--;
	if (line == 1 && len >= 3 && memcmp(d, "\xEF\xBB\xBF", 3) == 0)
		d += 3, len -= 3;
	for (size_t k = 0; k < len; k++)
		if (d[k] != ' ' && d[k] != '\t' && !(sep ? d[k] == sep : (d[k] == ',' || d[k] == ';')))
			return true;
	return false;
}

/* The next data line from *pos on, or 0 when there is none. */
static size_t next_data_line(const uint8_t *d, size_t size, size_t *pos, size_t *line, char sep)
{
	while (*pos < size) {
		const uint8_t *nl = memchr(d + *pos, '\n', size - *pos);
		size_t len = nl ? (size_t)(nl - (d + *pos)) : size - *pos;
		size_t this = (*line)++;
		bool found = data_line(d + *pos, len, this, sep);

		*pos += len + (nl != NULL);
		if (found)
			return this;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = size ? fmemopen((void *)data, size, "r") : NULL;
	size_t pos = 0, line = 1, want;
	vz_csv *c;
	vz_err err = {0};
	char **fields;
	size_t n;
	int r;

	if (!f)
		return 0;
	c = vz_csv_new(f);
	for (bool first = true; c; first = false) {
		want = next_data_line(data, size, &pos, &line, first ? 0 : vz_csv_sep(c));
		r = vz_csv_read(c, &fields, &n, &err);
		if (r < 0)
			abort();
		if ((r == 0) != (want == 0) || (r > 0 && vz_csv_line(c) != want))
			abort(); /* a line lost, merged or invented */
		if (r == 0)
			break;
		if (r == 2 && (n != 0 || !vz_csv_problem(c)[0]))
			abort();
		for (size_t i = 0; r == 1 && i < n; i++)
			if (!vz_utf8_valid(fields[i], strlen(fields[i])))
				abort();
	}
	vz_csv_free(c);
	fclose(f);
	return 0;
}
