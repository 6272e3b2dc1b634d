/* toklock.c - the per-token lock file of token.h. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "token/token.h"

#define POLL_MS 100

/* The directory of the lock files: $VZP11_LOCK_DIR as given; else root's
 * (made when missing) or the user's runtime directory, either of which
 * must belong to this user and be writable by nobody else. */
static vz_rv lock_dir(const char **out, vz_err *err)
{
	const char *dir = getenv("VZP11_LOCK_DIR");
	uid_t me = geteuid();
	struct stat st;

	if (dir && dir[0]) {
		*out = dir;
		return VZ_OK;
	}
	if (me == 0) {
		dir = VZ_TOKLOCK_ROOT_DIR;
		if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
			vz_err_set(err,
				   "cannot make the lock directory %s: %s; nothing was changed",
				   dir, strerror(errno));
			vz_err_hint(err, "set VZP11_LOCK_DIR to a directory only root can write");
			return VZ_FAIL;
		}
	} else {
		dir = getenv("XDG_RUNTIME_DIR");
		if (!dir || !dir[0]) {
			vz_err_set(err,
				   "no directory for the token's lock file: XDG_RUNTIME_DIR is not "
				   "set; nothing was changed");
			vz_err_hint(err,
				    "set VZP11_LOCK_DIR to a directory only you can write (or "
				    "run vzp11 in a login session, which sets XDG_RUNTIME_DIR)");
			return VZ_FAIL;
		}
	}
	if ((me == 0 ? lstat(dir, &st) : stat(dir, &st)) != 0) {
		vz_err_set(err, "cannot use the lock directory %s: %s; nothing was changed", dir,
			   strerror(errno));
		vz_err_hint(err, "set VZP11_LOCK_DIR to a directory only you can write");
		return VZ_FAIL;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != me || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		vz_err_set(err,
			   "the lock directory %s is not a directory of this user's alone (owner "
			   "uid %u, mode %04o): another user could hold the token's lock there; "
			   "nothing was changed",
			   dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		if (me == 0)
			vz_err_hint(err, "remove it (it holds only lock files): vzp11 makes it "
					 "again, root's and writable by root alone");
		else
			vz_err_hint(err, "set VZP11_LOCK_DIR to a directory only you can write");
		return VZ_FAIL;
	}
	*out = dir;
	return VZ_OK;
}

/* DIR/vzp11-token-HASH.lock for the token. */
static vz_rv lock_path(const tok_token_info *info, char *out, size_t size, vz_err *err)
{
	const char *dir = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(c, info->manufacturer, strlen(info->manufacturer) + 1) == 1 &&
		 EVP_DigestUpdate(c, info->model, strlen(info->model) + 1) == 1 &&
		 EVP_DigestUpdate(c, info->serial, strlen(info->serial) + 1) == 1 &&
		 EVP_DigestFinal_ex(c, md, &n) == 1;
	int len;

	EVP_MD_CTX_free(c);
	if (!ok) {
		vz_err_set(err, "cannot name the token's lock file: SHA-256 failed");
		return VZ_FAIL;
	}
	if (lock_dir(&dir, err) != VZ_OK)
		return VZ_FAIL;
	len = snprintf(out, size, "%s/vzp11-token-%02x%02x%02x%02x%02x%02x%02x%02x.lock", dir,
		       md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7]);
	if (len < 0 || (size_t)len >= size) {
		vz_err_set(err, "the token's lock file name is too long: %s", out);
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* Opens the lock file, making it when it is not there. Without O_CREAT
 * first: in a sticky directory (a VZP11_LOCK_DIR such as /tmp), O_CREAT of
 * a file another user made is refused (fs.protected_regular); opened, that
 * file is refused for its owner by vz_toklock_take(), with a clear reason. */
static int open_lock(const char *path)
{
	int fd = -1;

	for (int tries = 0; fd < 0 && tries < 3; tries++) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST && errno != ENOENT)
			break;
	}
	return fd;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

vz_rv vz_toklock_take(const vz_global *g, const tok_token_info *info, int *fd, vz_err *err)
{
	char path[4096];
	struct stat st;
	long waited = 0;
	bool noted = false;
	int f;

	if (lock_path(info, path, sizeof(path), err) != VZ_OK)
		return VZ_FAIL;
	f = open_lock(path);
	if (f < 0 || fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
		vz_err_set(err,
			   "cannot open the lock file %s of token '%s': %s; nothing was changed",
			   path, info->label, f < 0 ? strerror(errno) : "not a regular file");
		vz_err_hint(err, "set VZP11_LOCK_DIR to a directory where you may create files");
		if (f >= 0)
			close(f);
		return VZ_FAIL;
	}
	if (st.st_uid != geteuid()) {
		/* anyone could hold a file another user made for as long as they
		 * like: refused at once, not waited for */
		const struct passwd *pw = getpwuid(st.st_uid);

		vz_err_set(err,
			   "the lock file %s of token '%s' belongs to user %s (uid %u), not to "
			   "this one: vzp11 neither waits for nor shares another user's lock; "
			   "nothing was changed",
			   path, info->label, pw ? pw->pw_name : "?", (unsigned)st.st_uid);
		vz_err_hint(err,
			    "remove the file if that user is not changing the token ('fuser -v %s' "
			    "shows who holds it), and keep the lock files in a directory only you "
			    "can write: leave VZP11_LOCK_DIR unset",
			    path);
		close(f);
		return VZ_FAIL;
	}
	while (flock(f, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			vz_err_set(err, "cannot lock %s: %s; nothing was changed", path,
				   strerror(errno));
			close(f);
			return VZ_FAIL;
		}
		if (!noted)
			vz_note(g,
				"another vzp11 is changing token '%s' (it holds %s); waiting until "
				"it is done, at most %d s",
				info->label, path, VZ_TOKLOCK_WAIT_S);
		noted = true;
		if (waited >= VZ_TOKLOCK_WAIT_S * 1000L) {
			vz_err_set(err,
				   "another vzp11 kept changing token '%s' for %d s (it holds %s); "
				   "nothing was changed",
				   info->label, VZ_TOKLOCK_WAIT_S, path);
			vz_err_hint(err,
				    "let it finish ('fuser -v %s' shows which process it is), "
				    "then run the command again",
				    path);
			close(f);
			return VZ_FAIL;
		}
		sleep_ms(POLL_MS);
		waited += POLL_MS;
	}
	*fd = f;
	return VZ_OK;
}

void vz_toklock_release(int fd)
{
	if (fd >= 0)
		close(fd); /* closing the last descriptor drops the flock */
}
