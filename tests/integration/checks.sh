# checks.sh - the count of failed checks and how a check reports (sourced by
# lib.sh and by the tests that need no token: docs, install, package).
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
pass() { echo "ok: $*"; }
