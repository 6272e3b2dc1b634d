#!/bin/sh
# manage.sh CASE: `vzp11 list`, `show` and `remove` as an admin uses them.
. "$(dirname "$0")/lib.sh"


# list --public: the certificates without a login, and never a PIN sent,
# whatever source names one (here the environment and a config file).
case_list_public() {
	must_import "$PKI/sys-rsa2048.p12"
	must_import "$PKI/sys-ec256.p12" --label ec
	printf 'pin-source = env:VZT_PIN\n' >"$T/vzp11.conf"
	chmod 600 "$T/vzp11.conf"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 \
		run vz --config "$T/vzp11.conf" --json list --public
	expect_rc 0 "list --public"
	python3 - "$T/out" >"$T/check" 2>&1 <<'PY' || true
import json, sys
arr = json.load(open(sys.argv[1]))
assert sorted(e["label"] for e in arr) == ["ec", "vecozo-system"], arr
assert all(set(e) == {"label", "subject", "not_after", "days_left"} for e in arr), arr
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "both certificates, no CA certificate"
	expect_in "$T/report" "^calls [0-9]+" "the module was used"
	expect_not_in "$T/report" "^func C_Login " "no C_Login, although a PIN source was named"
	run vz list --public
	expect_in "$T/out" "^ec +CN=.*expires 20" "a line per certificate"
}

case_list() {
	must_import "$PKI/sys-rsa2048.p12"
	must_import "$PKI/sys-ec256.p12" --label ec
	run vz list
	expect_rc 0 "list"
	expect_in "$T/out" "^vecozo-system +CN=Demo Praktijk B.V. systeemcertificaat 01234567.*expires 20[0-9-]+ \([0-9]+ days\) +rsa-2048" "one line for the RSA certificate"
	expect_in "$T/out" "^ec +CN=.*ec-256" "one line for the EC certificate"
	lines=$(wc -l <"$T/out")
	[ "$lines" -eq 2 ] && pass "two lines, CA certificates not listed" || fail "$lines lines listed"
	run vz --json list
	expect_rc 0 "list --json"
	python3 - "$T/out" "$PKI/sys-rsa2048.crt" >"$T/check" 2>&1 <<'PY' || true
import json, subprocess, sys
arr = json.load(open(sys.argv[1]))
assert len(arr) == 2, arr
o = [e for e in arr if e["label"] == "vecozo-system"][0]
keys = {"label", "id", "subject", "issuer", "serial", "not_before", "not_after", "days_left",
        "kind", "fingerprint_sha256", "key", "uri", "chain"}
assert keys <= set(o), set(o) ^ keys
fp = subprocess.run(["openssl", "x509", "-in", sys.argv[2], "-noout", "-fingerprint", "-sha256"],
                    capture_output=True, text=True).stdout.strip().split("=")[1]
assert o["fingerprint_sha256"] == fp
assert o["kind"] == "system"
assert o["key"] == {"type": "rsa", "bits": 2048, "sensitive": True, "extractable": False,
                    "value_readable": False, "sign_only": True, "arrived": "created"}, o["key"]
assert o["not_after"].endswith("Z") and "T" in o["not_after"]
assert 700 < o["days_left"] < 740
assert o["chain"] == ["CN=vzp11 Test Issuing CA G4,O=vzp11 Test,C=NL",
                      "CN=vzp11 Test Root CA G4,O=vzp11 Test,C=NL"], o["chain"]
assert o["uri"]["key"].endswith("type=private") and o["uri"]["cert"].endswith("type=cert")
ec = [e for e in arr if e["label"] == "ec"][0]
assert ec["key"]["type"] == "ec" and ec["key"]["bits"] == 256
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "list --json has every field with the right values"
}

case_list_empty() {
	run vz list
	expect_rc 0 "list on an empty token"
	expect_in "$T/err" "vzp11 import" "points to import"
	run vz --json list
	expect_in "$T/out" '^\[\]$' "empty JSON array"
}

case_list_expired_marked() {
	# import refuses expired certificates, so put one there with pkcs11-tool
	p11 --write-object "$PKI/expired.key" --type privkey --id 0a0b --label old >/dev/null 2>&1
	openssl x509 -in "$PKI/expired.crt" -outform DER -out "$T/expired.der"
	p11 --write-object "$T/expired.der" --type cert --id 0a0b --label old >/dev/null 2>&1
	run vz list
	expect_rc 0 "list with an expired certificate"
	expect_in "$T/out" "^old .*\(-[0-9]+ days\).*EXPIRED" "expired certificate is marked"
}

