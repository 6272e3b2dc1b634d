/* toklock.c - the per-token lock file of toklock.h. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "toklock.h"

#define DEFAULT_DIR "/run/lock"
#define POLL_MS	    100

/* DIR/vzp11-token-HASH.lock for the token. */
static vz_rv lock_path(const tok_token_info *info, char *out, size_t size, vz_err *err)
{
	const char *dir = getenv("VZP11_LOCK_DIR");
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
	len = snprintf(out, size, "%s/vzp11-token-%02x%02x%02x%02x%02x%02x%02x%02x.lock",
		       dir && dir[0] ? dir : DEFAULT_DIR, md[0], md[1], md[2], md[3], md[4], md[5],
		       md[6], md[7]);
	if (len < 0 || (size_t)len >= size) {
		vz_err_set(err, "the token's lock file name is too long: %s", out);
		return VZ_FAIL;
	}
	return VZ_OK;
}

/* Opens the lock file, making it when it is not there. Without O_CREAT
 * first: in a sticky directory such as /run/lock, O_CREAT of a file another
 * user made is refused (fs.protected_regular). Readable by all: flock
 * needs only a descriptor, so every user of the token shares one lock. */
static int open_lock(const char *path)
{
	int fd = -1;

	for (int tries = 0; fd < 0 && tries < 3; tries++) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
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
