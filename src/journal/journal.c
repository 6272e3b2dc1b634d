/* journal.c - the journal's public face: checks what callers hand in,
 * chooses the backend from the spec, and holds what both backends share
 * (time stamps, state names, the default path, URI redaction). */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "journal-int.h"

static const char *const decl_state_names[] = {"sending", "accepted", "refused"};
/* [VZ_REFUSAL_NONE] is stored as NULL */
static const char *const refusal_names[] = {NULL,	   "content", "request",
					    "certificate", "right",   "not-sent"};
static const char *const retour_state_names[] = {"stored", "confirmed"};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void vz_decl_clear(vz_decl *d)
{
	if (!d)
		return;
	free(d->meldingen);
	memset(d, 0, sizeof(*d));
}

void vz_journal_now(char out[VZ_TIME_LEN + 1])
{
	time_t now = time(NULL);
	struct tm tm;

	/* gmtime_r fails only past year 2^31; an empty stamp beats a wrong one */
	if (!gmtime_r(&now, &tm) ||
	    strftime(out, VZ_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != VZ_TIME_LEN)
		out[0] = '\0';
}

const char *vz_decl_state_text(vz_decl_state s)
{
	if ((size_t)s >= ARRAY_SIZE(decl_state_names))
		return NULL;
	return decl_state_names[s];
}

bool vz_decl_state_parse(const char *text, vz_decl_state *out)
{
	size_t i;

	for (i = 0; text && i < ARRAY_SIZE(decl_state_names); i++) {
		if (strcmp(text, decl_state_names[i]) == 0) {
			*out = (vz_decl_state)i;
			return true;
		}
	}
	return false;
}

const char *vz_decl_refusal_text(vz_decl_refusal r)
{
	if ((size_t)r >= ARRAY_SIZE(refusal_names))
		return NULL;
	return refusal_names[r];
}

bool vz_decl_refusal_parse(const char *text, vz_decl_refusal *out)
{
	size_t i;

	if (!text) {
		*out = VZ_REFUSAL_NONE;
		return true;
	}
	for (i = 1; i < ARRAY_SIZE(refusal_names); i++) {
		if (strcmp(text, refusal_names[i]) == 0) {
			*out = (vz_decl_refusal)i;
			return true;
		}
	}
	return false;
}

const char *vz_retour_state_text(vz_retour_state s)
{
	if ((size_t)s >= ARRAY_SIZE(retour_state_names))
		return NULL;
	return retour_state_names[s];
}

bool vz_retour_state_parse(const char *text, vz_retour_state *out)
{
	size_t i;

	for (i = 0; text && i < ARRAY_SIZE(retour_state_names); i++) {
		if (strcmp(text, retour_state_names[i]) == 0) {
			*out = (vz_retour_state)i;
			return true;
		}
	}
	return false;
}

bool vz_journal_copy(char *dst, size_t cap, const char *text)
{
	size_t len = text ? strlen(text) : 0;

	if (len >= cap)
		return false;
	memcpy(dst, text ? text : "", len);
	dst[len] = '\0';
	return true;
}

/* Appends n bytes of s to out (cap bytes, NUL-terminated), truncating. */
static void append(char *out, size_t cap, size_t *used, const char *s, size_t n)
{
	if (*used + 1 >= cap)
		return;
	if (n > cap - 1 - *used)
		n = cap - 1 - *used;
	memcpy(out + *used, s, n);
	*used += n;
	out[*used] = '\0';
}

/* Copies the query part (after '?') leaving out every password=... pair. */
static void append_query(char *out, size_t cap, size_t *used, const char *q)
{
	bool first = true;
	const char *amp;
	size_t n;

	while (*q) {
		amp = strchr(q, '&');
		n = amp ? (size_t)(amp - q) : strlen(q);
		if (!(n >= 9 && strncmp(q, "password=", 9) == 0) &&
		    !(n == 8 && strncmp(q, "password", 8) == 0) && n > 0) {
			append(out, cap, used, first ? "?" : "&", 1);
			append(out, cap, used, q, n);
			first = false;
		}
		q += n;
		if (*q == '&')
			q++;
	}
}

void vz_journal_redact_uri(const char *uri, char *out, size_t cap)
{
	const char *scheme = strstr(uri, "://");
	const char *auth, *auth_end, *at = NULL, *colon, *p, *query;
	size_t used = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	auth = scheme ? scheme + 3 : uri;
	append(out, cap, &used, uri, (size_t)(auth - uri));
	auth_end = auth + strcspn(auth, "/?#");
	/* the last '@' ends the user info; a password sits after its first ':' */
	for (p = auth; p < auth_end; p++) {
		if (*p == '@')
			at = p;
	}
	if (scheme && at) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		append(out, cap, &used, auth, (size_t)((colon ? colon : at) - auth));
		append(out, cap, &used, at, (size_t)(auth_end - at));
	} else {
		append(out, cap, &used, auth, (size_t)(auth_end - auth));
	}
	query = strchr(auth_end, '?');
	append(out, cap, &used, auth_end, query ? (size_t)(query - auth_end) : strlen(auth_end));
	if (query)
		append_query(out, cap, &used, query + 1);
}

