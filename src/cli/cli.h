/* cli.h - what every command shares, below all of them: results and
 * messages, the global options and option parsing, the configuration
 * files, secrets from their sources, text checks, files written whole,
 * JSON output. */
#ifndef VZP11_CLI_CLI_H
#define VZP11_CLI_CLI_H

#include <libintl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <getopt.h>
#include <jansson.h>

#include "tok.h"

/* ---- translated messages (gettext, domain "vzp11"). vz_err_set,
 * vz_err_hint, vz_usage and vz_note translate their format themselves; the
 * rest marks its strings with _() (or N_() where a table holds them). JSON
 * keys, CSV headers and VECOZO's own terms stay as they are. */

#define _(s)  gettext(s)
#define N_(s) s

/* ---- results and the error context every vz_ function fills. */

typedef enum vz_rv {
	VZ_OK = 0,
	VZ_FAIL,	 /* refused or failed; err says why */
	VZ_USAGE,	 /* the command line is wrong */
	VZ_BAD_PASSWORD, /* the .pfx password is wrong */
	VZ_NOT_FOUND,
	VZ_DUPLICATE, /* a unique rule refused the record; the earlier one is given */
} vz_rv;

/* What happened (msg) and what to do next (hint). */
typedef struct vz_err {
	char msg[768];
	char hint[512];
	/* The token refused the PIN (or it is locked): it must not be sent
	 * again, not even by a restarted process (see `vzp11 gateway`'s exit
	 * code 3). Set by vz_err_from_tok() and the TLS key load only. */
	bool pin_refused;
	/* The token's failure can pass by itself (the device, a session, the
	 * link to a network HSM: CKR_DEVICE_ERROR, CKR_SESSION_HANDLE_INVALID,
	 * ...), so running the command again may help; false for the token's
	 * answer to what was asked (CKR_ATTRIBUTE_READ_ONLY, ...), which comes
	 * again. Set by vz_err_from_tok() only. */
	bool may_pass;
} vz_err;

