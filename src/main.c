/* main.c - global options and the command table. */
#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "cli.h"
#include "config.h"
#include "vzp11-version.h"
#include "i18n.h"

struct command {
	const char *name;
	int (*run)(vz_global *g, int argc, char **argv);
	const char *synopsis;
};

static const struct command commands[] = {
	{"import", cmd_import,
	 "import FILE.p12 [--password-source SRC] [--label LABEL] [--replace] "
	 "[--allow-personal]"},
	{"list", cmd_list, "list"},
	{"show", cmd_show, "show LABEL"},
	{"remove", cmd_remove, "remove LABEL [--yes]"},
	{"rotate", cmd_rotate,
	 "rotate NEW.p12 [--label LABEL] [--password-source SRC] [--env tst|acc|prd | --endpoint URL]\n"
	 "      [--cacert FILE]"},
	{"rotate", cmd_rotate, "rotate --rollback|--finish [--label LABEL]"},
	{"cov", cmd_cov,
	 "cov --bsn BSN --birthdate YYYY-MM-DD [--date YYYY-MM-DD] [--agb CODE]\n"
	 "      [--label LABEL] [--env tst|acc|prd | --endpoint URL] [--cacert FILE]"},
	{"cov", cmd_cov, "cov --stdin [same options]"},
	{"cov", cmd_cov, "cov --batch FILE.csv|- [--out FILE] [--jobs N] [same options]"},
	{"declare", cmd_declare,
	 "declare FILE.txt... --from ROLE:CODE --to ROLE:CODE[,...] --flow TYPE[/SUB]:V.S[:ACTION]\n"
	 "      [--reference REF] [--force] [--label LABEL] [--env tst|acc|prd | --endpoint URL]"},
	{"declare-status", cmd_declare_status, "declare-status [TRACEER-ID | --open] [--watch]"},
	{"retour", cmd_retour, "retour --dir DIR [--limit N]"},
	{"journal", cmd_journal, "journal"},
	{"gateway", cmd_gateway,
	 "gateway --listen ADDR... (--env tst|acc|prd | --upstream URL) [--label LABEL...]\n"
	 "      [--pool N] [--clients DIR] [--allow-user USER...] [--insecure-loopback]"},
	{"clients", cmd_clients, "clients init [--name HOST...] [--owner USER] [--dir DIR]"},
	{"clients", cmd_clients,
	 "clients issue NAME --out FILE.p12 [--password-source SRC] [--days N] [--dir DIR]"},
	{"clients", cmd_clients, "clients list|revoke NAME|SERIAL [--dir DIR]"},
	{"check", cmd_check, "check [--label LABEL] [--warn-days N] [--crit-days N]"},
	{"selftest", cmd_selftest,
	 "selftest [--label LABEL] [--env tst|acc|prd | --endpoint URL] [--cacert FILE]"},
	{"config", cmd_config, "config"},
};

static void usage(FILE *out)
{
	fprintf(out,
		_("Usage: vzp11 [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
		  "Keep a VECOZO system certificate on a PKCS#11 token and use it from there.\n\n"
		  "Commands:\n"));
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %s\n", commands[i].synopsis);
	fprintf(out,
		_("\nGlobal options (also accepted after the command):\n"
		  "  --module PATH|NAME  PKCS#11 module file, or a p11-kit module name (env VZP11_MODULE);\n"
		  "                      default: the modules registered with p11-kit\n"
		  "  --module-args ARGS  the module's initialization arguments (C_Initialize's\n"
		  "                      pReserved), e.g. NSS softoken's \"configdir='sql:DIR'\"\n"
		  "                      (env VZP11_MODULE_ARGS); only for the module named in\n"
		  "                      the same place (--module, VZP11_MODULE, the same file);\n"
		  "                      default: none, or the p11-kit module's x-init-reserved\n"
		  "  --token URI|LABEL   token as RFC 7512 URI (pkcs11:token=...) or label (env VZP11_TOKEN);\n"
		  "                      default: the only initialized token\n"
		  "  --pin-source SRC    user PIN source (env VZP11_PIN_SOURCE); default: prompt\n"
		  "  --journal PATH|URI  billing journal: a SQLite file or postgresql://... (env\n"
		  "                      VZP11_JOURNAL); default: ~/.local/state/vzp11/journal.db\n"
		  "  --config FILE       settings read after %s and the user's\n"
		  "                      ~/.config/vzp11/config (see 'vzp11 config')\n"
		  "  --json              machine-readable output on stdout\n"
		  "  -v, --verbose       say more about what is done\n"
		  "  -q, --quiet         print only results and errors\n"
		  "  --help              show this help, or a command's with COMMAND --help\n"
		  "  --version           show the version\n\n"
		  "SRC is env:VAR, file:PATH (mode 0600), fd:N, stdin or prompt. Secrets are never\n"
		  "taken from the command line.\n"
		  "Exit: 0 done, 1 refused or failed (nothing changed), 2 usage error;\n"
		  "check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"),
		vz_config_system_file());
}

