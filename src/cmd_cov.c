/* cmd_cov.c - `vzp11 cov`: insurance checks (VZ801/802) signed by the token
 * key, one person or a CSV batch. Patient data goes to the output only,
 * never into messages. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "cov.h"
#include "covrun.h"
#include "csv.h"
#include "tls.h"

#define DEFAULT_LABEL "vecozo-system"

static void cov_usage(FILE *f)
{
	fprintf(f,
		"Usage: vzp11 [GLOBAL OPTIONS] cov --bsn BSN --birthdate YYYY-MM-DD [--date YYYY-MM-DD]\n"
		"                                [--reference REF] [OPTIONS]\n"
		"       vzp11 [GLOBAL OPTIONS] cov --batch FILE.csv [--out FILE] [--jobs N] [OPTIONS]\n"
		"Check insurance (COV, VZ801/802) at VECOZO with the system certificate on the token.\n"
		"  --bsn BSN              the person's BSN (checked with the eleven-test first)\n"
		"  --birthdate DATE       birth date, YYYY-MM-DD\n"
		"  --date DATE            the date the insurance is checked for (default: today)\n"
		"  --reference REF        your own reference, echoed in the result\n"
		"  --batch FILE.csv       header bsn,birthdate[,date][,reference] (',' or ';'); - reads stdin\n"
		"  --out FILE             write the batch result here (mode 0600) instead of stdout\n"
		"  --jobs N               parallel requests, 1..32 (default 4)\n"
		"  --agb CODE             the practice's 8-digit AGB code (env VZP11_AGB)\n"
		"  --label LABEL          certificate on the token (default: " DEFAULT_LABEL ")\n"
		"  --env tst|acc|prd      VECOZO environment (env VZP11_ENV)\n"
		"  --endpoint URL         the COV endpoint itself, instead of --env\n"
		"  --cacert FILE          CA certificates to verify the server with (env VZP11_CACERT;\n"
		"                         default: the system store)\n"
		"  --retries N            extra tries after a transient failure, 0..10 (default 3)\n"
		"  --timeout SECONDS      limit for one request (default 30)\n"
		"  --connect-timeout SECONDS  limit for connecting (default 10)\n"
		"  --max-response BYTES   largest response accepted (default 4194304)\n"
		"Output: plain text, or with --json the object described in the README; a batch\n"
		"writes CSV (or a JSON array) with exactly one row per input row, in input order.\n"
		"Exit: 0 the check(s) succeeded (found or not), 1 a check failed, 2 usage error.\n");
}

struct cov_opts {
	const char *bsn, *birthdate, *date, *reference;
	const char *batch, *out;
	const char *label, *env, *endpoint, *cacert, *agb;
	long jobs, retries, timeout_s, connect_timeout_s, max_response;
};

static bool parse_long(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_args(vz_global *g, int argc, char **argv, struct cov_opts *o)
{
	enum {
		O_BSN = 1,
		O_BIRTH,
		O_DATE,
		O_REF,
		O_BATCH,
		O_OUT,
		O_JOBS,
		O_AGB,
		O_LABEL,
		O_ENV,
		O_ENDPOINT,
		O_CACERT,
		O_RETRIES,
		O_TIMEOUT,
		O_CTIMEOUT,
		O_MAXRESP
	};
	static const struct option longopts[] = {
		VZ_GLOBAL_LONGOPTS,
		{"bsn", required_argument, NULL, O_BSN},
		{"birthdate", required_argument, NULL, O_BIRTH},
		{"date", required_argument, NULL, O_DATE},
		{"reference", required_argument, NULL, O_REF},
		{"batch", required_argument, NULL, O_BATCH},
		{"out", required_argument, NULL, O_OUT},
		{"jobs", required_argument, NULL, O_JOBS},
		{"agb", required_argument, NULL, O_AGB},
		{"label", required_argument, NULL, O_LABEL},
		{"env", required_argument, NULL, O_ENV},
		{"endpoint", required_argument, NULL, O_ENDPOINT},
		{"cacert", required_argument, NULL, O_CACERT},
		{"retries", required_argument, NULL, O_RETRIES},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"connect-timeout", required_argument, NULL, O_CTIMEOUT},
		{"max-response", required_argument, NULL, O_MAXRESP},
		{NULL, 0, NULL, 0},
	};
	int c;

	for (c = vz_next_opt(g, argc, argv, "vq", longopts); c != -1;
	     c = vz_next_opt(g, argc, argv, "vq", longopts)) {
		switch (c) {
		case O_BSN:
			o->bsn = optarg;
			break;
		case O_BIRTH:
			o->birthdate = optarg;
			break;
		case O_DATE:
			o->date = optarg;
			break;
		case O_REF:
			o->reference = optarg;
			break;
		case O_BATCH:
			o->batch = optarg;
			break;
		case O_OUT:
			o->out = optarg;
			break;
		case O_AGB:
			o->agb = optarg;
			break;
		case O_LABEL:
			o->label = optarg;
			break;
		case O_ENV:
			o->env = optarg;
			break;
		case O_ENDPOINT:
			o->endpoint = optarg;
			break;
		case O_CACERT:
			o->cacert = optarg;
			break;
		case O_JOBS:
			if (!parse_long(optarg, 1, 32, &o->jobs))
				return vz_usage("cov", "--jobs takes a number from 1 to 32");
			break;
		case O_RETRIES:
			if (!parse_long(optarg, 0, 10, &o->retries))
				return vz_usage("cov", "--retries takes a number from 0 to 10");
			break;
		case O_TIMEOUT:
			if (!parse_long(optarg, 1, 600, &o->timeout_s))
				return vz_usage("cov", "--timeout takes seconds, 1 to 600");
			break;
		case O_CTIMEOUT:
			if (!parse_long(optarg, 1, 120, &o->connect_timeout_s))
				return vz_usage("cov", "--connect-timeout takes seconds, 1 to 120");
			break;
		case O_MAXRESP:
			if (!parse_long(optarg, 1024, 1L << 30, &o->max_response))
				return vz_usage("cov",
						"--max-response takes bytes, 1024 to 1073741824");
			break;
		case OPT_HELP:
			cov_usage(stdout);
			return -1;
		default:
			return vz_usage("cov", "unknown or incomplete option '%s'",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		return vz_usage("cov", "unexpected argument '%s'", argv[optind]);
	o->env = o->env ? o->env : vz_env("VZP11_ENV");
	o->cacert = o->cacert ? o->cacert : vz_env("VZP11_CACERT");
	o->agb = o->agb ? o->agb : vz_env("VZP11_AGB");
	if (!o->batch && (!o->bsn || !o->birthdate))
		return vz_usage("cov", "give --bsn and --birthdate, or --batch FILE.csv");
	if (o->batch && (o->bsn || o->birthdate || o->date || o->reference))
		return vz_usage("cov", "--batch takes the persons from the file; leave out --bsn, "
				       "--birthdate, --date and --reference");
	if (o->out && !o->batch)
		return vz_usage("cov", "--out is for --batch");
	if (o->endpoint && o->env && !vz_env("VZP11_ENV"))
		return vz_usage("cov", "give --env or --endpoint, not both");
	if (!o->endpoint && !o->env)
		return vz_usage("cov", "say which VECOZO environment to use: --env tst, acc or prd "
				       "(or VZP11_ENV), or --endpoint URL");
	if (!o->endpoint) {
		o->endpoint = vz_cov_endpoint(o->env);
		if (!o->endpoint)
			return vz_usage("cov", "unknown environment '%s'; use tst, acc or prd",
					o->env);
	}
	if (strncmp(o->endpoint, "https://", 8) != 0)
		return vz_usage("cov", "the endpoint must be an https:// URL");
	if (o->agb && !vz_agb_valid(o->agb))
		return vz_usage("cov", "the AGB code must be 8 digits");
	if (o->reference && strlen(o->reference) > 80)
		return vz_usage("cov", "the reference is longer than 80 characters");
	return 0;
}

static void today(char out[11])
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Fills a row from raw fields; local refusals set error and done. */
static void fill_row(vz_cov_row *row, const char *bsn, const char *birth, const char *date,
		     const char *ref, const char *default_date)
{
	snprintf(row->raw_bsn, sizeof(row->raw_bsn), "%s", bsn ? bsn : "");
	snprintf(row->raw_birthdate, sizeof(row->raw_birthdate), "%s", birth ? birth : "");
	snprintf(row->raw_date, sizeof(row->raw_date), "%s", date && *date ? date : default_date);
	snprintf(row->reference, sizeof(row->reference), "%s", ref ? ref : "");
	if (!bsn || !vz_bsn_valid(bsn, row->s.bsn))
		snprintf(row->error, sizeof(row->error),
			 "the BSN is not valid (it must be 9 digits and pass the eleven-test); not "
			 "sent");
	else if (!birth || !vz_date_valid(birth))
		snprintf(row->error, sizeof(row->error),
			 "the birth date is not a date YYYY-MM-DD; not sent");
	else if (!vz_date_valid(row->raw_date))
		snprintf(row->error, sizeof(row->error),
			 "the check date is not a date YYYY-MM-DD; not sent");
	else if (ref && strlen(ref) > 80)
		snprintf(row->error, sizeof(row->error),
			 "the reference is longer than 80 characters; not sent");
	if (row->error[0]) {
		row->done = true;
		return;
	}
	snprintf(row->s.birthdate, sizeof(row->s.birthdate), "%.10s", birth);
	snprintf(row->s.date, sizeof(row->s.date), "%.10s", row->raw_date);
	snprintf(row->s.reference, sizeof(row->s.reference), "%s", row->reference);
}