void vz_err_set(vz_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vz_err_hint(vz_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds the newest OpenSSL error reason to err->msg and clears the queue. */
void vz_err_openssl(vz_err *err);
/* Copies a token-layer error and maps its result. */
/* Puts the token back as it was before transaction x (x may be NULL: nothing
 * was written) and says so after err's message: unchanged (e.g. "; the
 * token is unchanged"), or what could not be undone. */
void vz_err_abort(vz_err *err, tok_txn *x, const char *unchanged);

vz_rv vz_err_from_tok(vz_err *err, const tok_err *te, tok_rv r);

/* ---- UTF-8 checks and cleaning for text that crosses a trust
 * boundary: CSV fields on their way into XML, server text on its way to a
 * terminal or a log. */

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) in s[0..len). */
bool vz_utf8_valid(const char *s, size_t len);

/* s is well-formed UTF-8 without control characters (C0, DEL, C1) and has
 * at most max_chars characters. */
bool vz_text_printable(const char *s, size_t max_chars);

/* s is exactly n ASCII digits. */
bool vz_digits(const char *s, size_t n);

/* Cleans s in place for a terminal or log: control characters (C0, DEL,
 * C1) become a space, bytes that are not UTF-8 become '?'. */
void vz_text_clean(char *s);

/* ---- a result file that appears whole or not at all. It is
 * written as ".NAME.vzp11-partial.PID" beside NAME (mode 0600), removed
 * when the process is interrupted by a signal, and renamed into place only
 * when complete. A partial file left by a killed run (SIGKILL, power loss)
 * is found by its name and removed by the next run for the same NAME. */

/* Removes partial files of path whose process is gone (*stale counts
 * them), installs the signal handlers, then creates the temporary file.
 * One output file at a time per process. */
vz_rv vz_outfile_open(const char *path, FILE **out, size_t *stale, vz_err *err);

/* keep: flush, fsync, rename to path, fsync the directory. Otherwise (or
 * when any of that fails) the temporary file is removed. out is closed
 * either way. */
vz_rv vz_outfile_close(FILE *out, bool keep, vz_err *err);

/* ---- reading a PIN or password from a source the user names. */

#define VZ_SECRET_MAX 256

/* A secret in a fixed buffer; wipe with vz_secret_wipe() on every path. */
typedef struct vz_secret {
	char buf[VZ_SECRET_MAX];
	size_t len;
} vz_secret;

/* Checks a source's syntax without reading it: env:VAR, file:PATH, fd:N,
 * stdin or prompt. "pass:" is refused because argv is public. */
vz_rv vz_secret_check_source(const char *src, vz_err *err);

/* Reads one secret (first line, without its line end). what names it in
 * prompts and messages ("token PIN"). src NULL means prompt on a terminal
 * and a refusal otherwise. A file: source readable by group or others is
 * refused. */
vz_rv vz_secret_read(const char *src, const char *what, vz_secret *out, vz_err *err);

void vz_secret_wipe(vz_secret *s);

/* A secret already read, handed on to a reader of "fd:N" (the provider's
 * login, another opening of the token) through a pipe, so it never lands
 * in a file or argv: src gets "fd:N"; returns N (close it after use), or -1.
 * A secret fits the pipe's buffer. */
int vz_secret_pipe(const vz_secret *s, char *src, size_t size);

/* ---- what the command files share: global options, printing, exits. */

/* The label a certificate gets and is looked up by when none is given. */
#define VZ_DEFAULT_LABEL "vecozo-system"

enum {
	VZ_EXIT_OK = 0,
	VZ_EXIT_FAIL = 1,
	VZ_EXIT_USAGE = 2
};

typedef struct vz_global {
	const char *module;	 /* --module or VZP11_MODULE */
	const char *module_args; /* --module-args (C_Initialize's pReserved); which
				    arguments go with the module: vz_config_module() */
	const char *token;	 /* --token or VZP11_TOKEN */
	const char *pin_source;	 /* --pin-source or VZP11_PIN_SOURCE */
	const char *journal;	 /* --journal or VZP11_JOURNAL (billing) */
	const char *config;	 /* --config FILE */
	unsigned cli_set;	 /* which of them came from the command line
				    (vz_global_given()) */
	bool json;
	int verbose;
	bool quiet;
} vz_global;

/* Global options, accepted before and after the command name. */
enum {
	OPT_MODULE = 1000,
	OPT_MODULE_ARGS,
	OPT_TOKEN,
	OPT_PIN_SOURCE,
	OPT_JOURNAL,
	OPT_CONFIG,
	OPT_JSON,
	OPT_HELP,
	OPT_VERSION,
	/* Last: each command numbers its own options from here on. */
	OPT_CMD
};

/* ---- one way to declare a command's options ----
 *
 * A command is a vz_command: its name, what `vzp11 --help` and its own
 * --help say, and a table of its options. The table is the only place an
 * option is declared: vz_opt_next() parses with it, --help is printed from
 * it, the configuration files take its keys from it, and the shell
 * completion reads --help. */

/* What a configuration file's key holds (VZ_KEY_NONE: the option is not a
 * key). */
typedef enum vz_key_kind {
	VZ_KEY_NONE = 0,
	VZ_KEY_TEXT,
	VZ_KEY_NUM,	/* a number in [lo, hi] */
	VZ_KEY_ENVNAME, /* tst, acc or prd */
	VZ_KEY_HTTPS,	/* an https:// URL */
	VZ_KEY_SOURCE,	/* a secret's source, never the secret */
	VZ_KEY_LIST	/* words, each given as its own option */
} vz_key_kind;

typedef struct vz_opt {
	const char *name; /* the long option, without "--"; "": a heading (help only) */
	int id;		  /* what vz_opt_next() returns; a letter is also its short option */
	const char *arg;  /* the value's name in --help ("LABEL"); NULL: takes no value */
	const char *help; /* --help's text (N_()); a '\n' goes on at the text's column;
			     a %s is dflt; NULL: not shown */
	/* As a configuration key: the option given for it, below the
	 * environment and the command line. */
	vz_key_kind key;
	const char *section; /* NULL: before any section */
	const char *env;     /* the environment variable that wins over the files */
	long lo, hi;	     /* a number's range, on the command line and in the files */
	const char *dflt;    /* the default, as --help (its %s) and `vzp11 config` show it */
	const char *bad;     /* a number's usage message when out of range, a format
				with two %ld for lo and hi (N_()) */
} vz_opt;

typedef struct vz_command {
	const char *name;
	int (*run)(vz_global *g, int argc, char **argv);
	const char *synopsis; /* `vzp11 --help`'s lines for it, '\n' between them;
				 NULL: the usage lines */
	const char *usage;    /* its --help's Usage: lines, without "vzp11 [GLOBAL OPTIONS] " */
	const char *about;    /* what it does, before the options */
	const vz_opt *opts;   /* ended by an entry without a name */
	const char *notes;    /* after the options; NULL: none */
	const char *fmt_arg;  /* the %s of about and notes, if they have one */
	bool in_order;	      /* stop at the first argument that is not an option */
} vz_command;

/* The key half of an entry for the keys that several commands take (their
 * tables must agree): {"label", O_LABEL, "LABEL", N_("..."), VZ_AS_LABEL}. */
#define VZ_AS_LABEL  VZ_KEY_TEXT, NULL, NULL, 0, 0, VZ_DEFAULT_LABEL, NULL
#define VZ_AS_ENV    VZ_KEY_ENVNAME, NULL, "VZP11_ENV", 0, 0, NULL, NULL
#define VZ_AS_CACERT VZ_KEY_TEXT, NULL, "VZP11_CACERT", 0, 0, "the system store", NULL

/* A line of --help between options (a heading over the ones after it). */
#define VZ_OPT_HEADING(text) VZ_OPT("", 0, NULL, text)

/* An option that is no configuration key. */
/* clang-format off */
#define VZ_OPT(name, id, arg, help) {name, id, arg, help, VZ_KEY_NONE, NULL, NULL, 0, 0, NULL, NULL}
/* clang-format on */

/* The global options (--module ... --version). */
extern const vz_opt vz_global_opts[];

/* The value of a global option (OPT_MODULE ...) when the command line
 * gave it, else NULL. */
const char *vz_global_given(const vz_global *g, int id);
/* Sets a global option's field to value if nothing set it yet. */
void vz_global_fill(vz_global *g, int id, const char *value);

/* vz_opt_next()'s results besides an option's id. */
enum {
	VZ_OPT_END = -1,  /* no more options: optind is the first argument */
	VZ_OPT_HELP = -2, /* --help: the command's help is printed on stdout */
	VZ_OPT_BAD = -3	  /* an unknown option or one without its value */
};

/* The next option of the command's own, through getopt_long: global
 * options are taken into g on the way; *arg is the option's value (NULL
 * without one). */
int vz_opt_next(vz_global *g, const vz_command *c, int argc, char **argv, const char **arg);

/* For a result of vz_opt_next() that ends parsing early: VZ_EXIT_OK after
 * --help, else the usage message naming argv's bad option and
 * VZ_EXIT_USAGE. */
int vz_opt_stop(const vz_command *c, int r, char **argv);

/* The number an option of VZ_KEY_NUM took, in its range: 0, or the usage
 * exit code (with the option's bad message). */
int vz_opt_num(const vz_command *c, int id, const char *arg, long *out);

/* The option of c with this id; NULL if none. */
const vz_opt *vz_opt_find(const vz_command *c, int id);

/* The command's --help, as vz_opt_next() prints it. */
void vz_opt_help(FILE *f, const vz_command *c);

/* Options in --help form ("  --label LABEL    text"), for `vzp11 --help`. */
void vz_opt_print(FILE *f, const vz_opt *opts);

/* The value of an environment variable, or NULL when unset or empty. */
const char *vz_env(const char *name);

/* A decimal number in [lo, hi], the whole string. */
bool vz_parse_long(const char *s, long lo, long hi, long *out);

/* Where a VECOZO client sends: *env (--env, else VZP11_ENV) looked up with
 * lookup, or *endpoint (--endpoint) — never both, wherever each came from;
 * an https:// URL. 0, or the usage exit code (messages name cmd). */
int vz_target(const char *cmd, const char **env, const char **endpoint,
	      const char *(*lookup)(const char *env));

/* "vzp11: msg" and the hint, on stderr. */
void vz_report(const vz_err *err);
/* Usage error: message plus "Try 'vzp11 CMD --help'"; returns VZ_EXIT_USAGE. */
int vz_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A note on stderr, unless --quiet. */
void vz_note(const vz_global *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exit code for a vz_rv. */
int vz_exit_code(vz_rv r);

/* ---- settings from /etc/vzp11/vzp11.conf, the user's file and
 * --config FILE (INI, read with inih), below the environment and the
 * command line. */

/* Reads the system file, the user's ($XDG_CONFIG_HOME/vzp11/config or
 * ~/.config/vzp11/config) and explicit (--config; NULL: none), later ones
 * overriding earlier ones key by key. A file that is missing is skipped
 * (not the explicit one); one that others may write to, or owned by
 * neither root nor the user, is refused, and so is an unknown section or
 * key, a bad value or a PIN: the message names file and line. */
vz_rv vz_config_load(const vz_command *const *cmds, size_t n, const char *explicit_path,
		     vz_err *err);
void vz_config_free(void);

/* Where this build looks for the system file (SYSCONFDIR/vzp11/vzp11.conf). */
const char *vz_config_system_file(void);

/* Fills the global options neither the command line nor the environment
 * set (g holds those already); not module-args (vz_config_module). */
void vz_config_globals(vz_global *g);

/* The module in effect and the arguments that go with it: those given in
 * the same place as the module (the command line, the environment, or one
 * configuration file), never another place's; with -v, once per run, which
 * arguments were left out. No module named anywhere: *module NULL and the
 * first arguments given, for the token layer to refuse. VZ_USAGE, with the
 * reason in err, for --module-args without --module on the command line
 * while the module comes from elsewhere. */
vz_rv vz_config_module(const vz_global *g, const char **module, const char **args, vz_err *err);

/* The command's arguments with the file's settings for it put in front, as
 * options, where neither its arguments nor the environment give them;
 * `--flow NAME` of a [flow "NAME"] section replaced by the flow it names.
 * *argv is replaced by a new array (freed at exit with vz_config_free).
 * 0, or the usage exit code. */
int vz_config_args(const vz_command *cmd, int *argc, char ***argv);

/* The --config FILE in argv, or NULL. */
const char *vz_config_option(int argc, char **argv);

extern const vz_command vz_cmd_config;

/* ---- JSON and text output. */

/* Prints j (compact) and a newline; frees j. */
int vz_out_json(FILE *f, json_t *j);

/* Flushes f. VZ_FAIL, with the reason in err, when anything written to f
 * did not arrive (a full disk, a closed pipe). */
vz_rv vz_out_flush(FILE *f, vz_err *err);

/* Hex of bytes, lower case. Caller frees. */
char *vz_hex(const unsigned char *p, size_t len);

#endif