/* The home directory: $HOME, else the password database. */
static const char *home_dir(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && home[0] == '/')
		return home;
	pw = getpwuid(geteuid());
	return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

vz_rv vz_journal_default_path(char *buf, size_t cap, vz_err *err)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home;
	int n;

	if (geteuid() == 0) {
		n = snprintf(buf, cap, "/var/lib/vzp11/journal.db");
	} else if (xdg && xdg[0] == '/') {
		/* the XDG spec says to ignore a relative $XDG_STATE_HOME */
		n = snprintf(buf, cap, "%s/vzp11/journal.db", xdg);
	} else {
		home = home_dir();
		if (!home) {
			vz_err_set(err, "cannot find a place for the journal: no home directory");
			vz_err_hint(err, "set HOME or XDG_STATE_HOME, or give the journal's path");
			return VZ_FAIL;
		}
		n = snprintf(buf, cap, "%s/.local/state/vzp11/journal.db", home);
	}
	if (n < 0 || (size_t)n >= cap) {
		vz_err_set(err, "the journal's default path is too long");
		vz_err_hint(err, "give the journal's path");
		return VZ_FAIL;
	}
	return VZ_OK;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

vz_rv vz_journal_open(const char *spec, vz_journal **out, vz_err *err)
{
	vz_journal *j = calloc(1, sizeof(*j));
	char path[VZ_JOURNAL_WHERE_MAX];
	vz_rv rv = VZ_FAIL;

	if (!j) {
		vz_err_set(err, "out of memory opening the journal");
		goto out;
	}
	if (spec && (starts_with(spec, "postgresql://") || starts_with(spec, "postgres://"))) {
		rv = vz_journal_pg_open(spec, j, err);
	} else if (spec && spec[0]) {
		rv = vz_journal_sqlite_open(spec, j, err);
	} else {
		rv = vz_journal_default_path(path, sizeof(path), err);
		if (rv == VZ_OK)
			rv = vz_journal_sqlite_open(path, j, err);
	}
	if (rv != VZ_OK)
		goto out;
	*out = j;
	j = NULL;
out:
	free(j);
	return rv;
}

void vz_journal_close(vz_journal *j)
{
	if (!j)
		return;
	if (j->ops)
		j->ops->close(j);
	free(j);
}

const char *vz_journal_where(const vz_journal *j)
{
	return j ? j->where : "";
}

/* A fixed field is only usable when its NUL lies inside it. */
static bool terminated(const char *field, size_t cap)
{
	return memchr(field, '\0', cap) != NULL;
}

static bool id_ok(const char *id)
{
	return id && id[0] && strlen(id) <= VZ_UUID_LEN;
}

static bool sha256_ok(const char *hex)
{
	size_t i;

	for (i = 0; i < VZ_SHA256_HEX; i++) {
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return false;
	}
	return hex[VZ_SHA256_HEX] == '\0';
}

static vz_rv refuse(vz_err *err, const char *what)
{
	vz_err_set(err, "journal: %s", what);
	vz_err_hint(err, "this is a bug in the caller; please report it");
	return VZ_FAIL;
}

/* Checks a declaration before it reaches SQL: the backends trust it. */
static vz_rv decl_ok(const vz_decl *d, vz_err *err)
{
	if (!d || !terminated(d->traceer_id, sizeof(d->traceer_id)) || !id_ok(d->traceer_id))
		return refuse(err, "a declaration without a valid traceer id");
	if (!terminated(d->conversatie_id, sizeof(d->conversatie_id)) ||
	    !terminated(d->file, sizeof(d->file)) || !terminated(d->flow, sizeof(d->flow)) ||
	    !terminated(d->status, sizeof(d->status)))
		return refuse(err, "a declaration with an unterminated field");
	if (!sha256_ok(d->sha256))
		return refuse(err, "a declaration whose sha256 is not 64 lower-case hex digits");
	if (!vz_decl_state_text(d->state))
		return refuse(err, "a declaration with an unknown state");
	if ((size_t)d->refusal >= ARRAY_SIZE(refusal_names))
		return refuse(err, "a declaration with an unknown refusal");
	if (d->size < 0)
		return refuse(err, "a declaration with a negative size");
	return VZ_OK;
}

