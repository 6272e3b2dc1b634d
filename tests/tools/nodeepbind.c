/* nodeepbind.c - LD_PRELOAD helper for the sanitizer test run only.
 * pkcs11-provider opens the PKCS#11 module with RTLD_DEEPBIND, which the
 * AddressSanitizer runtime refuses (google/sanitizers#611). This drops that
 * one flag so the provider path can run under ASan; nothing else changes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>

void *dlopen(const char *file, int mode);

void *dlopen(const char *file, int mode)
{
	static void *(*next)(const char *, int);

	if (!next)
		next = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
	return next(file, mode & ~RTLD_DEEPBIND);
}
