/* secret.c - PIN and password sources. Secrets stay in fixed buffers and
 * are wiped on every path; they never come from argv. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"

void vz_secret_wipe(vz_secret *s)
{
	if (s) {
		OPENSSL_cleanse(s->buf, sizeof(s->buf));
		s->len = 0;
	}
}

static bool parse_fd(const char *s, int *fd)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 0 || v > INT_MAX)
		return false;
	*fd = (int)v;
	return true;
}

vz_rv vz_secret_check_source(const char *src, vz_err *err)
{
	int fd;

	if (strncmp(src, "pass:", 5) == 0) {
		vz_err_set(err, "'pass:' is not accepted: a secret on the command line can be read "
				"by every user of this machine (ps, /proc)");
		vz_err_hint(err, "use env:VAR, file:PATH (mode 0600), fd:N, stdin or prompt");
		return VZ_USAGE;
	}
	if ((strncmp(src, "env:", 4) == 0 && src[4]) || (strncmp(src, "file:", 5) == 0 && src[5]) ||
	    strcmp(src, "stdin") == 0 || strcmp(src, "prompt") == 0)
		return VZ_OK;
	if (strncmp(src, "fd:", 3) == 0 && parse_fd(src + 3, &fd))
		return VZ_OK;
	vz_err_set(err, "unknown secret source '%s'", src);
	vz_err_hint(err, "use env:VAR, file:PATH (mode 0600), fd:N, stdin or prompt");
	return VZ_USAGE;
}

/* Keeps the first line of what was read; refuses secrets that do not fit. */
static vz_rv take_line(const char *data, size_t n, const char *what, vz_secret *out, vz_err *err)
{
	size_t len = 0;

	while (len < n && data[len] != '\n' && data[len] != '\r')
		len++;
	if (len >= sizeof(out->buf)) {
		vz_err_set(err, "the %s is longer than %zu bytes", what, sizeof(out->buf) - 1);
		return VZ_FAIL;
	}
	memcpy(out->buf, data, len);
	out->buf[len] = '\0';
	out->len = len;
	return VZ_OK;
}

/* Reads at most one buffer's worth from fd, stopping at the first newline. */
static vz_rv read_fd(int fd, const char *what, const char *from, vz_secret *out, vz_err *err)
{
	char tmp[VZ_SECRET_MAX + 1];
	size_t n = 0;
	vz_rv ret;

	while (n < sizeof(tmp)) {
		ssize_t r = read(fd, tmp + n, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			vz_err_set(err, "cannot read the %s from %s: %s", what, from,
				   strerror(errno));
			OPENSSL_cleanse(tmp, sizeof(tmp));
			return VZ_FAIL;
		}
		if (r == 0 || tmp[n] == '\n')
			break;
		n++;
	}
	ret = take_line(tmp, n, what, out, err);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return ret;
}

static vz_rv read_file(const char *path, const char *what, vz_secret *out, vz_err *err)
{
	struct stat st;
	vz_rv ret;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		vz_err_set(err, "cannot open the %s file %s: %s", what, path, strerror(errno));
		return VZ_FAIL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		vz_err_set(err, "the %s file %s is not a regular file", what, path);
		close(fd);
		return VZ_FAIL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		vz_err_set(err,
			   "the %s file %s can be read or changed by other users (mode %04o); "
			   "it was not read",
			   what, path, (unsigned)(st.st_mode & 07777));
		vz_err_hint(err, "run: chmod 600 %s", path);
		close(fd);
		return VZ_FAIL;
	}
	ret = read_fd(fd, what, path, out, err);
	close(fd);
	return ret;
}

/* While echo is off, a signal that ends the process first gives the
 * terminal its settings back. */