bool vz_global_opt(vz_global *g, int c, const char *arg)
{
	switch (c) {
	case OPT_MODULE:
		g->module = arg;
		g->cli_set |= 1u;
		return true;
	case OPT_MODULE_ARGS:
		g->module_args = arg;
		g->cli_set |= 16u;
		return true;
	case OPT_TOKEN:
		g->token = arg;
		g->cli_set |= 2u;
		return true;
	case OPT_PIN_SOURCE:
		g->pin_source = arg;
		g->cli_set |= 4u;
		return true;
	case OPT_JOURNAL:
		g->journal = arg;
		g->cli_set |= 8u;
		return true;
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

int vz_next_opt(vz_global *g, int argc, char **argv, const char *shortopts,
		const struct option *longopts)
{
	int c;

	opterr = 0;
	do {
		c = getopt_long(argc, argv, shortopts, longopts, NULL);
	} while (c != -1 && vz_global_opt(g, c, optarg));
	return c;
}

void vz_report(const vz_err *err)
{
	fprintf(stderr, _("vzp11: %s\n"), err->msg[0] ? err->msg : _("failed"));
	if (err->hint[0])
		fprintf(stderr, _("vzp11: %s\n"), err->hint);
}

int vz_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs(_("vzp11: "), stderr);
	va_start(ap, fmt);
	vfprintf(stderr, _(fmt), ap);
	va_end(ap);
	fprintf(stderr, _("\nTry 'vzp11 %s%s--help'.\n"), cmd ? cmd : "", cmd ? " " : "");
	return VZ_EXIT_USAGE;
}

void vz_note(const vz_global *g, const char *fmt, ...)
{
	va_list ap;

	if (g->quiet)
		return;
	fputs(_("vzp11: "), stderr);
	va_start(ap, fmt);
	vfprintf(stderr, _(fmt), ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vz_exit_code(vz_rv r)
{
	return r == VZ_OK ? VZ_EXIT_OK : r == VZ_USAGE ? VZ_EXIT_USAGE : VZ_EXIT_FAIL;
}

/* No core dumps: a dump of this process could hold a PIN or key. */
static void harden(void)
{
	struct rlimit none = {0, 0};

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &none);
}

bool vz_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int vz_target(const char *cmd, const char **env, const char **endpoint,
	      const char *(*lookup)(const char *env))
{
	const char *env_var = vz_env("VZP11_ENV");

	if (*endpoint && *env)
		return vz_usage(cmd, "give --env or --endpoint, not both");
	if (*endpoint && env_var)
		return vz_usage(cmd,
				"--endpoint and VZP11_ENV (set to '%s') both say where to send; "
				"unset VZP11_ENV or leave out --endpoint",
				env_var);
	*env = *env ? *env : env_var;
	if (!*endpoint && !*env)
		return vz_usage(cmd, "say which VECOZO environment to use: --env tst, acc or prd "
				     "(or VZP11_ENV), or --endpoint URL");
	if (!*endpoint) {
		*endpoint = lookup(*env);
		if (!*endpoint)
			return vz_usage(cmd, "unknown environment '%s'; use tst, acc or prd", *env);
	}
	if (strncmp(*endpoint, "https://", 8) != 0)
		return vz_usage(cmd, "the endpoint must be an https:// URL");
	return 0;
}

const char *vz_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The version of the installed package pkg (dpkg-query, on Debian and its
 * derivatives), or "". */
static void package_version(const char *pkg, char *out, size_t size)
{
	char cmd[128];
	FILE *p;

	out[0] = '\0';
	snprintf(cmd, sizeof(cmd), "dpkg-query -W -f='${Version}' %s 2>/dev/null", pkg);
	p = popen(cmd, "r");
	if (!p)
		return;
	if (!fgets(out, (int)size, p))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

/* vzp11's version, and those of the libraries found at run time. */
static void version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
	OSSL_PROVIDER *prov = NULL;
	char *pv = NULL, deb[128];
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, &pv, 0),
			       OSSL_PARAM_construct_end()};

	printf(_("vzp11 %s\n"), VZP11_VERSION);
	printf(_("%s (built with %s)\n"), OpenSSL_version(OPENSSL_VERSION), OPENSSL_VERSION_TEXT);
	printf(_("libcurl %s (%s)\n"), cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
	/* default first, as for TLS (DESIGN.md: provider load order) */
	if (ctx && OSSL_PROVIDER_load(ctx, "default"))
		prov = OSSL_PROVIDER_load(ctx, "pkcs11");
	if (!prov) {
		printf(_("pkcs11-provider: not found in %s\n"),
		       OPENSSL_info(OPENSSL_INFO_MODULES_DIR));
		return;
	}
	/* pkcs11-provider 1.0 answers "version" with the OpenSSL it was built
	 * with: the package that installed it says more. */
	OSSL_PROVIDER_get_params(prov, params);
	package_version("pkcs11-provider", deb, sizeof(deb));
	printf(_("pkcs11-provider %s (%s/pkcs11.so, which reports version %s)\n"),
	       deb[0] ? deb : "of unknown version", OPENSSL_info(OPENSSL_INFO_MODULES_DIR),
	       pv ? pv : "none");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		VZ_GLOBAL_LONGOPTS,
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0},
	};
	vz_global g = {
		.module = vz_env("VZP11_MODULE"),
		.token = vz_env("VZP11_TOKEN"),
		.pin_source = vz_env("VZP11_PIN_SOURCE"),
		.journal = vz_env("VZP11_JOURNAL"),
	};
	int c;

	harden();
	/* Messages in the user's language; only messages: numbers, dates and
	 * character classes stay as in the C locale (JSON, CSV, checks). */
	setlocale(LC_MESSAGES, "");
	bindtextdomain("vzp11", VZP11_LOCALEDIR);
	bind_textdomain_codeset("vzp11", "UTF-8");
	textdomain("vzp11");
	/* No OPENSSL_cleanup at exit: pkcs11-provider 1.0 frees a mechanism list
	 * twice in its teardown after a failed C_GetMechanismList (found by the
	 * billing fault sweep), turning a finished run into an abort. The
	 * process ends anyway; the key never leaves the token. */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
	for (c = vz_next_opt(&g, argc, argv, "+vq", longopts); c != -1;
	     c = vz_next_opt(&g, argc, argv, "+vq", longopts)) {
		if (c == OPT_HELP) {
			usage(stdout);
			return VZ_EXIT_OK;
		}
		if (c == OPT_VERSION) {
			version();
			return VZ_EXIT_OK;
		}
		return vz_usage(NULL, "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (optind >= argc)
		return vz_usage(NULL, "no command given");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			int sub_argc = argc - optind, ret;
			char **sub_argv = argv + optind;
			vz_err err = {0};
			vz_rv r;

			/* Settings from the files, below the environment and the
			 * command line (cli.h has the order). */
			r = vz_config_load(vz_config_option(argc, argv), &err);
			if (r != VZ_OK) {
				vz_report(&err);
				vz_config_free();
				return vz_exit_code(r);
			}
			vz_config_globals(&g);
			ret = vz_config_args(commands[i].name, &sub_argc, &sub_argv);
			optind = 0; /* reset getopt for the command's own options */
			if (ret == 0)
				ret = commands[i].run(&g, sub_argc, sub_argv);
			vz_config_free();
			return ret;
		}
	}
	return vz_usage(NULL, "unknown command '%s'", argv[optind]);
}
