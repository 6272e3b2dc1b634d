/* out.h - rendering certificates on the token as text or JSON. */
#ifndef VZP11_OUT_H
#define VZP11_OUT_H

#include <stdio.h>

#include <jansson.h>

#include "store.h"
#include "tok.h"

/* The object of `list --json`: label, id, subject, issuer, serial, dates,
 * days_left, kind, fingerprint_sha256, key{}, uri{}, chain[]. */
json_t *vz_out_entry_json(const tok_token *t, const vz_entry *e);

/* One line: label, subject, expiry, days left, key type; expired marked. */
void vz_out_entry_line(FILE *f, const vz_entry *e);

/* Everything: certificate, key attributes as read from the token, URIs,
 * chain. */
void vz_out_entry_full(FILE *f, const tok_token *t, const vz_entry *e);

/* How a key arrived: "created", "unwrapped", "generated"; NULL when
 * unknown. See tok_arrival for what each rests on. */
const char *vz_out_arrival_name(tok_arrival a);

/* Prints j (compact) and a newline; frees j. */
int vz_out_json(FILE *f, json_t *j);

/* Flushes f. VZ_FAIL, with the reason in err, when anything written to f
 * did not arrive (a full disk, a closed pipe). */
vz_rv vz_out_flush(FILE *f, vz_err *err);

/* Hex of bytes, lower case. Caller frees. */
char *vz_hex(const unsigned char *p, size_t len);

#endif
