/* cmd_gateway.c - `vzp11 gateway`: a local forward proxy that lets practice
 * software reach VECOZO over plain HTTP while the TLS client key stays on
 * the token. Options, listen sockets, signals and the log live here; the
 * proxy itself in proxy.c and upstream.c. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
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

#include "cli.h"
#include "proxy.h"
#include "secret.h"
#include "i18n.h"

/* The token refused the PIN at start: not restarted by the unit. */
#define GW_EXIT_PIN_REFUSED 3

static void gateway_usage(FILE *f)
{
	fprintf(f,
		_("Usage: vzp11 [GLOBAL OPTIONS] gateway --listen ADDR [--listen ADDR ...]\n"
		  "                      (--env tst|acc|prd | --upstream URL) [--cacert FILE]\n"
		  "                      [--label LABEL ...] [--pool N] [--max-clients N]\n"
		  "                      [--client-ca FILE --tls-cert FILE --tls-key FILE]\n"
		  "A local forward proxy to VECOZO: practice software sends its COV (SOAP) and\n"
		  "Berichtenservice (REST) requests over HTTP to the gateway, with the path VECOZO\n"
		  "would see (POST http://127.0.0.1:8801/cov/vz801802/v1/soap11); the gateway sends\n"
		  "them over mutual TLS with the token's key and streams the answer back. Only\n"
		  "/cov/... and /berichtenservice/... on the configured host are forwarded; anything\n"
		  "else (CONNECT, another host, '..', encoded slashes) gets 403 with a one-line reason.\n"
		  "  --listen ADDR        127.0.0.1:PORT, [::1]:PORT, unix:/PATH (created 0660), or\n"
		  "                       HOST:PORT (only with --client-ca); repeatable. PORT 0 picks a\n"
		  "                       free port (the log's first lines name it)\n"
		  "  --env tst|acc|prd    VECOZO environment (or VZP11_ENV)\n"
		  "  --upstream URL       https:// base URL instead (an optional path is put before\n"
		  "                       the client's path)\n"
		  "  --cacert FILE        trust only these CAs for the upstream (default: the system's)\n"
		  "  --label LABEL        certificate on the token (default: %s); repeatable:\n"
		  "                       clients pick one with the header 'Vzp11-Label: LABEL', the\n"
		  "                       first without it; a label not served gets 403\n"
		  "  --pool N             TLS connections to VECOZO per label, kept alive (default 4)\n"
		  "  --max-clients N      client connections per listen address (default 256)\n"
		  "  --client-ca FILE     HTTPS towards the gateway on TCP addresses, clients must\n"
		  "  --tls-cert FILE      present a certificate from FILE; --tls-cert/--tls-key are\n"
		  "  --tls-key FILE       the gateway's own (key file mode 0600)\n"
		  "  --max-request BYTES  request body limit (default 64 MiB; larger gets 413)\n"
		  "  --max-response BYTES answer body limit (default 1 GiB; larger gets 502 or a cut)\n"
		  "  --timeout SECONDS    limit per upstream request (default 300)\n"
		  "  --client-timeout S   idle client connections are closed after S seconds (30)\n"
		  "  --threads N          server threads per listen address (default 2)\n"
		  "  --drain SECONDS      on SIGTERM, wait this long for requests in flight (30)\n"
		  "  --syslog             log to syslog (daemon) instead of stderr\n"
		  "Paths: GET /_vzp11/health: 200 when each label's key signs (a real signature, at\n"
		  "most one a second) and its last handshake with VECOZO worked or a fresh one does,\n"
		  "else 503 with the reason; GET /_vzp11/metrics (Prometheus). When the token's key\n"
		  "stops signing (the token went away), requests get 503 with Retry-After while the\n"
		  "gateway re-opens the token, ever more rarely, never after a PIN failure.\n"
		  "Signals: SIGHUP reloads certificates and keys from the token (the PIN is read\n"
		  "again from its source: use file: or env:); SIGTERM/SIGINT drain and exit 0.\n"
		  "One log line per request: time, client, method, path, status, bytes, duration.\n"
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
	const char *env, *upstream, *cacert, *client_ca, *tls_cert, *tls_key;
	long pool, max_clients, timeout_s, client_timeout_s, threads, drain_s;
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
	O_THREADS,
	O_DRAIN,
	O_SYSLOG,
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
		{"threads", required_argument, NULL, O_THREADS},
		{"drain", required_argument, NULL, O_DRAIN},
		{"syslog", no_argument, NULL, O_SYSLOG},
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
		case O_THREADS:
			num = &o->threads, hi = 64;
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
	if ((o->tls_cert || o->tls_key) && !o->client_ca)
		return vz_usage("gateway", "--tls-cert and --tls-key go with --client-ca");
	if (o->client_ca && (!o->tls_cert || !o->tls_key))
		return vz_usage("gateway", "--client-ca needs --tls-cert and --tls-key (the "
					   "gateway's own certificate for HTTPS)");
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

/* A PEM file into memory; a private key readable by others is refused. */
static char *slurp(const char *path, bool secret, vz_err *err)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *buf = NULL;
	size_t n;

	if (!f || fstat(fileno(f), &st) != 0) {
		vz_err_set(err, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (secret && (st.st_mode & 077)) {
		vz_err_set(err, "%s can be read by group or others; make it mode 0600", path);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		vz_err_set(err, "out of memory");
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	buf[n] = '\0';
out:
	if (f)
		fclose(f);
	return buf;
}

static void log_line(void *ctx, const char *line)
{
	const struct opts *o = ctx;

	if (o->syslog)
		syslog(LOG_INFO, "%s", line);
	else
		fprintf(stderr, "vzp11 gateway: %s\n", line);
}

/* One vz_tls per label, opened now (the PIN read from its source when the
 * token asks). */
static vz_rv open_keys(const vz_global *g, const struct opts *o, vz_tls **tls, vz_err *err)
{
	vz_rv r = VZ_OK;

	vz_gw_token_lock(); /* not while an upstream thread re-connects */
	for (size_t i = 0; i < o->n_labels && r == VZ_OK; i++) {
		r = vz_tls_open(g, o->labels[i], &tls[i], err);
		if (r != VZ_OK) {
			for (size_t k = 0; k < i; k++) {
				vz_tls_close(tls[k]);
				tls[k] = NULL;
			}
		}
	}
	vz_gw_token_unlock();
	return r;
}

/* Runs until SIGTERM or SIGINT; SIGHUP reloads the keys. */
static void serve(const vz_global *g, struct opts *o, vz_gw *gw, const sigset_t *sigs)
{
	for (;;) {
		struct timespec tick = {0, 200 * 1000 * 1000};
		int sig = sigtimedwait(sigs, NULL, &tick);

		vz_gw_reap(gw);
		if (sig == SIGHUP) {
			vz_tls *tls[32] = {0};
			vz_err err = {0};

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
	while (vz_gw_in_flight(gw) > 0 && vz_gw_now_us() < until) {
		struct timespec ts = {0, 20 * 1000 * 1000};

		nanosleep(&ts, NULL);
		vz_gw_reap(gw);
	}
	snprintf(line, sizeof(line), "stopped (%ld requests cut off)", vz_gw_in_flight(gw));
	log_line(o, line);
}

int cmd_gateway(vz_global *g, int argc, char **argv)
{
	struct opts o = {.pool = 4,
			 .max_clients = 256,
			 .timeout_s = 300,
			 .client_timeout_s = 30,
			 .threads = 2,
			 .drain_s = 30,
			 .max_request = 64LL << 20,
			 .max_response = 1LL << 30};
	vz_gw_cfg cfg = {0};
	vz_gw_addr addrs[VZ_GW_MAX_LISTEN];
	vz_tls *tls[32] = {0};
	char base[1024];
	char *cert_pem = NULL, *key_pem = NULL, *ca_pem = NULL;
	vz_gw *gw = NULL;
	vz_err err = {0};
	sigset_t sigs;
	int rc = parse_opts(g, argc, argv, &o);

	if (rc >= 0)
		return rc;
	rc = pick_upstream(&o, &cfg, base, sizeof(base));
	if (rc >= 0)
		return rc;
	for (size_t i = 0; i < o.n_listen; i++) {
		if (vz_gw_parse_listen(o.listen[i], &addrs[i], &err) != VZ_OK)
			return vz_usage("gateway", "%s", err.msg);
		if (!addrs[i].loopback && !o.client_ca)
			return vz_usage(
				"gateway",
				"refusing to listen on %s without --client-ca: only loopback "
				"addresses and unix: sockets may serve clients without a "
				"certificate",
				o.listen[i]);
		cfg.listen_hosts[cfg.n_listen++] = addrs[i].host;
	}
	if (g->pin_source && vz_secret_check_source(g->pin_source, &err) != VZ_OK) {
		vz_report(&err);
		return VZ_EXIT_USAGE;
	}
	cfg.cacert = o.cacert;
	cfg.pool = o.pool;
	cfg.max_clients = o.max_clients;
	cfg.threads = o.threads;
	cfg.timeout_ms = o.timeout_s * 1000;
	cfg.connect_timeout_ms = 10000 < cfg.timeout_ms ? 10000 : cfg.timeout_ms;
	cfg.client_timeout_s = o.client_timeout_s;
	cfg.max_request = o.max_request;
	cfg.max_response = o.max_response;
	cfg.labels = o.labels;
	cfg.n_labels = o.n_labels;
	cfg.log = log_line;
	cfg.log_ctx = &o;
	if (o.syslog)
		openlog("vzp11-gateway", LOG_PID, LOG_DAEMON);
	if (o.client_ca) {
		cert_pem = slurp(o.tls_cert, false, &err);
		key_pem = cert_pem ? slurp(o.tls_key, true, &err) : NULL;
		ca_pem = key_pem ? slurp(o.client_ca, false, &err) : NULL;
		if (!ca_pem)
			goto fail;
	}
	/* One malloc arena for the few threads: with one per thread the peak
	 * RSS kept rising for the first 100,000 requests (scripts/bench-gateway),
	 * and requests/s were no better. */
	mallopt(M_ARENA_MAX, 1);
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
	for (size_t i = 0; i < o.n_listen; i++) {
		bool https = o.client_ca && !addrs[i].is_unix;
		char name[160], line[400];
		int fd;

		if (open_listener(&addrs[i], &fd, name, sizeof(name), &err) != VZ_OK ||
		    vz_gw_serve(gw, fd, https ? cert_pem : NULL, https ? key_pem : NULL,
				https ? ca_pem : NULL, &err) != VZ_OK)
			goto fail;
		snprintf(line, sizeof(line), "listening on %s (%s) -> %s", name,
			 https ? "HTTPS, client certificates required" : "plain HTTP", cfg.base);
		log_line(&o, line);
	}
	serve(g, &o, gw, &sigs);
	drain(&o, gw);
	vz_gw_free(gw);
	for (size_t i = 0; i < o.n_listen; i++)
		if (addrs[i].is_unix)
			unlink(addrs[i].path);
	free(cert_pem);
	if (key_pem)
		OPENSSL_cleanse(key_pem, strlen(key_pem));
	free(key_pem);
	free(ca_pem);
	return VZ_EXIT_OK;
fail:
	vz_report(&err);
	vz_gw_free(gw);
	free(cert_pem);
	if (key_pem)
		OPENSSL_cleanse(key_pem, strlen(key_pem));
	free(key_pem);
	free(ca_pem);
	return err.pin_refused ? GW_EXIT_PIN_REFUSED : VZ_EXIT_FAIL;
}