case_show() {
	must_import "$PKI/sys-rsa2048.p12"
	run vz show vecozo-system
	expect_rc 0 "show"
	for field in subject issuer serial valid kind "key on token" fingerprint "key URI" "cert URI" chain; do
		expect_in "$T/out" "^$field: " "shows $field"
	done
	expect_in "$T/out" "^kind: +system" "kind is system"
	run vz show nothing-here
	expect_rc 1 "show of an unknown label"
	expect_in "$T/err" "no certificate .* 'nothing-here'" "says the label is unknown"
	run vz show
	expect_rc 2 "show without a label"
}

# A certificate and key another tool wrote (pkcs11-tool sets no
# CKA_CERTIFICATE_CATEGORY: SoftHSM keeps 0, unspecified): show says this
# certificate has no category, not that the token has none, and still
# finds the chain vzp11 wrote for another certificate.
case_show_cert_by_other_tool() {
	must_import "$PKI/sys-ec256.p12"
	put_key "$PKI/sys-rsa2048.p12" by-hand 0a0b
	openssl x509 -in "$PKI/sys-rsa2048.crt" -outform der -out "$T/cert.der"
	p11 --write-object "$T/cert.der" --type cert --label by-hand --id 0a0b >"$T/put.log" 2>&1 ||
		{ fail "pkcs11-tool could not write the certificate"; cat "$T/put.log"; }
	run vz show by-hand
	expect_rc 0 "show of a certificate another tool wrote"
	expect_in "$T/out" "^category: +unspecified \(this certificate's CKA_CERTIFICATE_CATEGORY says nothing, as other tools write it" \
		"says this certificate has no category"
	expect_not_in "$T/out" "token has no certificate categories|^not kept: +CKA_CERTIFICATE_CATEGORY" \
		"does not say the token keeps no categories"
	expect_in "$T/out" "^chain: +CN=vzp11 Test Issuing CA G4" "the chain is found"
	run vz --json show by-hand
	expect_not_in "$T/out" '"not_kept":\[[^]]*CKA_CERTIFICATE_CATEGORY' "--json: the category is not among what the token did not keep"
	run vz list --public
	[ "$(wc -l <"$T/out")" -eq 2 ] && pass "list --public: two certificates, no CA taken for one" ||
		{ fail "list --public shows $(wc -l <"$T/out") lines"; cat "$T/out"; }
}

# A full disk (or any write error) on stdout is a failure, not "done".
case_output_write_error() {
	[ -w /dev/full ] || { echo "SKIP: no /dev/full"; exit 77; }
	must_import "$PKI/sys-rsa2048.p12"
	for args in "list" "--json list" "show vecozo-system" "--json show vecozo-system"; do
		set +e
		# shellcheck disable=SC2086
		vz $args >/dev/full 2>"$T/err"
		rc=$?
		set -e
		expect_rc 1 "$args with stdout on a full disk"
		expect_in "$T/err" "cannot write the output.*No space left on device" "$args says the output could not be written"
	done
}

case_remove() {
	must_import "$PKI/sys-rsa2048.p12"
	must_import "$PKI/sys-ec256.p12" --label ec
	run vz remove vecozo-system --yes
	expect_rc 0 "remove --yes"
	expect_in "$T/out" "1 private key.*1 public key.*1 certificate.*0 CA certificate" "CA certificates still used by 'ec' stay"
	objects >"$T/objs"
	expect_not_in "$T/objs" "label: +vecozo-system" "no object of the removed label remains"
	expect_in "$T/objs" "vzp11 Test Issuing CA G4" "shared CA certificate kept"
	run vz remove ec --yes
	expect_rc 0 "remove the last one"
	expect_in "$T/out" "2 CA certificate" "unused CA certificates removed"
	n=$(objects | grep -c "Object" || true)
	[ "$n" -eq 0 ] && pass "token is empty again" || fail "$n objects left"
}

# A certificate without a key (here a partner's, written with pkcs11-tool)
# still needs its CA certificates: removing another label must keep them.
case_remove_keeps_ca_of_keyless_cert() {
	must_import "$PKI/sys-rsa2048.p12"
	openssl x509 -in "$PKI/sys-ec256.crt" -outform DER -out "$T/partner.der"
	p11 --write-object "$T/partner.der" --type cert --id 0c0d --label partner >/dev/null 2>&1
	snapshot before
	expect_in "$T/before.objects" "label: +partner" "the key-less certificate is on the token"
	run vz remove vecozo-system --yes
	expect_rc 0 "remove while a key-less certificate uses the same CAs"
	expect_in "$T/out" "0 CA certificate" "says no CA certificate was removed"
	objects >"$T/objs"
	expect_in "$T/objs" "label: +vzp11 Test Issuing CA G4" "the issuing CA the partner certificate needs stays"
	expect_in "$T/objs" "label: +vzp11 Test Root CA G4" "the root CA above it stays"
	expect_in "$T/objs" "label: +partner" "the partner certificate stays"
	expect_not_in "$T/objs" "label: +vecozo-system" "the removed label is gone"
}

