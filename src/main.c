/* main.c - the command table, and the start of every run. */
#include <locale.h>
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

#include "billing/billing.h"
#include "cli/cli.h"
#include "cov/cov.h"
#include "gateway/gateway.h"
#include "lifecycle/lifecycle.h"
#include "token/token.h"
#include "vzp11-version.h"

static const vz_command *const commands[] = {
	&vz_cmd_import,	 &vz_cmd_list,	    &vz_cmd_show,	     &vz_cmd_remove,
	&vz_cmd_rotate,	 &vz_cmd_cov,	    &vz_cmd_declare,	     &vz_cmd_declare_status,
	&vz_cmd_retour,	 &vz_cmd_journal,   &vz_cmd_gateway,	     &vz_cmd_clients,
	&vz_cmd_check,	 &vz_cmd_selftest,  &vz_cmd_config,
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* The program before a command: the global options and --version. */
static const vz_opt program_opts[] = {VZ_OPT("version", OPT_VERSION, NULL, NULL), {0}};
static const vz_command program = {.opts = program_opts, .in_order = true};

static void usage(FILE *out)
{
	fputs(_("Usage: vzp11 [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
		"Keep a VECOZO system certificate on a PKCS#11 token and use it from there.\n\n"
		"Commands:\n"),
	      out);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const char *s = commands[i]->synopsis ? commands[i]->synopsis : commands[i]->usage,
			   *nl;

		/* a line that goes on one before it is printed as it is */
		for (; (nl = strchr(s, '\n')); s = nl + 1)
			fprintf(out, "%s%.*s\n", *s == ' ' ? "" : "  ", (int)(nl - s), s);
		fprintf(out, "%s%s\n", *s == ' ' ? "" : "  ", s);
	}
	fputs(_("\nGlobal options (also accepted after the command):\n"), out);
	vz_opt_print(out, vz_global_opts);
	fprintf(out,
		_("\nSettings are read from %s, then the user's\n"
		  "~/.config/vzp11/config, then --config FILE (see 'vzp11 config').\n"
		  "SRC is env:VAR, file:PATH (mode 0600), fd:N, stdin or prompt. Secrets are never\n"
		  "taken from the command line.\n"
		  "Exit: 0 done, 1 refused or failed (nothing changed), 2 usage error;\n"
		  "check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"),
		vz_config_system_file());
}

/* No core dumps: a dump of this process could hold a PIN or key. */
static void harden(void)
{
	struct rlimit none = {0, 0};

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &none);
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
	vz_global g = {
		.module = vz_env("VZP11_MODULE"),
		.token = vz_env("VZP11_TOKEN"),
		.pin_source = vz_env("VZP11_PIN_SOURCE"),
		.journal = vz_env("VZP11_JOURNAL"),
	};
	const char *arg;
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
	c = vz_opt_next(&g, &program, argc, argv, &arg);
	if (c == VZ_OPT_HELP) {
		usage(stdout);
		return VZ_EXIT_OK;
	}
	if (c == OPT_VERSION) {
		version();
		return VZ_EXIT_OK;
	}
	if (c != VZ_OPT_END)
		return vz_usage(NULL, "unknown or incomplete option '%s'", argv[optind - 1]);
	if (optind >= argc)
		return vz_usage(NULL, "no command given");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[optind], commands[i]->name) == 0) {
			int sub_argc = argc - optind, ret;
			char **sub_argv = argv + optind;
			vz_err err = {0};
			vz_rv r;

			/* Settings from the files, below the environment and the
			 * command line (cli.h has the order). */
			r = vz_config_load(commands, N_COMMANDS, vz_config_option(argc, argv), &err);
			if (r != VZ_OK) {
				vz_report(&err);
				vz_config_free();
				return vz_exit_code(r);
			}
			vz_config_globals(&g);
			ret = vz_config_args(commands[i], &sub_argc, &sub_argv);
			optind = 0; /* reset getopt for the command's own options */
			if (ret == 0)
				ret = commands[i]->run(&g, sub_argc, sub_argv);
			vz_config_free();
			return ret;
		}
	}
	return vz_usage(NULL, "unknown command '%s'", argv[optind]);
}
