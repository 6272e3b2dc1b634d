/* berichten.h - private to tests/mock: the Berichtenservice REST part of
 * vzmock (berichten.c) and what it uses from vzmock.c. The behaviour is
 * described in the header comment of vzmock.c. */
#ifndef VZMOCK_BERICHTEN_H
#define VZMOCK_BERICHTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <microhttpd.h>

/* ---- berichten.c ---- */

/* True for paths served by the REST part (under /berichtenservice/). */
bool berichten_path(const char *url);

/* A REST option at argv position of opt, value the next argument (or NULL):
 * returns how many arguments it takes (1 or 2), 0 when it is not one. */
int berichten_option(const char *opt, const char *value);

/* After the options: checks them and builds the queue of return messages. */
void berichten_init(void);

/* The MHD access handler for REST paths; *con_cls is its own state, which
 * starts with a bool that is true (see berichten_completed). */
enum MHD_Result berichten_handle(struct MHD_Connection *c, const char *url, const char *method,
				 const char *data, size_t *data_size, void **con_cls);

/* Frees the state berichten_handle put in *con_cls. */
void berichten_completed(void *state);

/* Appends the REST counters to the stats object: ", \"pushes\": N, ...". */
void berichten_stats(FILE *f);

/* At exit, before MHD_stop_daemon: list requests stop waiting for the
 * checksums and the hashing stops. */
void berichten_stop(void);

void berichten_free(void);

/* ---- vzmock.c ---- */

/* The rights listed for the client certificate of c, NULL when it has none,
 * does not verify against --ca or is not listed. */
const char *mock_rights(struct MHD_Connection *c);

/* Marks activity (for --idle-exit). */
void mock_touch(void);

/* Counts one fault applied (stat "faults"). */
void mock_count_fault(void);

/* Writes the stats file now. */
void mock_write_stats(void);

/* The --delay option in milliseconds (0 when not given). */
long mock_delay_ms(void);

/* Sleeps ms milliseconds, or less when the --hold file appears. */
void mock_wait(long ms);

_Noreturn void mock_die(const char *fmt, const char *arg);

#endif
