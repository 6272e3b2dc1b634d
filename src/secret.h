/* secret.h - reading a PIN or password from a source the user names. */
#ifndef VZP11_SECRET_H
#define VZP11_SECRET_H

#include <stddef.h>

#include "err.h"

#define VZ_SECRET_MAX 256

/* A secret in a fixed buffer; wipe with vz_secret_wipe() on every path. */
typedef struct vz_secret {
	char buf[VZ_SECRET_MAX];
	size_t len;
} vz_secret;

/* Checks a source's syntax without reading it: env:VAR, file:PATH, fd:N,
 * stdin or prompt. "pass:" is refused because argv is public. */
vz_rv vz_secret_check_source(const char *src, vz_err *err);

/* Reads one secret (first line, without its line end). what names it in
 * prompts and messages ("token PIN"). src NULL means prompt on a terminal
 * and a refusal otherwise. A file: source readable by group or others is
 * refused. */
vz_rv vz_secret_read(const char *src, const char *what, vz_secret *out, vz_err *err);

void vz_secret_wipe(vz_secret *s);

/* A secret already read, handed on to a reader of "fd:N" (the provider's
 * login, another opening of the token) through a pipe, so it never lands
 * in a file or argv: src gets "fd:N"; returns N (close it after use), or -1.
 * A secret fits the pipe's buffer. */
int vz_secret_pipe(const vz_secret *s, char *src, size_t size);

#endif
