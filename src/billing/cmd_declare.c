/* cmd_declare.c - `vzp11 declare`: send declaration files to VECOZO's
 * Berichtenservice exactly once. Each file is recorded in the journal
 * before it is sent; a run that died in between is resolved by asking the
 * status service, never by sending blindly again. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "billing/billing.h"
#include "cli/cli.h"

struct declare_opts {
	vz_bill_opts b;
	vz_br_party from;
	vz_br_party to[VZ_BR_MAX_TO];
	size_t n_to;
	vz_br_flow flow;
	const char *flow_text, *reference;
	bool has_from, has_flow, force;
};

enum {
	O_FROM = 1,
	O_TO,
	O_FLOW,
	O_REF,
	O_FORCE
};

static int parse_to(struct declare_opts *o, const char *arg)
{
	char buf[4096], *save = NULL;
	const char *why;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return vz_usage("declare", "--to is too long");
	for (char *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (o->n_to == VZ_BR_MAX_TO)
			return vz_usage("declare", "at most %d addressees", VZ_BR_MAX_TO);
		if (!vz_br_party_parse(p, &o->to[o->n_to], &why))
			return vz_usage("declare", "--to: %s", why);
		o->n_to++;
	}
	return 0;
}

static const vz_opt declare_table[] = {
	{"from", O_FROM, "ROLE:CODE", N_("the sender, e.g. Praktijk:01234567 (AGB code)"),
	 VZ_KEY_TEXT, "billing", NULL, 0, 0, NULL, NULL},
	VZ_OPT("to", O_TO, "ROLE:CODE[,...]",
	       N_("addressees (at most 100), e.g. Zorgverzekeraar:3311 (UZOVI)")),
	VZ_OPT("flow", O_FLOW, "FLOW",
	       N_("berichttype[/subtype]:version.subversion[:action];\n"
		  "action defaults to Indienen; words of 1 to 60\n"
		  "characters (\\/, \\: and \\\\ for /, : and \\), numbers\n"
		  "0 to 999")),
	VZ_OPT("reference", O_REF, "REF",
	       N_("your own reference for the message (referentieId, at most\n"
		  "150 characters)")),
	VZ_OPT("force", O_FORCE, NULL,
	       N_("send content the journal has seen sent already, or\n"
		  "refused with 422")),
	VZ_BILL_OPTS,
	{0},
};

static int cmd_declare(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_declare = {
	.name = "declare",
	.run = cmd_declare,
	.synopsis =
		"declare FILE.txt... --from ROLE:CODE --to ROLE:CODE[,...] --flow TYPE[/SUB]:V.S[:ACTION]\n"
		"      [--reference REF] [--force] [--label LABEL] [--env tst|acc|prd | --endpoint URL]",
	.usage = N_(
		"declare FILE.txt... --from ROLE:CODE\n"
		"                 --to ROLE:CODE[,ROLE:CODE...] --flow TYPE[/SUBTYPE]:VERSION.SUBVERSION[:ACTION]\n"
		"                 [--reference REF] [--force] [OPTIONS]"),
	.about = N_(
		"Send declaration files (Vektis EI, name ending in .txt) to VECOZO's Berichtenservice\n"
		"with the system certificate on the token, each exactly once.\n"),
	.opts = declare_table,
	.notes =
		N_("Prints each file's traceerId. Exit: 0 every file accepted (or known to VECOZO\n"
		   "already), 1 a file was refused, is a duplicate or its fate is not known yet,\n"
		   "2 usage error.\n"),
};

/* One of declare's own options into o: 0, or the usage exit code. */
static int declare_opt(struct declare_opts *o, int id, const char *arg)
{
	const char *why;

	switch (id) {
	case O_FROM:
		if (!vz_br_party_parse(arg, &o->from, &why))
			return vz_usage("declare", "--from: %s", why);
		o->has_from = true;
		return 0;
	case O_TO:
		return parse_to(o, arg);
	case O_FLOW:
		if (!vz_br_flow_parse(arg, &o->flow, &why))
			return vz_usage("declare", "--flow: %s", _(why));
		o->flow_text = arg;
		o->has_flow = true;
		return 0;
	case O_REF:
		o->reference = arg;
		return 0;
	default: /* O_FORCE, the table's last */
		o->force = true;
		return 0;
	}
}

