#!/bin/sh
# cov.sh CASE: insurance checks (COV) signed by the SoftHSM key, against the
# mock VECOZO (or openssl s_server), as practice software runs them.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"

setup_token() {
	must_import "$PKI/sys-rsa2048.p12"
}

cov() { run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" "$@"; }
SOAP_ACTION=http://schemas.vecozo.nl/VZ801802/v1/Controleer

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
print('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="http://schemas.vecozo.nl/VZ801802/v1" xmlns:mes="http://schemas.vecozo.nl/VZ801802/v1/messages" xmlns:t="http://schemas.vecozo.nl/VZ801802/v1/types"><s:Body><v1:Controleer><v1:request><mes:Zoekopdrachten>')
for i in range(21):
    print(f'<t:Zoekopdracht><t:Volgnummer>{i+1}</t:Volgnummer><t:Geboortedatum>1962-03-15</t:Geboortedatum><t:Peildatum>2026-01-01</t:Peildatum><t:Bsn>999979668</t:Bsn></t:Zoekopdracht>')
print('</mes:Zoekopdrachten></v1:request></v1:Controleer></s:Body></s:Envelope>')
PY
	curl -s --cert "$PKI/sys-rsa2048.crt" --key "$PKI/sys-rsa2048.key" --cacert "$PKI/root.crt" \
		-H 'Content-Type: text/xml' -H "SOAPAction: \"$SOAP_ACTION\"" --data-binary @"$T/req.xml" \
		"$ENDPOINT" >"$T/resp.xml"
	expect_in "$T/resp.xml" "MeerDan20Zoekopdrachten" "the mock answers 21 searches with MeerDan20Zoekopdrachten"
	# vzp11 never sends more than 20: 45 rows take 3 requests.
	{ echo bsn,birthdate; i=0; while [ $i -lt 45 ]; do echo 999979668,1962-03-15; i=$((i + 1)); done; } >"$T/in.csv"
	cov --batch "$T/in.csv" --jobs 1
	expect_rc 0 "45 searches"
	[ "$(mock_stat requests)" -eq 4 ] && pass "45 searches went in 3 requests of at most 20" ||
		fail "$(mock_stat requests) requests (1 from curl expected plus 3)"
	[ "$(mock_stat violations)" -eq 0 ] && pass "every request kept the VZ801 contract" ||
		fail "$(mock_stat violations) requests broke the contract"
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
	expect_in "$T/err" "rejected the PIN" "says the PIN is the problem"
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

# live_cov: a running COV check with the PIN from the environment (env:,
# as documented): the PIN is in the variable the user chose and nowhere
# else: not in another variable, the command line, the output or messages.
# The BSN goes in on standard input, so it is not on the command line
# either.
case_live_process() {
	setup_token
	start_mock --delay 1500
	echo "999979668,1962-03-15" >"$T/stdin"
	VZP11_PIN_SOURCE=env:VZT_PIN "$VZP11_BIN" cov --endpoint "$ENDPOINT" \
		--cacert "$PKI/root.crt" --stdin <"$T/stdin" >"$T/out" 2>"$T/err" &
	pid=$!
	sleep 0.8
	read_proc "$pid"
	wait "$pid" && rc=0 || rc=$?
	expect_rc 0 "COV check"
	expect_in "$T/out" "^Result: +Gevonden" "the check was answered"
	expect_in "$T/cmdline" "cov .*--stdin" "command line was read while it ran"
	expect_secret_only_in VZT_PIN
	expect_not_in "$T/cmdline" "999979668" "no BSN in the command line"
	expect_not_in "$T/err" "999979668" "no BSN in the messages"
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
	# Under valgrind a request of a loaded machine may take longer than 5 s.
	limit=5
	[ -z "${VZP11_WRAPPER:-}" ] || limit=60
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --batch "$T/in.csv" \
		--out "$T/result.csv" --timeout "$limit" --retries 3
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

# A batch longer than a 16-bit Volgnummer: 33,000 rows (COV_BIG_ROWS; 2,000
# under VZP11_WRAPPER, where valgrind makes it slow). The mock refuses a
# request whose Volgnummer is outside 1..32767 or repeated; every request
# keeps to 1..20, and every row comes back answered, in order.
case_batch_33000() {
	setup_token
	start_mock --synthetic
	rows=${COV_BIG_ROWS:-33000}
	[ -z "${VZP11_WRAPPER:-}" ] || rows=${COV_BIG_ROWS:-2000}
	python3 - "$T/in.csv" "$rows" <<'PY'
import sys
out = open(sys.argv[1], "w")
out.write("bsn;birthdate;reference\n")
n, x, want = 0, 100000000, int(sys.argv[2])
while n < want:
    x += 7
    b = str(x)
    if (sum(int(b[i]) * (9 - i) for i in range(8)) - int(b[8])) % 11 == 0:
        out.write(f"{b};1970-01-01;row{n + 1}\n")
        n += 1
PY
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --batch "$T/in.csv" \
		--out "$T/result.csv" --retries 0
	expect_rc 0 "a batch of $rows rows"
	[ "$(mock_stat violations)" -eq 0 ] && pass "no request broke the contract (Volgnummer 1..32767, unique)" ||
		fail "$(mock_stat violations) requests refused: $(grep -m1 refused "$T/mock.log")"
	[ "$(mock_stat max_volgnummer)" -eq 20 ] && pass "every Volgnummer sent is 1..20" ||
		fail "the highest Volgnummer sent is $(mock_stat max_volgnummer)"
	[ "$(mock_stat requests)" -eq $(((rows + 19) / 20)) ] && pass "$(mock_stat requests) requests of 20" ||
		fail "$(mock_stat requests) requests for $rows rows"
	got=$(($(wc -l <"$T/result.csv") - 1))
	[ "$got" -eq "$rows" ] && pass "$rows rows in, $rows rows out" || fail "$got output rows"
	seq=$(awk -F';' 'NR > 1 { print $2 }' "$T/result.csv" | sed 's/row//' |
		awk '$1 != NR { bad = 1 } END { print bad ? "bad" : "ok" }')
	[ "$seq" = ok ] && pass "rows in input order" || fail "rows out of order"
	found=$(awk -F';' 'NR > 1 && $6 == "Gevonden" && $22 == ""' "$T/result.csv" | wc -l)
	[ "$found" -eq "$rows" ] && pass "every row answered Gevonden, none failed" ||
		fail "$found of $rows rows answered"
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
	# Two tries of 1 s and a backoff, plus start-up (longer under valgrind).
	limit=10
	[ -z "${VZP11_WRAPPER:-}" ] || limit=60
	[ "$took" -lt "$limit" ] && pass "gave up within the timeouts (${took}s)" || fail "took ${took}s"
}

case_fault_refuse_after() {
	fault_batch refuse-after:20
	expect_rc 1 "rows failed once the service refused"
	failed=$(grep -c 'failed after 4 attempts' "$T/result.csv" || true)
	[ "$failed" -gt 0 ] && pass "$failed rows say why they failed" || fail "no row says why"
	ok=$(grep -c ';Gevonden;' "$T/result.csv" || true)
	[ "$ok" -gt 0 ] && pass "$ok rows before the refusal succeeded" || fail "no row succeeded"
}

# start_slow_batch ROWS [vzp11 options]: a batch into $T/outdir/result.csv
# against a slow mock, in the background ($pid); returns once its partial
# file exists.
start_slow_batch() {
	rows=$1
	shift
	start_mock --synthetic --delay 300
	python3 -c "print('bsn,birthdate'); [print('999979668,1962-03-15') for _ in range($rows)]" >"$T/in.csv"
	mkdir "$T/outdir"
	"$VZP11_BIN" cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --batch "$T/in.csv" \
		--out "$T/outdir/result.csv" "$@" >"$T/out" 2>"$T/err" &
	pid=$!
	i=0
	while [ -z "$(ls -A "$T/outdir")" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}

# An interrupted batch leaves no partial result file behind.
case_interrupted_batch() {
	setup_token
	start_slow_batch 2000
	[ -n "$(ls -A "$T/outdir")" ] && pass "a temporary result file exists while it runs" ||
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

# Quotes inside an unquoted field are text (RFC 4180): no row swallows the
# next ones, and each malformed line is a row of its own with its line number.
case_batch_stray_quote() {
	setup_token
	start_mock
	printf 'bsn,birthdate,reference\n999979668,1962-03-15,O"Brien\n999979668,1962-03-15,12" x\n999979668,1962-03-15,plain\n999979668,1962-03-15,"open\n999979668,1962-03-15,"a"b\n999979668,1962-03-15,last\n' >"$T/in.csv"
	cov --json --batch "$T/in.csv"
	expect_rc 1 "a batch with two malformed lines"
	expect_json "$T/out" '
assert len(o) == 6, len(o)
assert [x["reference"] for x in o[:3]] == ["O\"Brien", "12\" x", "plain"], o[:3]
assert all(x["result"] == "Gevonden" and x["error"] is None for x in o[:3]), o[:3]
assert o[3]["result"] is None and "line 5" in o[3]["error"] and "quote" in o[3]["error"], o[3]
assert o[4]["result"] is None and "line 6" in o[4]["error"] and "quote" in o[4]["error"], o[4]
assert o[5]["reference"] == "last" and o[5]["result"] == "Gevonden", o[5]
' "six lines in, six rows out, the stray quotes kept as text"
	cov --batch "$T/in.csv" --out "$T/res.csv"
	lines=$(awk -F, 'NR > 1 { print $1 }' "$T/res.csv" | tr '\n' ' ')
	[ "$lines" = "2 3 4 5 6 7 " ] && pass "CSV rows carry lines 2 to 7 in order" || fail "CSV lines: $lines"
}

# A reference a spreadsheet would take for a formula stays text in the CSV
# output (a leading apostrophe); the JSON output carries it as it came.
case_batch_formula() {
	setup_token
	start_mock
	printf 'bsn,birthdate,reference\n999979668,1962-03-15,=HYPERLINK("http://x")\n999979668,1962-03-15,@SUM(A1)\n999979668,1962-03-15,+31\n999979668,1962-03-15,-2\n999979668,1962-03-15,a=b\n' >"$T/in.csv"
	cov --batch "$T/in.csv" --out "$T/res.csv"
	expect_rc 0 "a batch of references that look like formulas"
	got=$(python3 - "$T/res.csv" <<'PY'
import csv, sys
print(" ".join(r["reference"] for r in csv.DictReader(open(sys.argv[1], newline=""))))
PY
)
	[ "$got" = "'=HYPERLINK(\"http://x\") '@SUM(A1) '+31 '-2 a=b" ] &&
		pass "formula-like cells start with an apostrophe, others are as they were" ||
		fail "CSV references: $got"
	cov --json --batch "$T/in.csv"
	expect_json "$T/out" '
assert [x["reference"] for x in o] == ["=HYPERLINK(\"http://x\")", "@SUM(A1)", "+31", "-2", "a=b"], o
' "the JSON output keeps the references as they are"
}

# The row invariant, for any bytes: output rows == input data rows, in
# order, each with its line number. COV_GEN_FILES (default 12, 3 under
# valgrind) sets how many generated files; every line that holds more than
# spaces, tabs and commas is a data row.
case_batch_any_bytes() {
	setup_token
	start_mock --synthetic
	files=${COV_GEN_FILES:-12}
	[ -z "${VZP11_WRAPPER:-}" ] || files=${COV_GEN_FILES:-3}
	python3 - "$T" "$files" <<'PY'
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(int(os.environ.get("COV_GEN_SEED", "7011")))
def bsn():
    while True:
        b = "%09d" % rnd.randrange(10**8, 10**9)
        if (sum(int(b[i]) * (9 - i) for i in range(8)) - int(b[8])) % 11 == 0:
            return b
pieces = [b'"', b'""', b',', b';', b'\r', b'\r\n', b'\n', b'\x00', b'\x1b[2J', b'\xe9', b'\x81',
          b'\xc3\xa9', b'\xff\xfe', b' ', b'\t', b'O"Brien', b'1962-03-15', b'12" x']
for i in range(n):
    lines = [b"bsn,birthdate,reference"]
    for j in range(rnd.randrange(1, 120)):
        if rnd.random() < 0.5:
            lines.append(("%s,1962-03-15,r%d" % (bsn(), j)).encode())
        else:
            lines.append(b"".join(rnd.choice(pieces) if rnd.random() < 0.6 else
                                  bytes([rnd.randrange(256)]) for _ in range(rnd.randrange(0, 12))))
    data = b"\n".join(lines) + (b"\n" if rnd.random() < 0.5 else b"")
    open(os.path.join(d, "gen%d.csv" % i), "wb").write(data)
    # Expected: the line numbers of data rows (split on LF only; a trailing
    # CR belongs to the line end; blank = only spaces, tabs and commas).
    want = []
    for k, line in enumerate(data.split(b"\n")[1:], start=2):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip(b" \t,"):
            want.append(k)
    open(os.path.join(d, "gen%d.want" % i), "w").write(" ".join(map(str, want)))
PY
	bad=0 i=0
	while [ -f "$T/gen$i.csv" ]; do
		run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --json --batch "$T/gen$i.csv"
		got=$(python3 -c 'import json,sys; print(" ".join(str(x["line"]) for x in json.load(open(sys.argv[1]))))' "$T/out" 2>&1) || true
		if [ "$got" != "$(cat "$T/gen$i.want")" ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; }; then
			fail "gen$i.csv: rows for lines '$got', expected '$(cat "$T/gen$i.want")' (exit $rc)"
			sed 's/^/  stderr: /' "$T/err" | head -5
			bad=$((bad + 1))
		fi
		i=$((i + 1))
	done
	[ "$i" -gt 0 ] && [ "$bad" -eq 0 ] && pass "$i generated files: one JSON row per data line, in order"
}

# A bad field keeps its row out of the request; the other rows of the same
# request go out and come back. Windows-1252 is read, bytes that are neither
# it nor UTF-8 are refused; no row is dropped from the JSON.
case_batch_bad_fields() {
	setup_token
	start_mock
	{
		echo "bsn;birthdate;date;reference"
		echo "999979668;1962-03-15;;ok1"
		echo "999979668;1962-+3-15;;plus-in-date"
		echo "999979668;1962- 3-15;;space-in-date"
		echo "99997966;1962-03-15;;eight-digits"
		printf '999979668;1962-03-15;;esc\033[2J\n'
		printf '999979668;1962-03-15;;tab\there\n'
		printf '999979668;1962-03-15;;Zo\353\n'
		printf '999979668;1962-03-15;;bad\201\n'
		echo "999979668;1962-03-15;2026-02-30;no-such-day"
		echo "999979668;1962-03-15;;ok2"
	} >"$T/in.csv"
	cov --json --batch "$T/in.csv"
	expect_rc 1 "a batch with bad fields"
	expect_json "$T/out" '
assert [x["line"] for x in o] == list(range(2, 12)), [x["line"] for x in o]
sent = [x for x in o if x["error"] is None]
assert [x["reference"] for x in sent] == ["ok1", "Zo\u00eb", "ok2"], sent
assert all(x["result"] == "Gevonden" for x in sent)
bad = {x["line"]: x["error"] for x in o if x["error"] is not None}
assert "birth date" in bad[3] and "birth date" in bad[4], bad
assert "9 digits" in bad[5] and "control characters" in bad[6] and "control characters" in bad[7], bad
assert "neither UTF-8 nor Windows-1252" in bad[9] and "check date" in bad[10], bad
assert all("not sent" in e for e in bad.values()), bad
assert all(x["result"] is None for x in o if x["error"]), o
' "bad rows are answered locally, the good ones of the same request come back"
	[ "$(mock_stat searches)" -eq 3 ] && pass "only the 3 good searches reached VECOZO" ||
		fail "$(mock_stat searches) searches reached VECOZO"
	[ "$(mock_stat violations)" -eq 0 ] && pass "no request broke the VZ801 contract" ||
		fail "$(mock_stat violations) requests broke the contract"
	expect_in "$T/err" "1 line\(s\) were not UTF-8 and were read as Windows-1252" "says a line was converted"
	expect_not_in "$T/err" "99997966|ok1|Zo" "no field value in the messages"
}

# answers_mismatch MODE: every answer is wrong in one way; no row may show
# another person's data.
answers_mismatch() {
	stop_mock
	start_mock --fault "$1"
	cov --json --batch "$T/in.csv" --retries 1
	expect_rc 1 "$1: the batch reports failed rows"
}

case_answer_mismatch() {
	setup_token
	printf 'bsn,birthdate,reference\n999979668,1962-03-15,a\n111222333,1980-07-01,b\n100000009,1970-01-01,c\n' >"$T/in.csv"
	answers_mismatch swap-bsn
	expect_json "$T/out" '
assert len(o) == 3
for x in o[:2]:
    assert x["person"] is None and x["insurances"] == [] and x["result"] is None, x
    assert "another BSN" in x["error"], x
assert o[2]["result"] == "BsnOnbekend" and o[2]["error"] is None, o[2]
' "swap-bsn: a found person with another BSN is not used"
	answers_mismatch swap-birthdate
	expect_json "$T/out" '
assert all(x["person"] is None for x in o), o
assert "another birth date" in o[0]["error"] and "another birth date" in o[1]["error"], o
assert o[2]["error"] is None, o[2]
' "swap-birthdate: a found person with another birth date is not used"
	for mode in dup-seq unknown-seq; do
		answers_mismatch $mode
		expect_json "$T/out" '
assert len(o) == 3 and all(x["result"] is None and x["person"] is None for x in o), o
assert all("does not match the request" in x["error"] and "2 attempts" in x["error"] for x in o), o
' "$mode: no result of a mixed-up answer is used, after a retry"
	done
	answers_mismatch drop-result
	expect_json "$T/out" '
assert o[0]["result"] is None and "no result" in o[0]["error"], o[0]
assert o[1]["result"] == "Gevonden" and o[2]["result"] == "BsnOnbekend", o
' "drop-result: the row without an answer fails, the others stand"
}

# Text from the server never carries control characters to a terminal, a
# log or the output.
case_server_text_cleaned() {
	setup_token
	start_mock --fault control-chars
	cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 0 "a found person with control characters in the answer"
	cov --json --bsn 999979668 --birthdate 1962-03-15
	cp "$T/out" "$T/json"
	cov --batch /dev/stdin <<CSV
bsn,birthdate
999979668,1962-03-15
CSV
	cp "$T/out" "$T/csv"
	for f in out json csv; do
		if LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')" "$T/$f" ||
			grep -qP '[\x{80}-\x{9f}]' "$T/$f"; then
			fail "control characters in the $f output"
		else pass "no control characters in the $f output"; fi
	done
	expect_in "$T/json" "Vries +2J +0;vzmock +Vervalst" "the text is kept, the control characters are spaces"
	stop_mock
	start_mock --fault fault-escape
	cov --bsn 999979668 --birthdate 1962-03-15 --retries 0
	expect_rc 1 "a SOAP fault with control characters"
	expect_in "$T/err" "Interne fout" "the fault text is shown"
	if grep -qP '[\x00-\x08\x0b-\x1f\x7f\x{80}-\x{9f}]' "$T/err"; then
		fail "control characters reached stderr"
	else pass "no control characters on stderr"; fi
}

# --stdin and --batch -: patient data off the command line.
case_stdin() {
	setup_token
	start_mock
	echo "999979668,1962-03-15,,dossier-9" >"$T/stdin"
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --json --stdin <"$T/stdin"
	expect_rc 0 "one check from standard input"
	expect_json "$T/out" '
assert o["result"] == "Gevonden" and o["reference"] == "dossier-9" and o["bsn"] == "999979668", o
' "the check read from standard input"
	printf '999979668;1962-03-15\n' >"$T/stdin"
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --stdin <"$T/stdin"
	expect_rc 0 "a semicolon line from standard input"
	expect_in "$T/out" "^Result: +Gevonden" "the text result"
	printf '999979668,1962-03-15\n999979668,1962-03-15\n' >"$T/stdin"
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --stdin <"$T/stdin"
	expect_rc 2 "two lines for --stdin"
	expect_in "$T/err" "--batch -" "points to --batch -"
	printf '999979668,1962-13-15\n' >"$T/stdin"
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --stdin <"$T/stdin"
	expect_rc 1 "a bad date from standard input"
	expect_in "$T/err" "birth date" "says the birth date is wrong"
	printf 'bsn,birthdate\n999979668,1962-03-15\n111222333,1980-07-01\n' >"$T/stdin"
	run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" --batch - <"$T/stdin"
	expect_rc 0 "a batch from standard input"
	[ "$(grep -c ',Gevonden,' "$T/out")" -eq 2 ] && pass "two rows from standard input" || fail "not two rows"
	echo "999979668,1962-03-15" >"$T/stdin"
	VZP11_PIN_SOURCE=stdin run vz cov --endpoint "$ENDPOINT" --stdin <"$T/stdin"
	expect_rc 2 "the PIN and the person both from standard input"
	[ "$(mock_stat requests)" -eq 3 ] && pass "three requests sent" || fail "$(mock_stat requests) requests"
	run vz cov --help
	expect_in "$T/out" "can read a command line" "--help says --bsn is visible to other users"
}

# --cacert is the only trust: a server whose CA is in the system store is
# refused when --cacert names another CA. The system store is this test's
# own: /etc/ssl/certs is replaced in a private mount namespace.
case_cacert_only() {
	command -v unshare >/dev/null && [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root and unshare"; exit 77; }
	setup_token
	start_mock
	mkdir -p "$T/certs"
	# Debian's layout: a bundle file and a hashed directory (libcurl's
	# built-in CAINFO and CAPATH).
	cp "$PKI/root.crt" "$T/certs/vzp11-test-root.pem"
	cp "$PKI/root.crt" "$T/certs/ca-certificates.crt"
	ln -s vzp11-test-root.pem "$T/certs/$(openssl x509 -in "$PKI/root.crt" -noout -hash).0"
	in_store() {
		run unshare -m sh -c 'mount --bind "$0" /etc/ssl/certs && exec "$@"' "$T/certs" \
			"$VZP11_BIN" cov --endpoint "$ENDPOINT" --bsn 999979668 --birthdate 1962-03-15 "$@"
	}
	in_store --retries 0
	expect_rc 0 "without --cacert the system store (holding the test root) is used"
	in_store --retries 0 --cacert "$PKI/other-ca.crt"
	expect_rc 1 "with --cacert naming another CA the server is refused"
	expect_in "$T/err" "not trusted" "says the server is not trusted"
	VZP11_CACERT=$PKI/other-ca.crt in_store --retries 0
	expect_rc 1 "VZP11_CACERT restricts trust the same way"
	[ "$(mock_stat requests)" -eq 1 ] && pass "only the trusted run sent a request" || fail "$(mock_stat requests) requests"
}

case_env_conflict() {
	setup_token
	VZP11_ENV=acc run vz cov --endpoint https://localhost:1/x --bsn 999979668 --birthdate 1962-03-15
	expect_rc 2 "--endpoint with VZP11_ENV set"
	expect_in "$T/err" "VZP11_ENV" "names the environment variable"
	run vz cov --env acc --endpoint https://localhost:1/x --bsn 999979668 --birthdate 1962-03-15
	expect_rc 2 "--env and --endpoint"
}

# A run killed with SIGKILL cannot clean up: its partial file is hidden,
# mode 0600, and removed by the next run for the same output.
case_killed_batch() {
	setup_token
	start_slow_batch 400 --jobs 1
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	left=$(ls -A "$T/outdir")
	case $left in
	.result.csv.vzp11-partial.$pid) pass "the killed run left .result.csv.vzp11-partial.$pid" ;;
	*) fail "left behind: '$left'" ;;
	esac
	[ "$(stat -c %a "$T/outdir/$left")" = 600 ] && pass "mode 0600" || fail "mode $(stat -c %a "$T/outdir/$left")"
	stop_mock
	start_mock --synthetic
	cov --batch "$T/in.csv" --out "$T/outdir/result.csv"
	expect_rc 0 "the next run"
	expect_in "$T/err" "removed 1 partial result file" "says it removed the partial file"
	[ "$(ls -A "$T/outdir")" = result.csv ] && pass "only the finished result is left" ||
		fail "left: $(ls -A "$T/outdir")"
}

# ---- tokens that act like production HSMs (tests/faulty-p11) ----

# faulty VAR=VALUE... -- CMD...: CMD with the token reached through
# faulty-p11 in the given modes; its call counts in $T/report.
faulty() {
	: "${FAULTY_P11:?}"
	rm -f "$T/report"
	while [ "$1" != -- ]; do
		export "${1?}"
		shift
	done
	shift
	VZP11_MODULE=$FAULTY_P11 FAULTY_P11_REPORT=$T/report "$@"
	unset FAULTY_P11_HIDE_PSS FAULTY_P11_PRIVATE_CERTS FAULTY_P11_OUTAGE FAULTY_P11_BAD_PKCS1 \
		FAULTY_P11_REFUSE_PSS
}

# calls FUNC: how often faulty-p11 saw FUNC in the last run.
calls() {
	n=$(sed -n "s/^func $1 //p" "$T/report")
	echo "${n:-0}"
}

# s_server_cov: one COV check against openssl s_server (TLS 1.2 and 1.3,
# a client certificate required and verified against the test root). It
# prints what it saw of the client's signature once the token's
# CertificateVerify checked out; it does not answer, so the check fails.
s_server_cov() {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	rm -f "$T/s_in"
	mkfifo "$T/s_in"
	openssl s_server -accept "127.0.0.1:$port" -cert "$PKI/server.crt" -key "$PKI/server.key" \
		-cert_chain "$PKI/issuing.crt" -CAfile "$PKI/root.crt" -Verify 3 -verify_return_error \
		-naccept 1 <"$T/s_in" >"$T/s_server.log" 2>&1 &
	spid=$!
	exec 5>"$T/s_in"
	i=0
	while ! grep -q ACCEPT "$T/s_server.log" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	run timeout 20 "$VZP11_BIN" -v cov --endpoint "https://localhost:$port/" \
		--cacert "$PKI/root.crt" --bsn 999979668 --birthdate 1962-03-15 --retries 0 --timeout 2
	exec 5>&-
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
}

# RSA-PSS not tried (the token lists none) and the PKCS#1 v1.5 signature
# does not verify: the message says what was tried and which of key and
# token is wrong, by whether the key is the certificate's.
case_pkcs1_unverified() {
	setup_token
	start_mock
	faulty FAULTY_P11_HIDE_PSS=1 FAULTY_P11_BAD_PKCS1=1 -- cov -v --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "a token without RSA-PSS that signs PKCS#1 v1.5 wrongly"
	expect_in "$T/err" "the key of token 'vzp11-test' is the certificate's, but its RSA PKCS#1 v1.5 signature does not verify, and RSA-PSS was not tried \(the token offers none\): the token signs wrongly with it" \
		"says PSS was not tried and the token signs wrongly"
	expect_in "$T/err" "use a token that signs RSA-PSS or offers CKM_SHA256_RSA_PKCS" "says what to do"
	expect_not_in "$T/err" "do not match|--replace|signs no RSA-PSS" "does not blame the key, nor claim PSS was refused"
	# another key under the certificate's CKA_ID
	id=$(vz --json show vecozo-system | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
	p11 --delete-object --type privkey --id "$id" >/dev/null 2>&1
	p11 --write-object "$PKI/sys-renewed.key" --type privkey --id "$id" --label vecozo-system \
		--usage-sign >/dev/null 2>&1
	[ "$(count_objects '^Private Key Object')" -eq 1 ] || { fail "swapping the key failed"; finish; }
	faulty FAULTY_P11_HIDE_PSS=1 -- cov -v --bsn 999979668 --birthdate 1962-03-15
	expect_rc 1 "a key that is not the certificate's"
	expect_in "$T/err" "the key of token 'vzp11-test' with this certificate's CKA_ID is another key \(its public key is not the certificate's\)" \
		"says the key is another"
	expect_in "$T/err" "import the .pfx again with 'vzp11 import --replace'" "says what to do"
}

# A token without RSA-PSS: TLS 1.2 with an RSA PKCS#1 v1.5 signature, and
# -v says why; the same token with PSS speaks TLS 1.3.
case_no_pss() {
	setup_token
	start_mock
	faulty FAULTY_P11_HIDE_PSS=1 -- cov -v --bsn 999979668 --birthdate 1962-03-15
	expect_rc 0 "a COV check through a token without RSA-PSS"
	expect_in "$T/out" "^Result: +Gevonden" "the check was answered"
	expect_in "$T/err" "offers no RSA-PSS: TLS 1.2 with RSA PKCS#1 v1.5" "-v says TLS is held to 1.2 without PSS"
	faulty FAULTY_P11_HIDE_PSS=1 -- s_server_cov
	expect_in "$T/s_server.log" "^Peer signature type: RSA\$" "s_server saw an RSA PKCS#1 v1.5 client signature"
	expect_in "$T/s_server.log" "^CIPHER is ECDHE-" "s_server saw TLS 1.2"
	expect_not_in "$T/s_server.log" "verify error|bad signature" "the client signature verified"
	[ "$(calls C_SignInit)" -gt 0 ] && pass "the token signed the handshake" || fail "no C_SignInit"
	faulty -- s_server_cov
	expect_in "$T/s_server.log" "^Peer signature type: RSA-PSS\$" "with PSS on the token: an RSA-PSS signature"
	expect_in "$T/s_server.log" "^CIPHER is TLS_" "with PSS on the token: TLS 1.3"
	expect_in "$T/err" "signs RSA-PSS: TLS 1.3" "-v says TLS 1.3 is possible"
}

# Certificates kept private (visible only after login): cov finds them by
# logging in, and sends the PIN once.
case_private_certs() {
	setup_token
	start_mock
	faulty FAULTY_P11_PRIVATE_CERTS=1 -- cov --bsn 999979668 --birthdate 1962-03-15
	expect_rc 0 "cov with certificates visible only after login"
	expect_in "$T/out" "^Result: +Gevonden" "the check was answered"
	[ "$(calls C_Login)" -eq 1 ] && pass "the PIN was sent once" || fail "C_Login $(calls C_Login) times"
	printf 'bsn,birthdate\n999979668,1962-03-15\n111222333,1980-07-01\n' >"$T/in.csv"
	faulty FAULTY_P11_PRIVATE_CERTS=1 -- cov --batch "$T/in.csv" --jobs 2
	expect_rc 0 "a batch with private certificates"
	[ "$(grep -c ',Gevonden,' "$T/out")" -eq 2 ] && pass "both rows answered" || fail "not two rows"
	[ "$(calls C_Login)" -eq 1 ] && pass "the batch sent the PIN once" || fail "batch: C_Login $(calls C_Login) times"
	faulty FAULTY_P11_PRIVATE_CERTS=1 VZT_BAD=0000 VZP11_PIN_SOURCE=env:VZT_BAD -- \
		cov --bsn 999979668 --birthdate 1962-03-15
	export VZP11_PIN_SOURCE=env:VZT_PIN
	expect_rc 1 "a wrong PIN for private certificates"
	expect_in "$T/err" "rejected the PIN" "says the PIN was rejected"
	[ "$(calls C_Login)" -eq 1 ] && pass "the wrong PIN was sent once" || fail "wrong PIN: C_Login $(calls C_Login) times"
	[ "$(mock_stat requests)" -eq 2 ] && pass "nothing sent with the wrong PIN" || fail "$(mock_stat requests) requests"
}

# list on such a token: the same list as with public certificates.
case_list_private_certs() {
	setup_token
	run vz list
	cp "$T/out" "$T/list.public"
	faulty FAULTY_P11_PRIVATE_CERTS=1 -- run vz list
	expect_rc 0 "list on a token that keeps certificates private"
	expect_in "$T/out" "vecozo-system" "the certificate is listed"
	if cmp -s "$T/list.public" "$T/out"; then pass "the same list as with public certificates"; else
		fail "the lists differ"
		diff "$T/list.public" "$T/out" | head
	fi
	[ "$(calls C_Login)" -eq 1 ] && pass "the PIN was sent once" || fail "C_Login $(calls C_Login) times"
	faulty FAULTY_P11_PRIVATE_CERTS=1 -- run vz --json list
	expect_json "$T/out" 'assert len(o) == 1 and o[0]["label"] == "vecozo-system", o' "list --json shows it"
}

# The token goes away in the middle of a batch (after the 6th signature,
# for 6 seconds; the mock closes every 8th connection, so handshakes keep
# coming): vzp11 re-opens it and goes on; every row comes back, in order,
# none failed, and the re-connect is counted.
case_token_outage() {
	setup_token
	start_mock --synthetic --fault reset --fault-every 8
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
	# after the 6th signature (the key's two tries at start are 1 and 2)
	faulty FAULTY_P11_OUTAGE=6:6 -- run vz cov --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" \
		--batch "$T/in.csv" --out "$T/result.csv" --timeout 5 --retries 3 --jobs 4
	expect_rc 0 "a batch through a token outage"
	rows=$(($(wc -l <"$T/result.csv") - 1))
	[ "$rows" -eq 2000 ] && pass "2000 rows in, 2000 rows out" || fail "$rows output rows"
	seq=$(awk -F';' 'NR > 1 { print $2 }' "$T/result.csv" | sed 's/row//' |
		awk '$1 != NR { bad = 1 } END { print bad ? "bad" : "ok" }')
	[ "$seq" = ok ] && pass "rows in input order" || fail "rows out of order"
	failed=$(awk -F';' 'NR > 1 && $22 != ""' "$T/result.csv" | wc -l)
	[ "$failed" -eq 0 ] && pass "no row failed" || fail "$failed rows failed"
	expect_in "$T/report" "^outage-refused [1-9]" "the token was away for a while"
	expect_in "$T/err" "; 1 re-connect\\(s\\) to the token" "the re-connect is reported"
	[ "$(calls C_Login)" -eq 2 ] && pass "the PIN was read and sent again once after the outage" ||
		fail "C_Login $(calls C_Login) times"
	expect_not_in "$T/err" "1[0-9]{8}" "no BSN in the messages"
}

new_token "cov-$1"
"case_$(echo "$1" | tr - _)"
finish
