#!/bin/sh
# billing.sh CASE BACKEND: declarations and return files through the token
# key against the mock Berichtenservice, with the journal on SQLite or on a
# throwaway PostgreSQL cluster (BACKEND sqlite|postgresql).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"

CASE=$1
BACKEND=${2:-sqlite}
FROM=Praktijk:01234567
TO=Zorgverzekeraar:3311
FLOW=303:3.1

cleanup() {
	stop_mock
	[ -z "${DECOY_PID:-}" ] || { kill "$DECOY_PID" 2>/dev/null; wait "$DECOY_PID" 2>/dev/null; } || true
	[ -z "${FAKE_PID:-}" ] || { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; } || true
	[ -z "${PGDIR:-}" ] || "$SRCDIR/tests/tools/pg-cluster" stop "$PGDIR" >/dev/null 2>&1 || true
}

# The journal: a SQLite file in the test's directory, or a fresh cluster.
setup_journal() {
	if [ "$BACKEND" = postgresql ]; then
		# The server runs as nobody: its directory must be reachable by
		# others, which the test's own directory need not be.
		PGDIR=$(mktemp -d /tmp/vzp11-pg.XXXXXX)
		chmod 755 "$PGDIR"
		set +e
		uri=$("$SRCDIR/tests/tools/pg-cluster" start "$PGDIR" 2>"$T/pg.log")
		prc=$?
		set -e
		[ "$prc" -ne 77 ] || { echo "SKIP: no PostgreSQL server"; exit 77; }
		[ "$prc" -eq 0 ] || { fail "PostgreSQL did not start"; cat "$T/pg.log"; finish; }
		export VZP11_JOURNAL="$uri"
	else
		export VZP11_JOURNAL=$T/journal.db
	fi
	trap cleanup EXIT
}

setup_token() {
	must_import "$PKI/sys-rsa2048.p12"
}

# start_bill_mock [vzmock options]: sets BASE. Every exchange goes into
# $T/contract.jsonl, which check_contract holds to the contract.
start_bill_mock() {
	CONTRACT_LOG=$T/contract.jsonl
	start_mock --contract-log "$CONTRACT_LOG" "$@"
	trap cleanup EXIT
	BASE=https://localhost:$(cat "$T/port")/berichtenservice
}

bill() { run vz "$@" --endpoint "$BASE" --cacert "$PKI/root.crt"; }
declare_file() { bill declare "$@" --from "$FROM" --to "$TO" --flow "$FLOW"; }

# A declaration file: a Vektis-like text; the name must end in .txt.
make_decl() { # make_decl NAME [CONTENT]
	printf '%s\n' "0100${2:-declaratie $1 $(date +%s%N)}" "9900" >"$T/$1"
}

expect_json() {
	python3 - "$1" "$2" >"$T/check" 2>&1 <<'PY' || true
import json, sys
text = open(sys.argv[1]).read()
try:
    o = json.loads(text)
except ValueError:
    o = [json.loads(l) for l in text.splitlines() if l.strip()]
exec(sys.argv[2])
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "$3"
}

journal_json() { run vz --json journal; cp "$T/out" "$T/journal.json"; }
# journal_tid FILE: the traceerId of FILE's first declaration in the journal.
journal_tid() {
	journal_json
	python3 -c 'import json, sys; print([d["traceer_id"] for d in json.load(open(sys.argv[1]))["declarations"] if d["file"] == sys.argv[2]][0])' "$T/journal.json" "$1"
}

case_submit_and_status() {
	setup_token
	start_bill_mock
	make_decl decl.txt
	declare_file --json "$T/decl.txt" --reference dossier-2026-11
	expect_rc 0 "a declaration is sent"
	expect_json "$T/out" '
assert o["status"] == "accepted" and o["http_status"] == 204 and o["errors"] is None, o
assert len(o["traceer_id"]) == 36 and o["traceer_id"][14] == "4" and o["file"] == "decl.txt"
assert o["size"] > 0 and len(o["sha256"]) == 64
' "declare --json: accepted, with a new UUIDv4 traceerId"
	tid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["traceer_id"])' "$T/out")
	[ "$(mock_stat accepted)" -eq 1 ] && pass "the mock accepted one message" || fail "$(mock_stat accepted) accepted"
	bill declare-status "$tid"
	expect_rc 0 "declare-status of a received declaration"
	expect_in "$T/out" "^$tid +Ontvangen" "VECOZO's own word: Ontvangen"
	bill --json declare-status --open --watch
	expect_rc 0 "declare-status --open --watch"
	expect_json "$T/out" '
assert len(o) == 1 and o[0]["traceer_id"] == "'"$tid"'" and o[0]["status"] == "VerwerkingVoltooid", o
assert o[0]["meldingen"] == [] and o[0]["changed_at"].endswith("Z"), o
' "--watch follows it to VerwerkingVoltooid"
	journal_json
	expect_json "$T/journal.json" '
d = o["declarations"]
assert len(d) == 1 and d[0]["state"] == "accepted" and d[0]["status"] == "VerwerkingVoltooid" and d[0]["final"], d
assert o["retours"] == []
' "the journal has it accepted and final"
	bill declare-status --open
	expect_rc 0 "nothing open any more"
	expect_in "$T/err" "holds no declaration whose status is open" "says nothing is open"
}

# VECOZO writes status times in Dutch local time with the offset, and
# fractions of any length. Around the clock change of 2025-10-26 (the mock's
# --status-clock: 00:30:00.5Z, 01:00Z, 01:30:00.25Z, that is 02:30:00.5+02:00,
# 02:00+01:00, 02:30:00.25+01:00) the newest entry is not the one whose text
# sorts last: the status is read as instants.
case_status_clock_change() {
	setup_token
	start_bill_mock --status-history --status-clock 2025-10-26T00:30:00Z:1800
	make_decl decl.txt
	declare_file --json "$T/decl.txt"
	expect_rc 0 "a declaration is sent"
	tid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["traceer_id"])' "$T/out")
	bill declare-status "$tid"
	expect_in "$T/out" "^$tid +Ontvangen +2025-10-26T00:30:00Z$" "first: Ontvangen, its time in UTC"
	bill declare-status "$tid"
	expect_in "$T/out" "^$tid +WordtVerwerkt +2025-10-26T01:00:00Z$" \
		"then WordtVerwerkt (02:00+01:00), newer than Ontvangen (02:30:00.5+02:00)"
	bill --json declare-status "$tid"
	expect_rc 0 "declare-status once more"
	expect_json "$T/out" '
assert [(x["status"], x["changed_at"]) for x in o] == [("VerwerkingVoltooid", "2025-10-26T01:30:00Z")], o
' "then VerwerkingVoltooid (02:30:00.25+01:00), which sorts before 02:30:00.5+02:00 as text"
	journal_json
	expect_json "$T/journal.json" '
d = o["declarations"]
assert [(x["status"], x["final"]) for x in d] == [("VerwerkingVoltooid", True)], d
' "the journal has it final"
}