/* ---- output ---- */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *row_json(const vz_cov_row *row)
{
	const vz_cov_result *r = &row->r;
	json_t *j = json_object();
	json_t *ins = json_array();

	json_object_set_new(j, "bsn", json_string(row->s.bsn[0] ? row->s.bsn : row->raw_bsn));
	json_object_set_new(j, "birthdate", json_string(row->raw_birthdate));
	json_object_set_new(j, "date", json_string(row->raw_date));
	json_object_set_new(j, "reference",
			    row->reference[0] ? json_string(row->reference) : json_null());
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
	json_object_set_new(j, "error", row->error[0] ? json_string(row->error) : json_null());
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

static void row_csv(FILE *f, char sep, const vz_cov_row *row)
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

static void row_text(FILE *f, const vz_cov_row *row)
{
	const vz_cov_result *r = &row->r;

	if (row->error[0]) {
		fprintf(f, "Check failed: %s\n", row->error);
		return;
	}
	fprintf(f, "Result:     %s\n", r->result);
	if (r->has_person) {
		fprintf(f, "Person:     %s%s%s%s%s (born %s, %s)%s\n",
			r->initials ? r->initials : "", r->initials ? " " : "",
			r->prefix ? r->prefix : "", r->prefix ? " " : "",
			r->surname ? r->surname : "", r->birthdate ? r->birthdate : "?",
			r->gender ? r->gender : "?", r->deceased ? ", deceased" : "");
		if (r->person_result)
			fprintf(f, "Insurance:  %s on %s\n", r->person_result, row->raw_date);
	}
	for (size_t i = 0; i < r->n_ins; i++) {
		const vz_cov_insurance *v = &r->ins[i];

		fprintf(f, "  %-9s UZOVI %s  insured nr %s  %s  %s%s%s%s  %s to %s\n",
			v->status ? v->status : "?", v->uzovi ? v->uzovi : "?",
			v->insured_number ? v->insured_number : "-", v->kind ? v->kind : "?",
			v->package_name ? v->package_name : "", v->package_code ? " (" : "",
			v->package_code ? v->package_code : "", v->package_code ? ")" : "",
			v->start ? v->start : "?", v->end ? v->end : "open end");
	}
}

/* Compact JSON without a line end; frees j. */
static void put_json(FILE *f, json_t *j)
{
	json_dumpf(j, f, JSON_COMPACT);
	json_decref(j);
}

/* ---- single check ---- */

struct single {
	vz_cov_row in;
	vz_cov_row out;
	bool given;
	bool json;
};

static int single_next(void *ctx, vz_cov_row *row, vz_err *err)
{
	struct single *s = ctx;

	if (s->given)
		return 0;
	*row = s->in;
	s->given = true;
	return 1;
}

static vz_rv single_emit(void *ctx, const vz_cov_row *row, vz_err *err)
{
	struct single *s = ctx;

	if (s->json) {
		put_json(stdout, row_json(row));
		putchar('\n');
	} else if (!row->error[0])
		row_text(stdout, row);
	s->out.done = true;
	snprintf(s->out.error, sizeof(s->out.error), "%s", row->error);
	return VZ_OK;
}

/* ---- batch ---- */

struct batch {
	vz_csv *csv;
	FILE *in, *out;
	long in_size;
	int col_bsn, col_birth, col_date, col_ref;
	char sep;
	char today[11];
	bool json, first_json, tty;
	const vz_global *g;
};

static int header_col(char **f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		char *s = f[i];

		while (*s == ' ')
			s++;
		if (strncasecmp(s, name, strlen(name)) == 0 &&
		    (s[strlen(name)] == '\0' || s[strlen(name)] == ' '))
			return (int)i;
	}
	return -1;
}

