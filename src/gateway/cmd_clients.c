/* cmd_clients.c - `vzp11 clients`: the gateway's local client certificates
 * (init, issue, list, revoke); the CA itself is in clientca.c. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "clientca.h"
#include "cli/cli.h"
#include "gateway/gateway.h"

struct opts {
	const char *dir, *owner, *out, *pass_src;
	const char *names[16];
	size_t n_names;
	long days;
	bool legacy;
	unsigned given; /* bit per option, to refuse one the subcommand does not take */
};

enum {
	O_DIR = OPT_CMD,
	O_NAME,
	O_OWNER,
	O_OUT,
	O_PASS,
	O_DAYS,
	O_LEGACY,
};

static const vz_opt clients_opts[] = {
	{"dir", O_DIR, "DIR", N_("where the files are (default %s)"), VZ_KEY_NONE, NULL, NULL, 0, 0,
	 VZ_CLIENTS_DIR, NULL},
	VZ_OPT("name", O_NAME, "HOST",
	       N_("init: a name or address clients reach the gateway by,\n"
		  "besides localhost, 127.0.0.1 and ::1; repeatable")),
	VZ_OPT("owner", O_OWNER, "USER", N_("init: the user the gateway runs as gets server.key")),
	VZ_OPT("out", O_OUT, "FILE.p12",
	       N_("issue: where the .p12 goes (never over an existing file)")),
	VZ_OPT("password-source", O_PASS, "SRC",
	       N_("issue: the .p12's password (8 characters or more); on a\n"
		  "terminal asked twice")),
	{"days", O_DAYS, "N", N_("issue: how long the certificate is valid (default 730)"),
	 VZ_KEY_NONE, NULL, NULL, 1, 3650, NULL, N_("--days wants a number from %ld to %ld")},
	VZ_OPT("legacy-p12", O_LEGACY, NULL,
	       N_("issue: 3DES and SHA-1 instead of AES-256 and SHA-256, for\n"
		  "Windows before 10 (1709)")),
	{0},
};

