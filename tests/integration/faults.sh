#!/bin/sh
# faults.sh CASE: the token misbehaves (through tests/faulty-p11) and vzp11
# must refuse cleanly or fail with the token exactly as before.
. "$(dirname "$0")/lib.sh"
: "${FAULTY_P11:?}"

export FAULTY_P11_MODULE=$SOFTHSM_MODULE

case_write_protected() {
	seed
	FAULTY_P11_TOKEN_FLAGS=write-protected VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "import onto a write-protected token"
	expect_in "$T/err" "write-protected; nothing was changed" "says the token is write-protected"
	expect_unchanged before "write-protected token"
}

case_pin_locked() {
	seed
	FAULTY_P11_TOKEN_FLAGS=pin-locked FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 \
		imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "import with a locked PIN"
	expect_in "$T/err" "PIN of token .* is locked; no PIN was sent" "says the PIN is locked"
	expect_in "$T/err" "security officer" "says who can unlock it"
	expect_unchanged before "locked PIN"
	FAULTY_P11_FAIL_FUNC=C_Login FAULTY_P11_RV=CKR_PIN_LOCKED VZP11_MODULE=$FAULTY_P11 \
		imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "import when the token locks the PIN at login"
	expect_in "$T/err" "CKR_PIN_LOCKED" "names the code"
	expect_unchanged before "PIN locked at login"
}

case_wrong_pin_sent_once() {
	seed
	# Count C_Login calls: the token rejects every one.
	FAULTY_P11_FAIL_FUNC=C_Login FAULTY_P11_RV=CKR_PIN_INCORRECT FAULTY_P11_REPORT=$T/report \
		VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "rejected PIN"
	expect_in "$T/err" "rejected the PIN" "says the PIN was rejected"
	expect_unchanged before "rejected PIN"
	logins=$(sed -n 's/^func C_Login //p' "$T/report")
	[ "${logins:-0}" -eq 1 ] && pass "the PIN was sent exactly once" ||
		fail "C_Login was called ${logins:-0} times, expected once"
}

# readback_fails ATTR CODE CLASS FILE SEED: the token gives no clear answer
# when the key's protection is read back after writing it. The import must
# not count that as "verified": exit 1, token exactly as before. And `show`
# of such a key says "unknown", never "no".
readback_fails() {
	imp "$5" --label seeded
	[ "$rc" -eq 0 ] || { fail "seeding the token failed"; cat "$T/err"; finish; }
	snapshot before
	FAULTY_P11_FAIL_ATTR=$1 FAULTY_P11_RV=$2 FAULTY_P11_FAIL_ATTR_CLASS=$3 \
		FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 imp "$4"
	expect_rc 1 "import when reading $1 back fails with $2"
	expect_in "$T/report" "^injected attribute" "the fault was injected"
	expect_in "$T/err" "could not confirm" "says the key's protection could not be confirmed"
	expect_in "$T/err" "$1: $2" "names the attribute and the code"
	expect_in "$T/err" "token is unchanged" "says the token is unchanged"
	expect_unchanged before "read-back of $1 failed"
	imp "$4" --label checked
	expect_rc 0 "the same import without the fault"
	FAULTY_P11_FAIL_ATTR=$1 FAULTY_P11_RV=$2 FAULTY_P11_FAIL_ATTR_CLASS=$3 \
		VZP11_MODULE=$FAULTY_P11 run vz show checked
	expect_rc 0 "show while $1 cannot be read"
	case $1 in
	CKA_SENSITIVE | CKA_EXTRACTABLE) a=$(echo "$1" | sed 's/^CKA_//' | tr A-Z a-z) ;;
	*) a=value-readable ;;
	esac
	expect_in "$T/out" "$a=unknown" "show says $a=unknown"
	expect_not_in "$T/out" "$a=(no|yes)" "show does not say $a=no or yes"
	FAULTY_P11_FAIL_ATTR=$1 FAULTY_P11_RV=$2 FAULTY_P11_FAIL_ATTR_CLASS=$3 \
		VZP11_MODULE=$FAULTY_P11 run vz --json show checked
	python3 - "$T/out" "$a" >"$T/check" 2>&1 <<'PY' || true
