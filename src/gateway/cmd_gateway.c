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

static void gateway_usage(FILE *f)
{
	fprintf(f,
		_("Usage: vzp11 [GLOBAL OPTIONS] gateway --listen ADDR [--listen ADDR ...]\n"
		  "                      (--env tst|acc|prd | --upstream URL) [--cacert FILE]\n"
		  "                      [--label LABEL ...] [--pool N] [--max-clients N]\n"
		  "                      [--clients DIR | --client-ca FILE --tls-cert FILE --tls-key FILE\n"
		  "                       [--crl FILE]] [--allow-user USER ...] [--allow-group GROUP ...]\n"
		  "                      [--insecure-loopback]\n"
		  "A local forward proxy to VECOZO: practice software sends its COV (SOAP) and\n"
		  "Berichtenservice (REST) requests over HTTP to the gateway, with the path VECOZO\n"
		  "would see (POST http://127.0.0.1:8801/cov/vz801802/v1/soap11); the gateway sends\n"
		  "them over mutual TLS with the token's key and streams the answer back. Only\n"
		  "/cov/... and /berichtenservice/... on the configured host are forwarded; anything\n"
		  "else (CONNECT, another host, '..', encoded slashes) gets 403 with a one-line reason.\n"
		  "  --listen ADDR        unix:/PATH (created 0660), or HOST:PORT (HTTPS with client\n"
		  "                       certificates: --clients); repeatable. PORT 0 picks a free port\n"
		  "                       (the log's first lines name it)\n"
		  "  --env tst|acc|prd    VECOZO environment (or VZP11_ENV)\n"
		  "  --upstream URL       https:// base URL instead (an optional path is put before\n"
		  "                       the client's path)\n"
		  "  --cacert FILE        trust only these CAs for the upstream (default: the system's)\n"
		  "  --label LABEL        certificate on the token (default: %s); repeatable:\n"
		  "                       clients pick one with the header 'Vzp11-Label: LABEL', the\n"
		  "                       first without it; a label not served gets 403\n"
		  "  --pool N             TLS connections to VECOZO per label, kept alive (default 4)\n"
		  "  --max-clients N      client connections per listen address (default 256)\n"
		  "Who may use the token's key through the gateway (the log's first lines say it):\n"
		  "  --clients DIR        HTTPS on TCP addresses for clients with a certificate from\n"
		  "                       the client CA that 'vzp11 clients init' made in DIR (its\n"
		  "                       ca.crt, ca.crl, server.crt and server.key)\n"
		  "  --client-ca FILE     the same with files of your own: the client CA, the gateway's\n"
		  "  --tls-cert FILE      certificate and key (key file mode 0600), and optionally a\n"
		  "  --tls-key FILE       revocation list (re-read on SIGHUP)\n"
		  "  --crl FILE\n"
		  "  --allow-user USER    unix: sockets serve only these users (by the peer's\n"
		  "  --allow-group GROUP  credentials) and members of these groups; repeatable\n"
		  "  --insecure-loopback  serve plain HTTP on loopback TCP addresses without client\n"
		  "                       authentication: every local user could use the key; only\n"
		  "                       for a single-user machine\n"
		  "  --max-request BYTES  request body limit (default 64 MiB; larger gets 413)\n"
		  "  --max-response BYTES answer body limit (default 1 GiB; larger gets 502 or a cut)\n"
		  "  --timeout SECONDS    limit per upstream request (default 300)\n"
		  "  --client-timeout S   idle client connections are closed after S seconds (30)\n"
		  "  --drain SECONDS      on SIGTERM, wait this long for requests in flight (30)\n"
		  "  --syslog             log to syslog (daemon) instead of stderr\n"
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
		VZ_DEFAULT_LABEL);
}

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

static int parse_opts(vz_global *g, int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		VZ_GLOBAL_LONGOPTS,
		{"listen", required_argument, NULL, O_LISTEN},
		{"env", required_argument, NULL, O_ENV},
		{"upstream", required_argument, NULL, O_UPSTREAM},
		{"cacert", required_argument, NULL, O_CACERT},
		{"label", required_argument, NULL, O_LABEL},
		{"pool", required_argument, NULL, O_POOL},
		{"max-clients", required_argument, NULL, O_MAX_CLIENTS},
		{"client-ca", required_argument, NULL, O_CLIENT_CA},
		{"tls-cert", required_argument, NULL, O_TLS_CERT},
		{"tls-key", required_argument, NULL, O_TLS_KEY},
		{"max-request", required_argument, NULL, O_MAX_REQUEST},
		{"max-response", required_argument, NULL, O_MAX_RESPONSE},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"client-timeout", required_argument, NULL, O_CLIENT_TIMEOUT},
		{"drain", required_argument, NULL, O_DRAIN},
		{"syslog", no_argument, NULL, O_SYSLOG},
		{"clients", required_argument, NULL, O_CLIENTS},
		{"crl", required_argument, NULL, O_CRL},
		{"allow-user", required_argument, NULL, O_ALLOW_USER},
		{"allow-group", required_argument, NULL, O_ALLOW_GROUP},
		{"insecure-loopback", no_argument, NULL, O_INSECURE_LOOPBACK},
		{NULL, 0, NULL, 0},
	};
	int c;

	for (c = vz_next_opt(g, argc, argv, "+vq", longopts); c != -1;
	     c = vz_next_opt(g, argc, argv, "+vq", longopts)) {
		long *num = NULL, lo = 1, hi = 0;
		long long *bytes = NULL;

		switch (c) {
		case OPT_HELP:
			gateway_usage(stdout);
			return VZ_EXIT_OK;
		case O_LISTEN:
			if (o->n_listen == VZ_GW_MAX_LISTEN)
				return vz_usage("gateway", "at most %d --listen", VZ_GW_MAX_LISTEN);
			o->listen[o->n_listen++] = optarg;
			break;
		case O_LABEL:
			if (o->n_labels == sizeof(o->labels) / sizeof(o->labels[0]))
				return vz_usage("gateway", "too many --label");
			o->labels[o->n_labels++] = optarg;
			break;
		case O_ENV:
			o->env = optarg;
			break;
		case O_UPSTREAM:
			o->upstream = optarg;
			break;
		case O_CACERT:
			o->cacert = optarg;
			break;
		case O_CLIENT_CA:
			o->client_ca = optarg;
			break;
		case O_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case O_TLS_KEY:
			o->tls_key = optarg;
			break;
		case O_SYSLOG:
			o->syslog = true;
			break;
		case O_CLIENTS:
			o->clients = optarg;
			break;
		case O_CRL:
			o->crl = optarg;
			break;
		case O_ALLOW_USER:
			if (o->n_users == sizeof(o->users) / sizeof(o->users[0]))
				return vz_usage("gateway", "too many --allow-user");
			o->users[o->n_users++] = optarg;
			break;
		case O_ALLOW_GROUP:
			if (o->n_groups == sizeof(o->groups) / sizeof(o->groups[0]))
				return vz_usage("gateway", "too many --allow-group");
			o->groups[o->n_groups++] = optarg;
			break;
		case O_INSECURE_LOOPBACK:
			o->insecure_loopback = true;
			break;
		case O_POOL:
			num = &o->pool, hi = 256;
			break;
		case O_MAX_CLIENTS:
			num = &o->max_clients, hi = 100000;
			break;
		case O_TIMEOUT:
			num = &o->timeout_s, hi = 86400;
			break;
		case O_CLIENT_TIMEOUT:
			num = &o->client_timeout_s, hi = 3600;
			break;
		case O_DRAIN:
			num = &o->drain_s, lo = 0, hi = 3600;
			break;
		case O_MAX_REQUEST:
			bytes = &o->max_request;
			break;
		case O_MAX_RESPONSE:
			bytes = &o->max_response;
			break;
		default:
			return vz_usage("gateway", "unknown or incomplete option '%s'",
					argv[optind - 1]);
		}
		if (num && !vz_parse_long(optarg, lo, hi, num))
			return vz_usage("gateway", "%s wants a number from %ld to %ld",
					argv[optind - 2], lo, hi);
		if (bytes && !parse_bytes(optarg, bytes))
			return vz_usage("gateway", "%s wants a size in bytes (suffix K, M or G)",
					argv[optind - 2]);
	}
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

