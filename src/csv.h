/* csv.h - streaming CSV as spreadsheets write it: ',' or ';', quotes,
 * CRLF, a UTF-8 byte order mark. One record in memory at a time. */
#ifndef VZP11_CSV_H
#define VZP11_CSV_H

#include <stdio.h>

#include "err.h"

#define VZ_CSV_MAX_RECORD 65536

typedef struct vz_csv vz_csv;

vz_csv *vz_csv_new(FILE *in);
void vz_csv_free(vz_csv *c);

/* Reads the next record (blank lines are skipped). 1: fields in *fields
 * (valid until the next call); 0: end of input; 2: the record is longer
 * than VZ_CSV_MAX_RECORD or has an unclosed quote (skipped; its line is
 * known; no fields, *n is 0); -1: read error. */
int vz_csv_read(vz_csv *c, char ***fields, size_t *n, vz_err *err);

/* Line on which the last record started. */
size_t vz_csv_line(const vz_csv *c);

/* The separator, guessed from the first record: ';' when it has more
 * semicolons than commas, ',' otherwise. */
char vz_csv_sep(const vz_csv *c);

/* Bytes consumed so far, for progress. */
long vz_csv_offset(const vz_csv *c);

/* Writes one record, quoting fields that need it. NULL fields are empty. */
void vz_csv_write(FILE *f, char sep, const char *const *fields, size_t n);

#endif
