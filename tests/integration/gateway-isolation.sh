#!/bin/sh
# gateway-isolation.sh: 16 practice programs ask COV about 16 different
# people through `vzp11 gateway` at once, interleaved with smuggling and
# malformed requests; every answer must name the person its own request
# asked for (0 mix-ups), every COV request must get its answer, and no
# request hidden in another may reach the mock (its --record)
# (tests/tools/isolation). ISOLATION_REQUESTS sets how many (default 4000,
# 400 under a wrapper such as valgrind).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"
. "$(dirname "$0")/gwsock.sh"

new_token gateway-isolation
must_import "$PKI/sys-rsa2048.p12"
requests=${ISOLATION_REQUESTS:-4000} timeout=30
[ -z "${VZP11_WRAPPER:-}" ] || requests=${ISOLATION_REQUESTS:-400} timeout=120
rm -f "$T/record"
start_mock --synthetic --record "$T/record"
trap stop_all EXIT
start_sock_gw --pool 4 --max-clients 64
set +e
/usr/bin/python3 "$SRCDIR/tests/tools/isolation" --connect "unix:$SOCK" \
	--population "$SRCDIR/tests/mock/population.json" --clients 16 --requests "$requests" \
	--timeout $timeout --hidden "$T/hidden" >"$T/iso.out" 2>"$T/iso.err"
irc=$?
set -e
cat "$T/iso.out"
[ "$irc" -le 1 ] || { fail "the isolation tool did not run (exit $irc)"; cat "$T/iso.err"; }
n=$(sed -n 's/^requests=\([0-9]*\) .*/\1/p' "$T/iso.out")
[ "${n:-0}" -ge "$requests" ] && pass "$n COV requests through the gateway from 16 clients at once" ||
	fail "only ${n:-0} of $requests COV requests were sent"
expect_in "$T/iso.out" ' attacks=[1-9]' "smuggling and malformed requests were interleaved"
expect_in "$T/iso.out" ' mixups=0 ' "every answer names the person its own request asked for (0 mix-ups)"
expect_in "$T/iso.out" ' failed=0$' "every COV request got its answer"
# a hidden request must not reach the mock either (issue 14: the push did)
n=$(awk 'NR == FNR { h[$1] = 1; next } ($4 in h)' "$T/hidden" "$T/record" | wc -l)
[ -s "$T/hidden" ] && [ "$n" -eq 0 ] && pass "no hidden request reached the mock" ||
	fail "$n hidden requests reached the mock (smuggled past the gateway)"
stop_sock_gw
stop_mock
finish
