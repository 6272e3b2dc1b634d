/* relay.c - the floor of any proxy, for scripts/bench-gateway: a bare TLS
 * relay. Each client connection (plain TCP) gets its own upstream TLS
 * connection with a key file and one thread that copies bytes both ways. No
 * HTTP parsing, no pooling, no policy, no token: whatever a real gateway
 * costs on top of this is its own; this relay's cost is what one more hop
 * costs on the machine.
 *
 * relay --port-file F --upstream-port N --cert PEM --key PEM --cacert PEM
 *
 * Listens on 127.0.0.1 (a free port, written to F) and connects to
 * localhost:N, verifying the server as "localhost". Runs until killed.
 * Test and bench use only. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL_CTX *ctx;
static int upstream_port;

static int tcp_to_upstream(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One client: copies until either side closes. */
static void *serve(void *arg)
{
	int cfd = (int)(long)arg, ufd = tcp_to_upstream();
	SSL *ssl = ufd >= 0 ? SSL_new(ctx) : NULL;
	char buf[65536];

	if (!ssl || !SSL_set_fd(ssl, ufd) || !SSL_set_tlsext_host_name(ssl, "localhost") ||
	    !SSL_set1_host(ssl, "localhost") || SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		goto out;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = cfd, .events = POLLIN}, {.fd = ufd, .events = POLLIN}};
		int n;

		if (SSL_pending(ssl) == 0 && poll(p, 2, -1) < 0)
			break;
		if (SSL_pending(ssl) > 0 || p[1].revents) {
			n = SSL_read(ssl, buf, sizeof(buf));
			if (n <= 0 || write_all(cfd, buf, (size_t)n) != 0)
				break;
		}
		if (p[0].revents) {
			ssize_t r = read(cfd, buf, sizeof(buf));

			if (r <= 0 || SSL_write(ssl, buf, (int)r) != (int)r)
				break;
		}
	}
out:
	if (ssl)
		SSL_free(ssl);
	if (ufd >= 0)
		close(ufd);
	close(cfd);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {{"port-file", required_argument, NULL, 'p'},
					      {"upstream-port", required_argument, NULL, 'u'},
					      {"cert", required_argument, NULL, 'c'},
					      {"key", required_argument, NULL, 'k'},
					      {"cacert", required_argument, NULL, 'a'},
					      {NULL, 0, NULL, 0}};
	const char *port_file = NULL, *cert = NULL, *key = NULL, *cacert = NULL;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	int c, lfd, one = 1;
	FILE *f;

	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'p':
			port_file = optarg;
			break;
		case 'u':
			upstream_port = atoi(optarg);
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			cacert = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!port_file || upstream_port <= 0 || !cert || !key || !cacert) {
		fprintf(stderr, "usage: relay --port-file F --upstream-port N --cert PEM --key PEM "
				"--cacert PEM\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, cacert, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1024) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
		perror("relay: listen");
		return 1;
	}
	f = fopen(port_file, "w");
	if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0) {
		perror("relay: port file");
		return 1;
	}
	for (;;) {
		int cfd = accept(lfd, NULL, NULL);
		pthread_t t;
		pthread_attr_t at;

		if (cfd < 0)
			continue;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &at, serve, (void *)(long)cfd) != 0)
			close(cfd);
		pthread_attr_destroy(&at);
	}
}
