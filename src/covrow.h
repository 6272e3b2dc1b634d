/* covrow.h - turning what a user gave (options, a CSV line) into a COV
 * search, strictly: a field that is not exactly right keeps the row from
 * being sent, and says why without repeating the field. */
#ifndef VZP11_COVROW_H
#define VZP11_COVROW_H

#include "covrun.h"

/* The fields of one row, NULL when absent; date NULL or empty means
 * default_date (YYYY-MM-DD). Fills row's raw fields and either row->s or
 * row->error with row->done set. Spaces around a field are ignored. */
void vz_cov_row_fill(vz_cov_row *row, const char *bsn, const char *birthdate, const char *date,
		     const char *reference, const char *default_date);

/* A line that could not be read into fields: the row says which line and
 * what is wrong (problem), and is never sent. */
void vz_cov_row_malformed(vz_cov_row *row, size_t line, const char *problem);

#endif
