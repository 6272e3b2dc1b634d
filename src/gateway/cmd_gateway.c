/* cmd_gateway.c - `vzp11 gateway`: a local forward proxy that lets practice
 * software reach VECOZO over plain HTTP while the TLS client key stays on
 * the token. Options, listen sockets, signals and the log live here; the
 * proxy itself in proxy.c and upstream.c. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "gateway/gateway.h"
#include "proxy.h"

/* The token refused the PIN at start: not restarted by the unit. */
#define GW_EXIT_PIN_REFUSED 3

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct opts {
	const char *listen[VZ_GW_MAX_LISTEN];
	size_t n_listen;
	const char *labels[32];
	size_t n_labels;
	const char *env, *upstream, *cacert, *client_ca, *tls_cert, *tls_key, *crl, *clients;
	const char *users[32], *groups[32];
	size_t n_users, n_groups;
	char dir_files[4][1024]; /* --clients DIR's files */
	bool insecure_loopback;
	long pool, max_clients, timeout_s, client_timeout_s, drain_s;
	long long max_request, max_response;
	bool syslog;
};

enum {
	O_LISTEN = OPT_CMD,
	O_ENV,
	O_UPSTREAM,
	O_CACERT,
	O_LABEL,
	O_POOL,
	O_MAX_CLIENTS,
	O_CLIENT_CA,
	O_TLS_CERT,
	O_TLS_KEY,
	O_MAX_REQUEST,
	O_MAX_RESPONSE,
	O_TIMEOUT,
	O_CLIENT_TIMEOUT,
	O_DRAIN,
	O_SYSLOG,
	O_CLIENTS,
	O_CRL,
	O_ALLOW_USER,
	O_ALLOW_GROUP,
	O_INSECURE_LOOPBACK,
};

