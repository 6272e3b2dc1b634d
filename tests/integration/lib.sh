# lib.sh - shared by the integration tests (sourced). Every test gets its own
# SoftHSM2 token under $TESTWORK/<test>/; PINs and passwords travel only in
# the environment, never on a command line.
set -eu

: "${VZP11_BIN:?}" "${TESTWORK:?}" "${SRCDIR:?}"
SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -e "$SOFTHSM_MODULE" ] || { echo "SKIP: SoftHSM2 is not installed"; exit 77; }
PKI=$TESTWORK/pki
[ -f "$PKI/done" ] || { echo "FAIL: the setup test did not build $PKI"; exit 1; }

# English messages whatever the runner's language (i18n.sh asks for Dutch).
export LC_ALL=C.UTF-8
unset LANGUAGE
export VZT_PIN=4711-test-pin
export VZT_SO_PIN=so-pin-0815
export VZT_P12=$(cat "$PKI/password")
export VZP11_MODULE=$SOFTHSM_MODULE
export VZP11_PIN_SOURCE=env:VZT_PIN
unset VZP11_TOKEN
# The tokens' lock files (src/token/toklock.c) in the build, not in
# /run/lock; one file per token, and every test token has its own serial.
export VZP11_LOCK_DIR=$TESTWORK/locks
mkdir -p "$VZP11_LOCK_DIR"

. "$(dirname "$0")/checks.sh"

# new_token NAME [LABEL]: a fresh token in its own directory.
new_token() {
	T=$TESTWORK/$1
	rm -rf "$T"
	mkdir -p "$T"
	TOKEN_LABEL=${2:-vzp11-test}
	SOFTHSM2_CONF=$(VZP11_SO_PIN=$VZT_SO_PIN VZP11_USER_PIN=$VZT_PIN \
		"$SRCDIR/scripts/softhsm-token" "$T/hsm" "$TOKEN_LABEL")
	export SOFTHSM2_CONF
}

# no_secrets: env(1)'s options that leave the tests' VZT_* variables (PINs,
# passwords) out of a command's environment: the daemons the tests start
# (the mock, p11-kit server, a token's daemons) have no business with them.
# Used as `env $(no_secrets) CMD ... &`, a simple command, so that $! is
# CMD's own PID (env execs it).
no_secrets() {
	env | sed -n 's/^\(VZT_[A-Za-z0-9_]*\)=.*/-u \1/p' | tr '\n' ' '
}

# VZP11_WRAPPER runs vzp11 under a tool (meson test --setup valgrind).
vz() {
	# shellcheck disable=SC2086
	${VZP11_WRAPPER:-} "$VZP11_BIN" "$@"
}

# run CMD...: stdout in $T/out, stderr in $T/err, exit code in $rc.
run() {
	set +e
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	set -e
}

expect_rc() { # expect_rc N WHAT
	if [ "$rc" -eq "$1" ]; then pass "$2 (exit $rc)"; else
		fail "$2: exit $rc, expected $1"
		sed 's/^/  stderr: /' "$T/err"
	fi
}

expect_in() { # expect_in FILE REGEX WHAT
	if grep -Eq -- "$2" "$1"; then pass "$3"; else
		fail "$3: /$2/ not in $(basename "$1")"
		sed 's/^/  | /' "$1" | head -20
	fi
}

expect_not_in() { # expect_not_in FILE REGEX WHAT
	if grep -Eq -- "$2" "$1"; then
		fail "$3: /$2/ found in $(basename "$1")"
	else pass "$3"; fi
}

# p11 ARGS: OpenSC's pkcs11-tool, logged in to the test token; it reads the
# PIN from the environment (env:VZT_PIN), so no PIN is on its command line.
p11() {
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$TOKEN_LABEL" --login \
		--pin env:VZT_PIN "$@"
}

# objects: the token's objects as pkcs11-tool sees them, logged in; one
# object per paragraph, sorted (SoftHSM lists in no fixed order). When
# pkcs11-tool fails, the test fails: at once, or (inside $(...) or a
# pipeline) in finish, through a marker file.
objects() {
	if ! p11 --list-objects >"$T/p11-list.out" 2>"$T/p11-list.err"; then
		echo "FAIL: pkcs11-tool could not list the token's objects" >&2
		sed 's/^/  | /' "$T/p11-list.err" >&2
		: >"$T/p11-list.failed"
		exit 1
	fi
	grep -v '^Using slot' "$T/p11-list.out" |
		awk '/^[A-Z]/ && obj != "" { print obj; obj = "" } { obj = obj $0 "\037" }
			END { if (obj != "") print obj }' | sort | tr '\037' '\n'
}

