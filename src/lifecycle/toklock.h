/* toklock.h - one writer at a time per token. `rotate`, `import` and
 * `remove` hold an exclusive flock(2) on a per-token file while they change
 * the token, so two of them never interleave their writes (a second one
 * waits, then sees what the first did). The file is
 * DIR/vzp11-token-HASH.lock, HASH the first 16 hex digits of SHA-256 over
 * the token's manufacturer, model and serial number. DIR is
 * $VZP11_LOCK_DIR when set; else a directory no other user can write, so
 * that nobody else can hold the lock and make the writers wait: for root
 * /run/vzp11-locks (made when missing; it must be root's and writable by
 * root alone), for another user $XDG_RUNTIME_DIR (the user's own, mode
 * 0700). A lock file that belongs to another user is refused, never waited
 * for. So the lock keeps apart the writers of one user; writers of
 * different users on one token are not seen, nor processes on other
 * machines (a network HSM). The kernel drops the lock when the process
 * ends, however it ends. */
#ifndef VZP11_TOKLOCK_H
#define VZP11_TOKLOCK_H

#include "cli.h"
#include "err.h"
#include "tok.h"

#define VZ_TOKLOCK_WAIT_S   120		       /* how long a second writer waits */
#define VZ_TOKLOCK_ROOT_DIR "/run/vzp11-locks" /* root's DIR */

/* Takes the lock of token info, waiting at most VZ_TOKLOCK_WAIT_S while
 * another process holds it (a note says so once). VZ_OK: *fd holds it
 * until vz_toklock_release(). VZ_FAIL: err says why (still held by another
 * after the wait, a directory or lock file another user could write or
 * made, or one that cannot be opened); nothing is locked. */
vz_rv vz_toklock_take(const vz_global *g, const tok_token_info *info, int *fd, vz_err *err);

/* Releases a lock vz_toklock_take() gave; -1 is ignored. */
void vz_toklock_release(int fd);

#endif
