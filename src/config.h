/* config.h - settings from /etc/vzp11/vzp11.conf, the user's file and
 * --config FILE (INI, read with inih), below the environment and the
 * command line. */
#ifndef VZP11_CONFIG_H
#define VZP11_CONFIG_H

#include "cli.h"

/* Reads the system file, the user's ($XDG_CONFIG_HOME/vzp11/config or
 * ~/.config/vzp11/config) and explicit (--config; NULL: none), later ones
 * overriding earlier ones key by key. A file that is missing is skipped
 * (not the explicit one); one that others may write to, or owned by
 * neither root nor the user, is refused, and so is an unknown section or
 * key, a bad value or a PIN: the message names file and line. */
vz_rv vz_config_load(const char *explicit_path, vz_err *err);
void vz_config_free(void);

/* Where this build looks for the system file (SYSCONFDIR/vzp11/vzp11.conf). */
const char *vz_config_system_file(void);

/* Fills the global options neither the command line nor the environment
 * set (g holds those already); not module-args (vz_config_module). */
void vz_config_globals(vz_global *g);

/* The module in effect and the arguments that go with it: those given in
 * the same place as the module (the command line, the environment, or one
 * configuration file), never another place's; with -v, once per run, which
 * arguments were left out. No module named anywhere: *module NULL and the
 * first arguments given, for the token layer to refuse. VZ_USAGE, with the
 * reason in err, for --module-args without --module on the command line
 * while the module comes from elsewhere. */
vz_rv vz_config_module(const vz_global *g, const char **module, const char **args, vz_err *err);

/* The command's arguments with the file's settings for it put in front, as
 * options, where neither its arguments nor the environment give them;
 * `--flow NAME` of a [flow "NAME"] section replaced by the flow it names.
 * *argv is replaced by a new array (freed at exit with vz_config_free).
 * 0, or the usage exit code. */
int vz_config_args(const char *cmd, int *argc, char ***argv);

/* The --config FILE in argv, or NULL. */
const char *vz_config_option(int argc, char **argv);

int cmd_config(vz_global *g, int argc, char **argv);

#endif
