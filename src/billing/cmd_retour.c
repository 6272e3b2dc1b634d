/* cmd_retour.c - `vzp11 retour`: fetch waiting return messages
 * (retourinformatie), store each safely, and only then tell VECOZO it was
 * received. A payload whose size or SHA-256 does not match is never stored
 * under its name nor confirmed. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "billing/billing.h"
#include "cli/cli.h"

/* The result for one message. */
struct got {
	vz_br_retour m;
	char file[4096];
	const char *result; /* stored, already-stored, checksum-mismatch, foreign-url, failed */
	char error[5120];   /* room for a message and a path */
};

/* A download in progress: written and hashed as it arrives. */
struct sink {
	FILE *out;
	EVP_MD_CTX *md;
	long long size, limit;
	bool too_big;
};

static bool sink_write(void *ctx, const void *p, size_t n)
{
	struct sink *s = ctx;

	if (s->size + (long long)n > s->limit) {
		s->too_big = true;
		return false;
	}
	s->size += (long long)n;
	return EVP_DigestUpdate(s->md, p, n) == 1 && fwrite(p, 1, n, s->out) == n;
}

static void sink_restart(void *ctx)
{
	struct sink *s = ctx;

	fflush(s->out);
	if (ftruncate(fileno(s->out), 0) == 0)
		rewind(s->out);
	EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
	s->size = 0;
	s->too_big = false;
}

static void hex(const unsigned char *b, unsigned int n, char *out)
{
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* SHA-256 and size of a file already there. */
static bool hash_file(const char *path, char out[65], long long *size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[65536], sum[32];
	unsigned int n = 0;
	FILE *f = fopen(path, "rb");
	bool ok = f && md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	size_t got;

	*size = 0;
	while (ok && (got = fread(buf, 1, sizeof(buf), f)) > 0) {
		ok = EVP_DigestUpdate(md, buf, got) == 1;
		*size += (long long)got;
	}
	ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, sum, &n) == 1;
	if (ok)
		hex(sum, n, out);
	if (f)
		fclose(f);
	EVP_MD_CTX_free(md);
	return ok;
}

struct retour_run {
	const vz_global *g;
	vz_journal *j;
	vz_rest *rest;
	const char *dir;
};

/* Tells VECOZO the message is safely here, and records that. */
static bool confirm(struct retour_run *r, struct got *gt)
{
	char path[256];
	vz_rest_answer a = {0};
	vz_err e = {0};
	bool ok, unknown;

	snprintf(path, sizeof(path), VZ_BR_PATH_PULL "/%s", gt->m.traceer_id);
	ok = vz_rest_delete(r->rest, path, &a, &e) == VZ_OK;
	/* 404 is "not found or not authorised" in VECOZO's contract: not a
	 * confirmation, whichever of the two it is. */
	unknown = ok && a.http == 404;
	if (ok && !unknown && a.http != 202 && a.http != 200 && a.http != 204) {
		vz_bill_http_error(&a, "confirming receipt", &e);
		ok = false;
	}
	vz_rest_answer_clear(&a);
	if (unknown) {
		snprintf(gt->error, sizeof(gt->error),
			 _("stored, but not confirmed: VECOZO answered 404, so the message is "
			   "either not found there (confirmed already: by an earlier run whose "
			   "answer was lost, or by other software with this certificate) or this "
			   "certificate is not authorised to confirm it; the journal keeps it open "
			   "(stored, not confirmed), and a later run asks again as long as VECOZO "
			   "lists it. One confirmed already is never listed again: then 'vzp11 "
			   "retour --forget %s' closes its entry"),
			 gt->m.traceer_id);
		return false;
	}
	if (ok && vz_journal_retour_confirmed(r->j, gt->m.traceer_id, &e) != VZ_OK)
		ok = false;
	if (!ok)
		snprintf(gt->error, sizeof(gt->error),
			 _("stored, but confirming receipt failed: %s (the next run confirms it)"),
			 e.msg);
	return ok;
}

