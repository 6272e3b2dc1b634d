/* config.c - the configuration files: their keys are the options that the
 * command tables mark as keys (cli.h), each value is kept with where it
 * came from, and it reaches a command as the option it stands for, so a
 * value from a file is checked by the same code as one typed. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <jansson.h>

#include "cli/cli.h"

#ifndef VZP11_SYSCONFDIR
#define VZP11_SYSCONFDIR "/etc"
#endif
#define SYSTEM_FILE VZP11_SYSCONFDIR "/vzp11/vzp11.conf"

/* A key of the files: an option of the global table or of a command's
 * table with a key kind (cli.h), as the first table that has it declares
 * it. cmds: bit i for the ith command of the command table that takes it;
 * 0 for the global options of vz_global. */
struct key {
	const vz_opt *opt;
	unsigned cmds;
	char option[40]; /* "--NAME", as the command line gives it */
};

#define MAX_KEYS 48

static struct {
	struct key k[MAX_KEYS];
	size_t n;
	const vz_command *const *cmds;
	size_t n_cmds;
} keys;

/* Orders keys as `vzp11 config` lists them: the global options, the keys
 * before any section, then each section's in the order they came. */
static int rank(const struct key *k, size_t at)
{
	if (!k->cmds)
		return 0;
	if (!k->opt->section)
		return 1;
	for (size_t i = 0; i < at; i++)
		if (keys.k[i].opt->section && strcmp(keys.k[i].opt->section, k->opt->section) == 0)
			return rank(&keys.k[i], i);
	return 2 + (int)at;
}

static struct key *key_of(const char *section, const char *name)
{
	for (size_t i = 0; i < keys.n; i++) {
		const vz_opt *o = keys.k[i].opt;

		if (strcmp(o->name, name) == 0 && strcmp(o->section ? o->section : "",
							 section ? section : "") == 0)
			return &keys.k[i];
	}
	return NULL;
}

/* The keys of a table: cmd_bit 0 for the global options. */
static void add_keys(const vz_opt *opts, unsigned cmd_bit)
{
	for (const vz_opt *o = opts; o && o->name; o++) {
		struct key *k;

		if (o->key == VZ_KEY_NONE)
			continue;
		k = key_of(o->section, o->name);
		/* one key, one meaning: the tables that share it agree */
		assert(!k || (k->opt->key == o->key && k->opt->lo == o->lo &&
			      k->opt->hi == o->hi && !k->opt->env == !o->env &&
			      !k->opt->dflt == !o->dflt));
		if (!k && keys.n < MAX_KEYS) {
			k = &keys.k[keys.n++];
			k->opt = o;
			snprintf(k->option, sizeof(k->option), "--%s", o->name);
		}
		if (k)
			k->cmds |= cmd_bit;
	}
}

/* The keys of the global options and of every command's, in rank order. */
static void collect_keys(const vz_command *const *cmds, size_t n)
{
	int r[MAX_KEYS];

	keys.n = 0;
	keys.cmds = cmds;
	keys.n_cmds = n;
	add_keys(vz_global_opts, 0);
	for (size_t i = 0; i < n && i < 32; i++)
		add_keys(cmds[i]->opts, 1u << i);
	for (size_t i = 0; i < keys.n; i++)
		r[i] = rank(&keys.k[i], i);
	/* stable insertion sort by rank */
	for (size_t i = 1; i < keys.n; i++) {
		struct key k = keys.k[i];
		int ri = r[i];
		size_t j = i;

		for (; j > 0 && r[j - 1] > ri; j--) {
			keys.k[j] = keys.k[j - 1];
			r[j] = r[j - 1];
		}
		keys.k[j] = k;
		r[j] = ri;
	}
}

static const char *const flow_keys[] = {"type", "subtype", "version", "action"};
#define N_FLOW_KEYS 4
#define MAX_FLOWS   32

struct setting {
	char *value;
	char *where; /* "FILE:LINE" */
};

struct flow {
	char *name;
	struct setting s[N_FLOW_KEYS];
};

