# checks.sh - the count of failed checks and how a check reports (sourced by
# lib.sh and by the tests that need no token: docs, install, package).
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
# checks_end: exit 1 when a check failed (saying how many), else 0.
checks_end() {
	if [ "$failures" -ne 0 ]; then
		echo "$failures check(s) failed"
		exit 1
	fi
	exit 0
}