static bool record(struct retour_run *r, struct got *gt)
{
	vz_retour rec = {0}, earlier = {0};
	vz_err e = {0};
	vz_rv rv;

	snprintf(rec.traceer_id, sizeof(rec.traceer_id), "%s", gt->m.traceer_id);
	snprintf(rec.file, sizeof(rec.file), "%s", gt->file);
	memcpy(rec.sha256, gt->m.sha256, sizeof(rec.sha256));
	rec.size = gt->m.size;
	rec.state = VZ_RETOUR_STORED;
	rv = vz_journal_retour_stored(r->j, &rec, &earlier, &e);
	if (rv == VZ_OK || rv == VZ_DUPLICATE)
		return true;
	gt->result = "failed";
	snprintf(gt->error, sizeof(gt->error), _("stored, but the journal failed: %s"), e.msg);
	return false;
}

/* Where the payload is: the list's payload.url when it is on the
 * configured base (the client certificate goes to no other host), else
 * false with gt saying why. Without a URL, the path VECOZO documents. */
static bool payload_url(struct retour_run *r, struct got *gt, char *url, size_t size)
{
	char path[256], shown[160];
	vz_err e = {0};

	if (!gt->m.url[0]) {
		snprintf(path, sizeof(path), VZ_BR_PATH_PULL "/%s/payload", gt->m.traceer_id);
		return vz_rest_on_base(r->rest, path, url, size, &e) == VZ_OK;
	}
	if (vz_rest_on_base(r->rest, gt->m.url, url, size, &e) == VZ_OK)
		return true;
	snprintf(shown, sizeof(shown), "%.150s%s", gt->m.url, strlen(gt->m.url) > 150 ? "..." : "");
	vz_text_clean(shown);
	gt->result = "foreign-url";
	snprintf(gt->error, sizeof(gt->error),
		 _("its payload URL %s was not followed: %s; the client certificate goes to no "
		   "other host. Not stored, not confirmed: it stays waiting at VECOZO"),
		 shown, e.msg);
	return false;
}

/* Downloads into the final name through a partial file. */
static void download(struct retour_run *r, struct got *gt)
{
	struct sink s = {.limit = gt->m.size};
	unsigned char sum[32];
	unsigned int n = 0;
	char url[2048], sha[65] = "";
	vz_rest_answer a = {0};
	vz_err e = {0};
	size_t stale = 0;
	bool ok;

	gt->result = "failed";
	if (!payload_url(r, gt, url, sizeof(url))) {
		if (!gt->error[0])
			snprintf(gt->error, sizeof(gt->error), "%s",
				 _("the payload's URL cannot be built"));
		return;
	}
	s.md = EVP_MD_CTX_new();
	if (!s.md || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1 ||
	    vz_outfile_open(gt->file, &s.out, &stale, &e) != VZ_OK) {
		snprintf(gt->error, sizeof(gt->error), "%s", e.msg[0] ? e.msg : "out of memory");
		EVP_MD_CTX_free(s.md);
		return;
	}
	ok = vz_rest_download_url(r->rest, url, sink_write, sink_restart, &s, &a, &e) == VZ_OK;
	if (ok && a.http != 200) {
		vz_bill_http_error(&a, "the payload", &e);
		ok = false;
	}
	if (ok && EVP_DigestFinal_ex(s.md, sum, &n) == 1)
		hex(sum, n, sha);
	if (!ok) {
		snprintf(gt->error, sizeof(gt->error), "%s",
			 s.too_big ? "the payload is larger than announced" : e.msg);
		if (s.too_big)
			gt->result = "checksum-mismatch";
	} else if (s.size != gt->m.size || strcmp(sha, gt->m.sha256) != 0) {
		gt->result = "checksum-mismatch";
		snprintf(gt->error, sizeof(gt->error),
			 _("the payload does not match its announced %s (got %lld bytes, SHA-256 "
			   "%.12s...); not stored, not confirmed"),
			 s.size != gt->m.size ? "size" : "SHA-256", s.size, sha);
		ok = false;
	}
	vz_rest_answer_clear(&a);
	EVP_MD_CTX_free(s.md);
	if (vz_outfile_close(s.out, ok, &e) != VZ_OK) {
		snprintf(gt->error, sizeof(gt->error), "%s", e.msg);
		return;
	}
	if (!ok)
		return;
	gt->result = "stored";
	if (record(r, gt))
		confirm(r, gt);
}

