/* covout.h - rendering COV rows for people and programs. */
#ifndef VZP11_COVOUT_H
#define VZP11_COVOUT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "covrun.h"

/* The object of README's `cov --json`; with_line adds "line" (batches).
 * Caller owns the result. */
json_t *vz_cov_row_json(const vz_cov_row *row, bool with_line);

/* The batch CSV: a header line, then one line per row. */
void vz_cov_csv_header(FILE *f, char sep);
void vz_cov_row_csv(FILE *f, char sep, const vz_cov_row *row);

/* The person and insurances for a terminal. */
void vz_cov_row_text(FILE *f, const vz_cov_row *row);

#endif