static struct {
	struct setting s[MAX_KEYS];
	struct flow flows[MAX_FLOWS];
	size_t n_flows;
	char *files[3]; /* the files read, for `vzp11 config` */
	bool present[3];
	bool unreadable[3]; /* there, but this user may not read it */
	char **argv;	    /* vz_config_args()'s array */
	char *owned[64];    /* strings in it made here, freed with it */
	size_t n_owned;
	/* each file's own module and module-args, which go together */
	struct setting module_of[3], args_of[3];
} conf;

/* ---- reading ---- */

struct parse {
	const char *path;
	size_t slot; /* which file: 0 system, 1 user, 2 --config */
	FILE *f;
	int line;
	vz_err *err;
	bool failed;
};

static bool bad(struct parse *p, const char *fmt, const char *a, const char *b);
static bool flow_section(const char *section, char *name, size_t size);

/* A section header is known: one of the keys' or [flow "NAME"]. inih calls
 * the handler only for keys, so an empty section is checked here. */
static void check_section(struct parse *p, const char *line)
{
	const char *end = strchr(line, ']');
	char name[128], flow[64];
	size_t len;

	if (!end || (len = (size_t)(end - line - 1)) >= sizeof(name))
		return; /* inih reports the line */
	memcpy(name, line + 1, len);
	name[len] = '\0';
	if (strncmp(name, "flow", 4) == 0) {
		if (!flow_section(name, flow, sizeof(flow)))
			bad(p, "a flow section is written [flow \"NAME\"], not [%s]%s", name, NULL);
		return;
	}
	for (size_t i = 0; i < keys.n; i++)
		if (keys.k[i].opt->section && strcmp(keys.k[i].opt->section, name) == 0)
			return;
	bad(p, "unknown section [%s]%s", name, NULL);
}

/* inih's reader: fgets that counts lines, so the handler knows where. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	char *r = fgets(str, num, p->f);

	if (r) {
		p->line++;
		if (str[strspn(str, " \t")] == '[')
			check_section(p, str + strspn(str, " \t"));
	}
	return r;
}

static void set(struct setting *s, const char *value, const struct parse *p)
{
	char where[4200];

	free(s->value);
	free(s->where);
	snprintf(where, sizeof(where), "%s:%d", p->path, p->line);
	s->value = strdup(value);
	s->where = strdup(where);
}

static bool bad(struct parse *p, const char *fmt, const char *a, const char *b)
{
	if (!p->failed) {
		char msg[1200];

		snprintf(msg, sizeof(msg), fmt, a, b ? b : "");
		vz_err_set(p->err, "%s:%d: %s", p->path, p->line, msg);
		p->failed = true;
	}
	return false;
}

static bool valid(struct parse *p, const struct key *k, const char *v)
{
	vz_err e = {0};
	long n;

	switch (k->opt->key) {
	case VZ_KEY_NUM:
		if (!vz_parse_long(v, k->opt->lo, k->opt->hi, &n)) {
			char range[64];

			snprintf(range, sizeof(range), "%ld to %ld", k->opt->lo, k->opt->hi);
			return bad(p, "%s takes a number from %s", k->opt->name, range);
		}
		return true;
	case VZ_KEY_ENVNAME:
		if (strcmp(v, "tst") && strcmp(v, "acc") && strcmp(v, "prd"))
			return bad(p, "env is tst, acc or prd, not '%s'%s", v, NULL);
		return true;
	case VZ_KEY_HTTPS:
		if (strncmp(v, "https://", 8) != 0)
			return bad(p, "%s must be an https:// URL%s", k->opt->name, NULL);
		return true;
	case VZ_KEY_SOURCE:
		if (vz_secret_check_source(v, &e) != VZ_OK)
			return bad(p, "pin-source: %.300s%s", e.msg, NULL);
		return true;
	default:
		return *v ? true : bad(p, "%s has no value%s", k->opt->name, NULL);
	}
}

static struct flow *flow_named(const char *name)
{
	for (size_t i = 0; i < conf.n_flows; i++)
		if (strcmp(conf.flows[i].name, name) == 0)
			return &conf.flows[i];
	return NULL;
}

/* [flow "NAME"]: the name, or NULL when the section is not of that form. */
static bool flow_section(const char *section, char *name, size_t size)
{
	size_t len = strlen(section);

	if (strncmp(section, "flow \"", 6) != 0 || len < 8 || section[len - 1] != '"' ||
	    len - 7 >= size)
		return false;
	memcpy(name, section + 6, len - 7);
	name[len - 7] = '\0';
	return name[0] && !strpbrk(name, "\": /");
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	char flow[64];

	if (strcmp(name, "pin") == 0 || strcmp(name, "password") == 0 ||
	    strcmp(name, "pin-value") == 0)
		return bad(p,
			   "'%s' is not a setting: a PIN or password is never kept in the "
			   "configuration; name where it is read with pin-source = "
			   "file:/etc/vzp11/pin%s",
			   name, NULL);
	if (section[0] && strncmp(section, "flow", 4) == 0) {
		struct flow *f;

		if (!flow_section(section, flow, sizeof(flow)))
			return bad(p, "a flow section is written [flow \"NAME\"], not [%s]%s",
				   section, NULL);
		f = flow_named(flow);
		if (!f && conf.n_flows == MAX_FLOWS)
			return bad(p, "more than 32 flows%s%s", "", NULL);
		if (!f) {
			f = &conf.flows[conf.n_flows++];
			f->name = strdup(flow);
		}
		for (size_t i = 0; i < N_FLOW_KEYS; i++) {
			if (strcmp(name, flow_keys[i]) == 0) {
				if (!*value)
					return bad(p, "%s has no value%s", name, NULL);
				set(&f->s[i], value, p);
				return 1;
			}
		}
		return bad(p,
			   "unknown key '%s' in a flow section (type, subtype, version, "
			   "action)%s",
			   name, NULL);
	}
	for (size_t i = 0; i < keys.n; i++) {
		const struct key *k = &keys.k[i];

		if (strcmp(k->opt->section ? k->opt->section : "", section) != 0 ||
		    strcmp(k->opt->name, name) != 0)
			continue;
		if (!valid(p, k, value))
			return 0;
		set(&conf.s[i], value, p);
		if (k->opt->id == OPT_MODULE)
			set(&conf.module_of[p->slot], value, p);
		if (k->opt->id == OPT_MODULE_ARGS)
			set(&conf.args_of[p->slot], value, p);
		return 1;
	}
	for (size_t i = 0; i < keys.n; i++)
		if (strcmp(keys.k[i].opt->section ? keys.k[i].opt->section : "", section) == 0)
			return bad(p, "unknown key '%s'%s", name,
				   section[0] ? " in this section" : "");
	return bad(p, "unknown section [%s]%s", section, NULL);
}

