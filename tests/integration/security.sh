#!/bin/sh
# security.sh CASE: what another user of the machine could see of a running
# vzp11: its command line, its environment, whether it can be dumped.
. "$(dirname "$0")/lib.sh"

# live_process: the documented way, PIN and password from environment
# variables the user chose (env:VZT_PIN, env:VZT_P12), both really set.
# faulty-p11 holds the import in C_CreateObject, after the PIN and the
# password were used, while /proc/PID is read. Each secret must be in its
# own variable and nowhere else: not in another variable, not in argv, not
# in a message or the output.
case_live_process() {
	: "${FAULTY_P11:?}"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_SLEEP=C_CreateObject:1000 \
		VZP11_MODULE=$FAULTY_P11 VZP11_PIN_SOURCE=env:VZT_PIN "$VZP11_BIN" import \
		"$PKI/sys-rsa2048.p12" --password-source env:VZT_P12 >"$T/out" 2>"$T/err" &
	pid=$!
	sleep 0.8
	read_proc "$pid"
	wait "$pid" && rc=0 || rc=$?
	expect_rc 0 "import with PIN and password from the environment"
	expect_in "$T/cmdline" "import .*--password-source env:VZT_P12" "command line was read while it ran"
	expect_secret_only_in VZT_PIN
	expect_secret_only_in VZT_P12
}

# live_process_fd: PIN from a 0600 file, password through a file descriptor
# (an import waiting on a FIFO); neither reaches argv, output or messages.
case_live_process_fd() {
	mkfifo "$T/pwfifo"
	(umask 077 && printf '%s\n' "$VZT_PIN" >"$T/pin")
	VZP11_PIN_SOURCE="file:$T/pin" "$VZP11_BIN" import \
		"$PKI/sys-rsa2048.p12" --password-source fd:3 3<"$T/pwfifo" >"$T/out" 2>"$T/err" &
	pid=$!
	exec 4>"$T/pwfifo"
	sleep 0.3
	tr '\0' ' ' <"/proc/$pid/cmdline" >"$T/cmdline" 2>/dev/null || true
	printf '%s\n' "$VZT_P12" >&4
	exec 4>&-
	wait "$pid" && rc=0 || rc=$?
	expect_rc 0 "import with the password from a file descriptor"
	expect_in "$T/cmdline" "import" "command line was read while it ran"
	expect_not_in "$T/cmdline" "$VZT_P12|$VZT_PIN" "no secret in the command line"
	expect_not_in "$T/out" "$VZT_P12|$VZT_PIN" "no secret in the output"
	expect_not_in "$T/err" "$VZT_P12|$VZT_PIN" "no secret in the messages"
}

# not_dumpable: the kernel hands the files in /proc/PID of a non-dumpable
# process to root. Run vzp11 as nobody, waiting for a password, and look at the owner.
case_not_dumpable() {
	command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to switch to nobody"; exit 77; }
	d=$(mktemp -d /tmp/vzp11-dump.XXXXXX)
	chmod 755 "$d"
	cp "$PKI/sys-rsa2048.p12" "$d/cert.p12"
	chmod 644 "$d/cert.p12"
	mkfifo -m 666 "$d/fifo"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$VZP11_BIN" import "$d/cert.p12" \
		--password-source fd:3 3<"$d/fifo" >"$T/out" 2>"$T/err" &
	pid=$!
	exec 4>"$d/fifo"
	sleep 0.3
	uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo none)
	owner=$(stat -c %u "/proc/$pid/environ" 2>/dev/null || echo none)
	printf 'wrong\n' >&4
	exec 4>&-
	wait "$pid" || true
	rm -rf "$d"
	[ "$uid" = 65534 ] && pass "vzp11 ran as nobody" || fail "vzp11 ran as uid $uid"
	[ "$owner" = 0 ] && pass "the process is not dumpable (/proc/PID/environ owned by root)" ||
		fail "/proc/PID/environ is owned by uid $owner: the process is dumpable"
}

# No file written by a run holds a secret: search the token directory and
# the working files for the PIN and the password in plain text.
case_no_secret_in_files() {
	run vz import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	expect_rc 0 "import"
	if grep -rqaF -e "$VZT_PIN" -e "$VZT_P12" "$T/hsm" "$T/out" "$T/err" 2>/dev/null; then
		fail "a secret was found in a file"
	else pass "neither PIN nor password in any file of the run"; fi
}

case_pin_in_uri_refused() {
	fake=not-the-pin-7731
	VZP11_TOKEN="pkcs11:token=$TOKEN_LABEL;pin-value=$fake" run vz list
	expect_rc 1 "a token URI with a PIN"
	expect_in "$T/err" "does not take PINs from URIs" "says why"
	expect_not_in "$T/err" "$fake" "does not repeat the PIN"
}

new_token "security-$1"
"case_$(echo "$1" | tr - _)"
finish
