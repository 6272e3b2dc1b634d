/* syslog-sink.c - test helper: a stand-in for the syslog daemon's /dev/log.
 *
 *   syslog-sink SOCKET OUT [MAX [SECONDS]]
 *
 * Binds an AF_UNIX datagram socket at SOCKET (which must not exist yet) and
 * appends every datagram to OUT, one line each, as received: the "<PRI>"
 * prefix and syslog header included, a trailing newline or NUL dropped and
 * any other newline written as "\n". OUT is flushed after each line, so a
 * test may read it while the sink runs. Stops after MAX datagrams (0: no
 * limit, the default), after SECONDS (default 30, at most 600) or on
 * SIGTERM/SIGINT, whichever comes first; then writes what is still queued
 * (up to MAX) and removes SOCKET, so a datagram sent before the signal is
 * never lost. A test waits for SOCKET to appear before it sends: from then
 * on datagrams are queued. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long number(const char *s, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	return *s && !*end && v >= 0 && v <= hi ? v : -1;
}

/* One datagram as one line. */
static void write_line(FILE *out, const char *buf, size_t len)
{
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\0'))
		len--;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n')
			fputs("\\n", out);
		else
			fputc(buf[i], out);
	}
	fputc('\n', out);
	fflush(out);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct sigaction sa = {.sa_handler = on_signal};
	static char buf[65536];
	long max = 0, seconds = 30, deadline, got = 0;
	FILE *out;
	int fd;

	if (argc < 3 || argc > 5 || (argc > 3 && (max = number(argv[3], 1000000)) < 0) ||
	    (argc > 4 && (seconds = number(argv[4], 600)) < 0) ||
	    strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: syslog-sink SOCKET OUT [MAX [SECONDS<=600]]\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	out = fopen(argv[2], "a");
	if (!out) {
		fprintf(stderr, "syslog-sink: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	strcpy(addr.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		fprintf(stderr, "syslog-sink: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	chmod(argv[1], 0666);
	deadline = now_ms() + seconds * 1000;
	while (!stop && (max == 0 || got < max)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			break;
		if (poll(&p, 1, (int)left) <= 0)
			continue; /* timeout (checked above) or a signal (stop) */
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			continue;
		write_line(out, buf, (size_t)n);
		got++;
	}
	/* Sent before the signal: already in the queue (bounded: a sender that
	 * never stops must not keep the sink). */
	for (int i = 0; i < 10000 && (max == 0 || got < max); i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0)
			break;
		write_line(out, buf, (size_t)n);
		got++;
	}
	close(fd);
	unlink(argv[1]);
	fclose(out);
	return 0;
}