case_refused() {
	setup_token
	start_bill_mock
	make_decl weiger.txt "WEIGEREN"
	declare_file "$T/weiger.txt"
	expect_rc 1 "a declaration VECOZO refuses (422)"
	expect_in "$T/out" "weiger.txt: refused" "says refused"
	expect_in "$T/err" "do not send it again" "says 422 is final"
	[ "$(mock_stat pushes)" -eq 1 ] && pass "422 is not retried" || fail "$(mock_stat pushes) pushes"
	make_decl afzender.txt
	bill --json declare "$T/afzender.txt" --from Praktijk:00000000 --to "$TO" --flow "$FLOW"
	expect_rc 1 "an unknown sender (BRS01)"
	expect_json "$T/out" 'assert o["status"] == "refused" and o["http_status"] == 422, o' "refused with 422"
	# A 400 names each problem field by field.
	make_decl bad.txt "ONGELDIG"
	bill --json declare "$T/bad.txt" --from "$FROM" --to "$TO" --flow "$FLOW"
	expect_rc 1 "a declaration VECOZO finds malformed (400)"
	expect_json "$T/out" '
assert o["status"] == "refused" and o["http_status"] == 400, o
assert "payload: Regel 2: onbekend recordtype." in o["errors"], o["errors"]
assert "payload: Regel 9: het sluitrecord ontbreekt." in o["errors"], o["errors"]
' "400: every problem listed, field by field"
	bill declare "$T/bad.txt" --from "$FROM" --to "$TO" --flow "$FLOW"
	expect_in "$T/out" "^  payload: Regel 2: onbekend recordtype" "the text output lists them too"
	[ "$(mock_stat pushes)" -eq 4 ] && pass "a 400 may be sent again (and is refused again)" ||
		fail "$(mock_stat pushes) pushes, expected 4"
	make_decl ok.txt
	declare_file "$T/ok.txt"
	expect_rc 0 "a good declaration after the refused ones"
	# 422 says "do not send this again": a later declare of the same
	# content does not send it, until --force.
	first=$(journal_tid weiger.txt)
	make_decl weiger.txt "WEIGEREN"
	declare_file --json "$T/weiger.txt"
	expect_rc 1 "the content refused with 422, declared again"
	expect_json "$T/out" 'assert o["status"] == "refused" and o["traceer_id"] == "'"$first"'" and o["http_status"] is None, o' \
		"refused, naming the traceerId VECOZO refused, nothing sent now"
	expect_in "$T/err" "VECOZO refused this content on .* as traceerId $first .*not sent again" \
		"says it was refused before and is not sent"
	[ "$(mock_stat pushes)" -eq 5 ] && pass "not sent again" || fail "$(mock_stat pushes) pushes, expected 5"
	declare_file --force "$T/weiger.txt"
	expect_rc 1 "--force sends it anyway (and VECOZO refuses it again)"
	[ "$(mock_stat pushes)" -eq 6 ] && pass "sent with --force" || fail "$(mock_stat pushes) pushes, expected 6"
}

# 422, 400, 401 and 403 are different things to do: the journal and
# `journal` tell them apart.
case_refusal_kinds() {
	setup_token
	imp "$PKI/sys-ec256.p12" --label no-right
	imp "$PKI/sys-renewed.p12" --label unknown
	fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
	{
		echo "$(fp "$PKI/sys-rsa2048.crt") cov billing"
		echo "$(fp "$PKI/sys-ec256.crt") cov"
	} >"$T/rights"
	start_bill_mock
	make_decl content.txt "WEIGEREN"
	make_decl request.txt "ONGELDIG"
	make_decl certificate.txt
	make_decl right.txt
	declare_file "$T/content.txt"
	declare_file "$T/request.txt"
	declare_file --label unknown "$T/certificate.txt"
	expect_in "$T/err" "did not accept the certificate" "401: the certificate"
	declare_file --label no-right "$T/right.txt"
	expect_in "$T/err" "lacks the right" "403: the right"
	journal_json
	expect_json "$T/journal.json" '
k = {d["file"]: (d["state"], d["refusal"], d["http_status"]) for d in o["declarations"]}
assert k == {"content.txt": ("refused", "content", 422), "request.txt": ("refused", "request", 400),
             "certificate.txt": ("refused", "certificate", 401), "right.txt": ("refused", "right", 403)}, k
' "the journal says why each was refused"
	run vz journal
	for w in content request certificate right; do
		expect_in "$T/out" " refused:$w .* $w\.txt" "journal shows refused:$w"
	done
	# Once the right is there, the 401 and 403 ones go; the 422 one does not.
	rights_file
	declare_file "$T/certificate.txt"
	expect_rc 0 "the 401 content, with a certificate VECOZO knows"
	declare_file "$T/request.txt"
	expect_rc 1 "the 400 content is sent again"
	declare_file "$T/content.txt"
	expect_rc 1 "the 422 content"
	[ "$(mock_stat pushes)" -eq 6 ] && pass "the 400 and 401 content sent again, the 422 content not" ||
		fail "$(mock_stat pushes) pushes, expected 6"
}

case_bad_input() {
	setup_token
	CONTRACT_LOG_EMPTY=yes # nothing may reach VECOZO
	start_bill_mock
	make_decl decl.txt
	printf 'x\n' >"$T/DECL.TXT"
	: >"$T/empty.txt"
	declare_file "$T/DECL.TXT"
	expect_rc 1 "a file name in upper case"
	expect_in "$T/err" "must end in .txt" "says the name must end in .txt"
	declare_file "$T/empty.txt"
	expect_rc 1 "an empty file"
	declare_file "$T"
	expect_rc 1 "a directory"
	bill declare "$T/decl.txt" --from Praktijk:123 --to "$TO" --flow "$FLOW"
	expect_rc 2 "an AGB code of 3 digits"
	bill declare "$T/decl.txt" --from "$FROM" --to Zorgverzekeraar:33 --flow "$FLOW"
	expect_rc 2 "a UZOVI code of 2 digits"
	bill declare "$T/decl.txt" --from Apotheek:01234567 --to "$TO" --flow "$FLOW"
	expect_rc 2 "an unknown role"
	to=$(python3 -c 'print(",".join("Zorgverzekeraar:%04d" % (3000 + i) for i in range(101)))')
	bill declare "$T/decl.txt" --from "$FROM" --to "$to" --flow "$FLOW"
	expect_rc 2 "101 addressees"
	bill declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow 303
	expect_rc 2 "a flow without a version"
	[ "$(mock_stat pushes)" -eq 0 ] && pass "nothing was sent" || fail "$(mock_stat pushes) pushes"
	journal_json
	expect_json "$T/journal.json" 'assert o["declarations"] == [], o' "nothing was recorded"
}

