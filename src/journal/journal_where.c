/* journal_where.c - where a journal is: the default SQLite file, and a
 * PostgreSQL URI as messages may show it (without its password). Calls
 * neither the face nor a backend. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal-int.h"

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