static const vz_opt gateway_opts[] = {
	{"listen", O_LISTEN, "ADDR",
	 N_("unix:/PATH (created 0660), or HOST:PORT (HTTPS with client\n"
	    "certificates: --clients); repeatable. PORT 0 picks a free port\n"
	    "(the log's first lines name it)"),
	 VZ_KEY_LIST, "gateway", NULL, 0, 0, NULL, NULL},
	{"env", O_ENV, "tst|acc|prd", N_("VECOZO environment (or VZP11_ENV)"), VZ_AS_ENV},
	{"upstream", O_UPSTREAM, "URL",
	 N_("https:// base URL instead (an optional path is put before\n"
	    "the client's path)"),
	 VZ_KEY_HTTPS, "gateway", NULL, 0, 0, NULL, NULL},
	{"cacert", O_CACERT, "FILE",
	 N_("trust only these CAs for the upstream (default: the system's)"), VZ_AS_CACERT},
	{"label", O_LABEL, "LABEL",
	 N_("certificate on the token (default: %s); repeatable:\n"
	    "clients pick one with the header 'Vzp11-Label: LABEL', the\n"
	    "first without it; a label not served gets 403"),
	 VZ_AS_LABEL},
	{"pool", O_POOL, "N", N_("TLS connections to VECOZO per label, kept alive (default 4)"),
	 VZ_KEY_NUM, "gateway", NULL, 1, 256, "4", N_("--pool wants a number from %ld to %ld")},
	{"max-clients", O_MAX_CLIENTS, "N",
	 N_("client connections per listen address (default 256)"), VZ_KEY_NUM, "gateway", NULL, 1,
	 100000, "256", N_("--max-clients wants a number from %ld to %ld")},
	VZ_OPT_HEADING(
		N_("Who may use the token's key through the gateway (the log's first lines say "
		   "it):")),
	{"clients", O_CLIENTS, "DIR",
	 N_("HTTPS on TCP addresses for clients with a certificate from\n"
	    "the client CA that 'vzp11 clients init' made in DIR (its\n"
	    "ca.crt, ca.crl, server.crt and server.key)"),
	 VZ_KEY_TEXT, "gateway", NULL, 0, 0, NULL, NULL},
	/* the four below read as one sentence down the column */
	VZ_OPT("client-ca", O_CLIENT_CA, "FILE",
	       N_("the same with files of your own: the client CA,")),
	VZ_OPT("tls-cert", O_TLS_CERT, "FILE", N_("the gateway's certificate")),
	VZ_OPT("tls-key", O_TLS_KEY, "FILE", N_("and key (key file mode 0600),")),
	VZ_OPT("crl", O_CRL, "FILE", N_("and optionally a revocation list (re-read on SIGHUP)")),
	{"allow-user", O_ALLOW_USER, "USER",
	 N_("unix: sockets serve only these users (by the peer's credentials)"), VZ_KEY_LIST,
	 "gateway", NULL, 0, 0, NULL, NULL},
	{"allow-group", O_ALLOW_GROUP, "GROUP", N_("and members of these groups; repeatable"),
	 VZ_KEY_LIST, "gateway", NULL, 0, 0, NULL, NULL},
	VZ_OPT("insecure-loopback", O_INSECURE_LOOPBACK, NULL,
	       N_("serve plain HTTP on loopback TCP addresses without client\n"
		  "authentication: every local user could use the key; only\n"
		  "for a single-user machine")),
	VZ_OPT("max-request", O_MAX_REQUEST, "BYTES",
	       N_("request body limit (default 64 MiB; larger gets 413)")),
	VZ_OPT("max-response", O_MAX_RESPONSE, "BYTES",
	       N_("answer body limit (default 1 GiB; larger gets 502 or a cut)")),
	{"timeout", O_TIMEOUT, "SECONDS", N_("limit per upstream request (default 300)"),
	 VZ_KEY_NONE, NULL, NULL, 1, 86400, NULL, N_("--timeout wants a number from %ld to %ld")},
	{"client-timeout", O_CLIENT_TIMEOUT, "S",
	 N_("idle client connections are closed after S seconds (30)"), VZ_KEY_NONE, NULL, NULL, 1,
	 3600, NULL, N_("--client-timeout wants a number from %ld to %ld")},
	{"drain", O_DRAIN, "SECONDS", N_("on SIGTERM, wait this long for requests in flight (30)"),
	 VZ_KEY_NONE, NULL, NULL, 0, 3600, NULL, N_("--drain wants a number from %ld to %ld")},
	VZ_OPT("syslog", O_SYSLOG, NULL, N_("log to syslog (daemon) instead of stderr")),
	{0},
};

static int cmd_gateway(vz_global *g, int argc, char **argv);

const vz_command vz_cmd_gateway = {
	.name = "gateway",
	.run = cmd_gateway,
	.synopsis =
		"gateway --listen ADDR... (--env tst|acc|prd | --upstream URL) [--label LABEL...]\n"
		"      [--pool N] [--clients DIR] [--allow-user USER...] [--insecure-loopback]",
	.usage = N_(
		"gateway --listen ADDR [--listen ADDR ...]\n"
		"                      (--env tst|acc|prd | --upstream URL) [--cacert FILE]\n"
		"                      [--label LABEL ...] [--pool N] [--max-clients N]\n"
		"                      [--clients DIR | --client-ca FILE --tls-cert FILE --tls-key FILE\n"
		"                       [--crl FILE]] [--allow-user USER ...] [--allow-group GROUP ...]\n"
		"                      [--insecure-loopback]"),
	.about = N_(
		"A local forward proxy to VECOZO: practice software sends its COV (SOAP) and\n"
		"Berichtenservice (REST) requests over HTTP to the gateway, with the path VECOZO\n"
		"would see (POST http://127.0.0.1:8801/cov/vz801802/v1/soap11); the gateway sends\n"
		"them over mutual TLS with the token's key and streams the answer back. Only\n"
		"/cov/... and /berichtenservice/... on the configured host are forwarded; anything\n"
		"else (CONNECT, another host, '..', encoded slashes) gets 403 with a one-line reason.\n"),
	.opts = gateway_opts,
	.notes = N_(
		"Paths: GET /_vzp11/health: 200 when each label's key signs (a real signature, at\n"
		"most one a second) and its last handshake with VECOZO worked or a fresh one does,\n"
		"else 503 with the reason; GET /_vzp11/metrics (Prometheus). When the token's key\n"
		"stops signing (the token went away), requests get 503 with Retry-After while the\n"
		"gateway re-opens the token, ever more rarely, never after a PIN failure.\n"
		"Requests from web pages (an Origin header, or Sec-Fetch-Site other than none or\n"
		"same-origin) and a Host other than the listen address's names get 403.\n"
		"Signals: SIGHUP reloads certificates and keys from the token (the PIN is read\n"
		"again from its source: use file: or env:) and the revocation list; SIGTERM/SIGINT\n"
		"drain and exit 0.\n"
		"One log line per request: time, client (certificate name, Unix user or address),\n"
		"method, path, status, bytes, duration.\n"
		"Exit: 0 stopped by a signal, 1 could not start, 2 usage error, 3 the token\n"
		"refused the PIN at start (a service manager must not restart the gateway then:\n"
		"that would send the PIN again; scripts/systemd/vzp11-gateway.service does not).\n"),
	.in_order = true,
};

