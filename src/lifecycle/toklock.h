/* toklock.h - one writer at a time per token. `rotate`, `import` and
 * `remove` hold an exclusive flock(2) on a per-token file while they change
 * the token, so two of them never interleave their writes (a second one
 * waits, then sees what the first did). The file is
 * DIR/vzp11-token-HASH.lock: DIR is $VZP11_LOCK_DIR, else /run/lock (the
 * system's directory for lock files of shared resources, writable by every
 * user and sticky); HASH the first 16 hex digits of SHA-256 over the
 * token's manufacturer, model and serial number. The kernel drops the lock
 * when the process ends, however it ends. Processes on other machines (a
 * network HSM) are not seen. */
#ifndef VZP11_TOKLOCK_H
#define VZP11_TOKLOCK_H

#include "cli.h"
#include "err.h"
#include "tok.h"

#define VZ_TOKLOCK_WAIT_S 120 /* how long a second writer waits */

/* Takes the lock of token info, waiting at most VZ_TOKLOCK_WAIT_S while
 * another process holds it (a note says so once). VZ_OK: *fd holds it
 * until vz_toklock_release(). VZ_FAIL: err says why (still held by another
 * after the wait, or the lock file cannot be opened); nothing is locked. */
vz_rv vz_toklock_take(const vz_global *g, const tok_token_info *info, int *fd, vz_err *err);

/* Releases a lock vz_toklock_take() gave; -1 is ignored. */
void vz_toklock_release(int fd);

#endif
