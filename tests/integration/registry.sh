# registry.sh - a private p11-kit module registry (sourced after lib.sh).
# A command that loads every module registered with p11-kit must not load
# what the machine happens to have registered (tpm2-pkcs11 registers itself
# for every program: TCTI errors, leaks under valgrind, aborts under ASan).
# registry_vz runs vzp11 in a private mount namespace whose
# /usr/share/p11-kit/modules and /etc/pkcs11 are the test's own directories,
# holding only the modules the test registers; the real ones are never
# changed.

if ! command -v unshare >/dev/null || [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root and unshare (a private p11-kit registry in a mount namespace)"
	exit 77
fi
unshare -m --propagation private true 2>/dev/null ||
	{ echo "SKIP: unshare -m is not allowed here"; exit 77; }
[ -d /usr/share/p11-kit/modules ] ||
	{ echo "SKIP: p11-kit has no module directory /usr/share/p11-kit/modules"; exit 77; }

# The system configuration and both system module directories are
# replaced; user-config none keeps ~/.config/pkcs11 out as well.
REGISTRY=$T/p11-kit
mkdir -p "$REGISTRY/modules" "$REGISTRY/etc/modules"
echo "user-config: none" >"$REGISTRY/etc/pkcs11.conf"

# register NAME MODULE_FILE: NAME.module in the private registry.
register() {
	printf 'module: %s\n' "$2" >"$REGISTRY/modules/$1.module"
}

# Run by sh -c inside the namespace: $1 is $REGISTRY.
# shellcheck disable=SC2016
REGISTRY_SETUP='r=$1
shift
mount --bind "$r/modules" /usr/share/p11-kit/modules ||
	{ echo "registry.sh: cannot bind $r/modules" >&2; exit 96; }
if [ -d /etc/pkcs11 ]; then
	mount --bind "$r/etc" /etc/pkcs11 || { echo "registry.sh: cannot bind $r/etc" >&2; exit 96; }
fi
exec "$@"'

# registry_vz ARGS: vzp11 ARGS with the private registry, through run.
registry_vz() {
	# shellcheck disable=SC2086
	run unshare -m --propagation private sh -c "$REGISTRY_SETUP" sh "$REGISTRY" \
		${VZP11_WRAPPER:-} "$VZP11_BIN" "$@"
}