/* One waiting message: already here, or fetch it. */
static void fetch(struct retour_run *r, struct got *gt)
{
	vz_retour earlier = {0};
	vz_err e = {0};
	char sha[65] = "";
	long long size = 0;
	struct stat st;

	vz_rv known;

	snprintf(gt->file, sizeof(gt->file), "%s/retour-%s", r->dir, gt->m.traceer_id);
	known = vz_journal_retour_get(r->j, gt->m.traceer_id, &earlier, &e);
	if (known == VZ_OK) {
		/* Stored by an earlier run that died before confirming. */
		snprintf(gt->file, sizeof(gt->file), "%s", earlier.file);
		gt->result = "already-stored";
		confirm(r, gt);
		return;
	}
	if (known != VZ_NOT_FOUND) {
		gt->result = "failed";
		snprintf(gt->error, sizeof(gt->error), "%s", e.msg);
		return;
	}
	if (lstat(gt->file, &st) == 0) {
		/* Renamed into place, but the run died before the journal knew. */
		if (hash_file(gt->file, sha, &size) && size == gt->m.size &&
		    strcmp(sha, gt->m.sha256) == 0) {
			gt->result = "already-stored";
			if (record(r, gt))
				confirm(r, gt);
			return;
		}
		gt->result = "failed";
		snprintf(gt->error, sizeof(gt->error),
			 _("another file already has the name %s; it was not overwritten"),
			 gt->file);
		return;
	}
	download(r, gt);
}

static void print_got(const vz_global *g, json_t *arr, const struct got *gt)
{
	if (arr) {
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s?}",
						     "traceer_id", gt->m.traceer_id, "file",
						     gt->file, "size", (json_int_t)gt->m.size,
						     "sha256", gt->m.sha256, "result", gt->result,
						     "error", gt->error[0] ? gt->error : NULL));
		return;
	}
	printf(_("%s  %s  %lld bytes  %s\n"), gt->m.traceer_id, gt->result, gt->m.size, gt->file);
	if (gt->error[0])
		fprintf(stderr, _("vzp11: %s: %s\n"), gt->m.traceer_id, gt->error);
}

/* Seen this run: a message that failed stays waiting and must not be
 * fetched in a loop. */
struct seen {
	char (*ids)[37];
	size_t n, cap;
};

static bool seen_add(struct seen *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0)
			return false;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		char(*g)[37] = realloc(s->ids, ncap * sizeof(*g));

		if (!g)
			return false;
		s->ids = g;
		s->cap = ncap;
	}
	memcpy(s->ids[s->n++], id, 37);
	return true;
}

enum {
	O_DIR = 1,
	O_LIMIT,
	O_FORGET
};

static const vz_opt retour_table[] = {
	VZ_OPT("dir", O_DIR, "DIR", N_("where to store the return files")),
	{"limit", O_LIMIT, "N",
	 N_("messages asked for per call, 1..250 (default 250);\n"
	    "calls repeat until one brings nothing new"),
	 VZ_KEY_NONE, NULL, NULL, 1, 250, NULL, N_("--limit takes a number from %ld to %ld")},
	VZ_OPT("forget", O_FORGET, "TRACEERID",
	       N_("take a return file that is stored but not confirmed\n"
		  "out of the journal (the file stays): for one whose\n"
		  "confirmation VECOZO answered 404 and that it no longer\n"
		  "lists, so no run closes it; nothing is sent")),
	VZ_BILL_OPTS,
	{0},
};

