/* covout.c - a COV row as JSON, CSV or text. Keys and columns are a stable
 * contract (README); every row has every key. */
#include <string.h>

#include "cov/cov.h"
#include "cli/cli.h"

/* Every key is always there: a string that is not UTF-8 (which the readers
 * should never let through) is replaced, not dropped. */
static json_t *str_or_null(const char *s)
{
	json_t *v;

	if (!s)
		return json_null();
	v = json_string(s);
	return v ? v : json_string("(not UTF-8)");
}

json_t *vz_cov_row_json(const vz_cov_row *row, bool with_line)
{
	const vz_cov_result *r = &row->r;
	json_t *j = json_object();
	json_t *ins = json_array();

	if (with_line)
		json_object_set_new(j, "line", json_integer((json_int_t)row->line));
	json_object_set_new(j, "bsn", str_or_null(row->s.bsn[0] ? row->s.bsn : row->raw_bsn));
	json_object_set_new(j, "birthdate", str_or_null(row->raw_birthdate));
	json_object_set_new(j, "date", str_or_null(row->raw_date));
	json_object_set_new(j, "reference",
			    row->reference[0] ? str_or_null(row->reference) : json_null());
	json_object_set_new(j, "result", str_or_null(r->result));
	if (r->has_person)
		json_object_set_new(j, "person",
				    json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "result",
					      str_or_null(r->person_result), "initials",
					      str_or_null(r->initials), "prefix",
					      str_or_null(r->prefix), "surname",
					      str_or_null(r->surname), "birthdate",
					      str_or_null(r->birthdate), "gender",
					      str_or_null(r->gender), "deceased", r->deceased));
	else
		json_object_set_new(j, "person", json_null());
	for (size_t i = 0; i < r->n_ins; i++) {
		const vz_cov_insurance *v = &r->ins[i];

		json_array_append_new(
			ins, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
				       "status", str_or_null(v->status), "uzovi",
				       str_or_null(v->uzovi), "insured_number",
				       str_or_null(v->insured_number), "kind", str_or_null(v->kind),
				       "package_code", str_or_null(v->package_code), "package_name",
				       str_or_null(v->package_name), "label_code",
				       str_or_null(v->label_code), "label_name",
				       str_or_null(v->label_name), "start", str_or_null(v->start),
				       "end", str_or_null(v->end)));
	}
	json_object_set_new(j, "insurances", ins);
	json_object_set_new(j, "error", row->error[0] ? str_or_null(row->error) : json_null());
	return j;
}

static const char *const csv_header[] = {
	"line",	  "reference",	   "bsn",	   "birthdate", "date",
	"result", "person_result", "initials",	   "prefix",	"surname",
	"gender", "deceased",	   "insurances",   "uzovi",	"insured_number",
	"kind",	  "package_code",  "package_name", "start",	"end",
	"status", "error",
};
#define CSV_COLS (sizeof(csv_header) / sizeof(csv_header[0]))

/* The insurance a practice looks at first: an active basic one. */
static const vz_cov_insurance *main_insurance(const vz_cov_result *r)
{
	for (size_t i = 0; i < r->n_ins; i++)
		if (r->ins[i].status && strcmp(r->ins[i].status, "Actief") == 0 && r->ins[i].kind &&
		    strcmp(r->ins[i].kind, "Basis") == 0)
			return &r->ins[i];
	for (size_t i = 0; i < r->n_ins; i++)
		if (r->ins[i].status && strcmp(r->ins[i].status, "Actief") == 0)
			return &r->ins[i];
	return r->n_ins ? &r->ins[0] : NULL;
}

void vz_cov_csv_header(FILE *f, char sep)
{
	vz_csv_write(f, sep, csv_header, CSV_COLS);
}

void vz_cov_row_csv(FILE *f, char sep, const vz_cov_row *row)
{
	const vz_cov_result *r = &row->r;
	const vz_cov_insurance *m = main_insurance(r);
	char line[24], count[24];
	const char *v[CSV_COLS];

	snprintf(line, sizeof(line), "%zu", row->line);
	snprintf(count, sizeof(count), "%zu", r->n_ins);
	v[0] = line;
	v[1] = row->reference;
	v[2] = row->s.bsn[0] ? row->s.bsn : row->raw_bsn;
	v[3] = row->raw_birthdate;
	v[4] = row->raw_date;
	v[5] = r->result;
	v[6] = r->person_result;
	v[7] = r->initials;
	v[8] = r->prefix;
	v[9] = r->surname;
	v[10] = r->gender;
	v[11] = r->has_person ? (r->deceased ? "true" : "false") : NULL;
	v[12] = count;
	v[13] = m ? m->uzovi : NULL;
	v[14] = m ? m->insured_number : NULL;
	v[15] = m ? m->kind : NULL;
	v[16] = m ? m->package_code : NULL;
	v[17] = m ? m->package_name : NULL;
	v[18] = m ? m->start : NULL;
	v[19] = m ? m->end : NULL;
	v[20] = m ? m->status : NULL;
	v[21] = row->error;
	vz_csv_write(f, sep, v, CSV_COLS);
}

void vz_cov_row_text(FILE *f, const vz_cov_row *row)
{
	const vz_cov_result *r = &row->r;

	if (row->error[0]) {
		fprintf(f, _("Check failed: %s\n"), row->error);
		return;
	}
	fprintf(f, _("Result:     %s\n"), r->result);
	if (r->has_person) {
		fprintf(f, _("Person:     %s%s%s%s%s (born %s, %s)%s\n"),
			r->initials ? r->initials : "", r->initials ? " " : "",
			r->prefix ? r->prefix : "", r->prefix ? " " : "",
			r->surname ? r->surname : "", r->birthdate ? r->birthdate : "?",
			r->gender ? r->gender : "?", r->deceased ? ", deceased" : "");
		if (r->person_result)
			fprintf(f, _("Insurance:  %s on %s\n"), r->person_result, row->raw_date);
	}
	for (size_t i = 0; i < r->n_ins; i++) {
		const vz_cov_insurance *v = &r->ins[i];

		fprintf(f, _("  %-9s UZOVI %s  insured nr %s  %s  %s%s%s%s  %s to %s\n"),
			v->status ? v->status : "?", v->uzovi ? v->uzovi : "?",
			v->insured_number ? v->insured_number : "-", v->kind ? v->kind : "?",
			v->package_name ? v->package_name : "", v->package_code ? " (" : "",
			v->package_code ? v->package_code : "", v->package_code ? ")" : "",
			v->start ? v->start : "?", v->end ? v->end : _("open end"));
	}
}
