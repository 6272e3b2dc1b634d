#!/bin/sh
# gateway-framing.sh: raw requests with every framing trick (CL.TE, TE.CL,
# TE.TE, odd Content-Length and chunk shapes, bare LF, obs-fold, CR and NUL
# in headers) sent to `vzp11 gateway`; each must be refused with a 4xx with
# nothing reaching the mock, or reach the mock exactly as an independent
# parser (h11) reads it: the same requests, the same body bytes (the mock's
# --record: length and SHA-256). The corpus and the rules: tests/tools/framing-diff.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"
. "$(dirname "$0")/gwsock.sh"

/usr/bin/python3 -c 'import h11' 2>/dev/null || { echo "SKIP: python3-h11 is not installed"; exit 77; }
new_token gateway-framing
must_import "$PKI/sys-rsa2048.p12"
rm -f "$T/record"
start_mock --record "$T/record"
trap stop_all EXIT
start_sock_gw
quiet=0.5 timeout=5
[ -z "${VZP11_WRAPPER:-}" ] || quiet=1 timeout=30
# libmicrohttpd before 1.0 takes a bare LF for CRLF in a chunked body and
# cannot be told otherwise: such cases are judged by their CRLF twin there
# (see framing-diff), by h11 alone from 1.0 on. The gateway names its
# libmicrohttpd at start.
lenient=
mhd=$(sed -n 's/.*server: libmicrohttpd \([0-9][0-9.]*\).*/\1/p' "$T/gw.log" | head -n1)
[ -n "$mhd" ] || fail "the gateway did not name its libmicrohttpd at start"
case $mhd in 0.*) lenient=--bare-lf-chunks-as-crlf ;; esac
set +e
/usr/bin/python3 "$SRCDIR/tests/tools/framing-diff" --connect "unix:$SOCK" --record "$T/record" \
	--quiet $quiet --timeout $timeout $lenient >"$T/diff.out" 2>"$T/diff.err"
drc=$?
set -e
[ "$drc" -le 1 ] || { fail "framing-diff did not run (exit $drc)"; cat "$T/diff.err"; }
grep -E '^(ok|FAIL): ' "$T/diff.out" || true
failures=$((failures + $(grep -c '^FAIL: ' "$T/diff.out" || true)))
n=$(grep -c '^ok: ' "$T/diff.out" || true)
[ "$n" -gt 0 ] || fail "no case of the corpus passed (did the gateway answer at all?)"
tail -n 1 "$T/diff.out"
stop_sock_gw
stop_mock
finish