static int cmd_clients(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_clients = {
	.name = "clients",
	.run = cmd_clients,
	.synopsis =
		"clients init [--name HOST...] [--owner USER] [--dir DIR]\n"
		"clients issue NAME --out FILE.p12 [--password-source SRC] [--days N] [--dir DIR]\n"
		"clients list|revoke NAME|SERIAL [--dir DIR]",
	.usage = N_("clients init [--name HOST ...] [--owner USER] [--dir DIR]\n"
		    "clients issue NAME --out FILE.p12 [--password-source SRC]\n"
		    "                                    [--days N] [--legacy-p12] [--dir DIR]\n"
		    "clients list [--dir DIR]\n"
		    "clients revoke NAME|SERIAL [--dir DIR]"),
	.about = N_(
		"Client certificates for the gateway: practice software presents a .p12 of its own\n"
		"to 'vzp11 gateway' instead of the VECOZO certificate, which stays on the token.\n"
		"A stolen .p12 opens only the gateway, and is revoked on its own.\n"
		"  init        make the client CA: its key is generated on the token (label\n"
		"              %s), its files go to DIR: ca.crt (install it as trusted on\n"
		"              the workstations), ca.crl, and the gateway's own HTTPS\n"
		"              certificate server.crt and key server.key\n"
		"  issue NAME  a certificate for one program or workstation, with a new key, as\n"
		"              FILE.p12 (mode 0600) under a password from SRC\n"
		"  list        the certificates issued: name, serial, expiry, state\n"
		"  revoke      revoke NAME's certificates (or one by its SERIAL): a new ca.crl,\n"
		"              signed on the token; the gateway applies it at its next SIGHUP\n"
		"              (systemctl reload vzp11-gateway)\n"),
	.opts = clients_opts,
	.fmt_arg = VZ_CLIENTS_LABEL,
};

#define BIT(o) (1u << ((o)-OPT_CMD))

/* The options into o: -1 when the command goes on, else the exit code (0
 * after --help). */
static int parse_opts(vz_global *g, int argc, char **argv, struct opts *o)
{
	const char *arg;
	int id;

	while ((id = vz_opt_next(g, &vz_cmd_clients, argc, argv, &arg)) > 0) {
		o->given |= BIT(id);
		switch (id) {
		case O_DIR:
			o->dir = arg;
			break;
		case O_NAME:
			if (o->n_names == sizeof(o->names) / sizeof(o->names[0]))
				return vz_usage("clients", "too many --name");
			o->names[o->n_names++] = arg;
			break;
		case O_OWNER:
			o->owner = arg;
			break;
		case O_OUT:
			o->out = arg;
			break;
		case O_PASS:
			o->pass_src = arg;
			break;
		case O_DAYS:
			if (vz_opt_num(&vz_cmd_clients, O_DAYS, arg, &o->days) != 0)
				return VZ_EXIT_USAGE;
			break;
		case O_LEGACY:
			o->legacy = true;
			break;
		}
	}
	if (id != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_clients, id, argv);
	return -1;
}

/* The .p12's password: from its source, or asked twice on a terminal. */
static vz_rv read_password(const char *src, vz_secret *out, vz_err *err)
{
	vz_secret again = {0};
	vz_rv r = vz_secret_read(src, _("password for the new .p12"), out, err);

	if (r == VZ_OK && (!src || strcmp(src, "prompt") == 0)) {
		r = vz_secret_read(src, _("the same password again"), &again, err);
		if (r == VZ_OK &&
		    (again.len != out->len || memcmp(again.buf, out->buf, out->len))) {
			vz_err_set(err, "the two passwords differ");
			r = VZ_USAGE;
		}
		vz_secret_wipe(&again);
	}
	if (r == VZ_OK && out->len < 8) {
		vz_err_set(err, "the .p12's password is shorter than 8 characters");
		vz_err_hint(err, "the .p12 opens the gateway: give a longer password");
		r = VZ_USAGE;
	}
	if (r != VZ_OK)
		vz_secret_wipe(out);
	return r;
}

static json_t *client_json(const vz_client *c)
{
	return json_pack("{s:s, s:s, s:s, s:i, s:s}", "name", c->name, "serial", c->serial,
			 "not_after", c->not_after, "days_left", (json_int_t)c->days_left, "state",
			 c->revoked	    ? "revoked"
			 : c->days_left < 0 ? "expired"
					    : "valid");
}

static const char *state_text(const vz_client *c)
{
	return c->revoked ? _("revoked") : c->days_left < 0 ? _("expired") : _("valid");
}

static int run_list(const vz_global *g, const struct opts *o)
{
	vz_client *list = NULL, ca;
	size_t n = 0;
	vz_err err = {0};
	int rc = VZ_EXIT_OK;

	if (vz_clients_list(o->dir, &list, &n, &ca, &err) != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_FAIL;
	}
	if (g->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, client_json(&list[i]));
		rc = vz_out_json(stdout, json_pack("{s:o, s:o}", "ca", client_json(&ca), "clients",
						   arr)) == 0
			     ? VZ_EXIT_OK
			     : VZ_EXIT_FAIL;
	} else {
		printf(_("client CA: %s, valid until %s\n"), ca.name, ca.not_after);
		if (!n)
			printf(_("no client certificates issued yet\n"));
		for (size_t i = 0; i < n; i++)
			printf("%-32s %-34s %s  %s\n", list[i].name, list[i].serial,
			       list[i].not_after, state_text(&list[i]));
	}
	free(list);
	if (vz_out_flush(stdout, &err) != VZ_OK) {
		vz_report(&err);
		rc = VZ_EXIT_FAIL;
	}
	return rc;
}

