/* opts.c - a command's options from its table: parsing with getopt_long
 * and the --help printed from the same table. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* The widest "  -v, --option VALUE" that still gets the text beside it at
 * a common column; a wider one has its text two blanks after it. */
#define HELP_COLUMN_MAX 28
#define MAX_OPTS	64

const vz_opt vz_global_opts[] = {
	{"module", OPT_MODULE, "PATH|NAME",
	 N_("PKCS#11 module file, or a p11-kit module name (env VZP11_MODULE);\n"
	    "default: the modules registered with p11-kit"),
	 VZ_KEY_TEXT, NULL, "VZP11_MODULE", 0, 0, "p11-kit's modules", NULL},
	{"module-args", OPT_MODULE_ARGS, "ARGS",
	 N_("the module's initialization arguments (C_Initialize's\n"
	    "pReserved), e.g. NSS softoken's \"configdir='sql:DIR'\"\n"
	    "(env VZP11_MODULE_ARGS); only for the module named in\n"
	    "the same place (--module, VZP11_MODULE, the same file);\n"
	    "default: none, or the p11-kit module's x-init-reserved"),
	 VZ_KEY_TEXT, NULL, "VZP11_MODULE_ARGS", 0, 0, NULL, NULL},
	{"token", OPT_TOKEN, "URI|LABEL",
	 N_("token as RFC 7512 URI (pkcs11:token=...) or label (env VZP11_TOKEN);\n"
	    "default: the only initialized token"),
	 VZ_KEY_TEXT, NULL, "VZP11_TOKEN", 0, 0, "the only initialized token", NULL},
	{"pin-source", OPT_PIN_SOURCE, "SRC",
	 N_("user PIN source (env VZP11_PIN_SOURCE); default: prompt"), VZ_KEY_SOURCE, NULL,
	 "VZP11_PIN_SOURCE", 0, 0, "prompt", NULL},
	{"journal", OPT_JOURNAL, "PATH|URI",
	 N_("billing journal: a SQLite file or postgresql://... (env\n"
	    "VZP11_JOURNAL); default: ~/.local/state/vzp11/journal.db"),
	 VZ_KEY_TEXT, NULL, "VZP11_JOURNAL", 0, 0, "~/.local/state/vzp11/journal.db", NULL},
	VZ_OPT("config", OPT_CONFIG, "FILE",
	       N_("settings read after the system file and the user's\n"
		  "~/.config/vzp11/config (see 'vzp11 config')")),
	VZ_OPT("json", OPT_JSON, NULL, N_("machine-readable output on stdout")),
	VZ_OPT("verbose", 'v', NULL, N_("say more about what is done")),
	VZ_OPT("quiet", 'q', NULL, N_("print only results and errors")),
	VZ_OPT("help", OPT_HELP, NULL, N_("show this help, or a command's with COMMAND --help")),
	VZ_OPT("version", OPT_VERSION, NULL, N_("show the version")),
	{0},
};

/* The field of g that a global option with a value sets, and its bit in
 * cli_set; NULL for the others. */
static const char **field_of(const vz_global *g, int id, unsigned *bit)
{
	/* the fields of cli_set's bits, in their order */
	const char *const *set[] = {&g->module, &g->token, &g->pin_source, &g->journal,
				    &g->module_args};
	static const int ids[] = {OPT_MODULE, OPT_TOKEN, OPT_PIN_SOURCE, OPT_JOURNAL,
				  OPT_MODULE_ARGS};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		if (id == ids[i]) {
			*bit = 1u << i;
			return (const char **)set[i];
		}
	}
	return NULL;
}

const char *vz_global_given(const vz_global *g, int id)
{
	unsigned bit;
	const char **f = field_of(g, id, &bit);

	return f && (g->cli_set & bit) ? *f : NULL;
}

void vz_global_fill(vz_global *g, int id, const char *value)
{
	unsigned bit;
	const char **f = field_of(g, id, &bit);

	if (f && !*f)
		*f = value;
}

/* Takes one global option into g; false if id is not one (--help and
 * --version are left to the caller). */
static bool global_opt(vz_global *g, int id, const char *arg)
{
	unsigned bit;
	const char **f = field_of(g, id, &bit);

	if (f) {
		*f = arg;
		g->cli_set |= bit;
		return true;
	}
	switch (id) {
	case OPT_CONFIG:
		g->config = arg;
		return true;
	case OPT_JSON:
		g->json = true;
		return true;
	case 'v':
		g->verbose++;
		return true;
	case 'q':
		g->quiet = true;
		return true;
	default:
		return false;
	}
}

/* The option has a short form: its id is a letter. */
static bool letter(int id)
{
	return id > 0 && id < 128 && isalpha(id);
}

/* Adds a table's options to getopt_long's array and its short ones to
 * shortopts; false when either is full. */
