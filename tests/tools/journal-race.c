/* journal-race - one contender in a race for the same declaration.
 * Usage: journal-race SPEC SHA256 STARTFILE
 * Waits (polling every 1 ms, at most 30 s) until STARTFILE exists, so
 * many copies start together; then opens the journal SPEC and records a
 * declaration of SHA256 under a fresh traceer id. Prints "won <traceer
 * id>" or "duplicate <earlier traceer id>" and exits 0; anything else
 * (a failure, an unknown result) prints the reason to stderr and exits 1.
 * Opening after the start signal also races the schema creation. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "journal/journal.h"

#define WAIT_MS 30000

/* A random (version 4) UUID in lower case. */
static int fresh_uuid(char out[VZ_UUID_LEN + 1])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, VZ_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
	return 0;
}

static int wait_for(const char *path)
{
	const struct timespec ms = {0, 1000000};
	int i;

	for (i = 0; i < WAIT_MS; i++) {
		if (access(path, F_OK) == 0)
			return 0;
		nanosleep(&ms, NULL);
	}
	return -1;
}

int main(int argc, char **argv)
{
	vz_journal *j = NULL;
	vz_decl d = {0}, earlier = {0};
	vz_err err = {0};
	vz_rv rv;
	int status = 1;

	if (argc != 4 || strlen(argv[2]) != VZ_SHA256_HEX) {
		fprintf(stderr, "usage: journal-race SPEC SHA256 STARTFILE\n");
		return 1;
	}
	if (fresh_uuid(d.traceer_id) != 0 || fresh_uuid(d.conversatie_id) != 0) {
		fprintf(stderr, "journal-race: no random bytes\n");
		return 1;
	}
	memcpy(d.sha256, argv[2], VZ_SHA256_HEX + 1);
	d.size = 42;
	snprintf(d.file, sizeof(d.file), "race.asc");
	snprintf(d.flow, sizeof(d.flow), "AW319:1.0:declareren");
	if (wait_for(argv[3]) != 0) {
		fprintf(stderr, "journal-race: %s did not appear\n", argv[3]);
		return 1;
	}
	if (vz_journal_open(argv[1], &j, &err) != VZ_OK) {
		fprintf(stderr, "journal-race: %s (%s)\n", err.msg, err.hint);
		return 1;
	}
	rv = vz_journal_decl_begin(j, &d, &earlier, &err);
	if (rv == VZ_OK) {
		printf("won %s\n", d.traceer_id);
		status = 0;
	} else if (rv == VZ_DUPLICATE) {
		printf("duplicate %s\n", earlier.traceer_id);
		status = 0;
	} else {
		fprintf(stderr, "journal-race: %s (%s)\n", err.msg, err.hint);
	}
	vz_decl_clear(&earlier);
	vz_journal_close(j);
	if (fflush(stdout) != 0)
		status = 1;
	return status;
}