static int cmd_gateway(vz_global *g, int argc, char **argv)
{
	struct opts o = {.pool = 4,
			 .max_clients = 256,
			 .timeout_s = 300,
			 .client_timeout_s = 30,
			 .drain_s = 30,
			 .max_request = 64LL << 20,
			 .max_response = 1LL << 30};
	vz_gw_cfg cfg = {0};
	vz_gw_addr addrs[VZ_GW_MAX_LISTEN];
	vz_gw_listen_policy pols[VZ_GW_MAX_LISTEN];
	char lines[VZ_GW_MAX_LISTEN][600];
	vz_tls *tls[32] = {0};
	char base[1024];
	vz_gw_access *access = NULL;
	vz_gw *gw = NULL;
	vz_err err = {0};
	sigset_t sigs;
	int rc = parse_opts(g, argc, argv, &o);

	if (rc >= 0)
		return rc;
	rc = pick_upstream(&o, &cfg, base, sizeof(base));
	if (rc < 0)
		rc = open_access(&o, &access);
	if (rc < 0)
		rc = plan_listeners(&o, access, addrs, pols, lines);
	if (rc >= 0) {
		vz_gw_access_free(access);
		return rc;
	}
	if (g->pin_source && vz_secret_check_source(g->pin_source, &err) != VZ_OK) {
		vz_report(&err);
		vz_gw_access_free(access);
		return VZ_EXIT_USAGE;
	}
	cfg.cacert = o.cacert;
	cfg.pool = o.pool;
	cfg.max_clients = o.max_clients;
	cfg.timeout_ms = o.timeout_s * 1000;
	cfg.connect_timeout_ms = 10000 < cfg.timeout_ms ? 10000 : cfg.timeout_ms;
	cfg.client_timeout_s = o.client_timeout_s;
	cfg.max_request = o.max_request;
	cfg.max_response = o.max_response;
	cfg.labels = o.labels;
	cfg.n_labels = o.n_labels;
	cfg.access = access;
	cfg.log = log_line;
	cfg.log_ctx = &o;
	if (o.syslog)
		openlog("vzp11-gateway", LOG_PID, LOG_DAEMON);
	else /* written once per turn of the loop (gateway.c), not per line */
		setvbuf(stderr, NULL, _IOFBF, 64 * 1024);
	/* Signals go to the main thread alone: block them before any thread. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (open_keys(g, &o, tls, &err) != VZ_OK)
		goto fail;
	/* A key that signs otherwise than its token promised (tls.h): said once. */
	for (size_t i = 0; i < o.n_labels; i++)
		if (vz_tls_fell_back(tls[i]))
			log_line(&o, vz_tls_note(tls[i]));
	if (vz_gw_new(&cfg, tls, &gw, &err) != VZ_OK)
		goto fail;
	log_version(&o);
	for (size_t i = 0; i < o.n_listen; i++) {
		char name[160], line[800];
		int fd;

		if (open_listener(&addrs[i], &fd, name, sizeof(name), &err) != VZ_OK ||
		    vz_gw_serve(gw, fd, &pols[i], &err) != VZ_OK)
			goto fail;
		snprintf(line, sizeof(line), "listening on %s (%s) -> %s", name,
			 pols[i].auth == VZ_GW_AUTH_CERT ? "HTTPS, client certificates required"
							 : "plain HTTP",
			 cfg.base);
		log_line(&o, line);
		snprintf(line, sizeof(line), "access: %.700s", lines[i]);
		log_line(&o, line);
	}
	serve(g, &o, gw, access, &sigs);
	drain(&o, gw);
	vz_gw_free(gw);
	vz_gw_access_free(access);
	for (size_t i = 0; i < o.n_listen; i++)
		if (addrs[i].is_unix)
			unlink(addrs[i].path);
	return VZ_EXIT_OK;
fail:
	vz_report(&err);
	vz_gw_free(gw);
	vz_gw_access_free(access);
	return err.pin_refused ? GW_EXIT_PIN_REFUSED : VZ_EXIT_FAIL;
}

const vz_command vz_cmd_gateway = {
	.name = "gateway",
	.run = cmd_gateway,
	.synopsis = "gateway --listen ADDR... (--env tst|acc|prd | --upstream URL) [--label LABEL...]\n"
	"      [--pool N] [--clients DIR] [--allow-user USER...] [--insecure-loopback]",
};
