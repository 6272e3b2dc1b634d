#!/bin/sh
# lifecycle.sh CASE: watching the certificate's life. `vzp11 check` as a
# monitoring system runs it (status line, perfdata, exit 0/1/2/3) and
# `vzp11 selftest` as an admin runs it before trusting a token.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"
: "${FAULTY_P11:?}"
CASE=$1


# first_line: the plugin's status line, the one a monitoring system reads.
first_line() { head -n 1 "$T/out" >"$T/line"; }

expect_json() { # expect_json FILE PYTHON (the object is o)
	python3 - "$1" >"$T/json-check" 2>&1 <<PY || true
import json, sys
o = json.load(open(sys.argv[1]))
$2
print("json ok")
PY
	expect_in "$T/json-check" "^json ok$" "the JSON has the expected fields and values"
}

# swap_key LABEL KEYFILE: the private key under LABEL replaced by another
# key of the same type and size, with the same CKA_ID and label.
swap_key() {
	id=$(vz --json show "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
	p11 --delete-object --type privkey --id "$id" >/dev/null 2>&1
	p11 --write-object "$2" --type privkey --id "$id" --label "$1" --usage-sign >/dev/null 2>&1
	[ "$(count_objects '^Private Key Object')" -eq 1 ] || { fail "swapping the key failed"; finish; }
}

case_check_ok() {
	must_import "$PKI/sys-rsa2048.p12"
	run vz check
	expect_rc 0 "check of a fresh certificate"
	first_line
	expect_in "$T/line" "^VZP11 OK - vecozo-system: 7[0-9]{2} days left \(expires 20[0-9-]+\) \| 'days_left'=7[0-9]{2};45:;14:$" \
		"one status line with perfdata"
	expect_in "$T/out" "^vecozo-system: \[OK\] key sensitive and not extractable$" "the key's protection was read"
	expect_in "$T/out" "never-extractable=false" "says honestly that an imported key was outside the token once"
	expect_in "$T/out" "chain complete on the token \(2 CA certificates\)" "the chain is complete"
	# Unattended, without a PIN source: public objects only, and it says so.
	unset VZP11_PIN_SOURCE
	run vz check </dev/null
	expect_rc 0 "check without a PIN source"
	first_line
	expect_in "$T/line" "^VZP11 OK - .*\(keys not checked: no PIN source\) \|" "says the key was not checked"
	expect_not_in "$T/err" "PIN" "asks for no PIN"
	export VZP11_PIN_SOURCE=env:VZT_PIN
}

case_check_warning() {
	must_import "$PKI/sys-soon30.p12"
	run vz check
	expect_rc 1 "check 30 days before expiry"
	first_line
	expect_in "$T/line" "^VZP11 WARNING - vecozo-system: (29|30) days left .*renew at VECOZO \| 'days_left'=(29|30);45:;14:$" \
		"WARNING with the days left"
	run vz check --warn-days 20
	expect_rc 0 "--warn-days 20 makes 30 days OK"
	run vz check --warn-days 10 --crit-days 20
	expect_rc 3 "--crit-days above --warn-days is a usage error, UNKNOWN for a monitor"
	expect_in "$T/out" "^VZP11 UNKNOWN - --crit-days must not be more than --warn-days" "says why"
	run vz check --warn-days many
	expect_rc 3 "a bad number is UNKNOWN"
	# Two certificates: the worst decides, the one in trouble comes first,
	# and the perfdata labels say which is which.
	must_import "$PKI/sys-rsa2048.p12" --label main
	run vz check
	expect_rc 1 "one of two certificates needs renewal"
	first_line
	expect_in "$T/line" "^VZP11 WARNING - vecozo-system: .*; main: 7[0-9]{2} days left" "the certificate in trouble first"
	expect_in "$T/line" "\| 'days_left_vecozo-system'=(29|30);45:;14: 'days_left_main'=7[0-9]{2};45:;14:$|\| 'days_left_main'=7[0-9]{2};45:;14: 'days_left_vecozo-system'=(29|30);45:;14:$" \
		"perfdata per certificate, label-qualified"
	run vz check --label main
	expect_rc 0 "--label checks one certificate"
	first_line
	expect_in "$T/line" "\| 'days_left'=7[0-9]{2};45:;14:$" "one certificate, plain perfdata label"
}

case_check_critical() {
	must_import "$PKI/sys-soon7.p12"
	run vz check
	expect_rc 2 "check 7 days before expiry"
	first_line
	expect_in "$T/line" "^VZP11 CRITICAL - vecozo-system: [67] days left .*renew at VECOZO now \| 'days_left'=[67];45:;14:$" \
		"CRITICAL with the days left"
	run vz check --crit-days 3
	expect_rc 1 "--crit-days 3 makes 7 days a WARNING"
	# Expired (import refuses it, so pkcs11-tool puts it there).
	p11 --write-object "$PKI/expired.key" --type privkey --id 0a0b --label old >/dev/null 2>&1
	openssl x509 -in "$PKI/expired.crt" -outform DER -out "$T/expired.der"
	p11 --write-object "$T/expired.der" --type cert --id 0a0b --label old >/dev/null 2>&1
	run vz check --label old
	expect_rc 2 "an expired certificate"
	expect_in "$T/out" "^VZP11 CRITICAL - old: expired on 20[0-9-]+" "says it expired"
	# The key gone: the certificate can no longer authenticate.
	p11 --delete-object --type privkey --id 0a0b >/dev/null 2>&1
	run vz check --label old
	expect_rc 2 "a certificate whose key is gone"
	expect_in "$T/out" "no private key on the token for this certificate" "says the key is missing"
	run vz check --label nothing-here
	expect_rc 2 "a label that is not on the token"
	expect_in "$T/out" "^VZP11 CRITICAL - no certificate with the label 'nothing-here'" "says so"
}

case_check_unknown_no_token() {
	must_import "$PKI/sys-rsa2048.p12"
	VZP11_TOKEN=no-such-token run vz check
	expect_rc 3 "a token that is not there"
	first_line
	expect_in "$T/line" "^VZP11 UNKNOWN - .*no-such-token" "UNKNOWN names the token"
	expect_not_in "$T/line" "\|" "no perfdata without a measurement"
	VZP11_MODULE=$T/no-such-module.so run vz check
	expect_rc 3 "a module that cannot be loaded"
	expect_in "$T/out" "^VZP11 UNKNOWN - " "UNKNOWN for the module"
	VZP11_TOKEN=no-such-token run vz --json check
	expect_rc 3 "--json when the token is missing"
	expect_json "$T/out" '
assert o["status"] == "UNKNOWN" and o["exit"] == 3, o
assert "no-such-token" in o["reason"] and o["certificates"] == [], o'
}

case_check_unknown_wrong_pin_not_retried() {
	must_import "$PKI/sys-rsa2048.p12"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_FUNC=C_Login FAULTY_P11_RV=CKR_PIN_INCORRECT \
		FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 run vz check
	expect_rc 3 "a rejected PIN"
	expect_in "$T/out" "^VZP11 UNKNOWN - .*rejected the PIN" "UNKNOWN says the PIN was rejected"
	logins=$(sed -n 's/^func C_Login //p' "$T/report")
	[ "${logins:-0}" -eq 1 ] && pass "the PIN was sent exactly once" ||
		fail "C_Login was called ${logins:-0} times, expected once"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_TOKEN_FLAGS=pin-locked FAULTY_P11_REPORT=$T/report \
		VZP11_MODULE=$FAULTY_P11 run vz check
	expect_rc 3 "a locked PIN"
	logins=$(sed -n 's/^func C_Login //p' "$T/report")
	[ "${logins:-0}" -eq 0 ] && pass "no PIN sent to a locked token" ||
		fail "C_Login was called ${logins:-0} times on a locked token"
	VZP11_PIN_SOURCE=env:VZT_UNSET run vz check
	expect_rc 3 "a PIN source that gives nothing"
	expect_in "$T/out" "^VZP11 UNKNOWN - .*VZT_UNSET" "names the PIN source"
}

case_check_json() {
	must_import "$PKI/sys-rsa2048.p12"
	must_import "$PKI/sys-soon30.p12" --label soon
	run vz --json check
	expect_rc 1 "check --json with one certificate to renew"
	expect_json "$T/out" '
assert o["status"] == "WARNING" and o["exit"] == 1 and o["reason"] is None, o
assert o["warn_days"] == 45 and o["crit_days"] == 14 and o["logged_in"] is True, o
c = {x["label"]: x for x in o["certificates"]}
assert set(c) == {"vecozo-system", "soon"}, set(c)
m = c["vecozo-system"]
assert set(m) == {"label", "status", "subject", "serial", "not_after", "days_left",
                  "fingerprint_sha256", "problems", "key", "match", "chain"}, set(m)
assert m["status"] == "OK" and m["problems"] == [] and 700 < m["days_left"] < 740, m
assert m["key"] == {"present": True, "sensitive": True, "extractable": False,
                    "value_readable": False, "always_sensitive": False,
                    "never_extractable": False,
                    "origin": "was outside the token (imported)"}, m["key"]
assert m["match"] == {"key_id": True, "type_and_size": True}, m["match"]
assert m["chain"]["complete"] is True and m["chain"]["missing"] is None, m["chain"]
assert len(m["chain"]["certificates"]) == 2, m["chain"]
s = c["soon"]
assert s["status"] == "WARNING" and s["days_left"] in (29, 30), s
assert s["problems"][0]["status"] == "WARNING" and "days left" in s["problems"][0]["text"], s'
	unset VZP11_PIN_SOURCE
	run vz --json check --label soon </dev/null
	expect_json "$T/out" '
assert o["logged_in"] is False, o
k = o["certificates"][0]["key"]
assert k["present"] is None and k["checked"].startswith("no"), k'
	export VZP11_PIN_SOURCE=env:VZT_PIN
}

case_selftest_ok() {
	must_import "$PKI/sys-rsa2048.p12"
	start_mock
	run vz selftest --endpoint "$ENDPOINT" --cacert "$PKI/chain.pem"
	expect_rc 0 "selftest against the mock"
	expect_in "$T/out" "^ok +pss +the token offers RSA-PSS and signed with it: TLS 1.3" "RSA-PSS on SoftHSM, tried"
	for name in module token pin certificate "key attributes" chain validity provider pss \
		"sign rsa_pkcs1_sha256" "sign rsa_pss_rsae_sha256" "cov handshake"; do
		expect_in "$T/out" "^ok +$name " "$name passes"
	done
	expect_in "$T/out" "^ok +cov handshake +handshake with .* completed; .*Zoekresultaat Gevonden" \
		"the COV check got an answer"
	expect_in "$T/out" "^selftest: all checks passed$" "says all passed"
	[ "$(mock_stat connections)" -ge 1 ] && pass "the mock saw the handshake" ||
		fail "the mock saw $(mock_stat connections) connections"
	[ "$(mock_stat violations)" -eq 0 ] && pass "a request within the VZ801 contract" ||
		fail "$(mock_stat violations) contract violations"
	# A token without RSA-PSS: the TLS layer holds the key to TLS 1.2 with
	# PKCS#1 v1.5, selftest says so and the handshake still completes.
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_HIDE_PSS=1 VZP11_MODULE=$FAULTY_P11 \
		run vz selftest --endpoint "$ENDPOINT" --cacert "$PKI/chain.pem"
	expect_rc 0 "selftest on a token without RSA-PSS"
	expect_in "$T/out" "^ok +pss +the token offers no RSA-PSS: TLS 1.2 with PKCS#1 v1.5" "says TLS 1.2 will be used"
	expect_in "$T/out" "^skip +sign rsa_pss_rsae_sha256 " "no PSS signature tried"
	expect_in "$T/out" "^ok +cov handshake .*Zoekresultaat Gevonden" "the handshake completes over TLS 1.2"
	# EC, and a certificate without the COV right: the handshake completes
	# and the line names VECOZO's fault.
	must_import "$PKI/sys-ec256.p12" --label ec
	run vz selftest --label ec --endpoint "$ENDPOINT" --cacert "$PKI/chain.pem"
	expect_rc 0 "selftest of an EC certificate without the COV right"
	expect_in "$T/out" "^ok +sign ecdsa_secp256r1_sha256 " "ECDSA signature verified"
	expect_in "$T/out" "^ok +cov handshake .*completed; .*Niet geautoriseerd" "names the fault"
	# Without an endpoint, the handshake is skipped, not failed.
	run vz selftest
	expect_rc 0 "selftest without an endpoint"
	expect_in "$T/out" "^skip +cov handshake " "the handshake is skipped"
}

case_selftest_fails() {
	must_import "$PKI/sys-rsa2048.p12"
	swap_key vecozo-system "$PKI/sys-renewed.key"
	run vz selftest
	expect_rc 1 "a key that belongs to another certificate"
	expect_in "$T/out" "^FAIL +sign rsa_pkcs1_sha256 .*key and certificate do not match" \
		"the signature does not verify"
	expect_in "$T/out" "^ +fix: import the .pfx again" "says what to do"
	expect_in "$T/out" "^selftest: [0-9]+ of [0-9]+ checks failed$" "counts the failures"
	# A fresh token: endpoint that is not there, server CA not trusted.
	new_token "lifecycle-$CASE-2"
	must_import "$PKI/sys-rsa2048.p12"
	# The certificate's own key, on a token without RSA-PSS that signs
	# PKCS#1 v1.5 wrongly: the token is blamed, not the key.
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_HIDE_PSS=1 FAULTY_P11_BAD_PKCS1=1 \
		VZP11_MODULE=$FAULTY_P11 run vz selftest
	expect_rc 1 "a token that signs PKCS#1 v1.5 wrongly"
	expect_in "$T/out" "^FAIL +sign rsa_pkcs1_sha256 .*though the key is the certificate's: the token signs this scheme wrongly" \
		"says the token signs wrongly"
	expect_not_in "$T/out" "do not match|--replace" "does not blame the key"
	run vz selftest --endpoint "https://localhost:1/cov" --cacert "$PKI/chain.pem"
	expect_rc 1 "an endpoint nobody listens on"
	expect_in "$T/out" "^FAIL +cov handshake +no handshake with https://localhost:1/cov: " "the handshake fails"
	start_mock
	run vz selftest --endpoint "$ENDPOINT" --cacert "$PKI/other-ca.crt"
	expect_rc 1 "a server the CA file does not vouch for"
	expect_in "$T/out" "^FAIL +cov handshake .*not trusted" "says the server is not trusted"
	run vz selftest --label nothing-here
	expect_rc 1 "a label that is not on the token"
	expect_in "$T/out" "^FAIL +certificate +0 certificates" "says there is none"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_FUNC=C_Login FAULTY_P11_RV=CKR_PIN_INCORRECT \
		FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 run vz selftest
	expect_rc 1 "a rejected PIN"
	expect_in "$T/out" "^FAIL +pin " "the PIN step fails"
	logins=$(sed -n 's/^func C_Login //p' "$T/report")
	[ "${logins:-0}" -eq 1 ] && pass "the PIN was sent exactly once" ||
		fail "C_Login was called ${logins:-0} times, expected once"
	run vz selftest --env nowhere
	expect_rc 2 "an unknown environment is a usage error"
}

case_selftest_json() {
	must_import "$PKI/sys-rsa2048.p12"
	start_mock
	run vz --json selftest --endpoint "$ENDPOINT" --cacert "$PKI/chain.pem"
	expect_rc 0 "selftest --json"
	expect_json "$T/out" '
assert o["label"] == "vecozo-system" and o["passed"] is True, o
names = [c["name"] for c in o["checks"]]
assert names == ["module", "token", "pin", "certificate", "key attributes", "chain", "validity",
                 "provider", "pss", "sign rsa_pkcs1_sha256", "sign rsa_pss_rsae_sha256",
                 "cov handshake"], names
for c in o["checks"]:
    assert set(c) == {"name", "status", "detail", "fix"}, c
    assert c["status"] == "pass" and c["fix"] is None, c'
	swap_key vecozo-system "$PKI/sys-renewed.key"
	run vz --json selftest
	expect_rc 1 "selftest --json with a swapped key"
	expect_json "$T/out" '
assert o["passed"] is False, o
c = {x["name"]: x for x in o["checks"]}
assert c["sign rsa_pkcs1_sha256"]["status"] == "fail" and c["sign rsa_pkcs1_sha256"]["fix"], c
assert c["cov handshake"]["status"] == "skip", c'
}

new_token "lifecycle-$CASE"
"case_$(echo "$CASE" | tr - _)"
finish