import json, sys
k = json.load(open(sys.argv[1]))["key"]
name = sys.argv[2].replace("-", "_")
assert name in k and k[name] is None, k
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "show --json gives null, not false, for what is unknown"
}
case_readback_sensitive() {
	readback_fails CKA_SENSITIVE CKR_DEVICE_ERROR "" "$PKI/sys-rsa2048.p12" "$PKI/sys-ec256.p12"
}
case_readback_extractable() {
	readback_fails CKA_EXTRACTABLE CKR_GENERAL_ERROR "" "$PKI/sys-rsa2048.p12" "$PKI/sys-ec256.p12"
}
case_readback_rsa_value() {
	readback_fails CKA_PRIVATE_EXPONENT CKR_DEVICE_ERROR "" "$PKI/sys-rsa2048.p12" "$PKI/sys-ec256.p12"
}
case_readback_ec_value() {
	readback_fails CKA_VALUE CKR_GENERAL_ERROR private-key "$PKI/sys-ec256.p12" "$PKI/sys-rsa2048.p12"
}

# A token appears between the two C_GetSlotList calls (the first reports one
# slot fewer than the second finds): vzp11 asks again instead of failing.
case_slot_appears() {
	seed
	FAULTY_P11_HIDE_SLOT=1 FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 run vz list
	expect_rc 0 "list while the slot count grows"
	expect_in "$T/out" "^seeded " "the certificate is listed"
	calls=$(sed -n 's/^func C_GetSlotList //p' "$T/report")
	[ "${calls:-0}" -ge 3 ] && pass "the slot list was asked for again ($calls calls)" ||
		fail "C_GetSlotList called ${calls:-0} times: the fault did not happen"
}

# A token that does not know CKA_ALLOWED_MECHANISMS refuses it in
# C_CreateObject: the key is written without the list, still sensitive and
# without decrypt/unwrap/derive, and `show` says its mechanisms are "any".
case_allowed_mechanisms_unknown() {
	seed
	FAULTY_P11_CREATE_FAIL_ATTR=CKA_ALLOWED_MECHANISMS FAULTY_P11_RV=CKR_ATTRIBUTE_TYPE_INVALID \
		FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12"
	expect_rc 0 "import onto a token without CKA_ALLOWED_MECHANISMS"
	expect_in "$T/report" "^injected attribute" "the token refused the attribute"
	expect_in "$T/out" "sensitive=yes extractable=no value-readable=no" "the key is protected"
	expect_in "$T/out" "decrypt=no unwrap=no derive=no sign-recover=no mechanisms=any" "show says the mechanisms are not limited"
	expect_in "$T/out" "^not kept: +CKA_ALLOWED_MECHANISMS " "import says what the token did not keep"
	objects | awk '/^[A-Z]/ {p = 0} /label: +vecozo-system/ {p = 1} p' >"$T/priv"
	expect_in "$T/priv" "label: +vecozo-system" "pkcs11-tool shows the new key"
	expect_not_in "$T/priv" "Allowed mechanisms" "no mechanism list on the key"
}

# NSS softoken answers CKR_GENERAL_ERROR to an attribute it does not know:
# the key goes on without the list, and the JSON says so. Any other answer
# (CKR_DEVICE_ERROR) is a failure, never a reason to write less.
case_allowed_mechanisms_general_error() {
	seed
	FAULTY_P11_CREATE_FAIL_ATTR=CKA_ALLOWED_MECHANISMS FAULTY_P11_RV=CKR_GENERAL_ERROR \
		FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12" --json
	expect_rc 0 "import onto a token that answers CKR_GENERAL_ERROR to CKA_ALLOWED_MECHANISMS"
	expect_in "$T/report" "^injected attribute" "the token refused the attribute"
	expect_in "$T/out" '"not_kept":\["CKA_ALLOWED_MECHANISMS"\]' "the JSON says the list was not kept"
	expect_in "$T/out" '"sensitive":true,"extractable":false' "the key is protected"
	run vz show vecozo-system
	expect_in "$T/out" "^not kept: +CKA_ALLOWED_MECHANISMS " "show says so too"
	run vz remove vecozo-system --yes
	expect_rc 0 "remove it again"
	expect_unchanged before "import and remove"
	FAULTY_P11_CREATE_FAIL_ATTR=CKA_ALLOWED_MECHANISMS FAULTY_P11_RV=CKR_DEVICE_ERROR \
		VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "CKR_DEVICE_ERROR on the attribute is a failure"
	expect_in "$T/err" "C_CreateObject \(private key\) failed: CKR_DEVICE_ERROR" "names the call and the code"
	expect_unchanged before "device error"
}