# VECOZO's contract for the flow: words of 1 to 60 characters (anything but
# control characters), numbers 0 to 999, a referentieId of 1 to 150
# characters. What it refuses is refused here, before anything is sent or
# recorded; what it takes goes through.
case_flow_limits() {
	setup_token
	start_bill_mock
	make_decl decl.txt
	bill declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow 303:1000.0
	expect_rc 2 "berichtversie 1000"
	expect_in "$T/err" "--flow: the version and subversion are whole numbers from 0 to 999" \
		"says the range"
	bill declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow 303:3.1000
	expect_rc 2 "berichtsubversie 1000"
	bill declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow "$(printf 'x%.0s' $(seq 61)):3.1"
	expect_rc 2 "a berichttype of 61 characters"
	expect_in "$T/err" "1 to 60 characters" "says the length"
	bill declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow "$(printf '303:3.1:In\tdienen')"
	expect_rc 2 "a control character in the action"
	bill declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow 303:3.1 \
		--reference "$(printf 'a%.0s' $(seq 151))"
	expect_rc 2 "a referentieId of 151 characters"
	[ "$(mock_stat pushes)" -eq 0 ] && pass "nothing was sent" || fail "$(mock_stat pushes) pushes"
	journal_json
	expect_json "$T/journal.json" 'assert o["declarations"] == [], o' "nothing was recorded"
	# 60 characters of two bytes each, a quote, spaces, an escaped '/' and
	# ':', 999; a reference of 150 two-byte characters.
	word=$(printf '\303\253%.0s' $(seq 60))
	ref=$(printf '\303\251%.0s' $(seq 150))
	bill --json declare "$T/decl.txt" --from "$FROM" --to "$TO" \
		--flow "$word/Zorg \"303\"\\/ZH:999.999:Indienen\\:spoed" --reference "$ref"
	expect_rc 0 "what the contract takes is sent"
	[ "$(mock_stat accepted)" -eq 1 ] && pass "VECOZO (the mock) accepted it" ||
		fail "$(mock_stat accepted) accepted"
}

# The contract check itself: the operations vzp11 uses, each way they end
# (204, 400, 422, status, pull list, payload, 202 and 404 for DELETE), held
# to tests/contract/berichtenservice.json at the end like every billing
# test; and the check finds what breaks the contract: the same exchanges,
# each changed in one way the published texts forbid.
case_contract() {
	setup_token
	start_bill_mock --retour 2:1000 --status-history
	make_decl ok.txt
	make_decl bad.txt "ONGELDIG"
	make_decl weiger.txt "WEIGEREN"
	make_decl afkeuren.txt "AFKEUREN"
	declare_file --json --reference dossier-1 "$T/ok.txt" "$T/afkeuren.txt"
	expect_rc 0 "two declarations"
	declare_file "$T/bad.txt"
	declare_file "$T/weiger.txt"
	bill declare-status --open
	bill declare-status --open
	bill declare-status --open --watch
	expect_rc 0 "the statuses, to final (AfgekeurdDoorDienst on the way)"
	mkdir "$T/in"
	bill retour --dir "$T/in" --limit 1
	expect_rc 0 "the return messages"
	stop_mock
	start_bill_mock --retour 1:1000 --delete-unknown
	bill retour --dir "$T/in"
	expect_rc 1 "a DELETE answered 404"
	grep -q '"status":422' "$T/contract.jsonl" && grep -q '"meldingen":\[{' "$T/contract.jsonl" &&
		grep -q '"method":"DELETE".*"status":202' "$T/contract.jsonl" &&
		grep -q '"method":"DELETE".*"status":404' "$T/contract.jsonl" &&
		pass "the log holds 422, meldingen, 202 and 404" || fail "the log lacks an exchange"
	# Each line below breaks the contract once; the check must say so.
	/usr/bin/python3 - "$T/contract.jsonl" "$T/broken.jsonl" <<'PY'
import copy, json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
def first(method, path_end, status):
    return copy.deepcopy(next(x for x in log if x["method"] == method and x["path"].endswith(path_end) and x["status"] == status))
out = []
x = first("POST", "/berichten", 204); x["request"]["metadata"]["routeringgegevens"]["berichtstroom"]["berichtversie"] = 1000; out.append(x)
x = first("POST", "/berichten", 204); x["request"]["metadata"]["referentiegegevens"]["kenmerk"] = "x"; out.append(x)
x = first("POST", "/berichten", 204); x["request"]["parts"].append({"name": "extra", "content_type": "text/plain", "filename": None, "size": 1}); out.append(x)
x = first("GET", "/berichtstatussen", 200); x["response"]["json"][0]["meldingen"] = []; out.append(x)
x = first("GET", "/berichtstatussen", 200); x["response"]["json"][0]["berichtstatusGewijzigdOp"] = "2026-11-24 16:58"; out.append(x)
x = first("GET", "/berichtstatussen", 200); x["query"]["conversatieId"] = x["query"]["traceerId"]; out.append(x)
x = first("GET", "/rest-pull/v1/berichten", 200); x["response"]["json"][0]["basisgegevens"]["payload"]["url"] = "/relative/payload"; out.append(x)
x = first("GET", "/rest-pull/v1/berichten", 200); x["query"]["limit"] = "251"; out.append(x)
x = first("POST", "/berichten", 204); x["status"] = 200; out.append(x)
x = first("POST", "/berichten", 204); x["path"] = "/berichtenservice/berichten/rest-push/v2/berichten"; out.append(x)
open(sys.argv[2], "w").write("".join(json.dumps(x) + "\n" for x in out))
PY
	set +e
	/usr/bin/python3 "$SRCDIR/tests/tools/contract-check" "$SRCDIR/tests/contract/berichtenservice.json" \
		"$T/broken.jsonl" >"$T/broken.out" 2>&1
	brc=$?
	set -e
	[ "$brc" -eq 1 ] && pass "the check fails on the broken exchanges" || fail "the check exits $brc on the broken exchanges"
	for l in 1 2 3 4 5 6 7 8 9 10; do
		grep -q "broken.jsonl:$l " "$T/broken.out" || { fail "line $l of the broken exchanges passed the check"; cat "$T/broken.out"; }
	done
	expect_in "$T/broken.out" "1000 is greater than the maximum of 999" "names berichtversie 1000"
	expect_in "$T/broken.out" "'kenmerk' was unexpected" "names a property the schema does not list"
	expect_in "$T/broken.out" "should be non-empty|is too short" "names an empty meldingen"
	expect_in "$T/broken.out" "not an operation of the Berichtenservice" "names an unknown path"
	# A check that checks nothing fails: an empty log, and no jsonschema
	# (python3 -S leaves Debian's dist-packages out of the path).
	: >"$T/empty.jsonl"
	set +e
	/usr/bin/python3 "$SRCDIR/tests/tools/contract-check" "$SRCDIR/tests/contract/berichtenservice.json" \
		"$T/empty.jsonl" >"$T/empty.out" 2>&1
	erc=$?
	/usr/bin/python3 -S "$SRCDIR/tests/tools/contract-check" "$SRCDIR/tests/contract/berichtenservice.json" \
		"$T/contract.jsonl" >"$T/nolib.out" 2>&1
	nrc=$?
	set -e
	[ "$erc" -eq 1 ] && pass "an empty log fails the check" || fail "an empty log: exit $erc"
	expect_in "$T/empty.out" "nothing was checked" "says nothing was checked"
	[ "$nrc" -eq 2 ] && pass "without python3-jsonschema the check fails" ||
		fail "without python3-jsonschema: exit $nrc"
	expect_in "$T/nolib.out" "python3-jsonschema is not installed" "says what is missing"
}