# snapshot NAME: the objects now, in $T/NAME.objects, to compare against
# later; an empty snapshot would make every comparison meaningless.
snapshot() {
	objects >"$T/$1.objects"
	if ! [ -s "$T/$1.objects" ]; then
		echo "FAIL: the snapshot '$1' of the token is empty; nothing to compare against"
		exit 1
	fi
}

expect_unchanged() { # expect_unchanged BEFORE WHAT
	objects >"$T/now.objects"
	if cmp -s "$T/$1.objects" "$T/now.objects"; then pass "$2: token objects unchanged"; else
		fail "$2: token objects changed"
		diff "$T/$1.objects" "$T/now.objects" | head -20
	fi
}

count_objects() { # count_objects REGEX
	objects | grep -cE "$1" || true
}

# imp FILE [ARGS]: vzp11 import with the test password.
imp() { run vz import "$@" --password-source env:VZT_P12; }

# must_import FILE [ARGS]: a certificate a case starts from. Imported
# without VZP11_WRAPPER: the case tests something else, and the import
# tests run import under valgrind themselves (each run there costs seconds).
must_import() {
	run "$VZP11_BIN" import "$@" --password-source env:VZT_P12
	[ "$rc" -eq 0 ] || { fail "import $*"; cat "$T/err"; finish; }
}

# seed: a token that already holds something, so "unchanged" means
# something; its objects are in the "before" snapshot.
seed() {
	imp "$PKI/sys-ec256.p12" --label seeded
	[ "$rc" -eq 0 ] || { fail "seeding the token failed"; cat "$T/err"; finish; }
	snapshot before
}

# put_key FILE.p12 LABEL ID [pkcs11-tool options]: the file's key onto the
# token by another tool (pkcs11-tool), as a token's own tool would.
put_key() {
	f=$1 label=$2 id=$3
	shift 3
	openssl pkcs12 -in "$f" -nocerts -noenc -passin env:VZT_P12 2>/dev/null |
		openssl pkey -outform der -out "$T/key.der" ||
		{ fail "extracting the key of $(basename "$f")"; finish; }
	p11 --write-object "$T/key.der" --type privkey --label "$label" --id "$id" "$@" \
		>"$T/put.log" 2>&1 || { fail "pkcs11-tool could not write the key"; cat "$T/put.log"; finish; }
	rm -f "$T/key.der"
}

# provider_module: sets PROVIDER_MODULE to pkcs11-provider's file in this
# machine's OpenSSL modules directory, or skips the test.
provider_module() {
	d=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
	PROVIDER_MODULE=$d/pkcs11.so
	[ -n "$d" ] && [ -e "$PROVIDER_MODULE" ] ||
		{ echo "SKIP: pkcs11-provider is not in OpenSSL's modules directory '$d'"; exit 77; }
}

# read_proc PID: a running process's command line ($T/cmdline, spaces)
# and environment ($T/environ, a variable a line).
read_proc() {
	tr '\0' ' ' <"/proc/$1/cmdline" >"$T/cmdline" 2>/dev/null || true
	tr '\0' '\n' <"/proc/$1/environ" >"$T/environ" 2>/dev/null || true
}

# expect_secret_only_in VAR: the secret in VAR (an env: source) is in that
# variable, where the user put it, and nowhere else: no other variable,
# not the command line, the output ($T/out) or the messages ($T/err).
expect_secret_only_in() {
	eval "secret=\$$1"
	expect_in "$T/environ" "^$1=$secret\$" "the secret is in $1, where the user put it"
	n=$(grep -cF -- "$secret" "$T/environ" || true)
	[ "$n" -eq 1 ] && pass "$1's secret is in no other environment variable" ||
		fail "$1's secret is in $n environment entries"
	expect_not_in "$T/cmdline" "$secret" "$1's secret is not in the command line"
	expect_not_in "$T/out" "$secret" "$1's secret is not in the output"
	expect_not_in "$T/err" "$secret" "$1's secret is not in the messages"
}

finish() {
	if [ -e "$T/p11-list.failed" ]; then
		fail "pkcs11-tool failed to list the token's objects during the test"
	fi
	checks_end
}
