/* outfile.h - a result file that appears whole or not at all. It is
 * written as ".NAME.vzp11-partial.PID" beside NAME (mode 0600), removed
 * when the process is interrupted by a signal, and renamed into place only
 * when complete. A partial file left by a killed run (SIGKILL, power loss)
 * is found by its name and removed by the next run for the same NAME. */
#ifndef VZP11_OUTFILE_H
#define VZP11_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>

#include "err.h"

/* Removes partial files of path whose process is gone (*stale counts
 * them), installs the signal handlers, then creates the temporary file.
 * One output file at a time per process. */
vz_rv vz_outfile_open(const char *path, FILE **out, size_t *stale, vz_err *err);

/* keep: flush, fsync, rename to path, fsync the directory. Otherwise (or
 * when any of that fails) the temporary file is removed. out is closed
 * either way. */
vz_rv vz_outfile_close(FILE *out, bool keep, vz_err *err);

#endif
