/* lifecycle.h - the certificate's life on the token: rotate, check
 * and the self-test. */
#ifndef VZP11_LIFECYCLE_LIFECYCLE_H
#define VZP11_LIFECYCLE_LIFECYCLE_H

#include <stdbool.h>
#include <jansson.h>

#include "cli/cli.h"

/* ---- the self-test, for `selftest` and for `rotate`'s trial of a
 * renewed certificate. */

/* Every check of `vzp11 selftest` on the certificate of label; with an
 * endpoint also a COV handshake. The lines are printed, or with checks
 * given handed back as the JSON array `selftest --json` shows. curl must be
 * initialized. True when every check passed. */
bool vz_selftest(const vz_global *g, const char *label, const char *endpoint, const char *cacert,
		 json_t **checks);

extern const vz_command vz_cmd_rotate;
extern const vz_command vz_cmd_check;
extern const vz_command vz_cmd_selftest;

#endif
