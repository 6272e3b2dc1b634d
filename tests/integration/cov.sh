#!/bin/sh
# cov.sh CASE: insurance checks (COV) signed by the SoftHSM key, against the
# mock VECOZO (or openssl s_server), as practice software runs them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"

setup_token() {
	imp "$PKI/sys-rsa2048.p12"
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
}

cov() { run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" "$@"; }

# expect_json FILE PYTHON-ASSERTIONS: o is the parsed JSON.
expect_json() {
	python3 - "$1" "$2" >"$T/check" 2>&1 <<'PY' || true
import json, sys
o = json.load(open(sys.argv[1]))
exec(sys.argv[2])
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "$3"
}

case_found() {
	setup_token
	start_mock
	cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 0 "a person who is found"
	expect_in "$T/out" "^Result: +Gevonden" "result Gevonden"
	expect_in "$T/out" "J\. de Vries \(born 1962-03-15, Vrouw\)" "name, birth date and gender"
	expect_in "$T/out" "Actief +UZOVI 3000 +insured nr 100000001 +Basis" "the active insurance"
	[ "$(mock_stat connections)" -eq 1 ] && pass "one TLS connection" || fail "$(mock_stat connections) connections"
}

case_found_json() {
	setup_token
	start_mock
	cov --json --bsn 999979668 --birthdate 1962-03-15 --date 2026-06-01 --reference dossier-17
	expect_rc 0 "cov --json"
	expect_json "$T/out" '
assert set(o) == {"bsn","birthdate","date","reference","result","person","insurances","error"}, set(o)
assert o["bsn"] == "999979668" and o["birthdate"] == "1962-03-15" and o["date"] == "2026-06-01"
assert o["reference"] == "dossier-17" and o["result"] == "Gevonden" and o["error"] is None
p = o["person"]
assert set(p) == {"result","initials","prefix","surname","birthdate","gender","deceased"}, set(p)
assert p == {"result":"ActieveVerzekeringen","initials":"J.","prefix":"de","surname":"Vries",
             "birthdate":"1962-03-15","gender":"Vrouw","deceased":False}, p
i = o["insurances"][0]
assert set(i) == {"status","uzovi","insured_number","kind","package_code","package_name",
                  "label_code","label_name","start","end"}, set(i)
assert i["uzovi"] == "3000" and isinstance(i["uzovi"], str) and i["status"] == "Actief"
assert i["kind"] == "Basis" and i["start"] == "2015-01-01" and i["end"] is None
' "the JSON of one check has exactly the agreed fields and values"
}

case_not_found() {
	setup_token
	start_mock
	cov --bsn 111222333 --birthdate 1999-01-01
	expect_rc 0 "a person not found is a successful check"
	expect_in "$T/out" "^Result: +CombinatieBsnGeboortedatumOnbekend" "says the combination is unknown"
	cov --bsn 100000009 --birthdate 1999-01-01
	expect_rc 0 "an unknown BSN"
	expect_in "$T/out" "^Result: +BsnOnbekend" "says BsnOnbekend"
}

case_eleven_test() {
	setup_token
	start_mock
	VZP11_PIN_SOURCE=env:UNSET_PIN cov --bsn 111222334 --birthdate 1980-07-01
	expect_rc 1 "a BSN failing the eleven-test"
	expect_in "$T/err" "eleven-test.*not sent" "says it was not sent"
	expect_not_in "$T/err" "111222334" "the BSN is not repeated in the message"
	[ "$(mock_stat requests)" -eq 0 ] && pass "no request reached VECOZO" || fail "$(mock_stat requests) requests sent"
	cov --bsn 999979668 --birthdate 1962-02-30
	expect_rc 1 "an impossible birth date"
	expect_in "$T/err" "birth date is not a date" "says the date is wrong"
}

case_result_codes() {
	setup_token
	start_mock
	old=$(date -d '-3 years' +%Y-%m-%d)
	future=$(date -d '+30 days' +%Y-%m-%d)
	cat >"$T/in.csv" <<CSV
bsn,birthdate,date,reference
999979668,1962-03-15,,found
100000009,1970-01-01,,unknown
111222333,1999-01-01,,combination
999979668,1962-03-15,$old,old
999979668,1962-03-15,$future,future
246813581,1975-05-05,,several
135792460,1990-09-09,,notfound
192837461,2001-02-03,,double
123456782,1950-11-30,,inactive
CSV
	cov --json --batch "$T/in.csv"
	expect_rc 0 "a batch of result codes"
	expect_json "$T/out" '
r = {x["reference"]: x for x in o}
assert [x["reference"] for x in o] == ["found","unknown","combination","old","future","several","notfound","double","inactive"]
assert r["found"]["result"] == "Gevonden"
assert r["unknown"]["result"] == "BsnOnbekend"
assert r["combination"]["result"] == "CombinatieBsnGeboortedatumOnbekend"
assert r["old"]["result"] == "Peildatum2JaarOfOuder"
assert r["future"]["result"] == "GevondenPeildatumInToekomst"
assert r["several"]["result"] == "MeerderePersonenGevonden"
assert r["notfound"]["result"] == "NietGevonden"
assert r["double"]["person"]["result"] == "DubbeleActieveVerzekeringenGevonden"
assert r["inactive"]["person"]["result"] == "InactieveVerzekeringen"
assert r["inactive"]["person"]["deceased"] is True
assert r["inactive"]["insurances"][0]["status"] == "Inactief" and r["inactive"]["insurances"][0]["end"] == "2019-12-31"
assert all(x["error"] is None for x in o)
' "every result code comes back on the right row"
	[ "$(mock_stat requests)" -eq 1 ] && pass "nine searches in one request" || fail "$(mock_stat requests) requests"
}

case_more_than_20() {
	setup_token
	start_mock
	python3 - >"$T/req.xml" <<'PY'
print('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.vecozo.nl/VZ801802/v1/types"><s:Body><Controleer><request><Zoekopdrachten>')
for i in range(21):
    print(f'<t:Zoekopdracht><t:Volgnummer>{i+1}</t:Volgnummer><t:Geboortedatum>1962-03-15</t:Geboortedatum><t:Peildatum>2026-01-01</t:Peildatum><t:Bsn>999979668</t:Bsn></t:Zoekopdracht>')
print('</Zoekopdrachten></request></Controleer></s:Body></s:Envelope>')
PY
	curl -s --cert "$PKI/sys-rsa2048.crt" --key "$PKI/sys-rsa2048.key" --cacert "$PKI/root.crt" \
		-H 'Content-Type: text/xml' --data-binary @"$T/req.xml" "$ENDPOINT" >"$T/resp.xml"
	expect_in "$T/resp.xml" "MeerDan20Zoekopdrachten" "the mock answers 21 searches with MeerDan20Zoekopdrachten"
	# vzp11 never sends more than 20: 45 rows take 3 requests.
	{ echo bsn,birthdate; i=0; while [ $i -lt 45 ]; do echo 999979668,1962-03-15; i=$((i + 1)); done; } >"$T/in.csv"
	cov --batch "$T/in.csv" --jobs 1
	expect_rc 0 "45 searches"
	[ "$(mock_stat requests)" -eq 4 ] && pass "45 searches went in 3 requests of at most 20" ||
		fail "$(mock_stat requests) requests (1 from curl expected plus 3)"
	[ "$(grep -c ',Gevonden,' "$T/out")" -eq 45 ] && pass "45 results" || fail "not 45 results"
}

case_not_authenticated() {
	imp "$PKI/sys-rsa4096.p12"
	start_mock
	cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "a certificate VECOZO does not know"
	expect_in "$T/err" "Niet geauthenticeerd" "names the fault"
	expect_in "$T/err" "IP address not registered" "mentions the IP registration"
	expect_in "$T/err" "another environment" "mentions the environment"
}

case_not_authorized() {
	imp "$PKI/sys-ec256.p12"
	start_mock
	cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "a certificate without the COV right"
	expect_in "$T/err" "Niet geautoriseerd" "names the fault"
	expect_in "$T/err" "VZ801/802 right" "says which right to ask for"
}

case_wrong_pin() {
	setup_token
	start_mock
	VZT_BAD=0000 VZP11_PIN_SOURCE=env:VZT_BAD cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "wrong PIN"
	expect_in "$T/err" "did not accept the PIN" "says the PIN is the problem"
	expect_in "$T/err" "never retries" "says it was not retried"
	[ "$(mock_stat requests)" -eq 0 ] && pass "nothing sent" || fail "a request was sent"
}

case_progress_on_terminal() {
	command -v script >/dev/null || { echo "SKIP: no script(1)"; exit 77; }
	setup_token
	start_mock --synthetic --delay 20
	python3 -c 'print("bsn,birthdate"); [print("999979668,1962-03-15") for _ in range(400)]' >"$T/in.csv"
	script -qec "'$VZP11_BIN' cov --endpoint '$ENDPOINT' --cacert '$PKI/root.crt' --batch '$T/in.csv' --out '$T/res.csv' --jobs 1" /dev/null >"$T/tty" 2>&1 || true
	expect_in "$T/tty" "rows \\([0-9]+ failed\\), [0-9]+/s, [0-9]+ requests, [0-9]+%" "a progress line on the terminal"
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --batch "$T/in.csv" --out "$T/res.csv"
	expect_not_in "$T/err" "/s, " "no progress line without a terminal"
}

case_no_environment() {
	setup_token
	run vz cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 2 "no --env, --endpoint or VZP11_ENV"
	expect_in "$T/err" "--env tst, acc or prd" "says what to give"
	VZP11_ENV=xyz run vz cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 2 "an unknown environment"
	run vz cov --bsn 999979668 --birthdate 1962-03-15 --endpoint http://localhost:1/
	expect_rc 2 "a plain http endpoint"
}

case_wrong_server_ca() {
	setup_token
	start_mock
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/other-ca.crt" --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "a server certificate from another CA"
	expect_in "$T/err" "not trusted" "says the server is not trusted"
	[ "$(mock_stat requests)" -eq 0 ] && pass "no request was sent" || fail "a request was sent"
}

case_wrong_host_name() {
	setup_token
	cat "$PKI/server-wrongname.crt" "$PKI/issuing.crt" >"$T/wrongname-chain.pem"
	MOCK_CERT=$T/wrongname-chain.pem MOCK_KEY=$PKI/server-wrongname.key start_mock
	cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "a server certificate for another host name"
	expect_in "$T/err" "host name" "says the name does not match"
}

case_expired_server_cert() {
	setup_token
	cat "$PKI/server-expired.crt" "$PKI/issuing.crt" >"$T/expired-chain.pem"
	MOCK_CERT=$T/expired-chain.pem MOCK_KEY=$PKI/server-expired.key start_mock
	cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "an expired server certificate"
	expect_in "$T/err" "not trusted" "says the server is not trusted"
	[ "$(mock_stat requests)" -eq 0 ] && pass "no request was sent" || fail "a request was sent"
}

case_tls11_server() {
	setup_token
	start_mock --tls-priority "NORMAL:-VERS-ALL:+VERS-TLS1.1"
	cov --bsn 999979668 --birthdate 1962-03-15 --retries 0
	expect_rc 1 "a server that speaks only TLS 1.1"
	expect_in "$T/err" "TLS handshake failed|TLS 1.2" "says the handshake failed"
	[ "$(mock_stat requests)" -eq 0 ] && pass "no request was sent" || fail "a request was sent"
	# The same mock with TLS 1.2 allowed works, so the refusal is the version.
	stop_mock
	start_mock --tls-priority "NORMAL:-VERS-ALL:+VERS-TLS1.2"
	cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 0 "the same server with TLS 1.2"
}

# live_cov: no secret in /proc/PID/cmdline or environ of a running COV
# check; the PIN comes from a 0600 file.
case_live_process() {
	setup_token
	start_mock --delay 1500
	(umask 077 && printf '%s\n' "$VZT_PIN" >"$T/pin")
	env -u VZT_P12 -u VZT_PIN VZP11_PIN_SOURCE="file:$T/pin" "$VZP11_BIN" cov --endpoint "$ENDPOINT" \
		--cacert "$PKI/root.crt" --bsn 999979668 --birthdate 1962-03-15 >"$T/out" 2>"$T/err" &
	pid=$!
	sleep 0.8
	tr '\0' ' ' <"/proc/$pid/cmdline" >"$T/cmdline" 2>/dev/null || true
	tr '\0' '\n' <"/proc/$pid/environ" >"$T/environ" 2>/dev/null || true
	wait "$pid" && rc=0 || rc=$?
	expect_rc 0 "COV check"
	expect_in "$T/cmdline" "cov" "command line was read while it ran"
	expect_in "$T/environ" "VZP11_PIN_SOURCE" "environment was read while it ran"
	expect_not_in "$T/cmdline" "$VZT_PIN|$VZT_P12" "no secret in the command line"
	expect_not_in "$T/environ" "$VZT_PIN|$VZT_P12" "no secret in the environment"
	expect_not_in "$T/err" "$VZT_PIN" "no PIN in the messages"
}

# s_server with only the root as trust anchor: the handshake succeeds only
# when the client sends its certificate and the intermediate CA.
case_sends_chain() {
	setup_token
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	openssl s_server -accept "127.0.0.1:$port" -cert "$PKI/server.crt" -key "$PKI/server.key" \
		-cert_chain "$PKI/issuing.crt" -CAfile "$PKI/root.crt" -Verify 3 -verify_return_error \
		-www -naccept 1 >"$T/s_server.log" 2>&1 &
	spid=$!
	i=0
	while ! grep -q ACCEPT "$T/s_server.log" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	run timeout 20 "$VZP11_BIN" cov --endpoint "https://localhost:$port/" --cacert "$PKI/root.crt" \
		--bsn 999979668 --birthdate 1962-03-15 --retries 0 --timeout 3
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	expect_in "$T/s_server.log" "depth=0 .*systeemcertificaat 01234567" "the server saw the client certificate"
	expect_in "$T/s_server.log" "depth=1 .*Issuing CA" "the client sent the intermediate CA"
	expect_not_in "$T/s_server.log" "verify error" "the chain verified"
	# s_server -www does not answer a POST: the check itself must fail.
	expect_rc 1 "no VZ802 answer from s_server"
}

# fault_batch MODE [vzmock options]: 2000 rows under a fault mode. Every
# row comes back, in order; a row that failed says after how many attempts
# (never more than --retries 3 allows), and the exit code says whether any
# failed.
fault_batch() {
	mode=$1
	shift
	setup_token
	start_mock --synthetic --fault "$mode" "$@"
	python3 - "$T/in.csv" <<'PY'
import sys
out = open(sys.argv[1], "w")
out.write("bsn;birthdate;reference\n")
n, x = 0, 100000000
while n < 2000:
    x += 7
    b = str(x)
    if (sum(int(b[i]) * (9 - i) for i in range(8)) - int(b[8])) % 11 == 0:
        out.write(f"{b};1970-01-01;row{n + 1}\n")
        n += 1
PY
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --batch "$T/in.csv" \
		--out "$T/result.csv" --timeout 5 --retries 3
	rows=$(($(wc -l <"$T/result.csv") - 1))
	[ "$rows" -eq 2000 ] && pass "2000 rows in, 2000 rows out under '$mode'" || fail "$rows output rows"
	seq=$(awk -F';' 'NR > 1 { print $2 }' "$T/result.csv" | sed 's/row//' |
		awk '$1 != NR { bad = 1 } END { print bad ? "bad" : "ok" }')
	[ "$seq" = ok ] && pass "rows in input order" || fail "rows out of order"
	failed=$(awk -F';' 'NR > 1 && $22 != ""' "$T/result.csv" | wc -l)
	unexplained=$(awk -F';' 'NR > 1 && $22 != "" && $22 !~ /failed after [1-4] attempts/' "$T/result.csv" | wc -l)
	[ "$unexplained" -eq 0 ] && pass "$failed failed rows, each after at most 4 attempts" ||
		fail "$unexplained rows failed without the attempt count"
	if [ "$failed" -eq 0 ]; then expect_rc 0 "no row failed"; else expect_rc 1 "some rows failed"; fi
	[ "$(mock_stat requests)" -le 400 ] && pass "$(mock_stat requests) requests: within 100 x 4 attempts" ||
		fail "$(mock_stat requests) requests: more than the retry bound allows"
	perm=$(stat -c %a "$T/result.csv")
	[ "$perm" = 600 ] && pass "result file mode 0600" || fail "result file mode $perm"
	expect_not_in "$T/err" "1[0-9]{8}" "no BSN in the messages"
}

case_fault_500() {
	fault_batch 500 --fault-every 4
	[ "$(mock_stat faults)" -gt 0 ] && pass "faults were injected" || fail "no fault injected"
	expect_in "$T/err" "[1-9][0-9]* retries" "retries are reported"
}
case_fault_503() {
	fault_batch 503 --fault-every 4
	[ "$(mock_stat requests)" -gt 100 ] && pass "retried after 503" || fail "no retries"
}
case_fault_reset() { fault_batch reset --fault-every 4; }
case_fault_malformed() { fault_batch malformed --fault-every 4; }
case_fault_delay() {
	fault_batch none --delay 100
	[ "$(mock_stat requests)" -eq 100 ] && pass "slow answers waited for, not retried" ||
		fail "$(mock_stat requests) requests"
	[ "$(mock_stat connections)" -le 4 ] && pass "$(mock_stat connections) TLS connections for 4 jobs" ||
		fail "$(mock_stat connections) connections for 4 jobs"
}

case_fault_always_503() {
	setup_token
	start_mock --fault 503
	cov --bsn 999979668 --birthdate 1962-03-15 --retries 2
	expect_rc 1 "a service that keeps answering 503"
	expect_in "$T/err" "failed after 3 attempts: HTTP 503" "says how often it tried and why"
	[ "$(mock_stat requests)" -eq 3 ] && pass "exactly 3 attempts" || fail "$(mock_stat requests) attempts"
}

case_fault_oversized() {
	setup_token
	start_mock --fault oversized --oversize 20000000
	cov --bsn 999979668 --birthdate 1962-03-15 --max-response 1048576
	expect_rc 1 "a response over the limit"
	expect_in "$T/err" "larger than the limit of 1048576 bytes" "says the response was too large"
}

case_fault_timeout() {
	setup_token
	start_mock --delay 3000
	start=$(date +%s)
	cov --bsn 999979668 --birthdate 1962-03-15 --timeout 1 --retries 1
	took=$(($(date +%s) - start))
	expect_rc 1 "a stalled service"
	expect_in "$T/err" "timed out" "says it timed out"
	[ "$took" -lt 10 ] && pass "gave up within the timeouts (${took}s)" || fail "took ${took}s"
}

case_fault_refuse_after() {
	fault_batch refuse-after:20
	expect_rc 1 "rows failed once the service refused"
	failed=$(grep -c 'failed after 4 attempts' "$T/result.csv" || true)
	[ "$failed" -gt 0 ] && pass "$failed rows say why they failed" || fail "no row says why"
	ok=$(grep -c ';Gevonden;' "$T/result.csv" || true)
	[ "$ok" -gt 0 ] && pass "$ok rows before the refusal succeeded" || fail "no row succeeded"
}

# An interrupted batch leaves no partial result file behind.
case_interrupted_batch() {
	setup_token
	start_mock --synthetic --delay 300
	python3 -c 'print("bsn,birthdate"); [print("999979668,1962-03-15") for _ in range(2000)]' >"$T/in.csv"
	mkdir "$T/outdir"
	"$VZP11_BIN" cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --batch "$T/in.csv" \
		--out "$T/outdir/result.csv" >"$T/out" 2>"$T/err" &
	pid=$!
	i=0
	while [ -z "$(ls "$T/outdir")" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -n "$(ls "$T/outdir")" ] && pass "a temporary result file exists while it runs" ||
		fail "no temporary file seen"
	kill -TERM "$pid"
	wait "$pid" && rc=0 || rc=$?
	[ "$rc" -ne 0 ] && pass "interrupted run exits non-zero ($rc)" || fail "interrupted run exited 0"
	left=$(ls -A "$T/outdir")
	[ -z "$left" ] && pass "no partial result file left" || fail "left behind: $left"
}

case_batch_semicolon_json() {
	setup_token
	start_mock
	printf '\357\273\277bsn;birthdate;date;reference\r\n999979668;1962-03-15;;"a;b"\r\n12;1962-03-15;;bad\r\n\r\n111222333;1980-07-01;2026-01-01;c\r\n' >"$T/in.csv"
	cov --batch "$T/in.csv" --json
	expect_rc 1 "a batch with a locally refused row"
	expect_json "$T/out" '
assert [x["reference"] for x in o] == ["a;b", "bad", "c"], o
assert o[0]["result"] == "Gevonden" and o[2]["result"] == "Gevonden"
assert o[1]["result"] is None and "eleven-test" in o[1]["error"]
' "semicolons, a BOM, CRLF and quotes are read; one JSON object per row in order"
	cov --batch "$T/in.csv" --out "$T/res.csv"
	expect_in "$T/res.csv" '^line;reference;bsn' "the output uses the input's separator"
	expect_in "$T/res.csv" '^2;"a;b";999979668;' "quoted fields are quoted again"
}

new_token "cov-$1"
"case_$(echo "$1" | tr - _)"
finish