static vz_rv read_header(struct batch *b, vz_err *err)
{
	char **f;
	size_t n;
	int r = vz_csv_read(b->csv, &f, &n, err);

	if (r < 0)
		return VZ_FAIL;
	if (r == 0 || r == 2) {
		vz_err_set(err, "the batch file has no header line");
		vz_err_hint(err, "the first line must be bsn,birthdate[,date][,reference]");
		return VZ_FAIL;
	}
	b->col_bsn = header_col(f, n, "bsn");
	b->col_birth = header_col(f, n, "birthdate");
	b->col_date = header_col(f, n, "date");
	b->col_ref = header_col(f, n, "reference");
	b->sep = vz_csv_sep(b->csv);
	if (b->col_bsn < 0 || b->col_birth < 0) {
		vz_err_set(err, "the batch file's header has no bsn and birthdate columns");
		vz_err_hint(err,
			    "the first line must be bsn,birthdate[,date][,reference] (',' or ';')");
		return VZ_FAIL;
	}
	return VZ_OK;
}

static const char *field(char **f, size_t n, int col)
{
	return col >= 0 && (size_t)col < n ? f[col] : NULL;
}

static int batch_next(void *ctx, vz_cov_row *row, vz_err *err)
{
	struct batch *b = ctx;
	char **f;
	size_t n;
	int r = vz_csv_read(b->csv, &f, &n, err);

	if (r <= 0)
		return r;
	row->line = vz_csv_line(b->csv);
	if (r == 2) {
		snprintf(row->error, sizeof(row->error),
			 "the line is too long or has an unclosed quote; not sent");
		row->done = true;
		return 1;
	}
	fill_row(row, field(f, n, b->col_bsn), field(f, n, b->col_birth), field(f, n, b->col_date),
		 field(f, n, b->col_ref), b->today);
	return 1;
}