# openCryptoki 3.8 does not know CKA_CERTIFICATE_CATEGORY: certificates go on
# without it, show says so, and the CA certificates are still told apart
# (by their basic constraints): the chain is complete and remove takes them.
# The imitation refuses the attribute when written and when read, as
# openCryptoki does (tokens-opencryptoki: the real one).
no_category() {
	FAULTY_P11_CREATE_FAIL_ATTR=CKA_CERTIFICATE_CATEGORY FAULTY_P11_FAIL_ATTR=CKA_CERTIFICATE_CATEGORY \
		FAULTY_P11_RV=CKR_ATTRIBUTE_TYPE_INVALID VZP11_MODULE=$FAULTY_P11 "$@"
}
case_certificate_category_unknown() {
	FAULTY_P11_REPORT=$T/report no_category imp "$PKI/sys-rsa2048.p12"
	expect_rc 0 "import onto a token without certificate categories"
	expect_in "$T/report" "^injected attribute" "the token refused the attribute"
	expect_in "$T/out" "^not kept: +CKA_CERTIFICATE_CATEGORY " "import says what the token did not keep"
	[ "$(count_objects '^Certificate Object')" -eq 3 ] && pass "certificate and 2 CA certificates written" ||
		fail "$(count_objects '^Certificate Object') certificates on the token"
	no_category run vz --json show vecozo-system
	expect_in "$T/out" '"not_kept":\["CKA_CERTIFICATE_CATEGORY"\]' "the JSON says the category was not kept"
	expect_in "$T/out" '"chain":\["CN=vzp11 Test Issuing CA G4' "the chain is found"
	no_category run vz list --public
	[ "$(wc -l <"$T/out")" -eq 1 ] && pass "list --public: one certificate, the CA certificates are not taken for one" ||
		{ fail "list --public shows $(wc -l <"$T/out") lines"; cat "$T/out"; }
	no_category run vz check
	expect_rc 0 "check: OK"
	expect_in "$T/out" "chain complete on the token \(2 CA certificates\)" "check sees the whole chain"
	# SoftHSM itself keeps categories: read directly, these certificates
	# have none (0), which is no reason to say the token keeps none.
	run vz show vecozo-system
	expect_in "$T/out" "^category: +unspecified " "read from SoftHSM: this certificate's category is unspecified"
	expect_not_in "$T/out" "token has no certificate categories" "read from SoftHSM: not 'the token has none'"
	no_category run vz remove vecozo-system --yes
	expect_rc 0 "remove"
	[ "$(count_objects '^[A-Z][a-z]+ ?[A-Za-z]* Object')" -eq 0 ] && pass "remove took the CA certificates too" ||
		{ fail "objects left after remove"; objects; }
}

case_write_fails() {
	seed
	FAULTY_P11_FAIL_FUNC=C_CreateObject FAULTY_P11_RV=CKR_DEVICE_MEMORY VZP11_MODULE=$FAULTY_P11 \
		imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "import when the token is full"
	expect_in "$T/err" "C_CreateObject \(private key\) failed: CKR_DEVICE_MEMORY" "names the call and the code"
	expect_in "$T/err" "token is unchanged" "says nothing was left"
	expect_unchanged before "failed write"
}

# Codes that do not pass by themselves get no "run the command again": a
# token that gives no reason (CKR_FUNCTION_FAILED), a module finalized under
# vzp11 (CKR_CRYPTOKI_NOT_INITIALIZED). The token stays as it was.
case_no_retry_advice() {
	seed
	for code in CKR_FUNCTION_FAILED CKR_CRYPTOKI_NOT_INITIALIZED; do
		FAULTY_P11_FAIL_FUNC=C_CreateObject FAULTY_P11_FAIL_NTH=3 FAULTY_P11_RV=$code \
			FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12"
		expect_rc 1 "import when the third C_CreateObject answers $code"
		expect_in "$T/report" "^injected C_CreateObject" "$code: the fault was injected"
		expect_in "$T/err" "C_CreateObject \(certificate\) failed: $code" "names the call and the code"
		expect_not_in "$T/err" "run the command again|run again" "$code: no advice to run it again"
		expect_unchanged before "$code after two objects were written"
	done
	expect_in "$T/err" "finalized while vzp11 still used it.*report" "CKR_CRYPTOKI_NOT_INITIALIZED: says it is a fault to report"
	FAULTY_P11_FAIL_FUNC=C_CreateObject FAULTY_P11_FAIL_NTH=3 FAULTY_P11_RV=CKR_FUNCTION_FAILED \
		VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12"
	expect_in "$T/err" "gave no reason why C_CreateObject \(certificate\) failed: its own log" \
		"CKR_FUNCTION_FAILED: says the token gave no reason and where to look"
}