static bool parse_bytes(const char *s, long long *out)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return false;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M')
		v <<= 20, end++;
	else if (*end == 'G')
		v <<= 30, end++;
	if (*end)
		return false;
	*out = v;
	return true;
}

static int clients_files(struct opts *o);

/* Adds a repeatable option's value; false when its list is full. */
static bool add_value(const char **list, size_t *n, size_t max, const char *arg)
{
	if (*n == max)
		return false;
	list[(*n)++] = arg;
	return true;
}

/* --listen, --label, --allow-user, --allow-group: whether their list has
 * room for one more. -1, or the usage exit code. */
static int take_repeated(struct opts *o, int id, const char *arg)
{
	switch (id) {
	case O_LISTEN:
		if (!add_value(o->listen, &o->n_listen, VZ_GW_MAX_LISTEN, arg))
			return vz_usage("gateway", "at most %d --listen", VZ_GW_MAX_LISTEN);
		return -1;
	case O_LABEL:
		if (!add_value(o->labels, &o->n_labels, COUNT(o->labels), arg))
			return vz_usage("gateway", "too many --label");
		return -1;
	case O_ALLOW_USER:
		if (!add_value(o->users, &o->n_users, COUNT(o->users), arg))
			return vz_usage("gateway", "too many --allow-user");
		return -1;
	default: /* O_ALLOW_GROUP */
		if (!add_value(o->groups, &o->n_groups, COUNT(o->groups), arg))
			return vz_usage("gateway", "too many --allow-group");
		return -1;
	}
}

/* A number (its range in gateway_opts) or a size in bytes: whether arg is
 * one. -1, or the usage exit code. */
static int take_amount(struct opts *o, int id, const char *arg)
{
	long long *bytes = id == O_MAX_REQUEST ? &o->max_request : &o->max_response;
	long *num = NULL;
	char name[32];

	switch (id) {
	case O_POOL:
		num = &o->pool;
		break;
	case O_MAX_CLIENTS:
		num = &o->max_clients;
		break;
	case O_TIMEOUT:
		num = &o->timeout_s;
		break;
	case O_CLIENT_TIMEOUT:
		num = &o->client_timeout_s;
		break;
	case O_DRAIN:
		num = &o->drain_s;
		break;
	}
	if (num)
		return vz_opt_num(&vz_cmd_gateway, id, arg, num) == 0 ? -1 : VZ_EXIT_USAGE;
	if (parse_bytes(arg, bytes))
		return -1;
	snprintf(name, sizeof(name), "--%s", vz_opt_find(&vz_cmd_gateway, id)->name);
	return vz_usage("gateway", "%s wants a size in bytes (suffix K, M or G)", name);
}

/* The field an option that names a file, a place or an environment sets;
 * NULL for the other options. */
