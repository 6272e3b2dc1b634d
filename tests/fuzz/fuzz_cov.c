/* fuzz_cov.c - libFuzzer target: the VZ802 response and SOAP fault parser. */
#include <stddef.h>
#include <stdint.h>

#include "cov/cov.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vz_cov_result res[VZ_COV_MAX_SEARCHES];
	vz_cov_fault_kind fk;
	char detail[128];
	size_t n = 0;

	vz_cov_parse((const char *)data, size, res, VZ_COV_MAX_SEARCHES, &n, &fk, detail,
		     sizeof(detail));
	for (size_t i = 0; i < n; i++)
		vz_cov_result_clear(&res[i]);
	return 0;
}