static int cmd_retour(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_retour = {
	.name = "retour",
	.run = cmd_retour,
	.synopsis = "retour --dir DIR [--limit N]",
	.usage = N_("retour --dir DIR [--limit N] [OPTIONS]\n"
		    "retour --forget TRACEERID"),
	.about = N_(
		"Fetch the return messages waiting at VECOZO, check each one's size and SHA-256,\n"
		"store it as DIR/retour-TRACEERID (mode 0600; written under a temporary name,\n"
		"synced, renamed), record it in the journal, and only then confirm receipt.\n"),
	.opts = retour_table,
	.notes = N_("Exit: 0 every waiting message stored and confirmed, 1 one failed (it stays\n"
		    "waiting at VECOZO), 2 usage error.\n"),
};

/* What retour is told to do. */
struct retour_args {
	const char *dir, *forget;
	long limit;
	bool limited; /* --limit given */
};

/* -1 after --help, 0 when the options are good, else the exit code. */
static int take_opts(vz_global *g, int argc, char **argv, vz_bill_opts *b, struct retour_args *a)
{
	const char *arg;
	int id, r;

	while ((id = vz_opt_next(g, &vz_cmd_retour, argc, argv, &arg)) > 0) {
		r = vz_bill_opt(b, &vz_cmd_retour, id, arg);
		if (r > 0)
			return r;
		if (id == O_DIR) {
			a->dir = arg;
		} else if (id == O_LIMIT) {
			r = vz_opt_num(&vz_cmd_retour, id, arg, &a->limit);
			if (r)
				return r;
			a->limited = true;
		} else if (id == O_FORGET) {
			a->forget = arg;
		}
	}
	if (id == VZ_OPT_HELP)
		return -1;
	return id == VZ_OPT_END ? 0 : vz_opt_stop(&vz_cmd_retour, id, argv);
}

/* -1 after --help, 0 when the options are good, else the exit code. */
static int parse_args(vz_global *g, int argc, char **argv, vz_bill_opts *b, struct retour_args *a)
{
	struct stat st;
	int r = take_opts(g, argc, argv, b, a);

	if (r)
		return r;
	if (optind < argc)
		return vz_usage("retour", "unexpected argument '%s'", argv[optind]);
	if (a->forget && (a->dir || a->limited))
		return vz_usage("retour", "--forget changes only the journal: leave out --dir and "
					  "--limit");
	if (a->forget)
		return 0;
	if (!a->dir)
		return vz_usage("retour", "give --dir DIR, where the return files go");
	if (stat(a->dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return vz_usage("retour", "--dir %s is not a directory", a->dir);
	return vz_bill_resolve(b, "retour");
}

/* One page of the list: every message not seen before. *fresh counts
 * them; *failed the ones that did not end stored and confirmed. */
static vz_rv page(struct retour_run *r, long limit, struct seen *seen, json_t *arr, size_t *fresh,
		  size_t *failed, vz_err *err)
{
	char path[128];
	vz_rest_answer a = {0};
	vz_br_retour *list = NULL;
	size_t n = 0, bad = 0;
	vz_rv rv;

	*fresh = 0;
	snprintf(path, sizeof(path), VZ_BR_PATH_PULL "?limit=%ld", limit);
	rv = vz_rest_get(r->rest, path, &a, err);
	if (rv == VZ_OK && a.http != 200) {
		vz_bill_http_error(&a, "the list of return messages", err);
		rv = VZ_FAIL;
	}
	if (rv == VZ_OK)
		rv = vz_br_pull_parse(a.body ? a.body : "", a.len, &list, &n, &bad, err);
	vz_rest_answer_clear(&a);
	if (rv != VZ_OK)
		return rv;
	if (bad)
		vz_note(r->g,
			"%zu listed message(s) lack a traceerId, size or SHA-256 and were left "
			"waiting",
			bad);
	for (size_t i = 0; i < n; i++) {
		struct got gt = {.m = list[i]};

		if (!seen_add(seen, list[i].traceer_id))
			continue;
		(*fresh)++;
		fetch(r, &gt);
		*failed += gt.error[0] != '\0'; /* every failure says why */
		print_got(r->g, arr, &gt);
	}
	free(list);
	*failed += bad;
	return VZ_OK;
}

/* A traceerId as the journal holds it: a UUID in lower case. */
static bool journal_id(const char *arg, char id[VZ_UUID_LEN + 1])
{
	size_t i;

	for (i = 0; arg[i] && i < VZ_UUID_LEN; i++) {
		unsigned char ch = (unsigned char)arg[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? ch != '-' : !isxdigit(ch))
			return false;
		id[i] = (char)tolower(ch);
	}
	id[i] = '\0';
	return i == VZ_UUID_LEN && !arg[i];
}

/* --forget: a return file that is stored but not confirmed leaves the
 * journal; its file stays. Nothing goes to VECOZO. */
static int forget_one(const vz_global *g, const char *arg)
{
	char id[VZ_UUID_LEN + 1];
	vz_journal *j = NULL;
	vz_retour r = {0};
	vz_err err = {0};
	vz_rv rv;
	int ret = VZ_EXIT_FAIL;

	if (!journal_id(arg, id))
		return vz_usage("retour", "--forget takes a traceerId (a UUID), not '%s'", arg);
	if (vz_journal_open(g->journal, &j, &err) != VZ_OK)
		goto out;
	rv = vz_journal_retour_get(j, id, &r, &err);
	if (rv == VZ_NOT_FOUND) {
		vz_err_set(&err, "the journal %s holds no return file with traceerId %s",
			   vz_journal_where(j), id);
		vz_err_hint(&err, "'vzp11 journal' lists the return files it holds");
		goto out;
	}
	if (rv != VZ_OK)
		goto out;
	if (r.state != VZ_RETOUR_STORED) {
		vz_err_set(&err,
			   "return file %s was confirmed at VECOZO on %s; its entry is closed "
			   "already and stays",
			   id, r.confirmed_at);
		goto out;
	}
	if (vz_journal_retour_forget(j, id, &err) != VZ_OK)
		goto out;
	if (g->json)
		vz_bill_put_json(stdout, json_pack("[{s:s, s:s, s:I, s:s, s:s}]", "traceer_id", id,
						   "file", r.file, "size", (json_int_t)r.size,
						   "sha256", r.sha256, "result", "forgotten"));
	else
		printf(_("%s  %s  %lld bytes  %s\n"), id, "forgotten", r.size, r.file);
	vz_note(g,
		"the journal no longer holds %s; its file stays. Should VECOZO list it again, "
		"'vzp11 retour' takes it as new, and a run with the same --dir finds the file "
		"and confirms it without fetching it again",
		id);
	ret = fflush(stdout) == 0 ? VZ_EXIT_OK : VZ_EXIT_FAIL;
	if (ret != VZ_EXIT_OK)
		vz_err_set(&err, "cannot write the output");
out:
	if (ret != VZ_EXIT_OK && err.msg[0])
		vz_report(&err);
	vz_journal_close(j);
	return ret;
}

static int cmd_retour(vz_global *g, int argc, char **argv)
{
	struct retour_run r = {.g = g};
	struct seen seen = {0};
	vz_bill_opts b;
	vz_tls *tls = NULL;
	vz_err err = {0};
	json_t *arr = NULL;
	struct retour_args a = {.limit = 250};
	size_t fresh = 0, failed = 0, total = 0;
	int ret;

	vz_bill_defaults(&b);
	ret = parse_args(g, argc, argv, &b, &a);
	if (ret == -1)
		return VZ_EXIT_OK;
	if (ret != 0)
		return ret;
	if (a.forget)
		return forget_one(g, a.forget);
	r.dir = a.dir;
	ret = VZ_EXIT_FAIL;
	if (vz_journal_open(g->journal, &r.j, &err) != VZ_OK ||
	    vz_bill_connect(g, &b, &tls, &r.rest, &err) != VZ_OK)
		goto out;
	arr = g->json ? json_array() : NULL;
	do {
		if (page(&r, a.limit, &seen, arr, &fresh, &failed, &err) != VZ_OK)
			goto out;
		total += fresh;
	} while (fresh > 0);
	vz_note(g, "%zu return message(s), %zu not stored and confirmed", total, failed);
	ret = failed ? VZ_EXIT_FAIL : VZ_EXIT_OK;
out:
	if (arr)
		vz_bill_put_json(stdout, arr);
	if (err.msg[0])
		vz_report(&err);
	free(seen.ids);
	vz_bill_disconnect(tls, r.rest);
	vz_journal_close(r.j);
	return ret;
}