static const char **text_field(struct opts *o, int id)
{
	switch (id) {
	case O_ENV:
		return &o->env;
	case O_UPSTREAM:
		return &o->upstream;
	case O_CACERT:
		return &o->cacert;
	case O_CLIENTS:
		return &o->clients;
	case O_CLIENT_CA:
		return &o->client_ca;
	case O_TLS_CERT:
		return &o->tls_cert;
	case O_TLS_KEY:
		return &o->tls_key;
	case O_CRL:
		return &o->crl;
	default:
		return NULL;
	}
}

/* One option of the gateway's own into o. -1, or the usage exit code. */
static int take_opt(struct opts *o, int id, const char *arg)
{
	const char **text = text_field(o, id);

	if (text) {
		*text = arg;
		return -1;
	}
	switch (id) {
	case O_SYSLOG:
		o->syslog = true;
		return -1;
	case O_INSECURE_LOOPBACK:
		o->insecure_loopback = true;
		return -1;
	case O_LISTEN:
	case O_LABEL:
	case O_ALLOW_USER:
	case O_ALLOW_GROUP:
		return take_repeated(o, id, arg);
	default:
		return take_amount(o, id, arg);
	}
}

/* The options into o: -1 when the gateway may go on, else the exit code
 * (0 after --help). */
static int parse_opts(vz_global *g, int argc, char **argv, struct opts *o)
{
	const char *arg;
	int id;

	while ((id = vz_opt_next(g, &vz_cmd_gateway, argc, argv, &arg)) > 0) {
		int rc = take_opt(o, id, arg);

		if (rc >= 0)
			return rc;
	}
	if (id != VZ_OPT_END)
		return vz_opt_stop(&vz_cmd_gateway, id, argv);
	if (optind < argc)
		return vz_usage("gateway", "unexpected argument '%s'", argv[optind]);
	if (!o->n_listen)
		return vz_usage("gateway", "say where to listen: --listen 127.0.0.1:PORT");
	if (!o->n_labels)
		o->labels[o->n_labels++] = VZ_DEFAULT_LABEL;
	return clients_files(o);
}

/* --clients DIR stands for the four files 'vzp11 clients init' made. */
static int clients_files(struct opts *o)
{
	static const char *const names[] = {"ca.crt", "ca.crl", "server.crt", "server.key"};
	const char **files[] = {&o->client_ca, &o->crl, &o->tls_cert, &o->tls_key};

	if (!o->clients)
		return -1;
	if (o->client_ca || o->crl || o->tls_cert || o->tls_key)
		return vz_usage("gateway",
				"give --clients DIR or --client-ca, --tls-cert, --tls-key "
				"and --crl, not both");
	for (size_t i = 0; i < 4; i++) {
		if ((size_t)snprintf(o->dir_files[i], sizeof(o->dir_files[i]), "%s/%s", o->clients,
				     names[i]) >= sizeof(o->dir_files[i]))
			return vz_usage("gateway", "--clients: the directory's name is too long");
		*files[i] = o->dir_files[i];
	}
	return -1;
}