case_remove_needs_confirmation() {
	must_import "$PKI/sys-rsa2048.p12"
	snapshot before
	run vz remove vecozo-system </dev/null
	expect_rc 1 "remove without --yes and without a terminal"
	expect_in "$T/err" "--yes" "names --yes"
	expect_unchanged before "remove refused"
	run vz remove not-there --yes
	expect_rc 1 "remove of an unknown label"
	expect_unchanged before "remove of an unknown label"
}

case_remove_confirm_tty() {
	command -v script >/dev/null || { echo "SKIP: no script(1)"; exit 77; }
	must_import "$PKI/sys-rsa2048.p12"
	snapshot before
	printf 'n\n' | script -qec "'$VZP11_BIN' remove vecozo-system" /dev/null >"$T/out" 2>&1 || true
	expect_in "$T/out" "This cannot be undone" "asks on the terminal"
	expect_unchanged before "answer no"
	printf 'y\n' | script -qec "'$VZP11_BIN' remove vecozo-system" /dev/null >"$T/out" 2>&1 || true
	expect_in "$T/out" "Removed 'vecozo-system'" "answer yes removes"
}

case_sign_through_provider() {
	provider_module
	must_import "$PKI/sys-rsa2048.p12"
	uri=$(sed -n 's/^key URI: *//p' "$T/out")
	(umask 077 && printf '%s' "$VZT_PIN" >"$T/pin")
	cat >"$T/openssl.cnf" <<CNF
openssl_conf = init
[init]
providers = provs
[provs]
default = default_sect
pkcs11 = pkcs11_sect
[default_sect]
activate = 1
[pkcs11_sect]
module = $PROVIDER_MODULE
pkcs11-module-path = $SOFTHSM_MODULE
pkcs11-module-token-pin = file:$T/pin
pkcs11-module-quirks = no-deinit no-operation-state
activate = 1
CNF
	echo "data signed by the token key" >"$T/data"
	openssl dgst -sha256 -binary "$T/data" >"$T/digest"
	OPENSSL_CONF=$T/openssl.cnf openssl pkeyutl -sign -inkey "$uri" -in "$T/digest" \
		-pkeyopt digest:sha256 -out "$T/sig" >"$T/sign.log" 2>&1 && rc=0 || rc=$?
	expect_rc 0 "signing through pkcs11-provider with the key URI"
	openssl x509 -in "$PKI/sys-rsa2048.crt" -pubkey -noout >"$T/pub.pem"
	if openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -in "$T/digest" -sigfile "$T/sig" \
		-pkeyopt digest:sha256 >/dev/null 2>&1; then
		pass "signature verifies with the certificate's public key"
	else fail "signature does not verify"; cat "$T/sign.log"; fi
}

# The tests' token snapshot must not hide a failing pkcs11-tool or an empty
# listing: "token objects unchanged" would prove nothing.
case_snapshot_refuses_failure() {
	must_import "$PKI/sys-rsa2048.p12"
	(TOKEN_LABEL=no-such-token snapshot broken) >"$T/snap.log" 2>&1 && rc=0 || rc=$?
	expect_rc 1 "a snapshot pkcs11-tool cannot take fails the test"
	expect_in "$T/snap.log" "could not list the token's objects" "says pkcs11-tool failed"
	rm -f "$T/p11-list.failed" # the marker of this deliberate failure
	run vz remove vecozo-system --yes
	expect_rc 0 "empty the token"
	(snapshot empty) >"$T/snap.log" 2>&1 && rc=0 || rc=$?
	expect_rc 1 "an empty snapshot fails the test"
	expect_in "$T/snap.log" "snapshot 'empty' of the token is empty" "says the snapshot is empty"
	n=$(objects | grep -c Object || true)
	[ "$n" -eq 0 ] && pass "objects itself may list an empty token" || fail "$n objects"
}