case_duplicate_and_force() {
	setup_token
	start_bill_mock
	make_decl decl.txt
	declare_file --json "$T/decl.txt"
	expect_rc 0 "first declaration"
	first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["traceer_id"])' "$T/out")
	cp "$T/decl.txt" "$T/copy.txt"
	declare_file --json "$T/copy.txt"
	expect_rc 1 "the same content again, under another name"
	expect_json "$T/out" 'assert o["status"] == "duplicate" and o["traceer_id"] == "'"$first"'", o' \
		"status duplicate, naming the earlier traceerId"
	expect_in "$T/err" "accepted already on .*$first" "says when and under which traceerId"
	[ "$(mock_stat accepted)" -eq 1 ] && pass "sent once" || fail "$(mock_stat accepted) accepted"
	declare_file --json --force "$T/copy.txt"
	expect_rc 0 "--force sends it anyway"
	expect_json "$T/out" 'assert o["status"] == "accepted" and o["traceer_id"] != "'"$first"'", o' \
		"a new traceerId with --force"
	[ "$(mock_stat accepted)" -eq 2 ] && pass "sent twice with --force" || fail "$(mock_stat accepted) accepted"
}

# The process dies after the request reached VECOZO, before the answer.
# The next run asks the status service and sends nothing.
case_killed_after_send() {
	setup_token
	start_bill_mock --push-delay 4000
	make_decl decl.txt
	"$VZP11_BIN" declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow "$FLOW" \
		--endpoint "$BASE" --cacert "$PKI/root.crt" >"$T/out" 2>"$T/err" &
	pid=$!
	i=0
	while [ "$(mock_stat accepted)" -lt 1 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	[ "$(mock_stat accepted)" -eq 1 ] && pass "the message reached the mock before the kill" ||
		fail "the message did not reach the mock"
	journal_json
	expect_json "$T/journal.json" 'assert [d["state"] for d in o["declarations"]] == ["sending"], o' \
		"the journal says sending"
	tid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["declarations"][0]["traceer_id"])' "$T/journal.json")
	declare_file --json "$T/decl.txt"
	expect_rc 0 "declaring the same file again"
	expect_json "$T/out" 'assert o["status"] == "accepted" and o["traceer_id"] == "'"$tid"'", o' \
		"accepted, with the original traceerId"
	[ "$(mock_stat pushes)" -eq 1 ] && pass "nothing was sent again" || fail "$(mock_stat pushes) pushes"
	[ "$(mock_stat max_per_content)" -eq 1 ] && pass "one declaration at VECOZO" ||
		fail "max_per_content $(mock_stat max_per_content)"
	journal_json
	expect_json "$T/journal.json" 'assert [d["state"] for d in o["declarations"]] == ["accepted"], o' \
		"the journal says accepted"
}

# Two runs of one file at the same moment send it once.
case_concurrent() {
	setup_token
	start_bill_mock --push-delay 1500
	make_decl decl.txt
	# Each process its own copy of the token (the same key and certificate,
	# as each machine of a practice group has its own HSM): SoftHSM rewrites
	# token.object at every C_Login, and a process reading it at that moment
	# finds no initialized token. The race under test is the journal's.
	for k in 1 2 3; do
		cp -a "$T/hsm" "$T/hsm$k"
		sed "s|$T/hsm/|$T/hsm$k/|" "$T/hsm/softhsm2.conf" >"$T/hsm$k/softhsm2.conf"
	done
	for k in 1 2 3; do
		SOFTHSM2_CONF=$T/hsm$k/softhsm2.conf \
			"$VZP11_BIN" --json declare "$T/decl.txt" --from "$FROM" --to "$TO" --flow "$FLOW" \
			--endpoint "$BASE" --cacert "$PKI/root.crt" >"$T/out$k" 2>"$T/err$k" &
		eval "pid$k=\$!"
	done
	wait "$pid1" || true
	wait "$pid2" || true
	wait "$pid3" || true
	[ "$(mock_stat pushes)" -eq 1 ] && pass "three runs, one push" || fail "$(mock_stat pushes) pushes"
	[ "$(mock_stat max_per_content)" -eq 1 ] && pass "one declaration at VECOZO" ||
		fail "max_per_content $(mock_stat max_per_content)"
	cat "$T/out1" "$T/out2" "$T/out3" >"$T/all"
	expect_json "$T/all" '
s = sorted(x["status"] for x in o)
# A run that starts after the first one finished sees a duplicate.
assert s.count("accepted") >= 1 and all(x in ("accepted", "pending", "duplicate") for x in s), s
assert len({x["traceer_id"] for x in o}) == 1, o
' "one accepted, the others accepted, pending or duplicate under the same traceerId"
}