# sweep OP: run OP once to count its PKCS#11 calls, then fail call N for
# N = 1..K, restoring the token between runs. Every run ends in success with
# the same objects as the clean run, or in exit 1 with the token as before.
codes="CKR_DEVICE_ERROR CKR_DEVICE_REMOVED CKR_SESSION_HANDLE_INVALID CKR_TOKEN_NOT_PRESENT CKR_HOST_MEMORY CKR_FUNCTION_FAILED"
sweep() {
	cp -a "$T/hsm/tokens" "$T/pristine"
	restore() { rm -rf "$T/hsm/tokens" && cp -a "$T/pristine" "$T/hsm/tokens"; }
	FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 run "$@"
	[ "$rc" -eq 0 ] || { fail "clean run of $*: exit $rc"; cat "$T/err"; return; }
	snapshot after
	k=$(sed -n 's/^calls //p' "$T/report")
	[ "${k:-0}" -gt 10 ] || { fail "clean run made only ${k:-0} calls"; return; }
	# FAULT_SWEEP_STRIDE=S fails every Sth call only (scripts/test's
	# sanitizer run); the default is every call.
	stride=${FAULT_SWEEP_STRIDE:-1}
	survived=0 swept=0 n=1
	while [ "$n" -le "$k" ]; do
		swept=$((swept + 1))
		restore
		code=$(echo $codes | tr ' ' '\n' | sed -n "$(((n % 6) + 1))p")
		FAULTY_P11_FAIL_AT=$n FAULTY_P11_RV=$code FAULTY_P11_REPORT=$T/report \
			VZP11_MODULE=$FAULTY_P11 run timeout 30 "$@"
		objects >"$T/now.objects"
		if [ "$rc" -eq 0 ] && cmp -s "$T/after.objects" "$T/now.objects"; then
			survived=$((survived + 1))
		elif [ "$rc" -eq 1 ] && [ -s "$T/err" ] && cmp -s "$T/before.objects" "$T/now.objects"; then
			survived=$((survived + 1))
		else
			fail "fault $code at call $n ($(sed -n 's/^injected //p' "$T/report")): exit $rc"
			sed 's/^/  stderr: /' "$T/err" | head -5
			diff "$T/before.objects" "$T/now.objects" | head -10
		fi
		n=$((n + stride))
	done
	echo "survived $survived of $swept injected faults ($k calls): $*"
	[ "$survived" -eq "$swept" ] && pass "every injected fault survived ($*)"
	restore
}

case_sweep_import() {
	seed
	sweep "$VZP11_BIN" import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
}

# The same sweep on tokens that refuse clear private keys (and clear secret
# keys): the import unwraps, with session objects on the token; each fault
# still ends in the complete import or the token exactly as before.
case_sweep_import_strict_private() {
	seed
	export FAULTY_P11_STRICT=private
	sweep "$VZP11_BIN" import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	strict_clean_run 1 "$VZP11_BIN" import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
}

case_sweep_import_strict_secret() {
	seed
	export FAULTY_P11_STRICT=secret
	sweep "$VZP11_BIN" import "$PKI/sys-rsa4096.p12" --password-source env:VZT_P12
	strict_clean_run 2 "$VZP11_BIN" import "$PKI/sys-rsa4096.p12" --password-source env:VZT_P12
}

# strict_clean_run N CMD...: the swept command, run once more without a
# fault, really met N refusals of clear keys and unwrapped.
strict_clean_run() {
	want=$1
	shift
	FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 run "$@"
	expect_rc 0 "the clean run in strict=$FAULTY_P11_STRICT mode"
	expect_in "$T/report" "^strict-refused $want$" "the token refused $want clear key(s)"
	expect_in "$T/out" "The key was unwrapped" "the key was unwrapped"
	unset FAULTY_P11_STRICT
}