/* -1 after --help, 0 when the options are good, else the exit code. */
static int parse_args(vz_global *g, int argc, char **argv, struct declare_opts *o)
{
	const char *arg;
	int id, r;

	while ((id = vz_opt_next(g, &vz_cmd_declare, argc, argv, &arg)) > 0) {
		r = vz_bill_opt(&o->b, &vz_cmd_declare, id, arg);
		if (r < 0)
			r = declare_opt(o, id, arg);
		if (r)
			return r;
	}
	if (id == VZ_OPT_HELP)
		return -1;
	if (id != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_declare, id, argv);
	if (optind >= argc)
		return vz_usage("declare", "name the declaration file(s) to send");
	if (!o->has_from || !o->n_to || !o->has_flow)
		return vz_usage("declare", "give --from, --to and --flow");
	if (o->reference && !vz_br_reference_ok(o->reference))
		return vz_usage("declare",
				"--reference takes 1 to 150 characters of UTF-8 without control "
				"characters");
	return vz_bill_resolve(&o->b, "declare");
}

/* One file to declare: opened once, checked, hashed; sent from the same
 * descriptor. */
struct decl_file {
	const char *path;
	char name[256];
	int fd;
	long long size;
	char sha256[VZ_SHA256_HEX + 1];
};

static vz_rv hash_fd(int fd, char out[VZ_SHA256_HEX + 1], vz_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536], sum[32];
	unsigned int n = 0;
	ssize_t got;
	off_t off = 0;
	vz_rv ret = VZ_FAIL;

	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		got = pread(fd, buf, sizeof(buf), off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		off += got;
		if (EVP_DigestUpdate(md, buf, (size_t)got) != 1)
			goto out;
	}
	if (got < 0 || EVP_DigestFinal_ex(md, sum, &n) != 1)
		goto out;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", sum[i]);
	ret = VZ_OK;
out:
	if (ret != VZ_OK)
		vz_err_set(err, "cannot read the file to hash it: %s", strerror(errno));
	EVP_MD_CTX_free(md);
	return ret;
}

/* The checks that come before anything is sent or recorded. */
static vz_rv open_file(const char *path, struct decl_file *f, vz_err *err)
{
	char copy[4096];
	struct stat st;
	size_t len;

	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = -1;
	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(f->name, sizeof(f->name), "%s", basename(copy));
	len = strlen(f->name);
	if (len < 5 || strcmp(f->name + len - 4, ".txt") != 0) {
		vz_err_set(err,
			   "%s: the file name must end in .txt (lower case), as VECOZO requires",
			   path);
		return VZ_FAIL;
	}
	f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (f->fd < 0) {
		vz_err_set(err, "cannot open %s: %s", path, strerror(errno));
		return VZ_FAIL;
	}
	if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		vz_err_set(err, "%s is not a regular file", path);
		return VZ_FAIL;
	}
	if (st.st_size == 0) {
		vz_err_set(err, "%s is empty; nothing to declare", path);
		return VZ_FAIL;
	}
	f->size = (long long)st.st_size;
	return hash_fd(f->fd, f->sha256, err);
}

/* What became of one file, for the output. */
struct outcome {
	const char *status; /* accepted, refused, duplicate, pending */
	vz_decl d;
	long http;
	char *lines[16];
	size_t n_lines;
	char note[1024];
};

static void outcome_clear(struct outcome *oc)
{
	for (size_t i = 0; i < oc->n_lines; i++)
		free(oc->lines[i]);
	vz_decl_clear(&oc->d);
	memset(oc, 0, sizeof(*oc));
}

