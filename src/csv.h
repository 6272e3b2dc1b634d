/* csv.h - streaming CSV as spreadsheets write it: ',' or ';', quotes,
 * CRLF, a UTF-8 byte order mark, Windows-1252 text. One record in memory
 * at a time. */
#ifndef VZP11_CSV_H
#define VZP11_CSV_H

#include <stdio.h>

#include "err.h"

#define VZ_CSV_MAX_RECORD 65536 /* bytes of one line */

typedef struct vz_csv vz_csv;

vz_csv *vz_csv_new(FILE *in);
void vz_csv_free(vz_csv *c);

/* Reads the next record. A record is one line: a quoted field cannot span
 * lines, so no line can swallow the next. Only a quote at the start of a
 * field opens quoting; a quote elsewhere is text (O"Brien). Lines with
 * nothing but spaces, tabs and separators are skipped.
 * 1: fields in *fields (UTF-8, valid until the next call);
 * 0: end of input;
 * 2: a malformed line (unclosed quote, text after a closing quote, too
 *    long, a NUL byte, neither UTF-8 nor Windows-1252): no fields, *n is 0,
 *    vz_csv_problem() says what is wrong;
 * -1: read error. */
int vz_csv_read(vz_csv *c, char ***fields, size_t *n, vz_err *err);

/* What is wrong with the line vz_csv_read() answered 2 for. */
const char *vz_csv_problem(const vz_csv *c);

/* Line number of the last record (1 is the file's first line). */
size_t vz_csv_line(const vz_csv *c);

/* The separator, guessed from the first record: ';' when it has more
 * semicolons than commas, ',' otherwise. */
char vz_csv_sep(const vz_csv *c);

/* Bytes consumed so far, for progress. */
long vz_csv_offset(const vz_csv *c);

/* Lines that were not UTF-8 and were read as Windows-1252. */
size_t vz_csv_converted(const vz_csv *c);

/* Writes one record, quoting fields that need it. NULL fields are empty; a
 * field starting with = + - @, a tab or a CR (a formula to a spreadsheet)
 * gets a leading apostrophe. */
void vz_csv_write(FILE *f, char sep, const char *const *fields, size_t n);

#endif