# --use-token-key adopts a key another tool wrote (it starts sensitive and
# not extractable, so the only change that cannot be undone is not
# needed): label, CKA_ID, uses, public key and certificates go back on
# every fault.
case_sweep_use_token_key() {
	seed
	put_key "$PKI/sys-rsa2048.p12" by-hand 0102
	snapshot before
	sweep "$VZP11_BIN" import "$PKI/sys-rsa2048.p12" --use-token-key --password-source env:VZT_P12
}

case_sweep_replace() {
	imp "$PKI/sys-rsa2048.p12"
	snapshot before
	sweep "$VZP11_BIN" import "$PKI/sys-renewed.p12" --replace --password-source env:VZT_P12
}

case_sweep_replace_same_key() {
	imp "$PKI/sys-rsa2048.p12"
	snapshot before
	sweep "$VZP11_BIN" import "$PKI/sys-samekey.p12" --replace --password-source env:VZT_P12
}

case_sweep_remove() {
	imp "$PKI/sys-rsa2048.p12"
	imp "$PKI/sys-rsa4096.p12" --label other
	snapshot before
	sweep "$VZP11_BIN" remove vecozo-system --yes
}

# fp11 ARGS: pkcs11-tool through faulty-p11 (PIN from env:VZT_PIN when
# --login is given); stdout+stderr in $T/p11, exit code in $rc.
fp11() {
	set +e
	pkcs11-tool --module "$FAULTY_P11" --token-label "$TOKEN_LABEL" "$@" >"$T/p11" 2>&1
	rc=$?
	set -e
}

# The strict modes refuse key material in the clear in C_CreateObject, as
# FIPS-mode HSMs do; generated keys are still fine.
case_mode_strict_private() {
	seed
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER -out "$T/k.der" 2>/dev/null
	head -c 32 /dev/urandom >"$T/aes.bin"
	FAULTY_P11_STRICT=private FAULTY_P11_REPORT=$T/report \
		fp11 --login --pin env:VZT_PIN --write-object "$T/k.der" --type privkey --label clear
	[ "$rc" -ne 0 ] && pass "strict=private refuses a clear private key" ||
		fail "strict=private let a clear private key in"
	expect_in "$T/p11" "CKR_TEMPLATE_INCONSISTENT" "with CKR_TEMPLATE_INCONSISTENT by default"
	expect_in "$T/report" "^strict-refused 1$" "faulty-p11 counts the refusal"
	expect_unchanged before "refused clear private key"
	FAULTY_P11_STRICT=private FAULTY_P11_STRICT_RV=CKR_ATTRIBUTE_VALUE_INVALID \
		fp11 --login --pin env:VZT_PIN --write-object "$T/k.der" --type privkey --label clear
	expect_in "$T/p11" "CKR_ATTRIBUTE_VALUE_INVALID" "FAULTY_P11_STRICT_RV names the code"
	FAULTY_P11_STRICT=private fp11 --login --pin env:VZT_PIN --write-object "$T/aes.bin" \
		--type secrkey --key-type AES:32 --label clear-aes
	[ "$rc" -eq 0 ] && pass "strict=private takes a clear secret key" || { fail "secret key refused"; cat "$T/p11"; }
	FAULTY_P11_STRICT=private fp11 --login --pin env:VZT_PIN --keypairgen --key-type EC:prime256v1 --label gen
	[ "$rc" -eq 0 ] && pass "strict=private still generates key pairs" || { fail "keypairgen refused"; cat "$T/p11"; }
	fp11 --login --pin env:VZT_PIN --write-object "$T/k.der" --type privkey --label clear
	[ "$rc" -eq 0 ] && pass "without the mode the same clear key is taken" || { fail "control write failed"; cat "$T/p11"; }
}