static int run_issue(const vz_global *g, const struct opts *o, const char *name)
{
	vz_secret pass = {0};
	vz_client info;
	vz_err err = {0};
	vz_rv r;

	if (!o->out)
		return vz_usage("clients", "say where the .p12 goes: --out FILE.p12");
	if (o->pass_src && vz_secret_check_source(o->pass_src, &err) != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_USAGE;
	}
	r = read_password(o->pass_src, &pass, &err);
	if (r == VZ_OK)
		r = vz_clients_issue(g, o->dir, name, o->days, o->out, &pass, o->legacy, &info,
				     &err);
	vz_secret_wipe(&pass);
	if (r != VZ_OK) {
		vz_report(&err);
		return r == VZ_USAGE ? VZ_EXIT_USAGE : VZ_EXIT_FAIL;
	}
	if (g->json)
		return vz_out_json(stdout, client_json(&info)) == 0 ? VZ_EXIT_OK : VZ_EXIT_FAIL;
	printf(_("issued '%s': serial %s, valid until %s, in %s\n"), info.name, info.serial,
	       info.not_after, o->out);
	vz_note(g,
		_("give the program this .p12 and its password, and %s/ca.crt to trust the "
		  "gateway's HTTPS"),
		o->dir);
	return VZ_EXIT_OK;
}

static int cmd_clients(vz_global *g, int argc, char **argv)
{
	struct opts o = {.dir = VZ_CLIENTS_DIR, .days = 730};
	const unsigned takes_init = BIT(O_DIR) | BIT(O_NAME) | BIT(O_OWNER);
	const unsigned takes_issue =
		BIT(O_DIR) | BIT(O_OUT) | BIT(O_PASS) | BIT(O_DAYS) | BIT(O_LEGACY);
	const char *sub, *arg;
	vz_err err = {0};
	size_t n = 0;
	int rc = parse_opts(g, argc, argv, &o);

	if (rc >= 0)
		return rc;
	sub = optind < argc ? argv[optind] : NULL;
	arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (!sub)
		return vz_usage("clients", "say what to do: init, issue NAME, list or revoke NAME");
	if (optind + (arg ? 2 : 1) < argc)
		return vz_usage("clients", "unexpected argument '%s'", argv[optind + 2]);
	if (strcmp(sub, "init") == 0 || strcmp(sub, "list") == 0) {
		if (arg)
			return vz_usage("clients", "unexpected argument '%s'", arg);
		if (o.given & ~(strcmp(sub, "init") == 0 ? takes_init : BIT(O_DIR)))
			return vz_usage("clients", "an option that '%s' does not take", sub);
		if (strcmp(sub, "list") == 0)
			return run_list(g, &o);
		if (vz_clients_init(g, o.dir, o.names, o.n_names, o.owner, &err) != VZ_OK) {
			vz_report(&err);
			return VZ_EXIT_FAIL;
		}
		printf(_("client CA made on the token (label %s); its files are in %s\n"),
		       VZ_CLIENTS_LABEL, o.dir);
		vz_note(g,
			_("start the gateway with --clients %s; install %s/ca.crt as trusted on "
			  "the workstations; issue a certificate per program with 'vzp11 "
			  "clients issue NAME'"),
			o.dir, o.dir);
		return VZ_EXIT_OK;
	}
	if (strcmp(sub, "issue") != 0 && strcmp(sub, "revoke") != 0)
		return vz_usage("clients", "unknown action '%s': init, issue, list or revoke", sub);
	if (!arg)
		return vz_usage("clients", "%s needs a client's name", sub);
	if (o.given & ~(strcmp(sub, "issue") == 0 ? takes_issue : BIT(O_DIR)))
		return vz_usage("clients", "an option that '%s' does not take", sub);
	if (strcmp(sub, "issue") == 0)
		return run_issue(g, &o, arg);
	switch (vz_clients_revoke(g, o.dir, arg, &n, &err)) {
	case VZ_OK:
		printf(_("revoked %zu certificate(s) of '%s'\n"), n, arg);
		vz_note(g, _("the gateway refuses them after its next reload: systemctl reload "
			     "vzp11-gateway (or kill -HUP its PID)"));
		return VZ_EXIT_OK;
	default:
		vz_report(&err);
		return VZ_EXIT_FAIL;
	}
}