case_token_choice() {
	must_import "$PKI/sys-rsa2048.p12"
	VZP11_SO_PIN=$VZT_SO_PIN VZP11_USER_PIN=$VZT_PIN "$SRCDIR/scripts/softhsm-token" "$T/hsm" second >/dev/null
	unset VZP11_TOKEN
	run vz list
	expect_rc 1 "two tokens and no --token"
	expect_in "$T/err" "2 tokens match.*'$TOKEN_LABEL'" "lists the first token"
	expect_in "$T/err" "2 tokens match.*'second'" "lists the second token"
	run vz --token second list
	expect_rc 0 "--token LABEL"
	run vz --token "pkcs11:token=$TOKEN_LABEL" list
	expect_rc 0 "--token URI"
	expect_in "$T/out" "^vecozo-system " "the URI picks the right token"
	run vz --token "pkcs11:token=$TOKEN_LABEL;bogus" list
	expect_rc 1 "a malformed URI"
}

# With the test's own p11-kit registry (registry.sh), so that what the
# machine registered (tpm2-pkcs11, OpenSC) is never loaded.
case_module_registry() {
	. "$(dirname "$0")/registry.sh"
	register vzp11-test-softhsm "$SOFTHSM_MODULE"
	must_import "$PKI/sys-rsa2048.p12"
	VZP11_MODULE= VZP11_TOKEN=$TOKEN_LABEL registry_vz list
	expect_rc 0 "no --module: the modules registered with p11-kit"
	expect_in "$T/out" "^vecozo-system " "finds the certificate"
	VZP11_MODULE= registry_vz list
	expect_rc 0 "no --module, no --token: the one token of the registered modules"
	expect_in "$T/out" "^vecozo-system " "finds the certificate without --token"
	VZP11_MODULE= registry_vz --module vzp11-test-softhsm --token "$TOKEN_LABEL" list
	expect_rc 0 "--module with a p11-kit module name"
	expect_in "$T/out" "^vecozo-system " "finds the certificate by module name"
	VZP11_MODULE= registry_vz --module softhsm2 list
	expect_rc 1 "a module the machine registered is not in the test's registry"
	expect_in "$T/err" "no PKCS#11 module named 'softhsm2'" "says the module is unknown"
	run vz --module /nonexistent/libpkcs11.so list
	expect_rc 1 "a module file that does not exist"
	expect_in "$T/err" "cannot load the PKCS#11 module" "says it cannot load it"
}

# Every command answers --help with its synopsis and exit 0; the options
# the help names are the ones the command takes.
case_help() {
	for cmd in import list show remove rotate cov declare declare-status retour journal check selftest config; do
		run vz "$cmd" --help
		expect_rc 0 "$cmd --help"
		expect_in "$T/out" "^Usage: vzp11 \[GLOBAL OPTIONS\] $cmd" "$cmd --help starts with the synopsis"
		for opt in $(grep -oE -- '--[a-z][a-z-]+' "$T/out" | sort -u); do
			case $opt in --help) continue ;; esac
			run vz "$cmd" "$opt" --help
			if grep -q "unknown or incomplete option '$opt'" "$T/err"; then
				fail "$cmd --help names $opt, which $cmd does not take"
			fi
		done
	done
	run vz --help
	expect_rc 0 "vzp11 --help"
	for cmd in import list show remove rotate cov declare declare-status retour journal check selftest config; do
		expect_in "$T/out" "^  $cmd" "--help lists $cmd"
	done
	run vz --version
	expect_in "$T/out" "^vzp11 [0-9]+\.[0-9]+\.[0-9]+$" "--version"
	# a default the help names comes from the option's table entry
	run vz cov --help
	expect_in "$T/out" "--label LABEL .*\(default: vecozo-system\)" "cov --help names the default label"
	run vz clients --help
	expect_in "$T/out" "--dir DIR .*\(default /var/lib/vzp11/clients\)" "clients --help names the default directory"
	# a number out of its table entry's range: the entry's message, with its range
	for spec in "cov --jobs 33|--jobs takes a number from 1 to 32" \
		"cov --max-response 1023|--max-response takes bytes, 1024 to 1073741824" \
		"declare --retries 11|--retries takes a number from 0 to 10" \
		"retour --limit 0|--limit takes a number from 1 to 250" \
		"gateway --pool 257|--pool wants a number from 1 to 256" \
		"clients --days 0|--days wants a number from 1 to 3650"; do
		args=${spec%%|*}
		# shellcheck disable=SC2086 # the command and its option, split on purpose
		run vz $args
		expect_rc 2 "$args"
		expect_in "$T/err" "${spec#*|}" "$args: says the range"
	done
	run vz check --warn-days 100001
	expect_rc 3 "check --warn-days 100001 (UNKNOWN)"
	expect_in "$T/out" "--warn-days takes a number of days, 0 to 100000" "check: says the range"
}

new_token "manage-$1"
"case_$(echo "$1" | tr - _)"
finish
