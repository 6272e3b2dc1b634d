/* cov.h - VECOZO COV (VZ801/VZ802 "Controleer"): local checks, the SOAP
 * request, and the response parser. No I/O here. */
#ifndef VZP11_COV_H
#define VZP11_COV_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define VZ_COV_MAX_SEARCHES 20			     /* per request, set by VECOZO */
#define VZ_COV_REF_MAX	    80			     /* characters of a reference */
#define VZ_COV_REF_SIZE	    (4 * VZ_COV_REF_MAX + 1) /* bytes, UTF-8 */
#define VZ_COV_SOAP_ACTION  "http://schemas.vecozo.nl/VZ801802/v1/Controleer"

/* Endpoint of an environment ("tst", "acc", "prd"), or NULL. */
const char *vz_cov_endpoint(const char *env);

/* One search: a person by BSN and birth date on a reference date. */
typedef struct vz_cov_search {
	unsigned long seq;		 /* Volgnummer: 1..20 within its request */
	char bsn[10];			 /* nine digits */
	char birthdate[11];		 /* YYYY-MM-DD */
	char date[11];			 /* Peildatum, YYYY-MM-DD */
	char reference[VZ_COV_REF_SIZE]; /* ReferentieZorgaanbieder, may be empty */
} vz_cov_search;

typedef struct vz_cov_insurance {
	char *status; /* Actief, Inactief, NietGeautoriseerdVoorZorgverzekeraar */
	char *uzovi, *insured_number, *kind, *package_code, *package_name;
	char *label_code, *label_name, *start, *end;
} vz_cov_insurance;

/* What VECOZO said about one search. Strings are NULL when absent. */
typedef struct vz_cov_result {
	unsigned long seq;
	char *result;	 /* Zoekresultaat: Gevonden, NietGevonden, ... */
	char *reference; /* echoed */
	bool has_person;
	char *person_result, *initials, *prefix, *surname, *birthdate, *gender, *bsn;
	bool deceased;
	vz_cov_insurance *ins;
	size_t n_ins;
} vz_cov_result;

void vz_cov_result_clear(vz_cov_result *r);

/* Exactly nine digits that pass the eleven-test (weights 9..2 and -1 on
 * the last digit, sum divisible by 11); copied to out. */
bool vz_bsn_valid(const char *in, char out[10]);

/* A real calendar date written exactly YYYY-MM-DD (digits only), years
 * 1870 to 2200. */
bool vz_date_valid(const char *s);

/* Splits an 8-digit AGB code into its kind (2 digits) and number (6). */
bool vz_agb_valid(const char *agb);

/* The SOAP 1.1 envelope for n searches (1..VZ_COV_MAX_SEARCHES), elements in
 * the order of the VZ801 schema; agb may be NULL. Each search's seq must
 * fit the WSDL's 16-bit Volgnummer (the engine numbers them 1..n). *out is
 * malloc'ed. */
vz_rv vz_cov_build(const vz_cov_search *s, size_t n, const char *agb, char **out, size_t *len,
		   vz_err *err);

typedef enum vz_cov_status {
	VZ_COV_OK = 0,		/* VerzoekAkkoord; results filled */
	VZ_COV_REQUEST_REFUSED, /* GeenZoekopdrachten / MeerDan20Zoekopdrachten */
	VZ_COV_FAULT,		/* a SOAP fault */
	VZ_COV_MALFORMED,	/* not a response we can read */
} vz_cov_status;

typedef enum vz_cov_fault_kind {
	VZ_FAULT_OTHER = 0,
	VZ_FAULT_NOT_AUTHENTICATED, /* "Niet geauthenticeerd" */
	VZ_FAULT_NOT_AUTHORIZED,    /* "Niet geautoriseerd" */
} vz_cov_fault_kind;

/* Parses a VZ802 response or SOAP fault, matching on local names only.
 * Results are written to results[0..*n_results), in response order; more
 * than max is VZ_COV_MALFORMED. The caller matches them by seq (0 when the
 * Volgnummer is not a number). Every string is cleaned of control
 * characters. detail gets the request-level Resultaat or the fault text,
 * with runs of 8 or more digits masked. */
vz_cov_status vz_cov_parse(const char *body, size_t len, vz_cov_result *results, size_t max,
			   size_t *n_results, vz_cov_fault_kind *fault, char *detail,
			   size_t detail_size);

#endif
