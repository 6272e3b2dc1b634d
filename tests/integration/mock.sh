# mock.sh - start and stop tests/mock/vzmock for a test (sourced after lib.sh).
: "${VZMOCK:?}"

# rights_file: the RSA 2048 system certificate has the COV right, the EC one
# only another right; every other certificate is unknown to the mock.
rights_file() {
	fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
	{
		echo "$(fp "$PKI/sys-rsa2048.crt") cov billing"
		echo "$(fp "$PKI/sys-ec256.crt") billing"
	} >"$T/rights"
}

# start_mock [vzmock options]: sets ENDPOINT and MOCK_PID. The mock gets
# none of the tests' secrets (lib.sh's no_secrets).
start_mock() {
	[ -f "$T/rights" ] || rights_file
	rm -f "$T/port" "$T/stats.json"
	# shellcheck disable=SC2046
	env $(no_secrets) "$VZMOCK" --cert "${MOCK_CERT:-$PKI/server-chain.pem}" --key "${MOCK_KEY:-$PKI/server.key}" \
		--ca "$PKI/chain.pem" --population "$SRCDIR/tests/mock/population.json" \
		--rights "$T/rights" --port-file "$T/port" --stats "$T/stats.json" --idle-exit 120 \
		"$@" 2>"$T/mock.log" &
	MOCK_PID=$!
	i=0
	while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$T/port" ] || { fail "the mock did not start"; cat "$T/mock.log"; finish; }
	ENDPOINT=https://localhost:$(cat "$T/port")/cov/vz801802/v1/soap11
	trap stop_mock EXIT
}

stop_mock() {
	[ -n "${MOCK_PID:-}" ] || return 0
	kill "$MOCK_PID" 2>/dev/null || true
	wait "$MOCK_PID" 2>/dev/null || true
	MOCK_PID=
}

# mock_stat NAME: a counter from the mock's stats file.
mock_stat() {
	sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$T/stats.json"
}