/* A file that chooses which module is loaded must be as safe as the
 * program: no one but root or its owner (the user) may change it. */
static vz_rv check_owner(const char *path, int fd, vz_err *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		vz_err_set(err, "%s is not a regular file", path);
		return VZ_FAIL;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		vz_err_set(err,
			   "%s belongs to uid %u, neither root nor you; it is not read (it "
			   "chooses which PKCS#11 module is loaded)",
			   path, (unsigned)st.st_uid);
		vz_err_hint(err, "chown it to root or to yourself");
		return VZ_FAIL;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		vz_err_set(err,
			   "%s can be changed by %s; it is not read (it chooses which PKCS#11 "
			   "module is loaded)",
			   path, st.st_mode & S_IWOTH ? _("anyone") : _("its group"));
		vz_err_hint(err, "chmod go-w %s", path);
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* One file; a missing one is fine unless required. */
static vz_rv load_file(size_t slot, const char *path, bool required, vz_err *err)
{
	struct parse p = {.path = path, .slot = slot, .err = err};
	int fd, rc;

	conf.files[slot] = strdup(path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		/* One this user may not read (a root-only /etc/vzp11, a $HOME
		 * that is someone else's) is skipped like a missing one; `vzp11
		 * config` says which. */
		if (!required && (errno == ENOENT || errno == ENOTDIR || errno == EACCES)) {
			conf.unreadable[slot] = errno == EACCES;
			return VZ_OK;
		}
		vz_err_set(err, "cannot read the configuration %s: %s", path, strerror(errno));
		return VZ_FAIL;
	}
	if (check_owner(path, fd, err) != VZ_OK) {
		close(fd);
		return VZ_FAIL;
	}
	p.f = fdopen(fd, "r");
	if (!p.f) {
		close(fd);
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	conf.present[slot] = true;
	rc = ini_parse_stream(read_line, &p, on_entry, &p);
	fclose(p.f);
	if (rc == 0 && !p.failed)
		return VZ_OK;
	if (!p.failed)
		vz_err_set(err, "%s:%d: not an INI line (KEY = VALUE or [SECTION])", path, rc);
	vz_err_hint(err, "see vzp11.conf(5)");
	return VZ_USAGE;
}

const char *vz_config_system_file(void)
{
	return SYSTEM_FILE;
}

vz_rv vz_config_load(const vz_command *const *cmds, size_t n, const char *explicit_path,
		     vz_err *err)
{
	const char *xdg = vz_env("XDG_CONFIG_HOME"), *home = vz_env("HOME");
	char user[4096] = "";
	vz_rv r;

	if (xdg)
		snprintf(user, sizeof(user), "%s/vzp11/config", xdg);
	else if (home)
		snprintf(user, sizeof(user), "%s/.config/vzp11/config", home);
	collect_keys(cmds, n);
	r = load_file(0, SYSTEM_FILE, false, err);
	if (r == VZ_OK && user[0])
		r = load_file(1, user, false, err);
	if (r == VZ_OK && explicit_path)
		r = load_file(2, explicit_path, true, err);
	return r;
}

void vz_config_free(void)
{
	for (size_t i = 0; i < keys.n; i++) {
		free(conf.s[i].value);
		free(conf.s[i].where);
	}
	for (size_t i = 0; i < conf.n_flows; i++) {
		free(conf.flows[i].name);
		for (size_t j = 0; j < N_FLOW_KEYS; j++) {
			free(conf.flows[i].s[j].value);
			free(conf.flows[i].s[j].where);
		}
	}
	for (size_t i = 0; i < 3; i++) {
		free(conf.files[i]);
		free(conf.module_of[i].value);
		free(conf.module_of[i].where);
		free(conf.args_of[i].value);
		free(conf.args_of[i].where);
	}
	for (size_t i = 0; i < conf.n_owned; i++)
		free(conf.owned[i]);
	free(conf.argv);
	memset(&conf, 0, sizeof(conf));
}

/* ---- handing it on ---- */

/* A string for the command's arguments, freed by vz_config_free(); NULL
 * when out of memory or room (the option is then left out). */
static char *own(char *str)
{
	if (str && conf.n_owned < sizeof(conf.owned) / sizeof(conf.owned[0]))
		return conf.owned[conf.n_owned++] = str;
	free(str);
	return NULL;
}

void vz_config_globals(vz_global *g)
{
	for (size_t i = 0; i < keys.n; i++)
		/* module-args: not here, it goes with its module
		 * (vz_config_module) */
		if (!keys.k[i].cmds && keys.k[i].opt->id != OPT_MODULE_ARGS)
			vz_global_fill(g, keys.k[i].opt->id, conf.s[i].value);
}

/* A place that may name a module and its arguments; module_from and
 * args_from say where, as `vzp11 config` does. */
struct module_src {
	const char *module, *args, *module_from, *args_from;
};
#define MODULE_SOURCES 5

/* The places, most important first: the command line, the environment,
 * --config, the user's file, the system file. Returns the index of the
 * one whose module is in effect (the first that names one), or
 * MODULE_SOURCES when none does. */
static size_t module_sources(const vz_global *g, struct module_src src[MODULE_SOURCES])
{
	size_t m = 0;

	src[0] = (struct module_src){vz_global_given(g, OPT_MODULE),
				     vz_global_given(g, OPT_MODULE_ARGS), "command line",
				     "command line"};
	src[1] = (struct module_src){vz_env("VZP11_MODULE"), vz_env("VZP11_MODULE_ARGS"),
				     "environment VZP11_MODULE", "environment VZP11_MODULE_ARGS"};
	for (size_t i = 2; i < MODULE_SOURCES; i++) {
		size_t slot = MODULE_SOURCES - 1 - i; /* 2 --config, 1 the user's, 0 system */

		src[i] = (struct module_src){conf.module_of[slot].value, conf.args_of[slot].value,
					     conf.module_of[slot].where, conf.args_of[slot].where};
	}
	while (m < MODULE_SOURCES && !src[m].module)
		m++;
	return m;
}

/* The first place that gives arguments, or MODULE_SOURCES. */
static size_t first_args(const struct module_src src[MODULE_SOURCES])
{
	size_t a = 0;

	while (a < MODULE_SOURCES && !src[a].args)
		a++;
	return a;
}

vz_rv vz_config_module(const vz_global *g, const char **module, const char **args, vz_err *err)
{
	static bool noted; /* once per run: vzp11 opens the token more than once */
	struct module_src src[MODULE_SOURCES];
	size_t m = module_sources(g, src), a = first_args(src);

	if (m == MODULE_SOURCES) {
		/* No module named: the arguments go on, and the token layer says
		 * they belong to none. */
		*module = NULL;
		*args = a < MODULE_SOURCES ? src[a].args : NULL;
		return VZ_OK;
	}
	if (m > 0 && src[0].args) {
		vz_err_set(err,
			   "--module-args are the arguments of the module named with them, but "
			   "the command line names no module: the module comes from %s",
			   src[m].module_from);
		vz_err_hint(err, "give --module on the command line too, or leave out "
				 "--module-args");
		return VZ_USAGE;
	}
	for (size_t i = 0; i < MODULE_SOURCES && g->verbose && !noted; i++)
		if (i != m && src[i].args)
			vz_note(g,
				"the module arguments of %s are left out: they go with a module "
				"named there, and the module in use comes from %s",
				src[i].args_from, src[m].module_from);
	noted = true;
	*module = src[m].module;
	*args = src[m].args;
	return VZ_OK;
}

/* The command's bit in struct key's cmds; 0 for one not in the table. */
static unsigned cmd_bit(const vz_command *cmd)
{
	for (size_t i = 0; i < keys.n_cmds && i < 32; i++)
		if (keys.cmds[i] == cmd)
			return 1u << i;
	return 0;
}

/* The option is among the command's arguments (before a "--"). */
static bool given(int argc, char **argv, const char *option)
{
	size_t n = strlen(option);

	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strncmp(argv[i], option, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
			return true;
	return false;
}

/* The section of "where to send" for a command: its endpoint key. */
static const struct key *endpoint_key(unsigned bit)
{
	for (size_t i = 0; i < keys.n; i++)
		if (keys.k[i].opt->key == VZ_KEY_HTTPS && (keys.k[i].cmds & bit))
			return &keys.k[i];
	return NULL;
}

/* A flow word for --flow: '\\', '/' and ':' escaped with a backslash, so
 * the contract's words come through whatever they hold. malloc'ed. */
static char *flow_escape(const char *w)
{
	char *out = malloc(2 * strlen(w) + 1), *o = out;

	for (; out && *w; w++) {
		if (*w == '\\' || *w == '/' || *w == ':')
			*o++ = '\\';
		*o++ = *w;
	}
	if (out)
		*o = '\0';
	return out;
}

/* TYPE[/SUBTYPE]:VERSION[:ACTION] from a [flow] section, or NULL. */
static char *flow_spec(const struct flow *f, vz_err *err)
{
	const char *ver = f->s[2].value;
	char *type = f->s[0].value ? flow_escape(f->s[0].value) : NULL;
	char *sub = f->s[1].value ? flow_escape(f->s[1].value) : NULL;
	char *act = f->s[3].value ? flow_escape(f->s[3].value) : NULL;
	char *out = NULL;

	if (!type || !ver) {
		vz_err_set(err, "the flow '%s' in the configuration needs type and version",
			   f->name);
	} else if (asprintf(&out, "%s%s%s:%s%s%s", type, sub ? "/" : "", sub ? sub : "", ver,
			    act ? ":" : "", act ? act : "") < 0) {
		out = NULL;
	}
	free(type);
	free(sub);
	free(act);
	return out;
}

/* --flow NAME (or --flow=NAME) in place: a name has no ':'. */
static int expand_flow(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		bool joined = strncmp(argv[i], "--flow=", 7) == 0;
		const char *name;
		const struct flow *f;
		vz_err err = {0};
		char *spec, *arg = NULL;

		if (strcmp(argv[i], "--flow") == 0 && i + 1 < argc)
			i++;
		else if (!joined)
			continue;
		name = joined ? argv[i] + 7 : argv[i];
		if (strchr(name, ':'))
			continue;
		f = flow_named(name);
		if (!f)
			return vz_usage(
				"declare",
				"--flow '%s' is neither TYPE[/SUBTYPE]:VERSION.SUBVERSION[:ACTION] nor "
				"a [flow \"%s\"] of the configuration",
				name, name);
		spec = flow_spec(f, &err);
		if (!spec) {
			vz_report(&err);
			return VZ_EXIT_USAGE;
		}
		if (asprintf(&arg, "%s%s", joined ? "--flow=" : "", spec) < 0)
			arg = NULL;
		free(spec);
		argv[i] = own(arg);
		if (!argv[i])
			return VZ_EXIT_FAIL;
	}
	return 0;
}

int vz_config_args(const vz_command *cmd, int *argc, char ***argv)
{
	unsigned bit = cmd_bit(cmd);
	const struct key *ep = endpoint_key(bit);
	const char *ep_value = ep ? conf.s[ep - keys.k].value : NULL;
	bool target_given = given(*argc, *argv, "--env") || vz_env("VZP11_ENV") ||
			    (ep && given(*argc, *argv, ep->option));
	char **out;
	int n = 1;

	out = calloc((size_t)*argc + 2 * keys.n + 64, sizeof(*out));
	if (!out)
		return VZ_EXIT_FAIL;
	free(conf.argv);
	conf.argv = out; /* freed with the rest, also on the way out below */
	out[0] = (*argv)[0];
	for (size_t i = 0; i < keys.n; i++) {
		const struct key *k = &keys.k[i];
		const char *v = conf.s[i].value;

		if (!v || !(k->cmds & bit) || given(*argc, *argv, k->option) ||
		    (k->opt->env && vz_env(k->opt->env)))
			continue;
		/* env and the endpoint: one of them, the command line's or the
		 * environment's first, and the section's endpoint before env. */
		if (k->opt->key == VZ_KEY_ENVNAME && (target_given || ep_value))
			continue;
		if (k->opt->key == VZ_KEY_HTTPS && target_given)
			continue;
		if (k->opt->key == VZ_KEY_LIST) {
			char *copy = strdup(v), *save = NULL;

			for (char *w = strtok_r(copy, " \t,", &save);
			     w && n < (int)(2 * keys.n + 60); w = strtok_r(NULL, " \t,", &save)) {
				char *word = own(strdup(w));

				if (!word) {
					free(copy);
					return VZ_EXIT_FAIL;
				}
				out[n++] = (char *)k->option;
				out[n++] = word;
			}
			free(copy);
			continue;
		}
		out[n++] = (char *)k->option;
		out[n++] = (char *)v;
	}
	for (int i = 1; i < *argc; i++)
		out[n++] = (*argv)[i];
	out[n] = NULL;
	*argc = n;
	*argv = out;
	return strcmp(cmd->name, "declare") == 0 ? expand_flow(*argc, *argv) : 0;
}

const char *vz_config_option(int argc, char **argv)
{
	const char *path = NULL;

	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	return path;
}

/* ---- vzp11 config ---- */

/* module-args: those that go with the module in effect; else the first
 * given, and why they are left out. */
static void args_origin(const vz_global *g, const char **value, char *from, size_t size)
{
	struct module_src src[MODULE_SOURCES];
	size_t m = module_sources(g, src), a = first_args(src);

	if (m < MODULE_SOURCES && src[m].args) {
		*value = src[m].args;
		snprintf(from, size, "%s", src[m].args_from);
	} else if (a < MODULE_SOURCES && m < MODULE_SOURCES) {
		*value = src[a].args;
		snprintf(from, size, "%s, left out: the module comes from %s", src[a].args_from,
			 src[m].module_from);
	} else if (a < MODULE_SOURCES) {
		*value = src[a].args;
		snprintf(from, size, "%s", src[a].args_from);
	} else {
		*value = NULL;
		snprintf(from, size, "not set");
	}
}

/* The value and its origin, for one key. */
static void origin(const vz_global *g, size_t i, const char **value, char *from, size_t size)
{
	const struct key *k = &keys.k[i];
	const char *given = k->cmds ? NULL : vz_global_given(g, k->opt->id);

	*value = NULL;
	if (k->opt->id == OPT_MODULE_ARGS) {
		args_origin(g, value, from, size);
		return;
	}
	if (given) {
		*value = given;
		snprintf(from, size, "command line");
	} else if (k->opt->env && vz_env(k->opt->env)) {
		*value = vz_env(k->opt->env);
		snprintf(from, size, "environment %s", k->opt->env);
	} else if (conf.s[i].value) {
		*value = conf.s[i].value;
		snprintf(from, size, "%s", conf.s[i].where);
	} else {
		*value = k->opt->dflt;
		snprintf(from, size, k->opt->dflt ? "default" : "not set");
	}
}

static const vz_opt config_opts[] = {{0}};

static int cmd_config(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_config = {
	.name = "config",
	.run = cmd_config,
	.usage = "config",
	.about = N_("Show the settings in effect and where each comes from: the command line,\n"
		    "the environment, a configuration file (FILE:LINE) or the built-in default.\n"
		    "Files, later ones winning: %s, then\n"
		    "$XDG_CONFIG_HOME/vzp11/config (or ~/.config/vzp11/config), then --config FILE.\n"),
	.opts = config_opts,
	.fmt_arg = SYSTEM_FILE,
};

static int cmd_config(vz_global *g, int argc, char **argv)
{
	static const char *const slot_names[] = {"system", "user", "--config"};
	json_t *settings, *flows, *files;
	char name[64], from[4200];
	const char *arg;
	int c;

	c = vz_opt_next(g, &vz_cmd_config, argc, argv, &arg);
	if (c != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_config, c, argv);
	if (optind != argc)
		return vz_usage("config", "unexpected argument '%s'", argv[optind]);
	settings = json_array();
	flows = json_array();
	files = json_array();
	for (size_t i = 0; i < 3; i++)
		if (conf.files[i])
			json_array_append_new(files, json_pack("{s:s, s:s, s:b, s:b}", "file",
							       conf.files[i], "kind", slot_names[i],
							       "read", conf.present[i], "readable",
							       !conf.unreadable[i]));
	for (size_t i = 0; i < keys.n; i++) {
		const char *v;

		origin(g, i, &v, from, sizeof(from));
		snprintf(name, sizeof(name), "%s%s%s", keys.k[i].opt->section ? keys.k[i].opt->section : "",
			 keys.k[i].opt->section ? "." : "", keys.k[i].opt->name);
		json_array_append_new(settings, json_pack("{s:s, s:s?, s:s}", "key", name, "value",
							  v, "from", from));
	}
	for (size_t i = 0; i < conf.n_flows; i++) {
		json_t *f = json_pack("{s:s}", "name", conf.flows[i].name);

		for (size_t j = 0; j < N_FLOW_KEYS; j++)
			json_object_set_new(f, flow_keys[j],
					    conf.flows[i].s[j].value
						    ? json_string(conf.flows[i].s[j].value)
						    : json_null());
		json_array_append_new(flows, f);
	}
	if (g->json) {
		vz_out_json(stdout, json_pack("{s:o, s:o, s:o}", "files", files, "settings",
					      settings, "flows", flows));
	} else {
		size_t i;
		json_t *v;

		json_array_foreach(files, i, v)
		{
			printf(_("# %s file %s%s\n"), json_string_value(json_object_get(v, "kind")),
			       json_string_value(json_object_get(v, "file")),
			       json_is_true(json_object_get(v, "read")) ? ""
			       : json_is_false(json_object_get(v, "readable"))
				       ? _(" (not readable for you)")
				       : _(" (not there)"));
		}
		json_array_foreach(settings, i, v)
		{
			const char *val = json_string_value(json_object_get(v, "value"));

			printf("%-24s %-40s # %s\n", json_string_value(json_object_get(v, "key")),
			       val ? val : "-", json_string_value(json_object_get(v, "from")));
		}
		for (i = 0; i < conf.n_flows; i++) {
			char *spec;
			vz_err err = {0};

			spec = flow_spec(&conf.flows[i], &err);
			snprintf(name, sizeof(name), "flow \"%s\"", conf.flows[i].name);
			printf("%-24s %-40s # %s\n", name, spec ? spec : err.msg,
			       conf.flows[i].s[0].where ? conf.flows[i].s[0].where : "");
			free(spec);
		}
		json_decref(files);
		json_decref(settings);
		json_decref(flows);
	}
	return VZ_EXIT_OK;
}
