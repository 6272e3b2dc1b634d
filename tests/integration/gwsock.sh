# gwsock.sh - `vzp11 gateway` on a unix socket only, towards the mock (sourced
# after lib.sh and mock.sh by gateway-framing.sh and gateway-isolation.sh). A
# unix socket is plain HTTP whatever the access policy of TCP listeners is.
GW_PID=
stop_all() {
	if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
	GW_PID=
	stop_mock
}

# start_sock_gw [gateway options]: sets SOCK; the mock must run.
start_sock_gw() {
	SOCK=$T/gw.sock
	: >"$T/gw.log"
	# shellcheck disable=SC2086
	${VZP11_WRAPPER:-} "$VZP11_BIN" gateway --listen "unix:$SOCK" --cacert "$PKI/root.crt" \
		--upstream "https://localhost:$(cat "$T/port")" "$@" 2>"$T/gw.log" &
	GW_PID=$!
	trap stop_all EXIT
	i=0 limit=200
	[ -z "${VZP11_WRAPPER:-}" ] || limit=1200
	while ! grep -q 'listening on unix:' "$T/gw.log" && [ $i -lt $limit ] &&
		kill -0 "$GW_PID" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
	grep -q 'listening on unix:' "$T/gw.log" || { fail "the gateway did not start"; cat "$T/gw.log"; finish; }
}

# stop_sock_gw: SIGTERM; the gateway must exit 0 in bounded time, so a crash
# or a sanitizer or valgrind report in the gateway fails the test.
stop_sock_gw() {
	[ -n "$GW_PID" ] || return 0
	kill -TERM "$GW_PID" 2>/dev/null || true
	i=0 limit=300
	[ -z "${VZP11_WRAPPER:-}" ] || limit=1200
	while kill -0 "$GW_PID" 2>/dev/null && [ $i -lt $limit ]; do sleep 0.1; i=$((i + 1)); done
	kill -0 "$GW_PID" 2>/dev/null && { fail "the gateway did not stop after SIGTERM"; kill -KILL "$GW_PID"; }
	set +e
	wait "$GW_PID"
	grc=$?
	set -e
	GW_PID=
	# vz_gw_xfer_to() logs a state change its table refuses as a bug
	if grep -q "bug: " "$T/gw.log"; then
		fail "the gateway logged a bug"
		grep "bug: " "$T/gw.log" | head -5 | sed 's/^/  | /'
	fi
	if [ "$grc" -eq 0 ]; then pass "the gateway stopped cleanly after SIGTERM"; else
		fail "the gateway exited $grc after SIGTERM (a crash, a sanitizer report or a valgrind error)"
		tail -n 60 "$T/gw.log" | sed 's/^/  | /'
	fi
}
