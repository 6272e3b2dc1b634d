/* cmd_cov.c - `vzp11 cov`: insurance checks (VZ801/802) signed by the token
 * key, one person or a CSV batch. Patient data goes to the output only,
 * never into messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cov/cov.h"
#include "tls/tls.h"

/* How long a batch waits for a token that went away to come back. */
#define TOKEN_WAIT_MS 120000L

struct cov_opts {
	const char *bsn, *birthdate, *date, *reference;
	const char *batch, *out;
	const char *label, *env, *endpoint, *cacert, *agb;
	bool from_stdin;
	long jobs, retries, timeout_s, connect_timeout_s, max_response;
};

enum {
	O_BSN = 1,
	O_BIRTH,
	O_DATE,
	O_REF,
	O_STDIN,
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
	O_MAXRESP,
	N_O
};

static const vz_opt cov_opts[] = {
	VZ_OPT("bsn", O_BSN, "BSN",
	       N_("the person's BSN: 9 digits that pass the eleven-test. Every\n"
		  "user of this machine can read a command line: prefer --stdin")),
	VZ_OPT("birthdate", O_BIRTH, "DATE", N_("birth date, YYYY-MM-DD")),
	VZ_OPT("date", O_DATE, "DATE",
	       N_("the date the insurance is checked for (default: today)")),
	VZ_OPT("reference", O_REF, "REF",
	       N_("your own reference (at most 80 characters), echoed back")),
	VZ_OPT("stdin", O_STDIN, NULL,
	       N_("read one check from standard input, one line:\n"
		  "bsn,birthdate[,date][,reference]")),
	VZ_OPT("batch", O_BATCH, "FILE.csv|-",
	       N_("header bsn,birthdate[,date][,reference] (',' or ';');\n"
		  "- reads standard input")),
	VZ_OPT("out", O_OUT, "FILE",
	       N_("write the batch result here (mode 0600) instead of stdout")),
	{"jobs", O_JOBS, "N", N_("parallel requests, 1..32 (default 4)"), VZ_KEY_NUM, "cov", NULL,
	 1, 32, "4", N_("--jobs takes a number from %ld to %ld")},
	{"agb", O_AGB, "CODE", N_("the practice's 8-digit AGB code (env VZP11_AGB)"), VZ_KEY_TEXT,
	 "cov", "VZP11_AGB", 0, 0, NULL, NULL},
	{"label", O_LABEL, "LABEL", N_("certificate on the token (default: %s)"), VZ_AS_LABEL},
	{"env", O_ENV, "tst|acc|prd", N_("VECOZO environment (env VZP11_ENV)"), VZ_AS_ENV},
	{"endpoint", O_ENDPOINT, "URL", N_("the COV endpoint itself, instead of --env"),
	 VZ_AS_COV_ENDPOINT},
	{"cacert", O_CACERT, "FILE",
	 N_("trust only the CA certificates in FILE for the server\n"
	    "(env VZP11_CACERT; default: the system store)"),
	 VZ_AS_CACERT},
	{"retries", O_RETRIES, "N", N_("extra tries after a transient failure, 0..10 (default 3)"),
	 VZ_KEY_NUM, "cov", NULL, 0, 10, "3", N_("--retries takes a number from %ld to %ld")},
	{"timeout", O_TIMEOUT, "SECONDS", N_("limit for one request (default 30)"), VZ_KEY_NUM,
	 "cov", NULL, 1, 600, "30", N_("--timeout takes seconds, %ld to %ld")},
	{"connect-timeout", O_CTIMEOUT, "SECONDS", N_("limit for connecting (default 10)"),
	 VZ_KEY_NUM, "cov", NULL, 1, 120, "10", N_("--connect-timeout takes seconds, %ld to %ld")},
	{"max-response", O_MAXRESP, "BYTES", N_("largest response accepted (default 4194304)"),
	 VZ_KEY_NONE, NULL, NULL, 1024, 1L << 30, NULL,
	 N_("--max-response takes bytes, %ld to %ld")},
	{0},
};