static vz_rv retour_ok(const vz_retour *r, vz_err *err)
{
	if (!r || !terminated(r->traceer_id, sizeof(r->traceer_id)) || !id_ok(r->traceer_id))
		return refuse(err, "a return file without a valid traceer id");
	if (!terminated(r->file, sizeof(r->file)) || !r->file[0])
		return refuse(err, "a return file without a path");
	if (!sha256_ok(r->sha256))
		return refuse(err, "a return file whose sha256 is not 64 lower-case hex digits");
	if (r->size < 0)
		return refuse(err, "a return file with a negative size");
	return VZ_OK;
}

vz_rv vz_journal_decl_begin(vz_journal *j, const vz_decl *d, vz_decl *earlier, vz_err *err)
{
	vz_rv rv = decl_ok(d, err);

	if (rv != VZ_OK)
		return rv;
	return j->ops->decl_begin(j, d, earlier, err);
}

vz_rv vz_journal_decl_update(vz_journal *j, const vz_decl *d, vz_err *err)
{
	vz_rv rv;

	if (!d || !terminated(d->traceer_id, sizeof(d->traceer_id)) || !id_ok(d->traceer_id))
		return refuse(err, "a declaration update without a valid traceer id");
	if (!terminated(d->status, sizeof(d->status)))
		return refuse(err, "a declaration update with an unterminated status");
	if (!vz_decl_state_text(d->state))
		return refuse(err, "a declaration update with an unknown state");
	if ((size_t)d->refusal >= ARRAY_SIZE(refusal_names) ||
	    (d->refusal != VZ_REFUSAL_NONE && d->state != VZ_DECL_REFUSED))
		return refuse(err, "a declaration update with a refusal but not refused");
	rv = j->ops->decl_update(j, d, err);
	return rv;
}

vz_rv vz_journal_decl_touch(vz_journal *j, const char *traceer_id, vz_err *err)
{
	if (!id_ok(traceer_id))
		return refuse(err, "a declaration touched without a valid traceer id");
	return j->ops->decl_touch(j, traceer_id, err);
}

vz_rv vz_journal_decl_get(vz_journal *j, const char *traceer_id, vz_decl *out, vz_err *err)
{
	if (!id_ok(traceer_id))
		return refuse(err, "a declaration asked for without a valid traceer id");
	return j->ops->decl_get(j, traceer_id, out, err);
}

vz_rv vz_journal_decl_each(vz_journal *j, bool only_open, vz_decl_fn fn, void *ctx, vz_err *err)
{
	if (!fn)
		return refuse(err, "a walk over declarations without a function");
	return j->ops->decl_each(j, only_open, fn, ctx, err);
}

vz_rv vz_journal_retour_stored(vz_journal *j, const vz_retour *r, vz_retour *earlier, vz_err *err)
{
	vz_rv rv = retour_ok(r, err);

	if (rv != VZ_OK)
		return rv;
	return j->ops->retour_stored(j, r, earlier, err);
}

vz_rv vz_journal_retour_confirmed(vz_journal *j, const char *traceer_id, vz_err *err)
{
	if (!id_ok(traceer_id))
		return refuse(err, "a return file confirmed without a valid traceer id");
	return j->ops->retour_confirmed(j, traceer_id, err);
}

vz_rv vz_journal_retour_forget(vz_journal *j, const char *traceer_id, vz_err *err)
{
	if (!id_ok(traceer_id))
		return refuse(err, "a return file forgotten without a valid traceer id");
	return j->ops->retour_forget(j, traceer_id, err);
}

vz_rv vz_journal_retour_get(vz_journal *j, const char *traceer_id, vz_retour *out, vz_err *err)
{
	if (!id_ok(traceer_id))
		return refuse(err, "a return file asked for without a valid traceer id");
	return j->ops->retour_get(j, traceer_id, out, err);
}

vz_rv vz_journal_retour_each(vz_journal *j, vz_retour_fn fn, void *ctx, vz_err *err)
{
	if (!fn)
		return refuse(err, "a walk over return files without a function");
	return j->ops->retour_each(j, fn, ctx, err);
}
