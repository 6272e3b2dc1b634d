/* cli.h - what the command files share: global options, printing, exits. */
#ifndef VZP11_CLI_H
#define VZP11_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "err.h"

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
	unsigned cli_set;	 /* bit i: the ith of module, token, pin_source,
				    journal, module_args came from the command line */
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
#define VZ_GLOBAL_LONGOPTS                                                                         \
	{"module", required_argument, NULL, OPT_MODULE},                                           \
		{"module-args", required_argument, NULL, OPT_MODULE_ARGS},                         \
		{"token", required_argument, NULL, OPT_TOKEN},                                     \
		{"pin-source", required_argument, NULL, OPT_PIN_SOURCE},                           \
		{"journal", required_argument, NULL, OPT_JOURNAL},                                 \
		{"config", required_argument, NULL, OPT_CONFIG},                                   \
		{"json", no_argument, NULL, OPT_JSON}, {"verbose", no_argument, NULL, 'v'},        \
		{"quiet", no_argument, NULL, 'q'},                                                 \
	{                                                                                          \
		"help", no_argument, NULL, OPT_HELP                                                \
	}

/* The value of an environment variable, or NULL when unset or empty. */
const char *vz_env(const char *name);

/* A decimal number in [lo, hi], the whole string. */
bool vz_parse_long(const char *s, long lo, long hi, long *out);

/* Where a VECOZO client sends: *env (--env, else VZP11_ENV) looked up with
 * lookup, or *endpoint (--endpoint) — never both, wherever each came from;
 * an https:// URL. 0, or the usage exit code (messages name cmd). */
int vz_target(const char *cmd, const char **env, const char **endpoint,
	      const char *(*lookup)(const char *env));

/* Handles one global option; false if c is not one. */
bool vz_global_opt(vz_global *g, int c, const char *arg);

/* getopt_long for a command: global options are taken into g on the way;
 * returns the next option of the command's own, or -1 at the end. */
int vz_next_opt(vz_global *g, int argc, char **argv, const char *shortopts,
		const struct option *longopts);

/* "vzp11: msg" and the hint, on stderr. */
void vz_report(const vz_err *err);
/* Usage error: message plus "Try 'vzp11 CMD --help'"; returns VZ_EXIT_USAGE. */
int vz_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A note on stderr, unless --quiet. */
void vz_note(const vz_global *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exit code for a vz_rv. */
int vz_exit_code(vz_rv r);

int cmd_import(vz_global *g, int argc, char **argv);
int cmd_list(vz_global *g, int argc, char **argv);
int cmd_show(vz_global *g, int argc, char **argv);
int cmd_remove(vz_global *g, int argc, char **argv);
int cmd_rotate(vz_global *g, int argc, char **argv);
int cmd_cov(vz_global *g, int argc, char **argv);
int cmd_declare(vz_global *g, int argc, char **argv);
int cmd_declare_status(vz_global *g, int argc, char **argv);
int cmd_retour(vz_global *g, int argc, char **argv);
int cmd_journal(vz_global *g, int argc, char **argv);
int cmd_gateway(vz_global *g, int argc, char **argv);
int cmd_clients(vz_global *g, int argc, char **argv);
int cmd_check(vz_global *g, int argc, char **argv);
int cmd_selftest(vz_global *g, int argc, char **argv);
int cmd_config(vz_global *g, int argc, char **argv);

#endif
