/* outfile.c - atomic result files; see cli/cli.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

#define PARTIAL ".vzp11-partial."

static char tmp_path[PATH_MAX]; /* set while a temporary file may exist */
static char final_path[PATH_MAX];
static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void on_signal(int sig)
{
	if (tmp_path[0])
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* dir and base of path, in the caller's buffers. */
static bool split_path(const char *path, char dir[PATH_MAX], char base[NAME_MAX + 1])
{
	char a[PATH_MAX], b[PATH_MAX];

	if (snprintf(a, sizeof(a), "%s", path) >= (int)sizeof(a))
		return false;
	memcpy(b, a, sizeof(b));
	snprintf(dir, PATH_MAX, "%s", dirname(a));
	return snprintf(base, NAME_MAX + 1, "%s", basename(b)) <= NAME_MAX;
}

/* A partial file of ours whose writer no longer runs. */
static bool stale(const char *name, const char *prefix, uid_t uid, int dfd)
{
	size_t plen = strlen(prefix);
	struct stat st;
	char *end = NULL;
	long pid;

	if (strncmp(name, prefix, plen) != 0)
		return false;
	errno = 0;
	pid = strtol(name + plen, &end, 10);
	if (errno || end == name + plen || *end || pid <= 0 || pid == (long)getpid())
		return false;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != uid)
		return false;
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static size_t remove_stale(const char *dir, const char *base)
{
	char prefix[NAME_MAX + 64];
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	snprintf(prefix, sizeof(prefix), ".%s" PARTIAL, base);
	for (e = readdir(d); e; e = readdir(d))
		if (stale(e->d_name, prefix, geteuid(), dirfd(d)) &&
		    unlinkat(dirfd(d), e->d_name, 0) == 0)
			n++;
	closedir(d);
	return n;
}

vz_rv vz_outfile_open(const char *path, FILE **out, size_t *stale_n, vz_err *err)
{
	char dir[PATH_MAX], base[NAME_MAX + 1], tmp[PATH_MAX];
	struct sigaction sa;
	int fd;

	if (!split_path(path, dir, base) || snprintf(tmp, sizeof(tmp), "%s/.%s" PARTIAL "%ld", dir,
						     base, (long)getpid()) >= (int)sizeof(tmp)) {
		vz_err_set(err, "the output path is too long");
		return VZ_FAIL;
	}
	*stale_n = remove_stale(dir, base);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* The handlers are in place before the file exists. */
	memcpy(tmp_path, tmp, sizeof(tmp_path));
	snprintf(final_path, sizeof(final_path), "%s", path);
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
		struct sigaction old;

		/* A signal the caller ignores (nohup) stays ignored. */
		if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(signals[i], &sa, NULL);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		vz_err_set(err, "cannot create %s: %s", tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		tmp_path[0] = '\0';
		return VZ_FAIL;
	}
	*out = fdopen(fd, "w");
	if (!*out) {
		close(fd);
		unlink(tmp);
		tmp_path[0] = '\0';
		vz_err_set(err, "out of memory");
		return VZ_FAIL;
	}
	return VZ_OK;
}

static bool sync_dir(const char *path)
{
	char dir[PATH_MAX], base[NAME_MAX + 1];
	bool ok;
	int fd;

	if (!split_path(path, dir, base))
		return false;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

vz_rv vz_outfile_close(FILE *out, bool keep, vz_err *err)
{
	bool ok = fflush(out) == 0 && fsync(fileno(out)) == 0;

	ok &= fclose(out) == 0;
	if (keep && ok && rename(tmp_path, final_path) == 0) {
		tmp_path[0] = '\0';
		if (!sync_dir(final_path)) {
			vz_err_set(err, "%s was written but its directory could not be synced: %s",
				   final_path, strerror(errno));
			return VZ_FAIL;
		}
		return VZ_OK;
	}
	if (keep)
		vz_err_set(err, "cannot write %s: %s", final_path, strerror(errno));
	unlink(tmp_path);
	tmp_path[0] = '\0';
	return keep ? VZ_FAIL : VZ_OK;
}
