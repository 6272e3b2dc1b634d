/* out.c - JSON and text output every command uses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

char *vz_hex(const unsigned char *p, size_t len)
{
	char *s = malloc(len * 2 + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++)
		snprintf(s + i * 2, 3, "%02x", p[i]);
	s[len * 2] = '\0';
	return s;
}

int vz_out_json(FILE *f, json_t *j)
{
	int r = json_dumpf(j, f, JSON_COMPACT);

	fputc('\n', f);
	json_decref(j);
	return r;
}

vz_rv vz_out_flush(FILE *f, vz_err *err)
{
	int e = 0;

	if (fflush(f) != 0)
		e = errno;
	if (e == 0 && !ferror(f))
		return VZ_OK;
	vz_err_set(err, "cannot write the output: %s", e ? strerror(e) : "write error");
	vz_err_hint(err, "check the disk, or the program the output goes to");
	return VZ_FAIL;
}