case_mode_strict_secret() {
	seed
	head -c 32 /dev/urandom >"$T/aes.bin"
	FAULTY_P11_STRICT=secret FAULTY_P11_STRICT_RV=CKR_ACTION_PROHIBITED FAULTY_P11_REPORT=$T/report \
		fp11 --login --pin env:VZT_PIN --write-object "$T/aes.bin" --type secrkey --key-type AES:32 --label clear-aes
	[ "$rc" -ne 0 ] && pass "strict=secret refuses a clear secret key" ||
		fail "strict=secret let a clear secret key in"
	expect_in "$T/report" "^strict-refused 1$" "faulty-p11 counts the refusal"
	expect_unchanged before "refused clear secret key"
	FAULTY_P11_STRICT=secret fp11 --login --pin env:VZT_PIN --keygen --key-type AES:32 --label gen-aes
	[ "$rc" -eq 0 ] && pass "strict=secret still generates secret keys" || { fail "keygen refused"; cat "$T/p11"; }
}

# A token without RSA-PSS: not listed, not usable.
case_mode_hide_pss() {
	seed
	imp "$PKI/sys-rsa2048.p12" --label rsa
	fp11 -M
	expect_in "$T/p11" "RSA-PKCS-PSS" "SoftHSM lists RSA-PSS"
	FAULTY_P11_HIDE_PSS=1 fp11 -M
	expect_not_in "$T/p11" "PSS" "FAULTY_P11_HIDE_PSS=1 lists no PSS mechanism"
	expect_in "$T/p11" "SHA256-RSA-PKCS" "but still PKCS#1 v1.5"
	FAULTY_P11_HIDE_PSS=1 run "$FAULTY_PROBE" "$FAULTY_P11" pss
	expect_in "$T/out" "^info-pss CKR_MECHANISM_INVALID$" "C_GetMechanismInfo(PSS) is refused"
	expect_in "$T/out" "^info-pkcs CKR_OK$" "C_GetMechanismInfo(PKCS) works"
	expect_in "$T/out" "^signinit-pss CKR_MECHANISM_INVALID$" "C_SignInit with PSS is refused"
	run "$FAULTY_PROBE" "$FAULTY_P11" pss
	expect_in "$T/out" "^signinit-pss CKR_OK$" "without the mode C_SignInit with PSS works"
}

# Certificates visible only after login.
case_mode_private_certs() {
	seed
	fp11 -O
	expect_in "$T/p11" "Certificate Object" "a public session finds certificates normally"
	FAULTY_P11_PRIVATE_CERTS=1 fp11 -O
	expect_not_in "$T/p11" "Certificate Object" "FAULTY_P11_PRIVATE_CERTS=1 hides them without login"
	expect_in "$T/p11" "Public Key Object" "public keys stay visible"
	FAULTY_P11_PRIVATE_CERTS=1 fp11 --login --pin env:VZT_PIN -O
	expect_in "$T/p11" "Certificate Object" "after login they are found"
}

# The token goes away after the 2nd signature for 2 seconds.
case_mode_outage() {
	imp "$PKI/sys-rsa2048.p12"
	FAULTY_P11_OUTAGE=2:2 FAULTY_P11_REPORT=$T/report run "$FAULTY_PROBE" "$FAULTY_P11" outage 2 2
	expect_rc 0 "the probe ran"
	expect_in "$T/out" "^sign-2 CKR_OK$" "the 2nd signature is made"
	expect_in "$T/out" "^during-sign CKR_DEVICE_REMOVED$" "then a session call gets CKR_DEVICE_REMOVED"
	expect_in "$T/out" "^during-open CKR_TOKEN_NOT_PRESENT$" "C_OpenSession gets CKR_TOKEN_NOT_PRESENT"
	expect_in "$T/out" "^after-old-session-sign CKR_SESSION_HANDLE_INVALID$" "afterwards the old session is dead"
	expect_in "$T/out" "^after-old-session-close CKR_SESSION_HANDLE_INVALID$" "closing it says so"
	[ "$(grep -c '^login CKR_OK$' "$T/out")" -eq 2 ] && pass "the token logged out; a new login works" ||
		fail "the second login did not return CKR_OK"
	expect_in "$T/out" "^after-new-session-sign CKR_OK$" "a new session signs"
	expect_in "$T/report" "^outage-refused" "faulty-p11 counts refused calls"
	run "$FAULTY_PROBE" "$FAULTY_P11" outage 2 0
	expect_in "$T/out" "^during-sign CKR_OK$" "without the mode nothing goes away"
}

new_token "faults-$1"
"case_$(echo "$1" | tr - _)"
finish