static int cmd_cov(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_cov = {
	.name = "cov",
	.run = cmd_cov,
	.synopsis = "cov --bsn BSN --birthdate YYYY-MM-DD [--date YYYY-MM-DD] [--agb CODE]\n"
		    "      [--label LABEL] [--env tst|acc|prd | --endpoint URL] [--cacert FILE]\n"
		    "cov --stdin [same options]\n"
		    "cov --batch FILE.csv|- [--out FILE] [--jobs N] [same options]",
	.usage = N_("cov --bsn BSN --birthdate YYYY-MM-DD [--date YYYY-MM-DD]\n"
		    "                                [--reference REF] [OPTIONS]\n"
		    "cov --stdin [OPTIONS]\n"
		    "cov --batch FILE.csv|- [--out FILE] [--jobs N] [OPTIONS]"),
	.about = N_("Check insurance (COV, VZ801/802) at VECOZO with the system certificate on the "
		    "token.\n"),
	.opts = cov_opts,
	.notes = N_(
		"Output: plain text, or with --json the object described in the README; a batch\n"
		"writes CSV (or a JSON array) with exactly one row per input line, in input "
		"order.\n"
		"Exit: 0 the check(s) succeeded (found or not), 1 a check failed, 2 usage "
		"error.\n"),
};

/* Reads the options into o; -1 after --help, 0 or a usage exit. */
static int read_options(vz_global *g, int argc, char **argv, struct cov_opts *o)
{
	const char **text[N_O] = {
		[O_BSN] = &o->bsn,	     [O_BIRTH] = &o->birthdate, [O_DATE] = &o->date,
		[O_REF] = &o->reference,     [O_BATCH] = &o->batch,	[O_OUT] = &o->out,
		[O_AGB] = &o->agb,	     [O_LABEL] = &o->label,	[O_ENV] = &o->env,
		[O_ENDPOINT] = &o->endpoint, [O_CACERT] = &o->cacert,
	};
	long *num[N_O] = {
		[O_JOBS] = &o->jobs,
		[O_RETRIES] = &o->retries,
		[O_TIMEOUT] = &o->timeout_s,
		[O_CTIMEOUT] = &o->connect_timeout_s,
		[O_MAXRESP] = &o->max_response,
	};
	const char *arg;
	int id, r;

	while ((id = vz_opt_next(g, &vz_cmd_cov, argc, argv, &arg)) > 0) {
		if (id == O_STDIN) {
			o->from_stdin = true;
		} else if (text[id]) {
			*text[id] = arg;
		} else {
			r = vz_opt_num(&vz_cmd_cov, id, arg, num[id]);
			if (r)
				return r;
		}
	}
	if (id == VZ_OPT_HELP)
		return -1;
	if (id != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_cov, id, argv);
	if (optind < argc)
		return vz_usage("cov", "unexpected argument '%s'", argv[optind]);
	return 0;
}

/* Which persons: --bsn/--birthdate, --stdin or --batch, never a mix. */
static int check_input(const vz_global *g, const struct cov_opts *o)
{
	bool single = o->bsn || o->birthdate;
	bool reads_stdin = o->from_stdin || (o->batch && strcmp(o->batch, "-") == 0);

	if (single + o->from_stdin + (o->batch != NULL) > 1)
		return vz_usage("cov", "give one of --bsn/--birthdate, --stdin or --batch");
	if (!o->batch && !o->from_stdin && (!o->bsn || !o->birthdate))
		return vz_usage("cov", "give --bsn and --birthdate, --stdin, or --batch FILE.csv");
	if ((o->batch || o->from_stdin) && (o->date || o->reference))
		return vz_usage("cov", "--date and --reference go with --bsn; with --stdin or "
				       "--batch they are fields of the line");
	if (o->out && !o->batch)
		return vz_usage("cov", "--out is for --batch");
	if (reads_stdin && g->pin_source && strcmp(g->pin_source, "stdin") == 0)
		return vz_usage("cov", "standard input carries the persons here; give the PIN "
				       "another way (env:VAR, file:PATH, fd:N or prompt)");
	if (o->reference && strlen(o->reference) > 4 * VZ_COV_REF_MAX)
		return vz_usage("cov", "the reference is longer than 80 characters");
	return 0;
}

static int parse_args(vz_global *g, int argc, char **argv, struct cov_opts *o)
{
	int r = read_options(g, argc, argv, o);

	if (r == 0)
		r = check_input(g, o);
	if (r == 0)
		r = vz_target("cov", &o->env, &o->endpoint, vz_cov_endpoint);
	if (r != 0)
		return r;
	o->cacert = o->cacert ? o->cacert : vz_env("VZP11_CACERT");
	o->agb = o->agb ? o->agb : vz_env("VZP11_AGB");
	if (o->agb && !vz_agb_valid(o->agb))
		return vz_usage("cov", "the AGB code must be 8 digits");
	return 0;
}

static void today(char out[11])
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Compact JSON without a line end; frees j. */
static void put_json(FILE *f, json_t *j)
{
	json_dumpf(j, f, JSON_COMPACT);
	json_decref(j);
}

/* ---- single check ---- */

struct single {
	vz_cov_one one;				      /* first: vz_cov_next_one() reads it */
	char error[sizeof(((vz_cov_row *)0)->error)]; /* of the emitted row */
	bool json;
};

static vz_rv single_emit(void *ctx, const vz_cov_row *row, vz_err *err)
{
	struct single *s = ctx;

	if (s->json) {
		put_json(stdout, vz_cov_row_json(row, false));
		putchar('\n');
	} else if (!row->error[0]) {
		vz_cov_row_text(stdout, row);
	}
	snprintf(s->error, sizeof(s->error), "%s", row->error);
	return VZ_OK;
}

/* The one line of --stdin: bsn,birthdate[,date][,reference], then the end
 * of the input. Returns 0, or an exit code. */
static int read_stdin_row(vz_cov_row *row, const char *default_date)
{
	vz_csv *csv = vz_csv_new(stdin);
	vz_err err = {0};
	char **f = NULL;
	size_t n = 0;
	int r, more;

	if (!csv) {
		fprintf(stderr, _("vzp11: out of memory\n"));
		return VZ_EXIT_FAIL;
	}
	r = vz_csv_read(csv, &f, &n, &err);
	if (r == 1)
		vz_cov_row_fill(row, f[0], n > 1 ? f[1] : NULL, n > 2 ? f[2] : NULL,
				n > 3 ? f[3] : NULL, default_date);
	else if (r == 2)
		vz_cov_row_malformed(row, vz_csv_line(csv), vz_csv_problem(csv));
	more = r > 0 ? vz_csv_read(csv, &f, &n, &err) : 0;
	row->line = 1;
	vz_csv_free(csv);
	if (r < 0 || more < 0) {
		vz_report(&err);
		return VZ_EXIT_FAIL;
	}
	if (r == 0)
		return vz_usage("cov", "--stdin found no line on standard input");
	if (more != 0 || n > 4)
		return vz_usage("cov", "--stdin takes one line bsn,birthdate[,date][,reference]; "
				       "use --batch - for more");
	return 0;
}

/* The search from the options or standard input. A search refused locally
 * is reported without touching the token. Returns -1 when it can be sent,
 * else the exit code. */
static int single_prepare(vz_global *g, const struct cov_opts *o, struct single *s)
{
	char d[11];
	int r = 0;

	today(d);
	s->json = g->json;
	s->one.row.line = 1;
	if (o->from_stdin)
		r = read_stdin_row(&s->one.row, d);
	else
		vz_cov_row_fill(&s->one.row, o->bsn, o->birthdate, o->date, o->reference, d);
	if (r)
		return r;
	if (!s->one.row.done)
		return -1;
	single_emit(s, &s->one.row, NULL);
	fprintf(stderr, _("vzp11: %s\n"), s->one.row.error);
	return VZ_EXIT_FAIL;
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
		vz_err_set(err, "the batch file has no readable header line%s%s",
			   r == 2 ? ": " : "", r == 2 ? vz_csv_problem(b->csv) : "");
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
	if (r == 2)
		vz_cov_row_malformed(row, row->line, vz_csv_problem(b->csv));
	else
		vz_cov_row_fill(row, field(f, n, b->col_bsn), field(f, n, b->col_birth),
				field(f, n, b->col_date), field(f, n, b->col_ref), b->today);
	return 1;
}

static vz_rv batch_emit(void *ctx, const vz_cov_row *row, vz_err *err)
{
	struct batch *b = ctx;

	if (b->json) {
		fputs(b->first_json ? "[\n" : ",\n", b->out);
		b->first_json = false;
		put_json(b->out, vz_cov_row_json(row, true));
	} else {
		vz_cov_row_csv(b->out, b->sep, row);
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
	fputs("\r\033[K", stderr); /* back to the start of the line, cleared */
	fprintf(stderr, _("vzp11: %zu rows (%zu failed), %.0f/s, %zu requests"), st->rows,
		st->failed, secs > 0.5 ? (double)st->rows / secs : 0.0, st->requests);
	if (b->in_size > 0)
		fprintf(stderr, ", %ld%%", vz_csv_offset(b->csv) * 100 / b->in_size);
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
	cfg->token_wait_ms = TOKEN_WAIT_MS;
}

static int run_single(vz_global *g, const struct cov_opts *o, struct single *s, vz_tls *tls)
{
	vz_cov_cfg cfg;
	vz_cov_stats st;
	vz_err err = {0};

	make_cfg(o, &cfg);
	cfg.jobs = 1;
	if (vz_cov_run(&cfg, tls, vz_cov_next_one, single_emit, NULL, s, &st, &err) != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_FAIL;
	}
	if (st.reconnects)
		vz_note(g, "re-connected to the token %zu time(s)", st.reconnects);
	if (s->error[0]) {
		fprintf(stderr, _("vzp11: the check failed: %s\n"), s->error);
		return VZ_EXIT_FAIL;
	}
	return VZ_EXIT_OK;
}

/* Opens the input, reads the header and opens the output. */
static vz_rv batch_open(const vz_global *g, const struct cov_opts *o, struct batch *b, vz_err *err)
{
	struct stat sb;
	size_t stale = 0;

	b->in = strcmp(o->batch, "-") == 0 ? stdin : fopen(o->batch, "r");
	if (!b->in) {
		vz_err_set(err, "cannot open %s: %s", o->batch, strerror(errno));
		return VZ_FAIL;
	}
	if (fstat(fileno(b->in), &sb) == 0 && S_ISREG(sb.st_mode))
		b->in_size = (long)sb.st_size;
	b->csv = vz_csv_new(b->in);
	if (!b->csv) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	if (read_header(b, err) != VZ_OK)
		return VZ_FAIL;
	b->out = stdout;
	if (o->out && vz_outfile_open(o->out, &b->out, &stale, err) != VZ_OK)
		return VZ_FAIL;
	if (stale)
		vz_note(g, "removed %zu partial result file(s) of %s left by an interrupted run",
			stale, o->out);
	return VZ_OK;
}

static int run_batch(vz_global *g, const struct cov_opts *o, vz_tls *tls)
{
	struct batch b = {
		.json = g->json, .first_json = true, .g = g, .tty = isatty(STDERR_FILENO)};
	vz_cov_cfg cfg;
	vz_cov_stats st = {0};
	vz_err err = {0};
	vz_rv r;

	today(b.today);
	r = batch_open(g, o, &b, &err);
	if (r != VZ_OK)
		goto out;
	if (!b.json)
		vz_cov_csv_header(b.out, b.sep);
	make_cfg(o, &cfg);
	r = vz_cov_run(&cfg, tls, batch_next, batch_emit, batch_progress, &b, &st, &err);
	if (r == VZ_OK && b.json)
		fputs(b.first_json ? "[]\n" : "\n]\n", b.out);
	if (b.tty && !g->quiet)
		fputs("\r\033[K", stderr);
	if (o->out) {
		vz_rv c = vz_outfile_close(b.out, r == VZ_OK, &err);

		r = r == VZ_OK ? c : r;
	} else if (fflush(stdout) != 0 || ferror(stdout)) {
		vz_err_set(&err, "cannot write the output: %s", strerror(errno));
		r = VZ_FAIL;
	}
out:
	if (r != VZ_OK)
		vz_report(&err);
	else
		vz_note(g,
			"%zu rows, %zu failed; %zu requests (%zu retries) over %zu connections; "
			"%zu re-connect(s) to the token",
			st.rows, st.failed, st.requests, st.retries, st.connections, st.reconnects);
	if (b.csv && vz_csv_converted(b.csv))
		vz_note(g, "%zu line(s) were not UTF-8 and were read as Windows-1252",
			vz_csv_converted(b.csv));
	vz_csv_free(b.csv);
	if (b.in && b.in != stdin)
		fclose(b.in);
	return r != VZ_OK || st.failed ? VZ_EXIT_FAIL : VZ_EXIT_OK;
}

static int cmd_cov(vz_global *g, int argc, char **argv)
{
	struct cov_opts o = {.label = VZ_DEFAULT_LABEL,
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
	if (!o.batch) {
		ret = single_prepare(g, &o, &single);
		if (ret != -1)
			return ret;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, _("vzp11: cannot initialize libcurl\n"));
		return VZ_EXIT_FAIL;
	}
	if (vz_tls_open(g, o.label, &tls, &err) != VZ_OK) {
		vz_report(&err);
		curl_global_cleanup();
		return VZ_EXIT_FAIL;
	}
	if (g->verbose)
		vz_note(g, "certificate: %s; endpoint: %s", vz_tls_subject(tls), o.endpoint);
	/* A key that signs otherwise than its token promised: said once. */
	if ((g->verbose || vz_tls_fell_back(tls)) && vz_tls_note(tls)[0])
		vz_note(g, "%s", vz_tls_note(tls));
	ret = o.batch ? run_batch(g, &o, tls) : run_single(g, &o, &single, tls);
	vz_tls_close(tls);
	curl_global_cleanup();
	return ret;
}
