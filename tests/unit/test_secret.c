/* Unit tests: PIN and password sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"

static char path[64];

static int make_file(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/vzp11-secret-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "file-secret\nsecond line\n", 24), 24);
	close(fd);
	return 0;
}

static int drop_file(void **state)
{
	unlink(path);
	return 0;
}

static void env_source(void **state)
{
	vz_secret s;
	vz_err err = {0};

	setenv("VZT_SECRET", "from-env", 1);
	assert_int_equal(vz_secret_read("env:VZT_SECRET", "PIN", &s, &err), VZ_OK);
	assert_int_equal(s.len, 8);
	assert_string_equal(s.buf, "from-env");
	vz_secret_wipe(&s);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.buf[0], 0);
	unsetenv("VZT_SECRET");
	assert_int_equal(vz_secret_read("env:VZT_SECRET", "PIN", &s, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "VZT_SECRET"));
}

static void file_source_modes(void **state)
{
	char src[80];
	vz_secret s;
	vz_err err = {0};

	snprintf(src, sizeof(src), "file:%s", path);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(vz_secret_read(src, "password", &s, &err), VZ_OK);
	assert_string_equal(s.buf, "file-secret"); /* first line only */
	vz_secret_wipe(&s);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(vz_secret_read(src, "password", &s, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "other users"));
	assert_non_null(strstr(err.hint, "chmod 600"));
	assert_int_equal(s.len, 0);
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(vz_secret_read(src, "password", &s, &err), VZ_FAIL);
}

static void fd_source(void **state)
{
	int p[2];
	vz_secret s;
	vz_err err = {0};
	char src[16];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "piped\r\n", 7), 7);
	close(p[1]);
	snprintf(src, sizeof(src), "fd:%d", p[0]);
	assert_int_equal(vz_secret_read(src, "PIN", &s, &err), VZ_OK);
	assert_string_equal(s.buf, "piped");
	close(p[0]);
	vz_secret_wipe(&s);
}

static void refused_sources(void **state)
{
	vz_err err = {0};

	assert_int_equal(vz_secret_check_source("pass:1234", &err), VZ_USAGE);
	assert_non_null(strstr(err.msg, "every user"));
	assert_int_equal(vz_secret_check_source("bogus", &err), VZ_USAGE);
	assert_int_equal(vz_secret_check_source("fd:x", &err), VZ_USAGE);
	assert_int_equal(vz_secret_check_source("env:", &err), VZ_USAGE);
	assert_int_equal(vz_secret_check_source("file:", &err), VZ_USAGE);
	assert_int_equal(vz_secret_check_source("stdin", &err), VZ_OK);
	assert_int_equal(vz_secret_check_source("prompt", &err), VZ_OK);
	assert_int_equal(vz_secret_check_source("fd:3", &err), VZ_OK);
}

static void too_long(void **state)
{
	char big[VZ_SECRET_MAX + 10];
	vz_secret s;
	vz_err err = {0};

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("VZT_BIG", big, 1);
	assert_int_equal(vz_secret_read("env:VZT_BIG", "PIN", &s, &err), VZ_FAIL);
	assert_non_null(strstr(err.msg, "longer than"));
	unsetenv("VZT_BIG");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(env_source),
		cmocka_unit_test_setup_teardown(file_source_modes, make_file, drop_file),
		cmocka_unit_test(fd_source),
		cmocka_unit_test(refused_sources),
		cmocka_unit_test(too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
