#!/bin/sh
# import.sh CASE: one user action of `vzp11 import`, checked against the
# token with OpenSC's pkcs11-tool.
. "$(dirname "$0")/lib.sh"

# refused FILE REGEX [ARGS...]: exit 1, the message, nothing written.
refused() {
	f=$1 re=$2
	shift 2
	seed
	imp "$f" "$@"
	expect_rc 1 "refused $(basename "$f")"
	expect_in "$T/err" "$re" "message says why"
	expect_unchanged before "refused $(basename "$f")"
}

# One label's objects share one CKA_ID, which is the key identifier.
expect_objects() { # expect_objects LABEL CERT.crt
	objects >"$T/objs"
	n=$(awk -v l="$1" '/^[A-Z]/ {cls=$0} /label:/ {lab=$0; sub(/^ *label: */, "", lab)}
		/ID:/ && lab == l {print $2}' "$T/objs" | sort | uniq -c)
	if [ "$(echo "$n" | awk '{print $1}')" = 3 ]; then pass "key, public key and certificate share one CKA_ID"; else
		fail "objects of '$1' do not share one CKA_ID: $n"; fi
	ski=$(openssl x509 -in "$2" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr A-F a-f)
	if [ "$(echo "$n" | awk '{print $2}')" = "$ski" ]; then pass "CKA_ID is the SHA-1 key identifier"; else
		fail "CKA_ID $(echo "$n" | awk '{print $2}') is not the key identifier $ski"; fi
	awk -v l="$1" '/^Private Key Object/ {p=1; next} /^[A-Z]/ {p=0} p' "$T/objs" >"$T/priv"
	expect_in "$T/priv" "label: +$1" "private key is on the token"
	expect_in "$T/priv" "Access: +sensitive" "private key is sensitive"
	expect_not_in "$T/priv" "extractable" "private key is not extractable"
	expect_in "$T/priv" "Usage: +sign$" "private key may only sign"
	if GNUTLS_PIN=$VZT_PIN p11tool --provider "$SOFTHSM_MODULE" --login \
		--export "pkcs11:token=$TOKEN_LABEL;object=$1;type=private" >/dev/null 2>&1; then
		fail "the private key's value could be read from the token"
	else pass "reading the private key's value fails"; fi
}

expect_ca_on_token() { # expect_ca_on_token N
	got=$(objects | grep -c "^Certificate Object" || true)
	if [ "$got" -eq "$1" ]; then pass "$1 certificates on the token"; else
		fail "$got certificates on the token, expected $1"; fi
}

case_modern_rsa2048() {
	imp "$PKI/sys-rsa2048.p12"
	expect_rc 0 "import of a modern .p12"
	subject=$(openssl x509 -in "$PKI/sys-rsa2048.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
	expect_in "$T/out" "subject: +$subject" "prints the subject"
	expect_in "$T/out" "issuer: +CN=vzp11 Test Issuing CA G4" "prints the issuer"
	expect_in "$T/out" "serial: +[0-9A-F]+" "prints the serial"
	expect_in "$T/out" "\(7[23][0-9] days left\)" "prints validity with days left"
	expect_in "$T/out" "key: +rsa 2048 bits" "prints key type and size"
	fp=$(openssl x509 -in "$PKI/sys-rsa2048.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
	expect_in "$T/out" "SHA-256 $fp" "prints the SHA-256 fingerprint"
	expect_in "$T/out" "key URI: +pkcs11:.*type=private" "prints the key URI"
	expect_in "$T/out" "cert URI: +pkcs11:.*type=cert" "prints the certificate URI"
	expect_in "$T/out" "sensitive=yes extractable=no" "key attributes read back"
	expect_in "$T/out" "Reminder: .*delete it" "reminds to delete the .pfx"
	expect_not_in "$T/out" "pin-value|$VZT_PIN" "no PIN in the output"
	expect_objects vecozo-system "$PKI/sys-rsa2048.crt"
	expect_ca_on_token 3
}

case_legacy_rsa2048() {
	openssl pkcs12 -in "$PKI/sys-rsa2048-legacy.p12" -info -noout -legacy \
		-passin env:VZT_P12 >"$T/info" 2>&1 || true
	expect_in "$T/info" "RC2-40|40BitRC2" "fixture really uses RC2-40"
	expect_in "$T/info" "3-KeyTripleDES|des-ede3" "fixture really uses 3DES for the key"
	imp "$PKI/sys-rsa2048-legacy.p12"
	expect_rc 0 "import of a legacy (RC2-40/3DES, SHA-1 MAC) .p12"
	expect_objects vecozo-system "$PKI/sys-rsa2048.crt"
}

case_rsa4096() {
	imp "$PKI/sys-rsa4096.p12" --label big
	expect_rc 0 "import of RSA 4096"
	expect_in "$T/out" "key: +rsa 4096 bits" "RSA 4096 reported"
	expect_objects big "$PKI/sys-rsa4096.crt"
}

case_ec256_leaf_last() {
	imp "$PKI/sys-ec256-leaflast.p12"
	expect_rc 0 "import of EC P-256 with the leaf after its chain"
	expect_in "$T/out" "key: +ec 256 bits" "EC key reported"
	expect_objects vecozo-system "$PKI/sys-ec256.crt"
	expect_ca_on_token 3
}

case_chain_any_order() {
	imp "$PKI/sys-rsa2048-mixed.p12"
	expect_rc 0 "import with the chain reversed and an unrelated certificate"
	expect_in "$T/err" "1 certificate\(s\) in the file belong to neither" "notes the ignored certificate"
	expect_ca_on_token 3
	if objects | grep -q "Unrelated CA"; then fail "unrelated certificate was written"; else
		pass "unrelated certificate not written"; fi
	run vz show vecozo-system
	expect_in "$T/out" "chain: +CN=vzp11 Test Issuing CA G4" "chain starts with the issuing CA"
	expect_in "$T/out" "^ +CN=vzp11 Test Root CA G4" "chain ends with the root"
}

case_rerun_unchanged() {
	imp "$PKI/sys-rsa2048.p12"
	snapshot before
	imp "$PKI/sys-rsa2048.p12"
	expect_rc 0 "second import of the same file"
	expect_in "$T/out" "already on the token" "says it is already there"
	expect_unchanged before "second import"
}

case_label_taken() {
	imp "$PKI/sys-rsa2048.p12"
	snapshot before
	imp "$PKI/sys-renewed.p12"
	expect_rc 1 "another certificate under the same label"
	expect_in "$T/err" "already holds another certificate" "says the label is taken"
	expect_in "$T/err" "--replace" "names --replace"
	expect_unchanged before "label taken"
}

case_replace_renewed() {
	imp "$PKI/sys-rsa2048.p12"
	imp "$PKI/sys-renewed.p12" --replace
	expect_rc 0 "--replace with a renewed certificate and new key"
	expect_in "$T/out" "^Replaced 'vecozo-system'" "says replaced"
	expect_objects vecozo-system "$PKI/sys-renewed.crt"
	old=$(openssl x509 -in "$PKI/sys-rsa2048.crt" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr A-F a-f)
	if objects | grep -q "ID: *$old"; then fail "old key objects remain"; else pass "old key objects removed"; fi
	expect_ca_on_token 3
}

case_replace_same_key() {
	imp "$PKI/sys-rsa2048.p12"
	imp "$PKI/sys-samekey.p12" --replace
	expect_rc 0 "--replace with a new certificate for the same key"
	expect_objects vecozo-system "$PKI/sys-samekey.crt"
	serial=$(openssl x509 -in "$PKI/sys-samekey.crt" -noout -serial | sed 's/.*=//')
	run vz show vecozo-system
	expect_in "$T/out" "serial: +$serial" "the new certificate is the one on the token"
	expect_ca_on_token 3
}

case_json() {
	run vz --json import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	expect_rc 0 "import --json"
	python3 - "$T/out" >"$T/check" 2>&1 <<'PY' || true
import json, sys
o = json.load(open(sys.argv[1]))
assert o["status"] == "imported", o["status"]
assert o["label"] == "vecozo-system"
assert o["key"] == {"type": "rsa", "bits": 2048, "sensitive": True, "extractable": False,
                    "value_readable": False, "sign_only": True, "arrived": "created"}, o["key"]
assert o["key_import"] == "created", o["key_import"]
assert o["kind"] == "system"
assert o["uri"]["key"].startswith("pkcs11:") and "pin" not in o["uri"]["key"]
assert len(o["chain"]) == 2
assert "delete" in o["reminder"]
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "JSON object has status, key attributes, URIs and chain"
}

# ---- tokens that refuse key material in the clear (faulty-p11 strict) ----

# p11_objects: the token's objects without what may differ between two
# tokens holding the same objects (none that pkcs11-tool 0.23 prints today;
# later versions print a unique id and a URI).
p11_objects() { objects | grep -Ev '^ *(uri|Unique ID):'; }

# reference FILE ARGS...: the objects a plain import of FILE leaves on a
# fresh token of its own, into $T/ref.objects.
reference() {
	keepT=$T keepconf=$SOFTHSM2_CONF
	new_token "$(basename "$T")-ref"
	imp "$@"
	[ "$rc" -eq 0 ] || { fail "reference import of $1 failed"; cat "$T/err"; finish; }
	p11_objects >"$keepT/ref.objects"
	rm -rf "$T"
	T=$keepT SOFTHSM2_CONF=$keepconf
	export SOFTHSM2_CONF
}

# signs_like_cert CERT: the token's key with CERT's CKA_ID (the key
# identifier) signs, and the signature verifies with CERT's public key:
# the key that arrived is the right one. pkcs11-tool 0.23 picks the signing
# key by --id only, and SoftHSM 2.6 has no hashed ECDSA: EC signs a digest.
signs_like_cert() {
	printf 'vzp11 unwrap check\n' >"$T/data"
	openssl dgst -sha256 -binary "$T/data" >"$T/hash"
	openssl x509 -in "$1" -noout -pubkey >"$T/pub.pem"
	kid=$(openssl x509 -in "$1" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :')
	set +e
	if openssl x509 -in "$1" -noout -text | grep -q rsaEncryption; then
		p11 --sign --id "$kid" -m SHA256-RSA-PKCS --input-file "$T/data" \
			--output-file "$T/sig" >/dev/null 2>&1 &&
			openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig" "$T/data" >/dev/null 2>&1
	else
		p11 --sign --id "$kid" -m ECDSA --signature-format openssl --input-file "$T/hash" \
			--output-file "$T/sig" >/dev/null 2>&1 &&
			openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -in "$T/hash" \
				-sigfile "$T/sig" >/dev/null 2>&1
	fi
	ok=$?
	set -e
	[ "$ok" -eq 0 ] && pass "the key signs and the certificate verifies it" ||
		fail "the key with id $kid does not sign for its certificate"
}

# strict_import MODE FILE CERT: on a token that refuses clear private keys
# (MODE private) or clear secret keys too (MODE secret), import arrives by
# unwrapping and ends with exactly the objects of a plain import.
strict_import() {
	reference "$2"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_STRICT=$1 FAULTY_P11_REPORT=$T/report \
		VZP11_MODULE=$FAULTY_P11 run vz --json import "$2" --password-source env:VZT_P12
	expect_rc 0 "import onto a token with strict=$1"
	want=1
	[ "$1" = secret ] && want=2
	expect_in "$T/report" "^strict-refused $want$" "the token refused $want clear key(s)"
	expect_in "$T/report" "^func C_UnwrapKey" "the key came through C_UnwrapKey"
	python3 - "$T/out" >"$T/check" 2>&1 <<'PY' || true
import json, sys
o = json.load(open(sys.argv[1]))
assert o["key_import"] == "unwrapped", o["key_import"]
assert o["key"]["arrived"] == "unwrapped", o["key"]
assert o["key"]["sensitive"] is True and o["key"]["extractable"] is False, o["key"]
assert o["key"]["sign_only"] is True, o["key"]
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "import --json says the key was unwrapped"
	p11_objects >"$T/now.objects"
	if cmp -s "$T/ref.objects" "$T/now.objects"; then
		pass "exactly the objects of a plain import, nothing else"
	else
		fail "the token's objects differ from a plain import"
		diff "$T/ref.objects" "$T/now.objects" | head -20
	fi
	run vz show vecozo-system
	expect_in "$T/out" "^key arrived: +unwrapped$" "show says unwrapped"
	signs_like_cert "$3"
}
case_strict_private_rsa() { strict_import private "$PKI/sys-rsa2048.p12" "$PKI/sys-rsa2048.crt"; }
case_strict_private_ec() { strict_import private "$PKI/sys-ec256.p12" "$PKI/sys-ec256.crt"; }
case_strict_private_legacy() {
	strict_import private "$PKI/sys-rsa2048-legacy.p12" "$PKI/sys-rsa2048.crt"
}
case_strict_secret_rsa() { strict_import secret "$PKI/sys-rsa2048.p12" "$PKI/sys-rsa2048.crt"; }
case_strict_secret_ec() { strict_import secret "$PKI/sys-ec256.p12" "$PKI/sys-ec256.crt"; }
case_strict_secret_legacy() {
	strict_import secret "$PKI/sys-rsa2048-legacy.p12" "$PKI/sys-rsa2048.crt"
}

# Each code with which HSMs refuse a clear key leads to unwrapping; any
# other failure of C_CreateObject stays a failure, with the token as before.
case_strict_codes() {
	for code in CKR_ATTRIBUTE_VALUE_INVALID CKR_FUNCTION_NOT_SUPPORTED CKR_ACTION_PROHIBITED; do
		new_token "import-strict-codes-$code"
		FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_STRICT=private FAULTY_P11_STRICT_RV=$code \
			VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-ec256.p12"
		expect_rc 0 "import when the token refuses the clear key with $code"
		expect_in "$T/out" "The key was unwrapped" "unwrapped after $code"
		rm -rf "$T"
	done
	new_token import-strict-codes
	seed
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_STRICT=private FAULTY_P11_STRICT_RV=0x31 \
		FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "CKR_DEVICE_MEMORY is a failure, not a refusal of clear keys"
	expect_in "$T/err" "C_CreateObject \(private key\) failed: CKR_DEVICE_MEMORY" "names the call and the code"
	expect_not_in "$T/report" "^func C_UnwrapKey" "no unwrapping was tried"
	expect_unchanged before "failed clear import"
}

# --unwrap on a token that would take the key in the clear.
case_unwrap_option() {
	reference "$PKI/sys-rsa2048.p12"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 \
		run vz --json import "$PKI/sys-rsa2048.p12" --unwrap --password-source env:VZT_P12
	expect_rc 0 "import --unwrap"
	expect_in "$T/out" '"key_import":"unwrapped"' "import --json says unwrapped"
	# SoftHSM lists CKM_AES_KEY_WRAP_PAD, not _KWP: a throwaway probe finds
	# which reading it has (RFC 5649 is taken, so PKCS#11's PKCS#7 + RFC 3394
	# is not tried), then the key; no RSA-OAEP detour (the AES key went in
	# the clear).
	expect_in "$T/report" "^func C_UnwrapKey 2$" "two C_UnwrapKey: a probe of CKM_AES_KEY_WRAP_PAD, then the key"
	expect_not_in "$T/report" "^func C_GenerateKeyPair" "the session AES key went in the clear"
	p11_objects >"$T/now.objects"
	if cmp -s "$T/ref.objects" "$T/now.objects"; then
		pass "exactly the objects of a plain import, nothing else"
	else
		fail "the token's objects differ from a plain import"
		diff "$T/ref.objects" "$T/now.objects" | head -20
	fi
	run vz --json show vecozo-system
	expect_in "$T/out" '"arrived":"unwrapped"' "show --json says unwrapped"
	signs_like_cert "$PKI/sys-rsa2048.crt"
	imp "$PKI/sys-ec256.p12" --label plain
	run vz show plain
	expect_in "$T/out" "^key arrived: +created$" "a plain import shows as created"
}

# unwrapped_like_plain FILE CERT WHAT: import --unwrap of FILE through
# faulty-p11 (its modes from the environment) ends with exactly the objects
# of a plain import, and the key arrived unwrapped and signs for CERT.
unwrapped_like_plain() {
	reference "$1"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 \
		run vz --json import "$1" --unwrap --password-source env:VZT_P12
	expect_rc 0 "$3: import --unwrap"
	expect_in "$T/out" '"key_import":"unwrapped"' "$3: import --json says unwrapped"
	p11_objects >"$T/now.objects"
	cmp -s "$T/ref.objects" "$T/now.objects" && pass "$3: exactly the objects of a plain import" ||
		{ fail "$3: the token's objects differ from a plain import"; diff "$T/ref.objects" "$T/now.objects" | head -20; }
	run vz show vecozo-system
	expect_in "$T/out" "^key arrived: +unwrapped$" "$3: show says unwrapped"
	signs_like_cert "$2"
}

# A token that offers CKM_AES_KEY_WRAP_KWP (RFC 5649 by its PKCS#11 name)
# next to CKM_AES_KEY_WRAP_PAD: KWP is taken, and the PAD reading is never
# probed.
case_unwrap_kwp() {
	FAULTY_P11_KWP=1 unwrapped_like_plain "$PKI/sys-rsa2048.p12" "$PKI/sys-rsa2048.crt" "KWP offered"
	expect_in "$T/report" "^unwrap-mech 0x210b 1$" "the key was unwrapped with CKM_AES_KEY_WRAP_KWP"
	expect_not_in "$T/report" "^unwrap-mech 0x210a " "CKM_AES_KEY_WRAP_PAD was not used, not even probed"
}

# A token whose CKM_AES_KEY_WRAP_PAD is PKCS#11's (PKCS#7 padding + RFC
# 3394), not SoftHSM's RFC 5649: the probe finds that form, and RSA and EC
# keys (padded to a multiple of 8 differently) arrive whole.
case_unwrap_pad_pkcs11() {
	FAULTY_P11_WRAP_PAD=pkcs11 unwrapped_like_plain "$PKI/sys-rsa2048.p12" "$PKI/sys-rsa2048.crt" "RSA"
	expect_in "$T/report" "^unwrap-mech 0x210a 3$" \
		"three C_UnwrapKey with CKM_AES_KEY_WRAP_PAD: the RFC 5649 probe (refused), the PKCS#7 + RFC 3394 probe, the key"
	rm -rf "$T"
	new_token import-unwrap-pad-pkcs11-ec
	FAULTY_P11_WRAP_PAD=pkcs11 unwrapped_like_plain "$PKI/sys-ec256.p12" "$PKI/sys-ec256.crt" "EC"
	expect_in "$T/report" "^unwrap-mech 0x210a 3$" "EC: the probe, then the key"
}

# --use-token-key: a key another tool put on the token (extractable, with
# decrypt and unwrap, under its own label and CKA_ID) is adopted.
case_use_token_key() {
	seed
	put_key "$PKI/sys-rsa2048.p12" by-hand 0102 --extractable
	snapshot with-key
	imp "$PKI/sys-renewed.p12" --use-token-key
	expect_rc 1 "--use-token-key for a certificate whose key is not on the token"
	expect_in "$T/err" "there is none to adopt" "says there is no key to adopt"
	expect_unchanged with-key "nothing to adopt"
	run vz import "$PKI/sys-rsa2048.p12" --use-token-key --unwrap --password-source env:VZT_P12
	expect_rc 2 "--use-token-key with --unwrap is a usage error"
	imp "$PKI/sys-rsa2048.p12" --use-token-key --json
	expect_rc 0 "import --use-token-key"
	expect_in "$T/out" '"key_import":"adopted"' "says the key was adopted"
	expect_in "$T/out" '"sensitive":true,"extractable":false' "the key is now not extractable"
	expect_in "$T/out" '"sign_only":' "the key's uses are shown"
	# SoftHSM 2.6 will not change CKA_ALLOWED_MECHANISMS (CKR_ATTRIBUTE_READ_ONLY):
	# the adopted key keeps no list, and vzp11 says so (tokens-tpm: one that does)
	expect_in "$T/out" '"not_kept":\["CKA_ALLOWED_MECHANISMS"\]' "--json says the mechanism list was not kept"
	expect_objects vecozo-system "$PKI/sys-rsa2048.crt"
	objects | awk '/^[A-Z]/ {p = 0} /^Private Key Object/ {p = 1} p' >"$T/priv"
	expect_not_in "$T/priv" "by-hand" "no key is left under the other tool's label"
	expect_in "$T/priv" "Usage: +sign$" "the key may only sign now (decrypt and unwrap off)"
	run vz show vecozo-system
	expect_in "$T/out" "^not kept: +CKA_ALLOWED_MECHANISMS \(the token does not limit the key to signature mechanisms; it still cannot decrypt\)" \
		"show says the list was not kept, and that the key cannot decrypt"
	expect_not_in "$T/priv" "extractable" "pkcs11-tool sees it not extractable"
	[ "$(count_objects '^Private Key Object')" -eq 2 ] && pass "no key was added (the seeded one and the adopted one)" ||
		fail "$(count_objects '^Private Key Object') private keys"
	signs_like_cert "$PKI/sys-rsa2048.crt"
	imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 0 "the same again"
	expect_in "$T/out" "already on the token" "changes nothing"
	# two copies of one key: which one would be adopted? refused
	put_key "$PKI/sys-rsa2048.p12" copy 0a0b
	snapshot two-copies
	imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 1 "two keys match"
	expect_in "$T/err" "2 private keys on token .* have the public key" "says how many match"
	expect_unchanged two-copies "two matching keys"
}

# adoptable: a token with a seeded certificate and, by another tool, the
# key of sys-rsa2048 (extractable, with decrypt and unwrap, its own label
# and CKA_ID); its objects in the snapshot "with-key".
adoptable() {
	seed
	put_key "$PKI/sys-rsa2048.p12" by-hand 0102 --extractable
	snapshot with-key
}

# A token that will not make a key sensitive and not extractable: the key
# is not adopted, and everything done before (label, CKA_ID, uses, public
# key, certificate, chain) is undone.
case_use_token_key_not_protectable() {
	adoptable
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_SET_FAIL_ATTR=CKA_EXTRACTABLE \
		FAULTY_P11_RV=CKR_ATTRIBUTE_READ_ONLY FAULTY_P11_REPORT=$T/report \
		VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 1 "--use-token-key on a token that keeps the key extractable"
	expect_in "$T/report" "^injected attribute 0x162" "the token refused CKA_EXTRACTABLE"
	expect_in "$T/err" "does not let the key on it be made sensitive and not extractable \(C_SetAttributeValue: CKR_ATTRIBUTE_READ_ONLY\), so vzp11 does not adopt it" \
		"says what the token cannot do"
	expect_in "$T/err" "the token is unchanged" "says the token is unchanged"
	expect_in "$T/err" "token's own tool" "says what to do"
	expect_unchanged with-key "key not adopted"
}

# A token that will not switch off decrypt and unwrap, nor take a mechanism
# list: the key is adopted all the same (it is sensitive and not
# extractable), and import, show and --json say what stayed on.
case_use_token_key_uses_kept() {
	adoptable
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_SET_FAIL_ATTR=CKA_DECRYPT,CKA_UNWRAP,CKA_ALLOWED_MECHANISMS \
		FAULTY_P11_RV=CKR_ATTRIBUTE_READ_ONLY FAULTY_P11_REPORT=$T/report \
		VZP11_MODULE=$FAULTY_P11 imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 0 "--use-token-key on a token that keeps decrypt and unwrap"
	expect_in "$T/report" "^injected attribute" "the token refused the changes"
	expect_in "$T/out" "^The token would not switch off the key's other uses \(decrypt, unwrap\): vzp11 only signs with it; switch them off with the token's own tool" \
		"import says which uses the token kept on and what to do"
	expect_in "$T/out" "sensitive=yes extractable=no" "the key is protected"
	expect_in "$T/out" "sign=yes decrypt=yes unwrap=yes derive=no sign-recover=no mechanisms=any" "show's key use is what the token has"
	expect_in "$T/out" "^not kept: +CKA_ALLOWED_MECHANISMS \(the token does not limit the key to signature mechanisms, and the key may decrypt or unwrap too" \
		"not kept: says the key may decrypt"
	expect_not_in "$T/out" "cannot decrypt" "does not say the key cannot decrypt"
	run vz --json show vecozo-system
	expect_in "$T/out" '"sign_only":false' "--json: not sign only"
	expect_in "$T/out" '"not_kept":\["CKA_ALLOWED_MECHANISMS"\]' "--json: the mechanism list was not kept"
	objects | grep -c "Usage: *decrypt, sign, unwrap" >"$T/usage" || true
	[ "$(cat "$T/usage")" -eq 1 ] && pass "pkcs11-tool sees the adopted key decrypt, sign and unwrap" ||
		{ fail "pkcs11-tool's usage lines:"; objects | grep Usage; }
}

# The key was made sensitive and not extractable, then the import failed
# (its read-back gave no clear answer): everything is undone but that, and
# the message says so.
case_use_token_key_protected_then_failed() {
	adoptable
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_ATTR=CKA_PRIVATE_EXPONENT \
		FAULTY_P11_RV=CKR_DEVICE_ERROR VZP11_MODULE=$FAULTY_P11 \
		imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 1 "--use-token-key when the read-back fails after the key was protected"
	expect_in "$T/err" "could not confirm" "says the read-back failed"
	expect_in "$T/err" "the token is as it was, except that the key that was to be adopted stays sensitive and not extractable \(that cannot be undone\)" \
		"says what could not be undone"
	grep -v '^ *Access:' "$T/with-key.objects" >"$T/with-key.rest"
	objects | grep -v '^ *Access:' >"$T/now.rest"
	cmp -s "$T/with-key.rest" "$T/now.rest" && pass "every object as before but the key's access flags" ||
		{ fail "the token's objects changed"; diff "$T/with-key.rest" "$T/now.rest" | head -20; }
	objects | awk '/^[A-Z]/ {p = 0} /^Private Key Object/ {p = 1} p' >"$T/priv"
	expect_in "$T/priv" "label: +by-hand" "the key keeps the other tool's label"
	expect_not_in "$T/priv" "(^|[ ,])extractable" "the key is no longer extractable"
	[ "$(grep -c '^ *Access:' "$T/with-key.objects")" -eq "$(objects | grep -c '^ *Access:')" ] &&
		pass "the same keys" || fail "the number of keys changed"
}

# wrong_password FILE: a wrong password is named as such, not as damage.
wrong_password() {
	seed
	VZT_P12=not-the-password
	imp "$1"
	expect_rc 1 "wrong password for $(basename "$1")"
	expect_in "$T/err" "password is wrong" "says the password is wrong"
	expect_not_in "$T/err" "damaged|truncated" "does not blame the file"
	expect_unchanged before "wrong password"
}
case_wrong_password() { wrong_password "$PKI/sys-rsa2048.p12"; }
case_wrong_password_legacy() { wrong_password "$PKI/sys-rsa2048-legacy.p12"; }
case_not_p12() { refused "$PKI/notp12.p12" "not a PKCS#12"; }
case_truncated() { refused "$PKI/truncated.p12" "truncated or damaged"; }
case_empty() { refused "$PKI/empty.p12" "file is empty"; }
case_no_key() {
	refused "$PKI/nokey.p12" "holds no private key"
	expect_in "$T/err" "export again with the private key" "says to export with the key"
}
case_wrong_key() { refused "$PKI/wrongkey.p12" "matches none of its"; }
case_expired() { refused "$PKI/expired.p12" "expired on 20[0-9-]+.*days ago"; }
case_not_yet_valid() { refused "$PKI/notyet.p12" "not valid yet: it starts on 20[0-9-]+"; }
case_personal() { refused "$PKI/personal.p12" "personal certificate.*system certificate"; }
case_rsa1024() { refused "$PKI/rsa1024.p12" "1024 bits.*at least 2048"; }
case_missing_file() { refused "$T/nonexistent.p12" "cannot open"; }

case_personal_allowed() {
	imp "$PKI/personal.p12" --allow-personal --label person
	expect_rc 0 "--allow-personal imports a personal certificate"
	expect_in "$T/out" "kind: +personal" "marked personal"
}

case_token_not_found() {
	seed
	VZP11_TOKEN=no-such-token imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "unknown token"
	expect_in "$T/err" "no token matches 'no-such-token'.*'$TOKEN_LABEL'" "lists the tokens that exist"
	expect_unchanged before "unknown token"
}

case_wrong_pin() {
	seed
	VZT_BADPIN=0000 VZP11_PIN_SOURCE=env:VZT_BADPIN imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "wrong PIN"
	expect_in "$T/err" "rejected the PIN" "says the PIN was rejected"
	expect_in "$T/err" "never retries" "says it is not retried"
	expect_unchanged before "wrong PIN"
}

case_pass_source_refused() {
	seed
	run vz import "$PKI/sys-rsa2048.p12" --password-source pass:
	expect_rc 2 "pass: is a usage error"
	expect_in "$T/err" "argv|command line" "explains why"
	expect_unchanged before "pass: refused"
}

case_password_file() {
	seed
	(umask 027 && printf '%s\n' "$VZT_P12" >"$T/pw")
	chmod 0640 "$T/pw"
	run vz import "$PKI/sys-rsa2048.p12" --password-source "file:$T/pw"
	expect_rc 1 "group-readable password file"
	expect_in "$T/err" "chmod 600" "says how to fix the mode"
	expect_unchanged before "group-readable password file"
	chmod 0600 "$T/pw"
	run vz import "$PKI/sys-rsa2048.p12" --password-source "file:$T/pw"
	expect_rc 0 "password from a 0600 file"
}

case_no_pin_source_no_tty() {
	seed
	VZP11_PIN_SOURCE= setsid sh -c '"$VZP11_BIN" --module "$VZP11_MODULE" import "$1" --password-source env:VZT_P12 </dev/null' sh "$PKI/sys-rsa2048.p12" >"$T/out" 2>"$T/err" && rc=0 || rc=$?
	expect_rc 1 "no PIN source and no terminal"
	expect_in "$T/err" "no terminal" "says there is no terminal to ask"
	expect_unchanged before "no PIN source"
}

new_token "import-$1"
"case_$(echo "$1" | tr - _)"
finish
