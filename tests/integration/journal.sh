#!/bin/sh
# journal.sh CASE - the billing journal under concurrent use.
#   race-sqlite       20 processes declare the same content into one fresh
#                     SQLite file at once: exactly one wins, the others are
#                     told the winner's traceer id
#   race-postgresql   the same against a throwaway PostgreSQL cluster
#   unit-postgresql   the journal unit tests against a fresh cluster
# Env (from tests/meson.build): TESTWORK, SRCDIR, JOURNAL_RACE, TEST_JOURNAL;
# VZP11_WRAPPER (valgrind setup) runs our binaries under a tool.
set -eu
: "${TESTWORK:?}" "${SRCDIR:?}"

CASE=${1:?usage: journal.sh CASE}
RACERS=20
# Under valgrind a racer translates SQLite's code while it holds the write
# lock, for seconds on a loaded machine: fewer racers keep the wait under
# the journal's 10 s busy timeout. The plain run proves the 20-way race.
[ -z "${VZP11_WRAPPER:-}" ] || RACERS=5
PG_CLUSTER=$SRCDIR/tests/tools/pg-cluster
W=$TESTWORK/journal-$CASE
rm -rf "$W"
mkdir -p "$W"
cluster=

cleanup() {
	rc=$?
	trap - EXIT
	if [ -n "$cluster" ]; then
		"$PG_CLUSTER" stop "$cluster" || { echo "FAIL: could not stop $cluster"; rc=1; }
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
pass() { echo "ok: $*"; }

# start_cluster: a fresh cluster; sets $uri (exits 77 to skip). It lives
# in /tmp: a short socket path, and parents its server user can search.
start_cluster() {
	cluster=$(mktemp -d /tmp/vzp11-pg-XXXXXX)
	set +e
	uri=$("$PG_CLUSTER" start "$cluster")
	rc=$?
	set -e
	[ "$rc" -ne 77 ] || exit 77
	[ "$rc" -eq 0 ] || { echo "FAIL: pg-cluster start (exit $rc)"; exit 1; }
}

# race SPEC: $RACERS journal-race processes on one sha256, started at once.
race() {
	spec=$1
	sha=$(printf 'race %s %s' "$$" "$(date +%s%N)" | sha256sum | cut -c1-64)
	pids=
	i=1
	while [ "$i" -le "$RACERS" ]; do
		# shellcheck disable=SC2086
		${VZP11_WRAPPER:-} "$JOURNAL_RACE" "$spec" "$sha" "$W/go" >"$W/out.$i" 2>"$W/err.$i" &
		pids="$pids $!"
		i=$((i + 1))
	done
	sleep 1 # let every racer reach its wait loop (slower under valgrind)
	[ -z "${VZP11_WRAPPER:-}" ] || sleep 4
	touch "$W/go"
	bad=0
	for p in $pids; do wait "$p" || bad=$((bad + 1)); done
	[ "$bad" -eq 0 ] && pass "all $RACERS racers finished with exit 0" ||
		{ fail "$bad racers failed"; cat "$W"/err.* | head -20; }
	cat "$W"/out.* >"$W/all"
	won=$(grep -c '^won ' "$W/all" || true)
	dup=$(grep -c '^duplicate ' "$W/all" || true)
	[ "$won" -eq 1 ] && pass "exactly one racer won" || fail "$won racers won"
	[ "$dup" -eq $((RACERS - 1)) ] && pass "$dup racers were told it is a duplicate" ||
		fail "$dup duplicates, expected $((RACERS - 1))"
	winner=$(sed -n 's/^won //p' "$W/all" | head -n 1)
	others=$(sed -n 's/^duplicate //p' "$W/all" | sort -u)
	if [ -n "$winner" ] && [ "$others" = "$winner" ]; then
		pass "every duplicate names the winner $winner"
	else
		fail "duplicates name '$others', the winner is '$winner'"
	fi
	if [ -n "$(cat "$W"/err.*)" ]; then
		fail "racers wrote to stderr"
		cat "$W"/err.* | head -20
	fi
}

case $CASE in
race-sqlite)
	race "$W/journal.db"
	mode=$(stat -c %a "$W/journal.db")
	[ "$mode" = 600 ] && pass "journal file mode 600" || fail "journal file mode $mode"
	;;
race-postgresql)
	start_cluster
	race "$uri"
	;;
unit-postgresql)
	: "${TEST_JOURNAL:?}"
	start_cluster
	set +e
	# shellcheck disable=SC2086
	VZP11_TEST_PG=$uri ${VZP11_WRAPPER:-} "$TEST_JOURNAL" >"$W/unit.out" 2>&1
	rc=$?
	set -e
	cat "$W/unit.out"
	[ "$rc" -eq 0 ] && pass "unit tests pass on PostgreSQL" || fail "unit tests exit $rc"
	grep -q 'OK \] postgresql/' "$W/unit.out" && pass "PostgreSQL cases passed" ||
		fail "no PostgreSQL case ran"
	if grep -q 'SKIPPED.*postgresql/' "$W/unit.out"; then
		fail "PostgreSQL cases were skipped"
	fi
	;;
*)
	echo "journal.sh: unknown case $CASE" >&2
	exit 2
	;;
esac

[ "$failures" -eq 0 ] || exit 1
