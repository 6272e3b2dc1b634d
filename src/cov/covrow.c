/* covrow.c - validating one COV search before it may join a request. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cov/cov.h"
#include "cli/cli.h"

/* src without surrounding spaces and tabs into dst; false when it does not
 * fit (dst then holds a cut copy). NULL is empty. */
static bool trimmed(char *dst, size_t size, const char *src)
{
	size_t len;
	bool fits;

	if (!src)
		src = "";
	while (*src == ' ' || *src == '\t')
		src++;
	len = strlen(src);
	while (len > 0 && (src[len - 1] == ' ' || src[len - 1] == '\t'))
		len--;
	fits = len < size;
	if (!fits)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return fits;
}

/* Why the fields cannot be sent, or NULL; fills s when they can. Messages
 * never quote a field: they may reach a log. */
static const char *check(const char *bsn, const char *birthdate, const char *date,
			 const char *reference, const char *default_date, vz_cov_search *s)
{
	char b[16], d[16];

	if (!trimmed(b, sizeof(b), bsn) || !b[0])
		return b[0] ? _("the BSN is not valid: it must be exactly 9 digits; not sent")
			    : _("the BSN is missing; not sent");
	if (!vz_bsn_valid(b, s->bsn))
		return _("the BSN is not valid: it must be exactly 9 digits (keep a leading zero) "
			 "and pass the eleven-test; not sent");
	if (!trimmed(d, sizeof(d), birthdate) || !vz_date_valid(d))
		return _("the birth date is not a date written YYYY-MM-DD; not sent");
	memcpy(s->birthdate, d, sizeof(s->birthdate));
	if (!trimmed(d, sizeof(d), date) || !vz_date_valid(d[0] ? d : default_date))
		return _("the check date is not a date written YYYY-MM-DD; not sent");
	memcpy(s->date, d[0] ? d : default_date, sizeof(s->date));
	if (!trimmed(s->reference, sizeof(s->reference), reference) ||
	    !vz_text_printable(s->reference, VZ_COV_REF_MAX))
		return _("the reference is longer than 80 characters or holds control characters; "
			 "not sent");
	return NULL;
}

/* For the output: the field as given, cut to fit, control characters and
 * a character cut in two made harmless. */
static void for_output(char *dst, size_t size, const char *src)
{
	trimmed(dst, size, src);
	vz_text_clean(dst);
}

void vz_cov_row_fill(vz_cov_row *row, const char *bsn, const char *birthdate, const char *date,
		     const char *reference, const char *default_date)
{
	const char *why = check(bsn, birthdate, date, reference, default_date, &row->s);

	for_output(row->raw_bsn, sizeof(row->raw_bsn), bsn);
	for_output(row->raw_birthdate, sizeof(row->raw_birthdate), birthdate);
	for_output(row->raw_date, sizeof(row->raw_date), date);
	if (!row->raw_date[0])
		snprintf(row->raw_date, sizeof(row->raw_date), "%s", default_date);
	for_output(row->reference, sizeof(row->reference), reference);
	if (why) {
		memset(&row->s, 0, sizeof(row->s));
		snprintf(row->error, sizeof(row->error), "%s", why);
		row->done = true;
	}
}

void vz_cov_row_malformed(vz_cov_row *row, size_t line, const char *problem)
{
	row->line = line;
	snprintf(row->error, sizeof(row->error), _("line %zu: %s; not sent"), line, problem);
	row->done = true;
}