static volatile sig_atomic_t prompt_fd = -1;
static struct termios prompt_saved;
static const int prompt_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void prompt_signal(int sig)
{
	if (prompt_fd >= 0)
		tcsetattr(prompt_fd, TCSAFLUSH, &prompt_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void prompt_guard(int fd, const struct termios *saved, struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = prompt_signal;
	sigemptyset(&sa.sa_mask);
	prompt_saved = *saved;
	prompt_fd = fd;
	for (size_t i = 0; i < sizeof(prompt_signals) / sizeof(prompt_signals[0]); i++) {
		sigaction(prompt_signals[i], NULL, &old[i]);
		/* A signal the caller ignores (nohup) stays ignored. */
		if (old[i].sa_handler != SIG_IGN)
			sigaction(prompt_signals[i], &sa, NULL);
	}
}

static void prompt_unguard(const struct sigaction *old)
{
	for (size_t i = 0; i < sizeof(prompt_signals) / sizeof(prompt_signals[0]); i++)
		sigaction(prompt_signals[i], &old[i], NULL);
	prompt_fd = -1;
}

static vz_rv read_prompt(const char *what, vz_secret *out, vz_err *err)
{
	struct sigaction old_sa[sizeof(prompt_signals) / sizeof(prompt_signals[0])];
	struct termios old, quiet;
	char prompt[128];
	vz_rv ret;
	int fd;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		vz_err_set(err, "the %s is needed and there is no terminal to ask for it", what);
		vz_err_hint(err, "give a source: env:VAR, file:PATH (mode 0600), fd:N or stdin");
		return VZ_FAIL;
	}
	if (tcgetattr(fd, &old) != 0) {
		vz_err_set(err, "cannot switch off echo on the terminal: %s", strerror(errno));
		close(fd);
		return VZ_FAIL;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	snprintf(prompt, sizeof(prompt), _("Enter %s: "), what);
	prompt_guard(fd, &old, old_sa);
	if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
		tcsetattr(fd, TCSAFLUSH, &old);
		prompt_unguard(old_sa);
		vz_err_set(err, "cannot prompt for the %s on the terminal", what);
		close(fd);
		return VZ_FAIL;
	}
	ret = read_fd(fd, what, _("the terminal"), out, err);
	tcsetattr(fd, TCSAFLUSH, &old);
	prompt_unguard(old_sa);
	if (write(fd, "\n", 1) < 0) {
		/* the prompt line stays open; nothing else to do */
	}
	close(fd);
	return ret;
}

vz_rv vz_secret_read(const char *src, const char *what, vz_secret *out, vz_err *err)
{
	vz_rv ret;
	int fd;

	vz_secret_wipe(out);
	if (!src)
		src = "prompt";
	ret = vz_secret_check_source(src, err);
	if (ret != VZ_OK)
		return ret;
	if (strncmp(src, "env:", 4) == 0) {
		const char *v = getenv(src + 4);

		if (!v) {
			vz_err_set(err, "the environment variable %s for the %s is not set",
				   src + 4, what);
			return VZ_FAIL;
		}
		return take_line(v, strlen(v), what, out, err);
	}
	if (strncmp(src, "file:", 5) == 0)
		return read_file(src + 5, what, out, err);
	if (strcmp(src, "stdin") == 0)
		return read_fd(STDIN_FILENO, what, "standard input", out, err);
	if (strncmp(src, "fd:", 3) == 0 && parse_fd(src + 3, &fd))
		return read_fd(fd, what, src, out, err);
	return read_prompt(what, out, err);
}

/* Where the reading end of a handed-on secret goes: far above the numbers a
 * PKCS#11 module takes and closes. openCryptoki 3.8 closes its old socket
 * number again in C_Finalize; a pipe that got that number in between was
 * closed under the reader, and the number's next file (/etc/group) was read
 * as the PIN. */
#define PIPE_FD_MIN 200

int vz_secret_pipe(const vz_secret *s, char *src, size_t size)
{
	int fds[2], high;
	bool ok;

	if (pipe(fds) != 0)
		return -1;
	high = fcntl(fds[0], F_DUPFD_CLOEXEC, PIPE_FD_MIN);
	close(fds[0]);
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	ok = high >= 0 && write(fds[1], s->buf, s->len) == (ssize_t)s->len &&
	     write(fds[1], "\n", 1) == 1;
	close(fds[1]);
	if (!ok) {
		if (high >= 0)
			close(high);
		return -1;
	}
	snprintf(src, size, "fd:%d", high);
	return high;
}