/* Where to send: the environment's base URL or --upstream; its host. */
static int pick_upstream(struct opts *o, vz_gw_cfg *cfg, char *base, size_t size)
{
	const char *env_var = vz_env("VZP11_ENV");
	vz_err err = {0};

	if (o->env && o->upstream)
		return vz_usage("gateway", "give --env or --upstream, not both");
	if (!o->env && !o->upstream)
		o->env = env_var;
	if (o->upstream) {
		snprintf(base, size, "%s", o->upstream);
	} else if (!o->env) {
		return vz_usage("gateway", "say which VECOZO environment to use: --env tst, acc "
					   "or prd (or VZP11_ENV), or --upstream URL");
	} else if (!vz_gw_env_base(o->env, base, size)) {
		return vz_usage("gateway", "unknown environment '%s'; use tst, acc or prd", o->env);
	}
	while (strlen(base) && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	if (vz_gw_parse_upstream(base, cfg->upstream_host, sizeof(cfg->upstream_host), &err) !=
	    VZ_OK)
		return vz_usage("gateway", "%s", err.msg);
	cfg->base = base;
	return -1;
}

/* A listening socket for a; a Unix socket is made 0660. */
static vz_rv open_listener(const vz_gw_addr *a, int *fd_out, char *name, size_t size, vz_err *err)
{
	int fd = socket(a->is_unix ? AF_UNIX : a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0) {
		vz_err_set(err, "cannot make a socket: %s", strerror(errno));
		return VZ_FAIL;
	}
	if (a->is_unix) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		struct stat st;
		mode_t old;
		int r;

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", a->path);
		/* A socket left by an earlier run is replaced; any other file is not. */
		if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(a->path);
		old = umask(0117);
		r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
		umask(old);
		if (r != 0 || chmod(a->path, 0660) != 0)
			goto fail;
		snprintf(name, size, "unix:%s", a->path);
	} else {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		unsigned port;

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (a->sa.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&a->sa, a->sa_len) != 0 ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
			goto fail;
		port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						     : ((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(name, size, ss.ss_family == AF_INET ? "%s:%u" : "[%s]:%u", a->host, port);
	}
	if (listen(fd, 128) != 0)
		goto fail;
	*fd_out = fd;
	return VZ_OK;
fail:
	vz_err_set(err, "cannot listen on %s: %s", a->is_unix ? a->path : a->host, strerror(errno));
	close(fd);
	return VZ_FAIL;
}

static void log_line(void *ctx, const char *line)
{
	const struct opts *o = ctx;

	if (o->syslog)
		syslog(LOG_INFO, "%s", line);
	else
		fprintf(stderr, "vzp11 gateway: %s\n", line);
}

/* Which libmicrohttpd frames the requests: before 1.0 it takes a bare LF
 * for CRLF in chunked bodies, and nothing can make it refuse one. */
static void log_version(const struct opts *o)
{
	const char *v = MHD_get_version();
	char line[200];

	snprintf(line, sizeof(line), "server: libmicrohttpd %s%s", v ? v : "?",
		 v && strncmp(v, "0.", 2) == 0
			 ? " (takes a bare LF for CRLF in chunked bodies; 1.0 and later refuse it)"
			 : "");
	log_line((void *)o, line);
}

/* One vz_tls per label, opened now (the PIN read from its source when the
 * token asks). */
static vz_rv open_keys(const vz_global *g, const struct opts *o, vz_tls **tls, vz_err *err)
{
	vz_rv r = VZ_OK;

	vz_tls_leave(); /* keys are loaded in the process's own library context */
	for (size_t i = 0; i < o->n_labels && r == VZ_OK; i++) {
		r = vz_tls_open(g, o->labels[i], &tls[i], err);
		if (r != VZ_OK) {
			for (size_t k = 0; k < i; k++) {
				vz_tls_close(tls[k]);
				tls[k] = NULL;
			}
		}
	}
	return r;
}

/* Runs until SIGTERM or SIGINT; SIGHUP reloads the keys and the client
 * revocation list (on the gateway's one thread: requests wait meanwhile). */
static void serve(const vz_global *g, struct opts *o, vz_gw *gw, vz_gw_access *access,
		  const sigset_t *sigs)
{
	for (;;) {
		int sig = vz_gw_run(gw, sigs);

		if (sig < 0) {
			log_line(o, "cannot watch for signals (signalfd); stopping");
			break;
		}
		if (sig == SIGHUP) {
			vz_tls *tls[32] = {0};
			vz_err err = {0};

			if (vz_gw_access_reload(access, &err) != VZ_OK) {
				char line[1400];

				snprintf(line, sizeof(line),
					 "reload of the client revocation list failed, still using "
					 "the one loaded before: %s",
					 err.msg);
				log_line(o, line);
				err = (vz_err){0};
			}
			if (open_keys(g, o, tls, &err) == VZ_OK &&
			    vz_gw_reload(gw, tls, &err) == VZ_OK) {
				log_line(o, "reloaded the certificates and keys from the token");
			} else {
				char line[1400];

				snprintf(line, sizeof(line),
					 "reload failed, still using the keys loaded before: %s %s",
					 err.msg, err.hint);
				log_line(o, line);
			}
		} else if (sig == SIGTERM || sig == SIGINT) {
			break;
		}
	}
}

/* Stops accepting, then waits (at most o->drain_s) for requests in flight. */
static void drain(struct opts *o, vz_gw *gw)
{
	long long until = vz_gw_now_us() + (long long)o->drain_s * 1000000;
	char line[128];

	log_line(o, "stopping: no new connections; finishing the requests in flight");
	vz_gw_quiesce(gw);
	snprintf(line, sizeof(line), "stopped (%ld requests cut off)", vz_gw_drain(gw, until));
	log_line(o, line);
}

/* The access policy from the options: who may use each listen address. */
static int open_access(const struct opts *o, vz_gw_access **out)
{
	vz_gw_access_cfg ac = {.insecure_loopback = o->insecure_loopback,
			       .client_ca = o->client_ca,
			       .crl = o->crl,
			       .tls_cert = o->tls_cert,
			       .tls_key = o->tls_key,
			       .allow_users = o->users,
			       .n_users = o->n_users,
			       .allow_groups = o->groups,
			       .n_groups = o->n_groups};
	vz_err err = {0};
	vz_rv r = vz_gw_access_new(&ac, out, &err);

	if (r == VZ_USAGE)
		return vz_usage("gateway", "%s", err.msg);
	if (r != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_FAIL;
	}
	return -1;
}

/* Checks every --listen against the access policy before anything starts. */
static int plan_listeners(const struct opts *o, const vz_gw_access *access, vz_gw_addr *addrs,
			  vz_gw_listen_policy *pols, char (*lines)[600])
{
	bool any_unix = false;

	for (size_t i = 0; i < o->n_listen; i++) {
		vz_err err = {0};

		if (vz_gw_parse_listen(o->listen[i], &addrs[i], &err) != VZ_OK)
			return vz_usage("gateway", "%s", err.msg);
		if (vz_gw_access_listen(access, &addrs[i], &pols[i], lines[i], sizeof(lines[i]),
					&err) != VZ_OK) {
			vz_report(&err);
			return VZ_EXIT_USAGE;
		}
		any_unix = any_unix || addrs[i].is_unix;
	}
	if ((o->n_users || o->n_groups) && !any_unix)
		return vz_usage("gateway", "--allow-user and --allow-group apply to unix: sockets; "
					   "give a --listen unix:/PATH");
	return -1;
}

/* What the checks before the start decided: where requests go, and who may
 * use each listen address. */
struct plan {
	vz_gw_cfg cfg;
	char base[1024]; /* cfg.base */
	vz_gw_access *access;
	vz_gw_addr addrs[VZ_GW_MAX_LISTEN];
	vz_gw_listen_policy pols[VZ_GW_MAX_LISTEN];
	char lines[VZ_GW_MAX_LISTEN][600]; /* each address's access line for the log */
};

/* Whether the gateway may start: the upstream, the access policy, every
 * --listen and the PIN's source are checked before anything opens. -1, or
 * the exit code (p->access freed). */
static int plan_start(const vz_global *g, struct opts *o, struct plan *p)
{
	vz_err err = {0};
	int rc = pick_upstream(o, &p->cfg, p->base, sizeof(p->base));

	if (rc < 0)
		rc = open_access(o, &p->access);
	if (rc < 0)
		rc = plan_listeners(o, p->access, p->addrs, p->pols, p->lines);
	if (rc < 0 && g->pin_source && vz_secret_check_source(g->pin_source, &err) != VZ_OK) {
		vz_report(&err);
		rc = VZ_EXIT_USAGE;
	}
	if (rc >= 0) {
		vz_gw_access_free(p->access);
		p->access = NULL;
	}
	return rc;
}

/* The proxy's settings from the options (cfg's upstream is set already). */
static void fill_cfg(struct opts *o, struct plan *p)
{
	vz_gw_cfg *cfg = &p->cfg;

	cfg->cacert = o->cacert;
	cfg->pool = o->pool;
	cfg->max_clients = o->max_clients;
	cfg->timeout_ms = o->timeout_s * 1000;
	cfg->connect_timeout_ms = 10000 < cfg->timeout_ms ? 10000 : cfg->timeout_ms;
	cfg->client_timeout_s = o->client_timeout_s;
	cfg->max_request = o->max_request;
	cfg->max_response = o->max_response;
	cfg->labels = o->labels;
	cfg->n_labels = o->n_labels;
	cfg->access = p->access;
	cfg->log = log_line;
	cfg->log_ctx = o;
}

/* Where the log goes, and which thread gets the signals: the main one
 * alone, so they are blocked before any thread starts. */
static void take_log_and_signals(const struct opts *o, sigset_t *sigs)
{
	if (o->syslog)
		openlog("vzp11-gateway", LOG_PID, LOG_DAEMON);
	else /* written once per turn of the loop (gateway.c), not per line */
		setvbuf(stderr, NULL, _IOFBF, 64 * 1024);
	sigemptyset(sigs);
	sigaddset(sigs, SIGHUP);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The proxy with a key per label (*gw, also on failure, for the caller to
 * free). */
static vz_rv start_proxy(const vz_global *g, struct opts *o, const struct plan *p, vz_gw **gw,
			 vz_err *err)
{
	vz_tls *tls[32] = {0};

	if (open_keys(g, o, tls, err) != VZ_OK)
		return VZ_FAIL;
	/* A key that signs otherwise than its token promised (tls.h): said once. */
	for (size_t i = 0; i < o->n_labels; i++)
		if (vz_tls_fell_back(tls[i]))
			log_line(o, vz_tls_note(tls[i]));
	if (vz_gw_new(&p->cfg, tls, gw, err) != VZ_OK)
		return VZ_FAIL;
	log_version(o);
	return VZ_OK;
}

/* Opens every --listen address and serves on it; the log says where and
 * for whom. */
static vz_rv open_listeners(struct opts *o, const struct plan *p, vz_gw *gw, vz_err *err)
{
	for (size_t i = 0; i < o->n_listen; i++) {
		char name[160], line[800];
		int fd;

		if (open_listener(&p->addrs[i], &fd, name, sizeof(name), err) != VZ_OK ||
		    vz_gw_serve(gw, fd, &p->pols[i], err) != VZ_OK)
			return VZ_FAIL;
		snprintf(line, sizeof(line), "listening on %s (%s) -> %s", name,
			 p->pols[i].auth == VZ_GW_AUTH_CERT ? "HTTPS, client certificates required"
							    : "plain HTTP",
			 p->cfg.base);
		log_line(o, line);
		snprintf(line, sizeof(line), "access: %.700s", p->lines[i]);
		log_line(o, line);
	}
	return VZ_OK;
}

static int cmd_gateway(vz_global *g, int argc, char **argv)
{
	struct opts o = {.pool = 4,
			 .max_clients = 256,
			 .timeout_s = 300,
			 .client_timeout_s = 30,
			 .drain_s = 30,
			 .max_request = 64LL << 20,
			 .max_response = 1LL << 30};
	struct plan p = {0};
	vz_gw *gw = NULL;
	vz_err err = {0};
	sigset_t sigs;
	int rc = parse_opts(g, argc, argv, &o);

	if (rc < 0)
		rc = plan_start(g, &o, &p);
	if (rc >= 0)
		return rc;
	fill_cfg(&o, &p);
	take_log_and_signals(&o, &sigs);
	if (start_proxy(g, &o, &p, &gw, &err) != VZ_OK ||
	    open_listeners(&o, &p, gw, &err) != VZ_OK) {
		vz_report(&err);
		vz_gw_free(gw);
		vz_gw_access_free(p.access);
		return err.pin_refused ? GW_EXIT_PIN_REFUSED : VZ_EXIT_FAIL;
	}
	serve(g, &o, gw, p.access, &sigs);
	drain(&o, gw);
	vz_gw_free(gw);
	vz_gw_access_free(p.access);
	for (size_t i = 0; i < o.n_listen; i++)
		if (p.addrs[i].is_unix)
			unlink(p.addrs[i].path);
	return VZ_EXIT_OK;
}
