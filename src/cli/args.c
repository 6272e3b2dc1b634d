/* args.c - the values options take: numbers, where a client sends, the
 * environment's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

bool vz_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int vz_target(const char *cmd, const char **env, const char **endpoint,
	      const char *(*lookup)(const char *env))
{
	const char *env_var = vz_env("VZP11_ENV");

	if (*endpoint && *env)
		return vz_usage(cmd, "give --env or --endpoint, not both");
	if (*endpoint && env_var)
		return vz_usage(cmd,
				"--endpoint and VZP11_ENV (set to '%s') both say where to send; "
				"unset VZP11_ENV or leave out --endpoint",
				env_var);
	*env = *env ? *env : env_var;
	if (!*endpoint && !*env)
		return vz_usage(cmd, "say which VECOZO environment to use: --env tst, acc or prd "
				     "(or VZP11_ENV), or --endpoint URL");
	if (!*endpoint) {
		*endpoint = lookup(*env);
		if (!*endpoint)
			return vz_usage(cmd, "unknown environment '%s'; use tst, acc or prd", *env);
	}
	if (strncmp(*endpoint, "https://", 8) != 0)
		return vz_usage(cmd, "the endpoint must be an https:// URL");
	return 0;
}

const char *vz_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}
