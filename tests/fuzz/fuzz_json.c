/* fuzz_json.c - libFuzzer target: the Berichtenservice readers (problem
 * details, message statuses, the pull list) on any bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing.h"
#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	char *lines[8], *errs = NULL, *mj;
	vz_br_status st = {0};
	vz_br_retour *r = NULL;
	vz_err err = {0};
	size_t n, skipped = 0;

	n = vz_br_problem(body, size, lines, 8, &errs);
	for (size_t i = 0; i < n; i++) {
		if (!vz_text_printable(lines[i], (size_t)-1) && strlen(lines[i]))
			abort(); /* a line for a person holds no control character */
		free(lines[i]);
	}
	free(errs);
	if (vz_br_status_parse(body, size, "7e7e7e7e-0000-4000-8000-000000000000", &st, &err) ==
	    VZ_OK) {
		if (!st.status)
			abort();
		mj = vz_br_meldingen_json(&st);
		free(mj);
		vz_br_status_clear(&st);
	}
	if (vz_br_pull_parse(body, size, &r, &n, &skipped, &err) == VZ_OK) {
		for (size_t i = 0; i < n; i++)
			if (!vz_br_uuid_valid(r[i].traceer_id) || strlen(r[i].sha256) != 64 ||
			    r[i].size < 0)
				abort();
		free(r);
	}
	return 0;
}