static bool add_opts(const vz_opt *opts, struct option *lo, size_t *n, char *so, size_t *ns)
{
	for (const vz_opt *o = opts; o && o->name; o++) {
		/* --version is shown with the global options, but is the
		 * program's (main.c), not a command's; a heading is no option */
		if ((opts == vz_global_opts && o->id == OPT_VERSION) || !o->name[0])
			continue;
		if (*n + 1 >= MAX_OPTS || *ns + 3 >= MAX_OPTS)
			return false;
		lo[(*n)++] = (struct option){o->name, o->arg ? required_argument : no_argument,
					     NULL, o->id};
		if (letter(o->id)) {
			so[(*ns)++] = (char)o->id;
			if (o->arg)
				so[(*ns)++] = ':';
		}
	}
	return true;
}

int vz_opt_next(vz_global *g, const vz_command *c, int argc, char **argv, const char **arg)
{
	struct option lo[MAX_OPTS] = {{0}};
	char so[MAX_OPTS] = {0};
	size_t n = 0, ns = 0;
	int id;

	if (c->in_order)
		so[ns++] = '+';
	if (!add_opts(vz_global_opts, lo, &n, so, &ns) || !add_opts(c->opts, lo, &n, so, &ns))
		return VZ_OPT_BAD;
	opterr = 0;
	do {
		id = getopt_long(argc, argv, so, lo, NULL);
	} while (id != -1 && global_opt(g, id, optarg));
	*arg = optarg;
	if (id == -1)
		return VZ_OPT_END;
	if (id == OPT_HELP) {
		if (c->usage)
			vz_opt_help(stdout, c);
		return VZ_OPT_HELP;
	}
	return vz_opt_find(c, id) ? id : VZ_OPT_BAD;
}

int vz_opt_stop(const vz_command *c, int r, char **argv)
{
	if (r == VZ_OPT_HELP)
		return VZ_EXIT_OK;
	return vz_usage(c->name, "unknown or incomplete option '%s'", argv[optind - 1]);
}

const vz_opt *vz_opt_find(const vz_command *c, int id)
{
	for (const vz_opt *o = c->opts; o && o->name; o++)
		if (o->name[0] && o->id == id)
			return o;
	return NULL;
}

int vz_opt_num(const vz_command *c, int id, const char *arg, long *out)
{
	const vz_opt *o = vz_opt_find(c, id);

	if (o && vz_parse_long(arg, o->lo, o->hi, out))
		return 0;
	if (o && o->bad)
		return vz_usage(c->name, o->bad, o->lo, o->hi);
	return vz_usage(c->name, "--%s takes a number from %ld to %ld", o ? o->name : "?",
			o ? o->lo : 0, o ? o->hi : 0);
}

/* "  -v, --name VALUE" of one option, into buf; its width. */
static int left_side(const vz_opt *o, char *buf, size_t size)
{
	char l[8] = "";

	if (letter(o->id))
		snprintf(l, sizeof(l), "-%c, ", o->id);
	return snprintf(buf, size, "  %s--%s%s%s", l, o->name, o->arg ? " " : "",
			o->arg ? o->arg : "");
}

void vz_opt_print(FILE *f, const vz_opt *opts)
{
	char left[128], filled[1024];
	int col = 0;

	for (const vz_opt *o = opts; o && o->name; o++) {
		int w = left_side(o, left, sizeof(left)) + 2;

		if (o->name[0] && o->help && w > col && w <= HELP_COLUMN_MAX)
			col = w;
	}
	for (const vz_opt *o = opts; o && o->name; o++) {
		const char *text, *nl;
		int w;

		if (!o->help)
			continue;
		if (!o->name[0]) {
			fprintf(f, "%s\n", _(o->help));
			continue;
		}
		w = left_side(o, left, sizeof(left));
		fputs(left, f);
		text = _(o->help);
		if (o->dflt && strstr(text, "%s")) {
			snprintf(filled, sizeof(filled), text, o->dflt);
			text = filled;
		}
		fprintf(f, "%*s", w + 2 > col ? 2 : col - w, "");
		for (; (nl = strchr(text, '\n')); text = nl + 1)
			fprintf(f, "%.*s\n%*s", (int)(nl - text), text, col, "");
		fprintf(f, "%s\n", text);
	}
}

/* Text with its %s, if it has one, filled in. */
static void print_text(FILE *f, const char *text, const char *fmt_arg)
{
	if (!text)
		return;
	if (fmt_arg)
		fprintf(f, _(text), fmt_arg);
	else
		fputs(_(text), f);
}

void vz_opt_help(FILE *f, const vz_command *c)
{
	const char *u = _(c->usage), *nl;
	bool first = true;

	/* each usage line, and a line that goes on one before it as it is */
	for (;; u = nl + 1) {
		nl = strchr(u, '\n');
		if (*u == ' ')
			fprintf(f, "%.*s\n", nl ? (int)(nl - u) : (int)strlen(u), u);
		else
			fprintf(f, first ? _("Usage: vzp11 [GLOBAL OPTIONS] %.*s\n")
					 : _("       vzp11 [GLOBAL OPTIONS] %.*s\n"),
				nl ? (int)(nl - u) : (int)strlen(u), u);
		first = false;
		if (!nl || !nl[1])
			break;
	}
	print_text(f, c->about, c->fmt_arg);
	vz_opt_print(f, c->opts);
	print_text(f, c->notes, c->fmt_arg);
}
