/* audit.c - one syslog record (authpriv, JSON) per change to a token. */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "token/token.h"
#include "cli/cli.h"

/* A JSON string of s, null for NULL. jansson refuses bytes that are not
 * UTF-8 (a label from argv or a token may hold any): those become '?', so
 * the record is never lost for a name. */
static json_t *str_json(const char *s)
{
	json_t *j;
	char *copy;

	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* Sets key to v in o; false when v could not be made (out of memory). */
static bool put(json_t *o, const char *key, json_t *v)
{
	return v && json_object_set_new(o, key, v) == 0;
}

static json_t *cert_json(const vz_cert_info *c, bool brief)
{
	json_t *o;
	bool ok;

	if (!c)
		return json_null();
	o = json_object();
	ok = o && put(o, "subject", str_json(c->subject));
	if (ok && !brief)
		ok = put(o, "issuer", str_json(c->issuer));
	ok = ok && put(o, "serial", str_json(c->serial));
	if (ok && !brief)
		ok = put(o, "not_before", str_json(c->not_before)) &&
		     put(o, "not_after", str_json(c->not_after));
	ok = ok && put(o, "fingerprint_sha256", str_json(c->fingerprint));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *token_json(const tok_token_info *t)
{
	if (!t)
		return json_null();
	return json_pack("{s:o, s:o, s:o, s:o}", "label", str_json(t->label), "serial",
			 str_json(t->serial), "manufacturer", str_json(t->manufacturer), "model",
			 str_json(t->model));
}

/* The real uid (who ran the command, also under a set-uid wrapper) and its
 * name from the password database; $USER and $LOGNAME are anyone's to set. */
static json_t *user_json(void)
{
	uid_t uid = getuid();
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0)
		found = NULL;
	return json_pack("{s:I, s:o}", "uid", (json_int_t)uid, "name",
			 str_json(found ? found->pw_name : NULL));
}

static json_t *id_json(const unsigned char *id, size_t len)
{
	char *hex;
	json_t *j;

	if (!id || !len)
		return json_null();
	hex = vz_hex(id, len);
	if (!hex)
		return NULL;
	j = json_string(hex);
	free(hex);
	return j;
}

static json_t *now_json(void)
{
	time_t now = time(NULL);
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&now, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

json_t *vz_audit_json(const tok_token_info *token, const vz_audit_rec *rec)
{
	json_t *o = json_object();
	bool ok;

	ok = o && put(o, "audit", json_integer(VZ_AUDIT_FORMAT)) && put(o, "time", now_json()) &&
	     put(o, "action", str_json(rec->action)) &&
	     put(o, "result", json_string(rec->failed ? "failed" : "ok")) &&
	     put(o, "label", str_json(rec->label)) &&
	     put(o, "old_label", str_json(rec->old_label)) &&
	     put(o, "new_label", str_json(rec->new_label)) &&
	     put(o, "certificate", cert_json(rec->cert, false)) &&
	     put(o, "id", id_json(rec->id, rec->id_len)) &&
	     put(o, "arrived", str_json(vz_out_arrival_name(rec->arrival))) &&
	     put(o, "previous", cert_json(rec->previous, true)) &&
	     put(o, "token", token_json(token)) && put(o, "user", user_json()) &&
	     put(o, "detail", str_json(rec->detail)) &&
	     put(o, "error", str_json(rec->failed ? rec->error : NULL));
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

void vz_audit(const vz_token *tk, const vz_audit_rec *rec)
{
	json_t *j = vz_audit_json(tk && tk->tok ? tok_token_info_of(tk->tok) : NULL, rec);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;

	openlog("vzp11", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
	if (s)
		syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", s);
	else
		syslog(LOG_AUTHPRIV | LOG_ERR, "audit record of a token change (%s) lost: %s",
		       rec->action ? rec->action : "?", "out of memory");
	closelog();
	free(s);
	json_decref(j);
}

vz_audit_rec vz_audit_rec_of(const char *action, const vz_entry *e)
{
	vz_audit_rec r = {.action = action};

	if (!e)
		return r;
	r.label = e->cert ? e->cert->label : e->key ? e->key->label : NULL;
	r.cert = &e->info;
	if (e->cert) {
		r.id = e->cert->id;
		r.id_len = e->cert->id_len;
	}
	if (e->key)
		r.arrival = e->key->arrival;
	return r;
}
