#!/bin/sh
# keyuse.sh CASE: what the imported key can and cannot do on the token. It
# signs TLS handshakes (1.2 and 1.3) through pkcs11-provider; it does not
# decrypt and does not do raw RSA, whoever asks (here OpenSC's pkcs11-tool,
# logged in with the user PIN).
. "$(dirname "$0")/lib.sh"


# p11_key LABEL ARGS: pkcs11-tool on the private key of LABEL. Output in
# $T/p11.out, $T/p11.err, exit code in $rc.
p11_key() {
	l=$1
	shift
	set +e
	p11 --label "$l" --type privkey "$@" >"$T/p11.out" 2>"$T/p11.err"
	rc=$?
	set -e
}

# handshake LABEL PROTO SIGALGS TYPE: `vzp11 cov` against openssl s_server,
# which speaks only PROTO, asks for a client certificate (verified against
# the test root) and accepts only SIGALGS for the client's signature.
# s_server prints the connection and the request only after the client's
# CertificateVerify, signed by the token, checked out. Its stdin is a FIFO
# held open, as it stops at the end of its input.
handshake() {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	log=$T/s_server-$2-$3.log
	rm -f "$T/s_in"
	mkfifo "$T/s_in"
	openssl s_server -accept "127.0.0.1:$port" -cert "$PKI/server.crt" -key "$PKI/server.key" \
		-cert_chain "$PKI/issuing.crt" -CAfile "$PKI/root.crt" -Verify 3 -verify_return_error \
		"-$2" -client_sigalgs "$3" -naccept 1 <"$T/s_in" >"$log" 2>&1 &
	spid=$!
	exec 5>"$T/s_in"
	i=0
	while ! grep -q ACCEPT "$log" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	run timeout 20 "$VZP11_BIN" cov --label "$1" --endpoint "https://localhost:$port/" \
		--cacert "$PKI/root.crt" --bsn 999979668 --birthdate 1962-03-15 --retries 0 --timeout 2
	exec 5>&-
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	case $2 in tls1_3) cipher="TLS_" ;; *) cipher="ECDHE-" ;; esac
	expect_in "$log" "depth=0 .*CN ?= ?" "$2 $3: the server saw the client certificate"
	expect_not_in "$log" "verify error|alert|bad signature" "$2 $3: no handshake error"
	expect_in "$log" "^Peer signature type: $4\$" "$2 $3: the client signed with $4"
	expect_in "$log" "^CIPHER is $cipher" "$2 $3: the handshake completed ($2)"
	expect_in "$log" "^POST / HTTP/1.1" "$2 $3: the request went through the connection"
	expect_not_in "$T/err" "$VZT_PIN" "$2 $3: no PIN in the messages"
}

case_rsa_sign_only() {
	must_import "$PKI/sys-rsa2048.p12"
	run vz show vecozo-system
	expect_in "$T/out" "^key use: +sign=yes decrypt=no unwrap=no derive=no sign-recover=no mechanisms=signature-only" \
		"show says the key may only sign, with signature mechanisms"
	head -c 256 /dev/zero | tr '\0' '\1' >"$T/block"
	echo "handshake transcript hash" >"$T/data"
	# raw RSA: with it a key signs whatever block it is given, which is
	# RSA decryption under another name
	p11_key vecozo-system --sign -m RSA-X-509 --input-file "$T/block" --output-file "$T/raw.sig"
	[ "$rc" -ne 0 ] && pass "raw RSA (CKM_RSA_X_509) signing is refused" ||
		fail "the token signed with raw RSA (CKM_RSA_X_509)"
	expect_in "$T/p11.err" "CKR_MECHANISM_INVALID|CKR_KEY_FUNCTION_NOT_PERMITTED|CKR_ACTION_PROHIBITED" \
		"the token refused the mechanism (not some other failure)"
	# decryption of something encrypted to the certificate's public key
	openssl x509 -in "$PKI/sys-rsa2048.crt" -pubkey -noout >"$T/pub.pem"
	openssl pkeyutl -encrypt -pubin -inkey "$T/pub.pem" -in "$T/data" -out "$T/data.enc"
	p11_key vecozo-system --decrypt -m RSA-PKCS --input-file "$T/data.enc" --output-file "$T/data.dec"
	[ "$rc" -ne 0 ] && pass "decryption (CKM_RSA_PKCS) with the key is refused" ||
		fail "the token decrypted with the key"
	expect_in "$T/p11.err" "CKR_KEY_FUNCTION_NOT_PERMITTED|CKR_MECHANISM_INVALID|CKR_ACTION_PROHIBITED" \
		"the token refused to decrypt (not some other failure)"
	if [ -s "$T/data.dec" ] && cmp -s "$T/data" "$T/data.dec"; then
		fail "the plaintext came back"
	else pass "no plaintext came back"; fi
	# the same tool, the same key, a signature mechanism: it works, so the
	# refusals above are the key's, not a broken command
	p11_key vecozo-system --sign -m SHA256-RSA-PKCS --input-file "$T/data" --output-file "$T/ok.sig"
	expect_rc 0 "signing with CKM_SHA256_RSA_PKCS works"
	if openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/ok.sig" "$T/data" >/dev/null 2>&1; then
		pass "that signature verifies with the certificate"
	else fail "that signature does not verify"; fi
}

case_rsa_tls() {
	must_import "$PKI/sys-rsa2048.p12"
	handshake vecozo-system tls1_3 rsa_pss_rsae_sha256 RSA-PSS
	handshake vecozo-system tls1_2 rsa_pss_rsae_sha256 RSA-PSS
	handshake vecozo-system tls1_2 RSA+SHA256 RSA
}

case_ec_tls() {
	must_import "$PKI/sys-ec256.p12" --label ec
	run vz show ec
	expect_in "$T/out" "mechanisms=signature-only" "show says the EC key is limited to signature mechanisms"
	handshake ec tls1_3 ecdsa_secp256r1_sha256 ECDSA
	handshake ec tls1_2 ECDSA+SHA256 ECDSA
}

new_token "keyuse-$1"
"case_$(echo "$1" | tr - _)"
finish