# A slow upload outlasts the lease a second run allows a run that is
# sending: (--timeout 1 + --connect-timeout 1 + 10) x 1 try = 12 s. The
# sending run keeps its journal row fresh while it uploads, so a second
# declare of the same file started 13 s after the upload stalled finds it in
# progress: pending, and nothing sent twice at once. The mock holds the
# body until the test creates $T/release (at most 90 s), that is until the
# second run has finished, however long that run takes to start (valgrind).
case_slow_push() {
	setup_token
	start_bill_mock --push-stall 90000 --hold "$T/release"
	make_decl decl.txt
	cp -a "$T/hsm" "$T/hsm2" # each run its own copy of the token (see concurrent)
	sed "s|$T/hsm/|$T/hsm2/|" "$T/hsm/softhsm2.conf" >"$T/hsm2/softhsm2.conf"
	${VZP11_WRAPPER:-} "$VZP11_BIN" --json declare "$T/decl.txt" --from "$FROM" --to "$TO" \
		--flow "$FLOW" --endpoint "$BASE" --cacert "$PKI/root.crt" --timeout 120 \
		>"$T/out1" 2>"$T/err1" &
	pid=$!
	i=0
	until grep -q "push body stalled" "$T/mock.log" || [ $i -ge 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	expect_in "$T/mock.log" "push body stalled" "the first run's upload is under way, and stalls"
	journal_json
	expect_in "$T/journal.json" '"state":"sending"' "the journal says the first run is sending"
	sleep 13
	SOFTHSM2_CONF=$T/hsm2/softhsm2.conf bill --json declare "$T/decl.txt" --from "$FROM" \
		--to "$TO" --flow "$FLOW" --retries 0 --timeout 1 --connect-timeout 1
	expect_rc 1 "a second declare 13 s into the upload"
	expect_json "$T/out" 'assert o["status"] == "pending", o' "pending: another run is sending it"
	expect_in "$T/err" "another run started sending this content" "says another run sends it"
	: >"$T/release"
	wait "$pid" && rc=0 || rc=$?
	cp "$T/out1" "$T/out"
	expect_rc 0 "the slow push"
	expect_json "$T/out" 'assert o["status"] == "accepted", o' "the slow push is accepted"
	[ "$(mock_stat pushes)" -eq 1 ] && pass "one push: the content was not sent twice at once" ||
		fail "$(mock_stat pushes) pushes"
	[ "$(mock_stat accepted)" -eq 1 ] && pass "one declaration at VECOZO" ||
		fail "$(mock_stat accepted) accepted"
}

case_no_billing_right() {
	fp=$(openssl x509 -in "$PKI/sys-rsa2048.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
	echo "$fp cov" >"$T/rights"
	setup_token
	start_bill_mock
	make_decl decl.txt
	declare_file "$T/decl.txt"
	expect_rc 1 "a certificate without the billing right"
	expect_in "$T/err" "lacks the right .*Niet geautoriseerd" "says the right is missing"
	journal_json
	expect_json "$T/journal.json" 'assert [d["state"] for d in o["declarations"]] == ["refused"], o' \
		"recorded as refused, so it can be sent once the right is there"
}

# A token that lists RSA-PSS and does not sign with it (p11-kit 0.24
# remoting): declare goes on with TLS 1.2 and PKCS#1 v1.5 by itself and
# says so once, however many files and connections; no PIN blamed, no
# re-connect.
case_pss_fallback() {
	setup_token
	start_bill_mock
	make_decl a.txt
	make_decl b.txt
	make_decl c.txt
	export FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_REFUSE_PSS=1 FAULTY_P11_REPORT=$T/report
	VZP11_MODULE=$FAULTY_P11 declare_file --json "$T/a.txt" "$T/b.txt" "$T/c.txt"
	unset FAULTY_P11_REFUSE_PSS FAULTY_P11_REPORT
	expect_rc 0 "three declarations through a token that refuses RSA-PSS"
	expect_json "$T/out" 'assert [d["status"] for d in o] == ["accepted"] * 3, o' "all three accepted"
	n=$(grep -c "offers RSA-PSS but did not sign with it" "$T/err" || true)
	[ "$n" -eq 1 ] && pass "declare says the fallback once" ||
		{ fail "declare said the fallback $n times"; sed 's/^/  | /' "$T/err"; }
	expect_not_in "$T/err" "PIN|re-connect" "no PIN blamed, no re-connect"
	[ "$(sed -n 's/^func C_Login //p' "$T/report")" = 1 ] && pass "the PIN was sent once" ||
		fail "C_Login $(sed -n 's/^func C_Login //p' "$T/report") times"
}

case_server_errors() {
	setup_token
	start_bill_mock --push-fault 503 --push-fault-every 2
	for k in 1 2 3 4 5; do
		make_decl "d$k.txt"
		declare_file --retries 6 "$T/d$k.txt"
		expect_rc 0 "declaration $k through 503s"
	done
	[ "$(mock_stat max_per_content)" -eq 1 ] && pass "each content once at VECOZO" ||
		fail "max_per_content $(mock_stat max_per_content)"
	stop_mock
	start_bill_mock --push-fault reset
	make_decl lost.txt
	declare_file --json --retries 1 "$T/lost.txt"
	expect_rc 1 "connection reset on every try"
	expect_json "$T/out" 'assert o["status"] == "pending", o' "the outcome is pending"
	expect_in "$T/err" "will not be sent twice" "says a later run will find out"
}

case_retour() {
	setup_token
	start_bill_mock --retour 3:300000 --retour-corrupt 2
	mkdir "$T/in"
	bill --json retour --dir "$T/in" --limit 2
	expect_rc 1 "one payload is corrupt"
	expect_json "$T/out" '
r = {x["result"] for x in o}
assert len(o) == 3 and sorted(x["result"] for x in o) == ["checksum-mismatch", "stored", "stored"], o
bad = [x for x in o if x["result"] == "checksum-mismatch"][0]
assert "not stored" in bad["error"], bad
' "two stored, one checksum mismatch"
	ls -A "$T/in" >"$T/files"
	[ "$(wc -l <"$T/files")" -eq 2 ] && pass "two files in the directory, no partial file" ||
		fail "files: $(tr '\n' ' ' <"$T/files")"
	for f in "$T"/in/retour-*; do
		[ "$(stat -c %a "$f")" = 600 ] || fail "$f mode $(stat -c %a "$f")"
	done
	pass "return files are mode 0600"
	[ "$(mock_stat retour_deleted)" -eq 2 ] && pass "two receipts confirmed" ||
		fail "$(mock_stat retour_deleted) confirmed"
	[ "$(mock_stat retour_waiting)" -eq 1 ] && pass "the corrupt one stays waiting" ||
		fail "$(mock_stat retour_waiting) waiting"
	python3 - "$T/out" "$T/in" >"$T/sums" <<'PY'
import hashlib, json, os, sys
for x in json.load(open(sys.argv[1])):
    if x["result"] == "stored":
        d = open(x["file"], "rb").read()
        print("ok" if hashlib.sha256(d).hexdigest() == x["sha256"] and len(d) == x["size"] else "bad")
PY
	[ "$(grep -c ok "$T/sums")" -eq 2 ] && pass "stored files match their checksums" || fail "checksums: $(cat "$T/sums")"
	bill retour --dir "$T/in"
	expect_rc 1 "the corrupt one again: still refused, and the run ends"
	[ "$(mock_stat retour_deleted)" -eq 2 ] && pass "never confirmed" || fail "confirmed"
	journal_json
	expect_json "$T/journal.json" '
assert sorted(r["state"] for r in o["retours"]) == ["confirmed", "confirmed"], o
' "the journal has the two, confirmed"
}

# A retour run killed during a download stores no duplicate when re-run,
# and a message stored but not confirmed is confirmed without a new copy.
case_retour_killed() {
	setup_token
	start_bill_mock --retour 3:30000000 --retour-fault delay --retour-fault-every 1 --delay 400
	mkdir "$T/in"
	"$VZP11_BIN" retour --dir "$T/in" --endpoint "$BASE" --cacert "$PKI/root.crt" \
		>"$T/out" 2>"$T/err" &
	pid=$!
	i=0
	while [ "$(mock_stat retour_deleted)" -lt 1 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	sleep 0.2
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	bill --json retour --dir "$T/in"
	expect_rc 0 "the re-run"
	expect_json "$T/out" '
assert all(x["result"] in ("stored", "already-stored") for x in o), o
' "every message stored once"
	n=$(ls "$T/in" | grep -c '^retour-' || true)
	[ "$n" -eq 3 ] && pass "three return files" || fail "$n return files"
	left=$(ls -A "$T/in" | grep -c partial || true)
	[ "$left" -eq 0 ] && pass "no partial file left" || fail "$left partial files left"
	journal_json
	expect_json "$T/journal.json" 'assert len(o["retours"]) == 3 and all(r["state"] == "confirmed" for r in o["retours"]), o' \
		"the journal holds each once, confirmed"
}

# Stored, but the receipt never got through (every DELETE fails): the next
# run confirms without a second copy, even after the files were taken away. The list comes wrapped in an object.
case_retour_unconfirmed() {
	setup_token
	start_bill_mock --retour 2:1000 --delete-fault --wrap-list
	mkdir "$T/in"
	bill --json retour --dir "$T/in" --retries 0
	expect_rc 1 "receipts that cannot be confirmed"
	expect_json "$T/out" '
assert len(o) == 2 and all(x["result"] == "stored" and "confirming receipt failed" in x["error"] for x in o), o
' "both stored, the confirmation failure said"
	journal_json
	expect_json "$T/journal.json" 'assert [r["state"] for r in o["retours"]] == ["stored", "stored"], o' \
		"the journal: stored, not confirmed"
	# The practice software takes the files away; only the journal knows.
	mkdir "$T/processed"
	mv "$T"/in/retour-* "$T/processed/"
	stop_mock
	start_bill_mock --retour 2:1000
	bill --json retour --dir "$T/in"
	expect_rc 0 "the next run"
	expect_json "$T/out" 'assert [x["result"] for x in o] == ["already-stored", "already-stored"], o' \
		"already stored: confirmed without fetching again"
	[ "$(mock_stat retour_downloads)" -eq 0 ] && pass "nothing downloaded again" ||
		fail "$(mock_stat retour_downloads) downloads"
	[ "$(mock_stat retour_deleted)" -eq 2 ] && pass "both confirmed" || fail "$(mock_stat retour_deleted) confirmed"
	[ -z "$(ls -A "$T/in")" ] && pass "no second copy" || fail "copies again: $(ls -A "$T/in")"
}

# DELETE answers 404, which VECOZO's contract reads "not found or not
# authorised": never a confirmation. The files stay stored and open in the
# journal, and the message says both. A later run confirms one VECOZO still
# lists; one it no longer lists (confirmed already) no run sees again, and
# the admin closes its entry with --forget, which keeps the file: should it
# be listed again, a run finds the file and confirms it without a download.
case_retour_delete_404() {
	setup_token
	start_bill_mock --retour 2:1000 --delete-unknown
	mkdir "$T/in"
	id1=7e7e0000-0000-4000-8000-000000000001
	id2=7e7e0000-0000-4000-8000-000000000002
	bill --json retour --dir "$T/in"
	expect_rc 1 "confirmations answered 404"
	expect_json "$T/out" '
assert len(o) == 2 and all(x["result"] == "stored" for x in o), o
for x in o:
    e = x["error"]
    assert "not confirmed" in e and "not found" in e and "not authorised" in e, e
    assert "a later run asks again as long as VECOZO lists it" in e, e
    assert "--forget " + x["traceer_id"] + "\x27 closes its entry" in e, e
' "stored, not confirmed; it says what 404 may mean and what closes the entry"
	bill retour --dir "$T/in"
	expect_rc 1 "a second run, the confirmation answered 404 again"
	expect_in "$T/err" "either not found there .* or this certificate is not authorised" \
		"the message says both"
	journal_json
	expect_json "$T/journal.json" 'assert [r["state"] for r in o["retours"]] == ["stored", "stored"], o' \
		"the journal keeps them open: stored, not confirmed"
	run vz journal
	expect_in "$T/out" " stored +$id1 " "journal lists it as stored"
	expect_in "$T/err" "2 return file\(s\) stored but not confirmed: .*'vzp11 retour --forget TRACEERID'" \
		"journal says what closes such an entry"
	[ "$(mock_stat retour_waiting)" -eq 2 ] && pass "they are still waiting at VECOZO" ||
		fail "$(mock_stat retour_waiting) waiting"
	stop_mock
	# VECOZO lists the first only: the second was confirmed meanwhile.
	start_bill_mock --retour 1:1000
	bill --json retour --dir "$T/in"
	expect_rc 0 "a later run"
	expect_json "$T/out" 'assert [x["result"] for x in o] == ["already-stored"] and o[0].get("error") is None, o' \
		"confirms the stored file VECOZO still lists, without a second copy"
	journal_json
	expect_json "$T/journal.json" '
assert [(r["traceer_id"], r["state"]) for r in o["retours"]] == [("'$id1'", "confirmed"), ("'$id2'", "stored")], o
' "then the journal says confirmed for it; the one no longer listed stays stored"
	run vz retour --forget "$id2" --dir "$T/in"
	expect_rc 2 "--forget with --dir"
	run vz retour --forget 7e7e0000
	expect_rc 2 "--forget of something that is not a traceerId"
	run vz retour --forget "$id1"
	expect_rc 1 "--forget of a confirmed return file"
	expect_in "$T/err" "was confirmed at VECOZO on .*stays" "says it is confirmed and stays"
	run vz --json retour --forget "$(echo "$id2" | tr a-f A-F)"
	expect_rc 0 "--forget of the stored one VECOZO no longer lists (its id in upper case)"
	expect_json "$T/out" '
assert [(x["traceer_id"], x["result"]) for x in o] == [("'$id2'", "forgotten")], o
assert o[0]["file"].endswith("/retour-'$id2'"), o
' "forgotten, naming its file"
	journal_json
	expect_json "$T/journal.json" 'assert [(r["traceer_id"], r["state"]) for r in o["retours"]] == [("'$id1'", "confirmed")], o' \
		"the journal no longer holds it; the confirmed one stays"
	[ -f "$T/in/retour-$id2" ] && pass "its file stays" || fail "its file is gone"
	run vz retour --forget "$id2"
	expect_rc 1 "--forget again"
	expect_in "$T/err" "holds no return file with traceerId $id2" "says the journal does not hold it"
	stop_mock
	start_bill_mock --retour 2:1000
	bill --json retour --dir "$T/in"
	expect_rc 0 "both listed again"
	expect_json "$T/out" 'assert [x["result"] for x in o] == ["already-stored", "already-stored"], o' \
		"the forgotten one is found in its file"
	[ "$(mock_stat retour_downloads)" -eq 0 ] && [ "$(mock_stat retour_deleted)" -eq 2 ] &&
		pass "confirmed without a download" ||
		fail "downloads $(mock_stat retour_downloads), deleted $(mock_stat retour_deleted)"
}

# The list's payload.url is followed when it is on the configured base (the
# same scheme, host and port; absolute or relative) and refused otherwise:
# the client certificate never goes to another host. The other host here is
# a second mock that would take the certificate; it must see no connection.
case_retour_payload_url() {
	setup_token
	rights_file
	"$VZMOCK" --cert "$PKI/server-chain.pem" --key "$PKI/server.key" --ca "$PKI/chain.pem" \
		--population "$SRCDIR/tests/mock/population.json" --rights "$T/rights" \
		--port-file "$T/decoy.port" --stats "$T/decoy.json" --idle-exit 120 2>"$T/decoy.log" &
	DECOY_PID=$!
	i=0
	while [ ! -s "$T/decoy.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	D=$(cat "$T/decoy.port")
	start_bill_mock --retour 3:1000 \
		--retour-url "https://localhost:$D/berichtenservice/berichten/rest-pull/v1/berichten/%i/payload" \
		--retour-url "https://127.0.0.1:%p/berichtenservice/downloads/%i" \
		--retour-url "http://%h/berichtenservice/downloads/%i"
	mkdir "$T/in"
	bill --json retour --dir "$T/in"
	expect_rc 1 "payload URLs on another port, another host name, another scheme"
	expect_json "$T/out" '
assert [x["result"] for x in o] == ["foreign-url"] * 3, o
e = [x["error"] for x in o]
assert all("was not followed" in x and "stays waiting" in x for x in e), e
assert "points to https://localhost:'"$D"'," in e[0], e[0]
assert "points to https://127.0.0.1:" in e[1], e[1]
assert "points to http://localhost:" in e[2], e[2]
' "each refused, saying where it points"
	bill retour --dir "$T/in"
	expect_rc 1 "the same without --json"
	expect_in "$T/err" "payload URL https://localhost:$D/berichtenservice/.* was not followed" \
		"the message names the URL"
	[ -z "$(ls -A "$T/in")" ] && pass "nothing stored" || fail "stored: $(ls -A "$T/in")"
	[ "$(mock_stat retour_downloads)" -eq 0 ] && [ "$(mock_stat retour_deleted)" -eq 0 ] &&
		[ "$(mock_stat retour_waiting)" -eq 3 ] && pass "nothing downloaded or confirmed; all three wait" ||
		fail "downloads $(mock_stat retour_downloads), deleted $(mock_stat retour_deleted)"
	kill "$DECOY_PID"
	wait "$DECOY_PID" 2>/dev/null || true
	DECOY_PID=
	n=$(sed -n 's/.*"connections": \([0-9]*\).*/\1/p' "$T/decoy.json")
	[ "$n" = 0 ] && pass "the other host saw no connection" || fail "the other host saw ${n:-?} connections"
	journal_json
	expect_json "$T/journal.json" 'assert o["retours"] == [], o' "nothing in the journal"
	stop_mock
	# On the base, at another path: absolute, and relative to the base.
	start_bill_mock --retour 2:1000 --record "$T/record" \
		--retour-url "https://%h/berichtenservice/downloads/%i" \
		--retour-url "/berichtenservice/downloads/%i"
	bill --json retour --dir "$T/in"
	expect_rc 0 "payload URLs on the base"
	expect_json "$T/out" 'assert [x["result"] for x in o] == ["stored", "stored"], o' "both stored"
	expect_in "$T/record" "^GET /berichtenservice/downloads/7e7e0000-0000-4000-8000-000000000001 " \
		"the absolute URL was followed"
	expect_in "$T/record" "^GET /berichtenservice/downloads/7e7e0000-0000-4000-8000-000000000002 " \
		"the relative URL was followed"
	expect_not_in "$T/record" "/payload " "not the path the traceerId would give"
}

# psql ARGS: SQL on the test's cluster as its superuser vzp11 (PostgreSQL's
# own client, from the server's bindir; not under the sanitizers' preload).
psql_su() {
	bindir=${PG_BINDIR:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
	env -u LD_PRELOAD "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"
}

# Another database user makes a schema named like vzp11's role, first in
# PostgreSQL's default search_path ("$user", public), with tables like the
# journal's and a row that says a file was accepted. The journal's tables
# are named in their own schema (public here), so the shadow is never read
# or written: the file is sent, and both go to the real journal.
case_search_path_shadow() {
	[ "$BACKEND" = postgresql ] || { echo "SKIP: a PostgreSQL case"; exit 77; }
	setup_token
	start_bill_mock
	make_decl a.txt
	make_decl b.txt
	declare_file "$T/a.txt"
	expect_rc 0 "a first declaration makes the journal's tables (in public)"
	sha=$(sha256sum "$T/b.txt" | cut -c1-64)
	psql_su "$VZP11_JOURNAL" <<SQL
CREATE ROLE mallory;
CREATE SCHEMA vzp11 AUTHORIZATION mallory;
CREATE TABLE vzp11.declarations (LIKE public.declarations INCLUDING ALL);
CREATE TABLE vzp11.retours (LIKE public.retours INCLUDING ALL);
INSERT INTO vzp11.declarations (traceer_id, conversatie_id, sha256, size, file, flow, state,
  forced, http_status, status, final, created_at, updated_at)
  VALUES ('0bad0bad-0000-4000-8000-000000000001', '0bad0bad-0000-4000-8000-000000000002',
  '$sha', 1, 'b.txt', '303:3.1', 'accepted', false, 204, '', false, '2026-01-01T00:00:00Z',
  '2026-01-01T00:00:00Z');
ALTER TABLE vzp11.declarations OWNER TO mallory;
ALTER TABLE vzp11.retours OWNER TO mallory;
SQL
	[ "$(psql_su "$VZP11_JOURNAL" -c 'SELECT current_schemas(false)')" = "{vzp11,public}" ] &&
		pass "the shadow schema is first in vzp11's search_path" || fail "no shadow in the search_path"
	declare_file --json "$T/b.txt"
	expect_rc 0 "a file the shadow says was accepted"
	expect_json "$T/out" 'assert o["status"] == "accepted" and not o["traceer_id"].startswith("0bad"), o' \
		"it is sent and accepted: the shadow's row was not read"
	[ "$(mock_stat accepted)" -eq 2 ] && pass "both files reached VECOZO" || fail "$(mock_stat accepted) accepted"
	journal_json
	expect_json "$T/journal.json" '
assert sorted(d["file"] for d in o["declarations"]) == ["a.txt", "b.txt"], o
assert not [d for d in o["declarations"] if d["traceer_id"].startswith("0bad")], o
' "journal lists the real journal's two declarations"
	[ "$(psql_su "$VZP11_JOURNAL" -c 'SELECT count(*) FROM public.declarations')" = 2 ] &&
		pass "both are in public.declarations" || fail "public.declarations holds $(psql_su "$VZP11_JOURNAL" -c 'SELECT count(*) FROM public.declarations')"
	[ "$(psql_su "$VZP11_JOURNAL" -c 'SELECT count(*) FROM vzp11.declarations')" = 1 ] &&
		pass "the shadow table was not written" || fail "the shadow table was written"
	# A database whose only journal-like tables are someone else's: vzp11
	# creates no tables beside them unless the URI names a schema.
	psql_su "$VZP11_JOURNAL" -c 'CREATE DATABASE other'
	other=$(echo "$VZP11_JOURNAL" | sed 's|:///vzp11?|:///other?|')
	psql_su "$other" <<SQL
CREATE SCHEMA vzp11 AUTHORIZATION mallory;
CREATE TABLE vzp11.declarations (traceer_id text);
SQL
	run vz --journal "$other" journal
	expect_rc 1 "a journal whose tables are only in another schema"
	expect_in "$T/err" "no journal tables in schema public, but a table declarations is in schema vzp11" \
		"says so, and creates nothing"
	[ "$(psql_su "$other" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ] &&
		pass "nothing was created in public" || fail "tables were created in public"
	run vz --journal "$other&options=-csearch_path%3Dpublic" journal
	expect_rc 0 "with the schema named in the URI"
}

# A journal on another host gets sslmode=verify-full unless the URI says
# otherwise: no login goes there in clear text. The host is pg-fake, which
# answers "no TLS" and writes down what it got.
case_remote_sslmode() {
	[ "$BACKEND" = postgresql ] || { echo "SKIP: a PostgreSQL case"; exit 77; }
	unset PGSSLMODE
	/usr/bin/python3 "$SRCDIR/tests/tools/pg-fake" "$T/fake.port" "$T/fake.log" &
	FAKE_PID=$!
	i=0
	while [ ! -s "$T/fake.port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	P=$(cat "$T/fake.port")
	run vz --journal "postgresql://vzp11@db.example:$P/vzp11?hostaddr=127.0.0.1&connect_timeout=10" journal
	expect_rc 1 "a journal on another host that offers no TLS"
	expect_in "$T/err" "SSL" "libpq says TLS is required"
	expect_in "$T/err" "sslmode=verify-full" "says why vzp11 asks for it"
	expect_in "$T/fake.log" "^ssl-request$" "TLS was asked for"
	expect_not_in "$T/fake.log" "^startup" "no login was sent in clear text"
	: >"$T/fake.log"
	run vz --journal "postgresql://vzp11@db.example:$P/vzp11?hostaddr=127.0.0.1&sslmode=disable" journal
	expect_rc 1 "the URI says sslmode=disable"
	expect_in "$T/fake.log" "^startup user=vzp11 " "then the URI decides"
	: >"$T/fake.log"
	PGHOST=db.example PGHOSTADDR=127.0.0.1 PGPORT=$P run vz --journal "postgresql://vzp11@/vzp11" journal
	expect_rc 1 "the host from libpq's environment (PGHOST)"
	expect_not_in "$T/fake.log" "^startup" "no login in clear text there either"
	: >"$T/fake.log"
	run vz --journal "postgresql://vzp11@localhost:$P/vzp11" journal
	expect_rc 1 "a journal on this machine (localhost)"
	expect_in "$T/fake.log" "^startup user=vzp11 " "this machine: libpq's default (prefer)"
	# A service (pg_service.conf) decides its own sslmode: libpq takes it
	# for what the URI leaves out, and vzp11 adds none over it.
	printf '%s\n' "[fakejournal]" "sslmode=disable" "hostaddr=127.0.0.1" >"$T/pg_service.conf"
	: >"$T/fake.log"
	PGSERVICEFILE=$T/pg_service.conf run vz --journal \
		"postgresql://vzp11@db.example:$P/vzp11?service=fakejournal&connect_timeout=10" journal
	expect_rc 1 "a host on the network through a service that says sslmode=disable"
	expect_in "$T/fake.log" "^startup user=vzp11 " "the service's sslmode decides (service=)"
	: >"$T/fake.log"
	PGSERVICEFILE=$T/pg_service.conf PGSERVICE=fakejournal run vz --journal \
		"postgresql://vzp11@db.example:$P/vzp11?connect_timeout=10" journal
	expect_rc 1 "the same service named by PGSERVICE"
	expect_in "$T/fake.log" "^startup user=vzp11 " "the service's sslmode decides (PGSERVICE)"
}

# The token fails at each PKCS#11 call of a declare in turn (through
# faulty-p11, provider calls included): whatever the faulty run left in the
# journal, a clean re-run of the same file ends accepted, and no content
# reaches VECOZO under two traceerIds. FAULT_SWEEP_STRIDE=S fails every
# Sth call only (default 1: every call; scripts/test uses more under the
# sanitizers); BILLING_SWEEP_MAX caps the calls swept (default: all).
case_fault_sweep() {
	: "${FAULTY_P11:?}"
	setup_token
	start_bill_mock
	make_decl clean.txt
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 \
		declare_file "$T/clean.txt"
	[ "$rc" -eq 0 ] || { fail "clean run: exit $rc"; cat "$T/err"; finish; }
	k=$(sed -n 's/^calls //p' "$T/report")
	[ "${k:-0}" -gt 5 ] || { fail "the clean run made only ${k:-0} PKCS#11 calls"; finish; }
	[ -z "${BILLING_SWEEP_MAX:-}" ] || [ "$k" -le "$BILLING_SWEEP_MAX" ] || k=$BILLING_SWEEP_MAX
	codes="CKR_DEVICE_ERROR CKR_DEVICE_REMOVED CKR_SESSION_HANDLE_INVALID CKR_TOKEN_NOT_PRESENT CKR_FUNCTION_FAILED"
	stride=${FAULT_SWEEP_STRIDE:-1}
	n=1 resolved=0 swept=0
	while [ "$n" -le "$k" ]; do
		swept=$((swept + 1))
		code=$(echo $codes | tr ' ' '\n' | sed -n "$(((n % 5) + 1))p")
		make_decl "d$n.txt"
		FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_AT=$n FAULTY_P11_RV=$code \
			VZP11_MODULE=$FAULTY_P11 declare_file --retries 0 "$T/d$n.txt"
		first=$rc
		declare_file --json "$T/d$n.txt"
		# Accepted now, or accepted by the faulty run already (a fault the
		# run could live with), and then a duplicate.
		if { [ "$rc" -eq 0 ] && grep -q '"status":"accepted"' "$T/out"; } ||
			{ [ "$first" -eq 0 ] && grep -q '"status":"duplicate"' "$T/out"; }; then
			resolved=$((resolved + 1))
		else
			fail "fault $code at call $n (first run exit $first): the re-run exit $rc"
			sed 's/^/  | /' "$T/out" "$T/err" | head -6
		fi
		n=$((n + stride))
	done
	[ "$resolved" -eq "$swept" ] && pass "$swept faults (of $k calls), each resolved by a re-run"
	[ "$(mock_stat max_per_content)" -eq 1 ] && pass "no content reached VECOZO twice" ||
		fail "max_per_content $(mock_stat max_per_content)"
	journal_json
	expect_json "$T/journal.json" '
acc = [d for d in o["declarations"] if d["state"] == "accepted"]
assert len(acc) == len({d["sha256"] for d in acc}) == '"$((swept + 1))"', len(acc)
assert not [d for d in o["declarations"] if d["state"] == "sending"], o
' "the journal: each content accepted once, nothing left sending"
}

# check_contract: every request vzp11 sent to the mock and every answer
# the mock gave, held to the Berichtenservice's contract
# (tests/contract/berichtenservice.json, tests/tools/contract-check). A
# case that started no billing mock has nothing to hold; one that expects
# no exchange (CONTRACT_LOG_EMPTY=yes) gets an empty log checked for that;
# any other passes only when the check ran on a log that holds exchanges.
check_contract() {
	[ -n "${CONTRACT_LOG:-}" ] || return 0
	if [ "${CONTRACT_LOG_EMPTY:-}" = yes ]; then
		[ ! -s "$CONTRACT_LOG" ] && pass "no exchange reached the mock" ||
			fail "the mock logged $(wc -l <"$CONTRACT_LOG") exchange(s) where none was expected"
		return 0
	fi
	set +e
	/usr/bin/python3 "$SRCDIR/tests/tools/contract-check" "$SRCDIR/tests/contract/berichtenservice.json" \
		"$CONTRACT_LOG" >"$T/contract.out" 2>&1
	crc=$?
	set -e
	if [ "$crc" -eq 0 ]; then
		pass "$(tail -n 1 "$T/contract.out")"
	else
		fail "the contract check (exit $crc): $(tail -n 1 "$T/contract.out")"
		head -20 "$T/contract.out" | sed 's/^/  | /'
	fi
}

new_token "billing-$CASE-$BACKEND"
setup_journal
"case_$(echo "$CASE" | tr - _)"
check_contract
finish