static vz_rv batch_emit(void *ctx, const vz_cov_row *row, vz_err *err)
{
	struct batch *b = ctx;

	if (b->json) {
		fputs(b->first_json ? "[\n" : ",\n", b->out);
		b->first_json = false;
		put_json(b->out, row_json(row));
	} else {
		row_csv(b->out, b->sep, row);
	}
	if (ferror(b->out)) {
		vz_err_set(err, "cannot write the output: %s", strerror(errno));
		return VZ_FAIL;
	}
	return VZ_OK;
}

static void batch_progress(void *ctx, const vz_cov_stats *st)
{
	struct batch *b = ctx;
	double secs = (double)st->elapsed_ms / 1000.0;

	if (!b->tty || b->g->quiet)
		return;
	fprintf(stderr, "\r\033[Kvzp11: %zu rows (%zu failed), %.0f/s, %zu requests", st->rows,
		st->failed, secs > 0.5 ? (double)st->rows / secs : 0.0, st->requests);
	if (b->in_size > 0)
		fprintf(stderr, ", %ld%%", vz_csv_offset(b->csv) * 100 / b->in_size);
}

/* The partial output file is removed when the run is interrupted. */
static char tmp_path[PATH_MAX];

static void on_signal(int sig)
{
	if (tmp_path[0])
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static vz_rv open_out(const char *path, FILE **out, vz_err *err)
{
	int fd;

	if (snprintf(tmp_path, sizeof(tmp_path), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp_path)) {
		vz_err_set(err, "the output path is too long");
		return VZ_FAIL;
	}
	fd = mkstemp(tmp_path); /* mode 0600 */
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		vz_err_set(err, "cannot create %s: %s", tmp_path, strerror(errno));
		tmp_path[0] = '\0';
		return VZ_FAIL;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	*out = fdopen(fd, "w");
	if (!*out) {
		close(fd);
		unlink(tmp_path);
		tmp_path[0] = '\0';
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* Moves the finished output in place, or removes it. */
static vz_rv close_out(FILE *out, const char *path, bool keep, vz_err *err)
{
	bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;

	ok &= fclose(out) == 0;
	if (keep && ok && rename(tmp_path, path) == 0) {
		tmp_path[0] = '\0';
		return VZ_OK;
	}
	if (keep)
		vz_err_set(err, "cannot write %s: %s", path, strerror(errno));
	unlink(tmp_path);
	tmp_path[0] = '\0';
	return keep ? VZ_FAIL : VZ_OK;
}

static void make_cfg(const struct cov_opts *o, vz_cov_cfg *cfg)
{
	cfg->endpoint = o->endpoint;
	cfg->cacert = o->cacert;
	cfg->agb = o->agb;
	cfg->jobs = (unsigned)o->jobs;
	cfg->per_request = VZ_COV_MAX_SEARCHES;
	cfg->attempts = (unsigned)o->retries + 1;
	cfg->connect_timeout_ms = o->connect_timeout_s * 1000;
	cfg->timeout_ms = o->timeout_s * 1000;
	cfg->max_response = (size_t)o->max_response;
	cfg->max_backoff_ms = 10000;
}

/* A search refused locally is reported without touching the token. */
static bool single_refused(vz_global *g, const struct cov_opts *o, struct single *s)
{
	char d[11];

	today(d);
	s->json = g->json;
	s->in.line = 1;
	fill_row(&s->in, o->bsn, o->birthdate, o->date, o->reference, d);
	if (!s->in.done)
		return false;
	single_emit(s, &s->in, NULL);
	fprintf(stderr, "vzp11: %s\n", s->in.error);
	return true;
}

static int run_single(vz_global *g, const struct cov_opts *o, struct single *s, vz_tls *tls)
{
	vz_cov_cfg cfg;
	vz_cov_stats st;
	vz_err err = {0};

	make_cfg(o, &cfg);
	cfg.jobs = 1;
	if (vz_cov_run(&cfg, tls, single_next, single_emit, NULL, s, &st, &err) != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_FAIL;
	}
	if (s->out.error[0]) {
		fprintf(stderr, "vzp11: the check failed: %s\n", s->out.error);
		return VZ_EXIT_FAIL;
	}
	return VZ_EXIT_OK;
}

static int run_batch(vz_global *g, const struct cov_opts *o, vz_tls *tls)
{
	struct batch b = {
		.json = g->json, .first_json = true, .g = g, .tty = isatty(STDERR_FILENO)};
	vz_cov_cfg cfg;
	vz_cov_stats st = {0};
	vz_err err = {0};
	struct stat sb;
	vz_rv r = VZ_FAIL;

	today(b.today);
	b.in = strcmp(o->batch, "-") == 0 ? stdin : fopen(o->batch, "r");
	if (!b.in) {
		fprintf(stderr, "vzp11: cannot open %s: %s\n", o->batch, strerror(errno));
		return VZ_EXIT_FAIL;
	}
	if (fstat(fileno(b.in), &sb) == 0 && S_ISREG(sb.st_mode))
		b.in_size = (long)sb.st_size;
	b.csv = vz_csv_new(b.in);
	if (!b.csv) {
		vz_err_set(&err, "out of memory");
		goto out;
	}
	if (read_header(&b, &err) != VZ_OK)
		goto out;
	if (o->out) {
		if (open_out(o->out, &b.out, &err) != VZ_OK)
			goto out;
	} else {
		b.out = stdout;
	}
	if (!b.json) {
		const char *const *h = csv_header;

		vz_csv_write(b.out, b.sep, h, CSV_COLS);
	}
	make_cfg(o, &cfg);
	r = vz_cov_run(&cfg, tls, batch_next, batch_emit, batch_progress, &b, &st, &err);
	if (r == VZ_OK && b.json)
		fputs(b.first_json ? "[]\n" : "\n]\n", b.out);
	if (b.tty && !g->quiet)
		fputs("\r\033[K", stderr);
	if (o->out) {
		vz_rv c = close_out(b.out, o->out, r == VZ_OK, &err);

		r = r == VZ_OK ? c : r;
	} else if (fflush(stdout) != 0) {
		vz_err_set(&err, "cannot write the output: %s", strerror(errno));
		r = VZ_FAIL;
	}
out:
	if (r != VZ_OK)
		vz_report(&err);
	else
		vz_note(g, "%zu rows, %zu failed; %zu requests (%zu retries) over %zu connections",
			st.rows, st.failed, st.requests, st.retries, st.connections);
	vz_csv_free(b.csv);
	if (b.in && b.in != stdin)
		fclose(b.in);
	return r != VZ_OK || st.failed ? VZ_EXIT_FAIL : VZ_EXIT_OK;
}

int cmd_cov(vz_global *g, int argc, char **argv)
{
	struct cov_opts o = {.label = DEFAULT_LABEL,
			     .jobs = 4,
			     .retries = 3,
			     .timeout_s = 30,
			     .connect_timeout_s = 10,
			     .max_response = 4L << 20};
	struct single single = {0};
	vz_tls *tls = NULL;
	vz_err err = {0};
	int ret;

	ret = parse_args(g, argc, argv, &o);
	if (ret == -1)
		return VZ_EXIT_OK;
	if (ret != 0)
		return ret;
	if (!o.batch && single_refused(g, &o, &single))
		return VZ_EXIT_FAIL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "vzp11: cannot initialize libcurl\n");
		return VZ_EXIT_FAIL;
	}
	if (vz_tls_open(g, o.label, &tls, &err) != VZ_OK) {
		vz_report(&err);
		curl_global_cleanup();
		return VZ_EXIT_FAIL;
	}
	if (g->verbose)
		vz_note(g, "certificate: %s; endpoint: %s", vz_tls_subject(tls), o.endpoint);
	ret = o.batch ? run_batch(g, &o, tls) : run_single(g, &o, &single, tls);
	vz_tls_close(tls);
	curl_global_cleanup();
	return ret;
}
