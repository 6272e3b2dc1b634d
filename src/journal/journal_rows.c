/* journal_rows.c - a journal row's fields, for the face and both
 * backends: the stored names of states and refusals, time stamps, copying
 * into fixed fields, the message for a missing row. Calls neither the
 * face nor a backend. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* names[i], or NULL past the end. */
static const char *name_of(const char *const *names, size_t n, size_t i)
{
	return i < n ? names[i] : NULL;
}

/* The index of text among names (a NULL entry matches nothing). */
static bool index_of(const char *const *names, size_t n, const char *text, size_t *out)
{
	size_t i;

	for (i = 0; text && i < n; i++) {
		if (names[i] && strcmp(text, names[i]) == 0) {
			*out = i;
			return true;
		}
	}
	return false;
}

const char *vz_decl_state_text(vz_decl_state s)
{
	return name_of(decl_state_names, ARRAY_SIZE(decl_state_names), (size_t)s);
}

bool vz_decl_state_parse(const char *text, vz_decl_state *out)
{
	size_t i;

	if (!index_of(decl_state_names, ARRAY_SIZE(decl_state_names), text, &i))
		return false;
	*out = (vz_decl_state)i;
	return true;
}

bool vz_decl_refusal_known(vz_decl_refusal r)
{
	return (size_t)r < ARRAY_SIZE(refusal_names);
}

const char *vz_decl_refusal_text(vz_decl_refusal r)
{
	return name_of(refusal_names, ARRAY_SIZE(refusal_names), (size_t)r);
}

bool vz_decl_refusal_parse(const char *text, vz_decl_refusal *out)
{
	size_t i = VZ_REFUSAL_NONE;

	if (text && !index_of(refusal_names, ARRAY_SIZE(refusal_names), text, &i))
		return false;
	*out = (vz_decl_refusal)i;
	return true;
}

const char *vz_retour_state_text(vz_retour_state s)
{
	return name_of(retour_state_names, ARRAY_SIZE(retour_state_names), (size_t)s);
}

bool vz_retour_state_parse(const char *text, vz_retour_state *out)
{
	size_t i;

	if (!index_of(retour_state_names, ARRAY_SIZE(retour_state_names), text, &i))
		return false;
	*out = (vz_retour_state)i;
	return true;
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

vz_rv vz_journal_no_row(const vz_journal *j, const char *what, const char *traceer_id, vz_err *err)
{
	vz_err_set(err, "journal %s: no %s with traceer id %s", j->where, what, traceer_id);
	return VZ_NOT_FOUND;
}
