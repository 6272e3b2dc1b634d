/* journal.c - the journal's public face: checks what callers hand in and
 * picks the backend for a spec from its table. It names no backend
 * function: each backend is one vz_journal_backend (journal-int.h). */
#include <stdlib.h>
#include <string.h>

#include "journal-int.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Asked in this order; SQLite, last, takes every spec the others leave. */
static const vz_journal_backend *const backends[] = {&vz_journal_pg, &vz_journal_sqlite};

/* The backend whose spec this is; NULL when none takes it. */
static const vz_journal_backend *backend_for(const char *spec)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(backends); i++) {
		if (backends[i]->claims(spec))
			return backends[i];
	}
	return NULL;
}

vz_rv vz_journal_open(const char *spec, vz_journal **out, vz_err *err)
{
	const vz_journal_backend *b = backend_for(spec);
	vz_journal *j = NULL;
	vz_rv rv = VZ_FAIL;

	if (!b) {
		vz_err_set(err, "journal: no backend takes the journal %s", spec ? spec : "");
		vz_err_hint(err, "this is a bug in vzp11; please report it");
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		vz_err_set(err, "out of memory opening the journal");
		goto out;
	}
	rv = b->open(spec, j, err);
	if (rv != VZ_OK)
		goto out;
	j->ops = b->ops;
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
	if (!vz_decl_refusal_known(d->refusal))
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
	if (!vz_decl_refusal_known(d->refusal) ||
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