static void print_outcome(const vz_global *g, const struct decl_file *f, const struct outcome *oc)
{
	if (oc->note[0])
		fprintf(stderr, _("vzp11: %s: %s\n"), f->name, oc->note);
	if (g->json) {
		json_t *errs = oc->n_lines ? json_array() : json_null();

		for (size_t i = 0; i < oc->n_lines; i++)
			json_array_append_new(errs, json_string(oc->lines[i]));
		vz_bill_put_json(
			stdout,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "status", oc->status,
				  "traceer_id", oc->d.traceer_id, "conversatie_id",
				  oc->d.conversatie_id, "file", f->name, "sha256", f->sha256,
				  "size", (json_int_t)f->size, "http_status",
				  oc->http ? json_integer(oc->http) : json_null(), "errors", errs));
		return;
	}
	printf("%s: %s %s\n", f->name, oc->status, oc->d.traceer_id);
	for (size_t i = 0; i < oc->n_lines; i++)
		printf("  %s\n", oc->lines[i]);
}

/* Seconds since a journal time, or a large number when unreadable. */
static long long age_s(const char *t)
{
	struct tm tm = {0};

	if (!strptime(t, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return 1LL << 40;
	return (long long)(time(NULL) - timegm(&tm));
}

/* Asks the status service about a traceerId. VZ_OK known (status filled),
 * VZ_NOT_FOUND unknown, VZ_FAIL could not ask. */
static vz_rv ask_status(vz_rest *rest, const char *tid, vz_br_status *st, vz_err *err)
{
	char path[256];
	vz_rest_answer a = {0};
	vz_rv r;

	snprintf(path, sizeof(path), VZ_BR_PATH_STATUS "?traceerId=%s", tid);
	r = vz_rest_get(rest, path, &a, err);
	if (r == VZ_OK && a.http == 404)
		r = VZ_NOT_FOUND;
	else if (r == VZ_OK && a.http != 200) {
		vz_bill_http_error(&a, "the status service", err);
		r = VZ_FAIL;
	} else if (r == VZ_OK)
		r = vz_br_status_parse(a.body ? a.body : "", a.len, tid, st, err);
	vz_rest_answer_clear(&a);
	return r;
}

/* Records what the status service said: the message is at VECOZO. */
static vz_rv record_known(vz_journal *j, vz_decl *d, const vz_br_status *st, vz_err *err)
{
	free(d->meldingen);
	d->meldingen = vz_br_meldingen_json(st);
	d->state = VZ_DECL_ACCEPTED;
	snprintf(d->status, sizeof(d->status), "%s", st->status);
	d->final = vz_br_status_final(st->status);
	return vz_journal_decl_update(j, d, err);
}

struct run {
	const vz_global *g;
	const struct declare_opts *o;
	vz_journal *j;
	vz_rest *rest;
	long long lease_s; /* how long a send can take */
};

/* While a push runs: the journal row stays fresh, so another run does
 * not take it for one a dead run left (it would send the same content
 * again at the same time). A failure here changes nothing that matters
 * now; it is said once. */
struct beat_ctx {
	struct run *r;
	const char *traceer_id;
	bool failed;
};

static void still_sending(void *ctx)
{
	struct beat_ctx *b = ctx;
	vz_err e = {0};

	if (vz_journal_decl_touch(b->r->j, b->traceer_id, &e) != VZ_OK && !b->failed) {
		b->failed = true;
		vz_note(b->r->g, "cannot mark the declaration as still sending: %s", e.msg);
	}
}

/* Sends d (already recorded as SENDING) and records the answer. */
static vz_rv send_one(struct run *r, const struct decl_file *f, struct outcome *oc, vz_err *err)
{
	const struct declare_opts *o = r->o;
	char *meta = vz_br_metadata(&o->from, o->to, o->n_to, &o->flow, oc->d.conversatie_id,
				    oc->d.traceer_id, o->reference);
	vz_rest_answer a = {0};
	vz_err send_err = {0};
	struct beat_ctx beat = {.r = r, .traceer_id = oc->d.traceer_id};
	char *errors = NULL;
	vz_rv ret;

	if (!meta) {
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	ret = vz_rest_push(r->rest, VZ_BR_PATH_PUSH, meta, f->fd, f->size, f->name, still_sending,
			   &beat, &a, &send_err);
	free(meta);
	oc->http = a.http;
	oc->d.http_status = (int)a.http;
	if (ret != VZ_OK || a.http >= 500 || a.http == 429) {
		/* No answer, or none that says what happened: the journal keeps
		 * SENDING, and the next run asks the status service. */
		oc->status = "pending";
		if (ret != VZ_OK && !a.maybe_sent) {
			oc->status = "refused"; /* it never left this machine */
			oc->d.state = VZ_DECL_REFUSED;
			oc->d.refusal = VZ_REFUSAL_NOT_SENT;
		}
		snprintf(
			oc->note, sizeof(oc->note), "%s%s",
			ret != VZ_OK ? send_err.msg : "VECOZO answered with a server error",
			oc->d.state == VZ_DECL_REFUSED
				? "; not sent"
				: "; whether it arrived is not known: 'vzp11 declare-status' or "
				  "declaring the same file again will find out, and it will not be "
				  "sent twice");
		if (ret == VZ_OK)
			oc->n_lines =
				vz_br_problem(a.body ? a.body : "", a.len, oc->lines, 16, NULL);
	} else if (a.http == 204 || a.http == 200 || a.http == 202) {
		oc->status = "accepted";
		oc->d.state = VZ_DECL_ACCEPTED;
	} else {
		oc->status = "refused";
		oc->d.state = VZ_DECL_REFUSED;
		oc->d.refusal = a.http == 422	? VZ_REFUSAL_CONTENT
				: a.http == 401 ? VZ_REFUSAL_CERTIFICATE
				: a.http == 403 ? VZ_REFUSAL_RIGHT
						: VZ_REFUSAL_REQUEST;
		oc->n_lines = vz_br_problem(a.body ? a.body : "", a.len, oc->lines, 16, &errors);
		if (a.http == 401 || a.http == 403 || oc->n_lines == 0) {
			vz_err e = {0};

			vz_bill_http_error(&a, "declarations", &e);
			snprintf(oc->note, sizeof(oc->note), "%s", e.msg);
		} else if (a.http == 422) {
			snprintf(
				oc->note, sizeof(oc->note),
				_("VECOZO refused the declaration (422: do not send it again as it "
				  "is); a later declare of this content does not send it (--force "
				  "does)"));
		} else {
			snprintf(oc->note, sizeof(oc->note),
				 _("VECOZO found the message malformed "
				 "(HTTP %ld)"),
				 a.http);
		}
		free(oc->d.meldingen);
		oc->d.meldingen = errors;
	}
	vz_rest_answer_clear(&a);
	if (oc->d.state != VZ_DECL_SENDING)
		return vz_journal_decl_update(r->j, &oc->d, err);
	return VZ_OK;
}

/* The content is in the journal already: resolve instead of sending. */
static vz_rv resolve_earlier(struct run *r, const struct decl_file *f, struct outcome *oc,
			     bool *send, vz_err *err)
{
	vz_br_status st = {0};
	vz_rv q;

	*send = false;
	if (oc->d.state == VZ_DECL_REFUSED) {
		/* the duplicate rule holds refused content only when VECOZO refused
		 * the content itself (422) */
		oc->status = "refused";
		snprintf(oc->note, sizeof(oc->note),
			 _("VECOZO refused this content on %s as traceerId %s (422: do not send it "
			   "again as it is); not sent again: change the file, or --force sends it "
			   "anyway"),
			 oc->d.created_at, oc->d.traceer_id);
		return VZ_OK;
	}
	if (oc->d.state == VZ_DECL_ACCEPTED) {
		oc->status = "duplicate";
		snprintf(oc->note, sizeof(oc->note),
			 _("this content was accepted already on %s as traceerId %s; not sent "
			 "again (--force sends it anyway)"),
			 oc->d.created_at, oc->d.traceer_id);
		return VZ_OK;
	}
	/* SENDING: an earlier run died, or another run is sending it now. */
	q = ask_status(r->rest, oc->d.traceer_id, &st, err);
	if (q == VZ_FAIL)
		return VZ_FAIL;
	if (q == VZ_OK) {
		vz_rv u = record_known(r->j, &oc->d, &st, err);

		vz_br_status_clear(&st);
		oc->status = "accepted";
		snprintf(oc->note, sizeof(oc->note),
			 _("an earlier run sent this content; VECOZO has it (traceerId %s): not "
			 "sent again"),
			 oc->d.traceer_id);
		return u;
	}
	if (age_s(oc->d.updated_at) < r->lease_s) {
		oc->status = "pending";
		snprintf(oc->note, sizeof(oc->note),
			 _("another run started sending this content at %s and VECOZO does not know "
			 "it yet; try again in a few minutes"),
			 oc->d.updated_at);
		return VZ_OK;
	}
	/* Not at VECOZO and nobody is sending it: send it again under the same
	 * traceerId, so that it cannot become a second declaration. */
	oc->d.state = VZ_DECL_SENDING;
	*send = true;
	snprintf(oc->d.file, sizeof(oc->d.file), "%s", f->name);
	return vz_journal_decl_update(r->j, &oc->d, err);
}

static vz_rv declare_one(struct run *r, const struct decl_file *f, struct outcome *oc, vz_err *err)
{
	vz_decl d = {0};
	bool send = true;
	vz_rv b;

	if (vz_br_uuid(d.traceer_id, err) != VZ_OK || vz_br_uuid(d.conversatie_id, err) != VZ_OK)
		return VZ_FAIL;
	memcpy(d.sha256, f->sha256, sizeof(d.sha256));
	d.size = f->size;
	snprintf(d.file, sizeof(d.file), "%s", f->name);
	snprintf(d.flow, sizeof(d.flow), "%s", r->o->flow_text);
	d.forced = r->o->force;
	d.state = VZ_DECL_SENDING;
	b = vz_journal_decl_begin(r->j, &d, &oc->d, err);
	if (b == VZ_OK) {
		oc->d = d;
	} else if (b == VZ_DUPLICATE) {
		if (resolve_earlier(r, f, oc, &send, err) != VZ_OK)
			return VZ_FAIL;
	} else {
		return VZ_FAIL;
	}
	return send ? send_one(r, f, oc, err) : VZ_OK;
}

static int cmd_declare(vz_global *g, int argc, char **argv)
{
	struct declare_opts o = {0};
	struct decl_file *files = NULL;
	struct run r = {.g = g, .o = &o};
	vz_tls *tls = NULL;
	vz_err err = {0};
	size_t n = 0, done_ok = 0;
	int ret, first;

	vz_bill_defaults(&o.b);
	ret = parse_args(g, argc, argv, &o);
	if (ret == -1)
		return VZ_EXIT_OK;
	if (ret != 0)
		return ret;
	first = optind;
	files = calloc((size_t)(argc - first), sizeof(*files));
	if (!files) {
		fprintf(stderr, _("vzp11: out of memory\n"));
		return VZ_EXIT_FAIL;
	}
	ret = VZ_EXIT_FAIL;
	for (int i = first; i < argc; i++, n++)
		if (open_file(argv[i], &files[n], &err) != VZ_OK)
			goto out;
	r.lease_s = (o.b.timeout_s + o.b.connect_timeout_s + 10) * (o.b.retries + 1);
	if (vz_journal_open(g->journal, &r.j, &err) != VZ_OK ||
	    vz_bill_connect(g, &o.b, &tls, &r.rest, &err) != VZ_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct outcome oc = {0};

		if (declare_one(&r, &files[i], &oc, &err) != VZ_OK) {
			outcome_clear(&oc);
			goto out;
		}
		print_outcome(g, &files[i], &oc);
		done_ok += strcmp(oc.status, "accepted") == 0;
		outcome_clear(&oc);
	}
	vz_note(g, "%zu of %zu accepted; %zu TLS connection(s)", done_ok, n,
		vz_rest_connections(r.rest));
	ret = done_ok == n ? VZ_EXIT_OK : VZ_EXIT_FAIL;
	err.msg[0] = '\0';
out:
	if (err.msg[0])
		vz_report(&err);
	if (fflush(stdout) != 0)
		ret = VZ_EXIT_FAIL;
	vz_bill_disconnect(tls, r.rest);
	vz_journal_close(r.j);
	for (size_t i = 0; i < n + (n < (size_t)(argc - first)); i++)
		if (files[i].fd > 0)
			close(files[i].fd);
	free(files);
	return ret;
}
