#!/bin/sh
# rotate.sh CASE: `vzp11 rotate` renews the system certificate with no
# moment in which its label names none, and whatever call fails, the label
# still names one complete, usable certificate and key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"
: "${FAULTY_P11:?}"
CASE=$1
L=vecozo-system

must() { # must WHAT: the last run had to succeed for the case to go on
	[ "$rc" -eq 0 ] || { fail "$1: exit $rc"; sed 's/^/  stderr: /' "$T/err"; finish; }
}

rot() { run vz rotate "$@"; }
rot_new() { # rot_new FILE [ARGS]
	f=$1
	shift
	rot "$f" --password-source env:VZT_P12 "$@"
}

# rights COV-CERTS...: only these certificates have the COV right.
rights() {
	: >"$T/rights"
	for c in "$@"; do
		echo "$(openssl x509 -in "$PKI/$c.crt" -noout -fingerprint -sha256 | sed 's/.*=//') cov" >>"$T/rights"
	done
}

# cov_with [LABEL]: one COV check with the token's key; rc and $T/out.
cov_with() {
	echo "999979668,1962-03-15" >"$T/stdin"
	set +e
	vz cov --label "${1:-$L}" --endpoint "$ENDPOINT" --cacert "$PKI/chain.pem" --stdin \
		<"$T/stdin" >"$T/cov.out" 2>"$T/cov.err"
	rc=$?
	set -e
}

# serial_of LABEL: the serial `show --json` gives for LABEL ("" if none).
serial_of() {
	vz --json show "$1" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["serial"])' 2>/dev/null || true
}

crt_serial() { openssl x509 -in "$PKI/$1.crt" -noout -serial | sed 's/.*=//'; }

# uri_ids TYPE: the CKA_IDs of the objects an RFC 7512 URI lookup of '$L'
# finds (pkcs11:token=...;object=$L;type=TYPE), as GnuTLS's p11tool sees it
# logged in (GnuTLS, curl, nginx and HAProxy find the key so), one a line.
uri_ids() {
	GNUTLS_PIN=$VZT_PIN p11tool --provider "$SOFTHSM_MODULE" --login --list-all \
		"pkcs11:token=$TOKEN_LABEL;object=$L;type=$1" 2>"$T/p11tool.err" |
		sed -n 's/^[[:space:]]*ID: //p'
}

# uri_single: exactly one private key and one certificate named '$L', with
# the same CKA_ID; else says what a URI lookup finds, and fails.
uri_single() {
	uk=$(uri_ids private)
	uc=$(uri_ids cert)
	[ -n "$uk" ] && [ "$uk" = "$uc" ] && [ "$(echo "$uk" | wc -l)" -eq 1 ] && return 0
	echo "  a URI lookup of '$L' finds private key(s) [$(echo $uk)] and certificate(s) [$(echo $uc)]"
	return 1
}

setup() {
	new_token "$CASE"
	must_import "$PKI/sys-rsa2048.p12"
	OLD=$(crt_serial sys-rsa2048)
	NEW=$(crt_serial sys-renewed)
}

case_renew() {
	setup
	rights sys-renewed
	start_mock
	cov_with
	expect_in "$T/cov.err" "Niet geauthenticeerd|not accept" "before: the mock knows only the renewal"
	rot_new "$PKI/sys-renewed.p12" --endpoint "$ENDPOINT" --cacert "$PKI/chain.pem"
	expect_rc 0 "rotate to the renewed certificate"
	expect_in "$T/out" "^ok +cov handshake " "the renewal passed a COV handshake first"
	expect_in "$T/out" "^selftest: all checks passed$" "the renewal passed the self-test"
	expect_in "$T/out" "^active: .*serial $NEW" "says the renewal is active"
	expect_in "$T/out" "^previous: .*serial $OLD" "says the old one is kept"
	[ "$(serial_of $L)" = "$NEW" ] && pass "'$L' is the renewal" || fail "'$L' is serial $(serial_of $L)"
	[ "$(serial_of $L.previous)" = "$OLD" ] && pass "'$L.previous' is the old one" ||
		fail "'$L.previous' is serial $(serial_of $L.previous)"
	[ -z "$(serial_of $L.next)" ] && pass "nothing is left as '$L.next'" || fail "'$L.next' is still there"
	uri_single && pass "a URI lookup of '$L' finds one key and one certificate, with one id" ||
		fail "a URI lookup of '$L' after the rotation"
	cov_with
	expect_rc 0 "COV with '$L' after the rotation"
	expect_in "$T/cov.out" "^Result: +Gevonden" "COV answers with the renewed certificate"
	# The old one is untouched until --finish: back to it, and COV follows.
	rot --rollback
	expect_rc 0 "rollback"
	[ "$(serial_of $L)" = "$OLD" ] && pass "rollback: '$L' is the old one again" || fail "rollback: '$L' is $(serial_of $L)"
	[ "$(serial_of $L.previous)" = "$NEW" ] && pass "rollback: the renewal is '$L.previous'" || fail "rollback: previous is $(serial_of $L.previous)"
	cov_with
	expect_in "$T/cov.err" "Niet geauthenticeerd|not accept" "after the rollback COV uses the old certificate"
	rot --rollback
	expect_rc 0 "rollback of the rollback"
	[ "$(serial_of $L)" = "$NEW" ] && pass "the renewal is active again" || fail "'$L' is $(serial_of $L)"
	rot --finish
	expect_rc 0 "finish"
	expect_in "$T/out" "^Deleted the previous certificate" "says the old one was deleted"
	[ -z "$(serial_of $L.previous)" ] && pass "'$L.previous' is gone" || fail "'$L.previous' is still there"
	# Exactly what a plain import of the renewal leaves: its three
	# objects under the label and the two CA certificates.
	[ "$(count_objects '^Private Key Object')" -eq 1 ] && [ "$(count_objects '^Public Key Object')" -eq 1 ] &&
		[ "$(count_objects '^Certificate Object')" -eq 3 ] && pass "one key pair and three certificates left" ||
		{ fail "objects left:"; objects; }
	[ "$(objects | grep -c "label: *$L\$")" -eq 3 ] && pass "all three carry '$L'" || fail "labels: $(objects | grep label:)"
	rot --finish
	expect_rc 0 "finish again"
	expect_in "$T/out" "nothing to finish" "says there is nothing to finish"
	cov_with
	expect_in "$T/cov.out" "^Result: +Gevonden" "COV still answers after finish"
}

case_refusals() {
	setup
	snapshot before
	rot_new "$PKI/sys-ec256.p12"
	expect_rc 1 "rotate to another certificate of the same organisation"
	expect_in "$T/err" "not for the same organisation: its subject has 'CN=Demo Praktijk B.V. systeemcertificaat EC' where the active one has 'CN=Demo Praktijk B.V. systeemcertificaat 01234567'" \
		"names the difference"
	rot_new "$PKI/personal.p12" --allow-personal
	expect_rc 2 "rotate has no --allow-personal"
	rot_new "$PKI/sys-samekey.p12"
	expect_rc 1 "rotate to a certificate for the same key"
	expect_in "$T/err" "same key as the active one" "says it is the same key"
	expect_in "$T/err" "import --replace" "points to import --replace"
	rot_new "$PKI/sys-rsa2048.p12"
	expect_rc 0 "rotate to the active certificate itself"
	expect_in "$T/out" "active already; nothing was changed" "says nothing changed"
	rot_new "$PKI/expired.p12"
	expect_rc 1 "rotate to an expired certificate"
	rot --rollback
	expect_rc 1 "rollback with nothing to go back to"
	expect_in "$T/err" "no previous certificate" "says there is none"
	rot
	expect_rc 2 "no file"
	rot --finish --rollback
	expect_rc 2 "--finish with --rollback"
	expect_unchanged before "refused rotations"
	rot_new "$PKI/sys-renewed.p12" --label nothing-here
	expect_rc 1 "rotate of a label that does not exist"
	expect_in "$T/err" "for a first one use 'vzp11 import'" "points to import"
	# After a rotation, the next one waits for --finish.
	rot_new "$PKI/sys-renewed.p12"
	must "rotation"
	snapshot rotated
	rot_new "$PKI/sys-rsa2048.p12"
	expect_rc 1 "rotate back to the old certificate by file"
	expect_in "$T/err" "go back to it with 'vzp11 rotate --rollback'" "points to --rollback"
	rot_new "$PKI/sys-soon30.p12"
	expect_rc 1 "another rotation before --finish"
	expect_unchanged rotated "refused second rotation"
}

# A renewal that fails the self-test (here: VECOZO cannot be reached) is
# removed again; the active certificate never changed.
case_selftest_fails() {
	setup
	snapshot before
	rot_new "$PKI/sys-renewed.p12" --endpoint "https://127.0.0.1:9/cov/vz801802/v1/soap11" \
		--cacert "$PKI/chain.pem"
	expect_rc 1 "rotate when the renewal's COV handshake fails"
	expect_in "$T/out" "^FAIL +cov handshake " "the self-test says the handshake failed"
	expect_in "$T/err" "failed the self-test; it was removed again and '$L' is unchanged" "says what happened"
	expect_unchanged before "failed self-test"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_FUNC=C_SignInit VZP11_MODULE=$FAULTY_P11 \
		rot_new "$PKI/sys-renewed.p12"
	expect_rc 1 "rotate when the renewed key cannot sign"
	expect_in "$T/out" "^FAIL +sign " "the self-test says signing failed"
	expect_unchanged before "key that cannot sign"
}

# Two rotates of one token at once: the second waits for the first (the
# token's lock), then finds the renewal active and changes nothing; their
# label writes never interleave. The first is held in its self-test: the
# mock keeps its COV answer until the second says it waits ($T/release;
# at most 25 s, within the self-test's 30 s for the answer).
case_concurrent() {
	setup
	rights sys-rsa2048 sys-renewed
	start_mock --delay 25000 --hold "$T/release" --record "$T/record"
	${VZP11_WRAPPER:-} "$VZP11_BIN" --json rotate "$PKI/sys-renewed.p12" --password-source env:VZT_P12 \
		--endpoint "$ENDPOINT" --cacert "$PKI/chain.pem" >"$T/out1" 2>"$T/err1" &
	pid=$!
	# the first one's self-test has sent its COV check (and is held)
	i=0
	while ! grep -q '^POST ' "$T/record" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
	${VZP11_WRAPPER:-} "$VZP11_BIN" --json rotate "$PKI/sys-renewed.p12" --password-source env:VZT_P12 \
		--endpoint "$ENDPOINT" --cacert "$PKI/chain.pem" >"$T/out" 2>"$T/err" &
	pid2=$!
	i=0
	while ! grep -q "waiting" "$T/err" && kill -0 "$pid2" 2>/dev/null && [ $i -lt 240 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	: >"$T/release"
	wait "$pid2" && second=0 || second=$?
	wait "$pid" && first=0 || first=$?
	[ "$first" -eq 0 ] && pass "the first rotate (exit 0)" || { fail "the first rotate: exit $first"; sed 's/^/  | /' "$T/err1"; }
	[ "$second" -eq 0 ] && pass "the second rotate (exit 0)" || { fail "the second rotate: exit $second"; sed 's/^/  | /' "$T/err"; }
	expect_in "$T/err" "another vzp11 is changing token '$TOKEN_LABEL' .*waiting" \
		"the second says it waits for the first"
	python3 - "$T/out1" "$T/out" >"$T/check" 2>&1 <<'PY' || true
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
assert a["status"] == "rotated", a
assert b["status"] == "unchanged" and b["label_changes"] == [], b
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "the first rotated; the second found it done and changed nothing"
	[ "$(serial_of $L)" = "$NEW" ] && [ "$(serial_of $L.previous)" = "$OLD" ] &&
		pass "'$L' is the renewal, '$L.previous' the old one" ||
		fail "'$L' is $(serial_of $L), '$L.previous' is $(serial_of $L.previous)"
	uri_single && pass "a URI lookup of '$L' finds one key and one certificate" ||
		fail "a URI lookup of '$L' after both"
	[ "$(objects | grep -c "label: *$L\.next\$")" -eq 0 ] && pass "nothing is left as '$L.next'" ||
		fail "objects left as '$L.next'"
}

# Another user plants the token's lock file and holds it, to keep rotate
# (import, remove) waiting and failing. In a directory others may write
# (VZP11_LOCK_DIR, sticky and world-writable here) rotate refuses such a
# file at once, saying whose it is. By default root's lock files are in
# /run/vzp11-locks, root's alone, so a file planted in /run/lock (where
# they were) does not concern it: in a private mount namespace with a
# fresh /run, nobody holds /run/lock's file and rotate completes.
case_lock_planted() {
	[ "$(id -u)" -eq 0 ] && unshare -m --propagation private true 2>/dev/null ||
		{ echo "SKIP: needs root (to act as user nobody) and unshare -m"; exit 77; }
	setup
	# the token's lock file name, from a rotate that takes the lock
	mkdir "$T/probe"
	VZP11_LOCK_DIR=$T/probe rot --finish
	must "rotate --finish, to learn the lock file's name"
	name=$(ls "$T/probe")
	case $name in vzp11-token-*.lock) ;; *) fail "the lock file is '$name'"; finish ;; esac
	snapshot before
	SHARED=$(mktemp -d /tmp/vzp11-locks.XXXXXX)
	chmod 1777 "$SHARED"
	# user nobody makes the file and holds its lock (for at most 60 s): a
	# sleep that holds it itself, so that its pid ends it
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		sh -c 'exec 9>>"$1" && flock 9 && exec sleep 60' sh "$SHARED/$name" \
		</dev/null >/dev/null 2>&1 &
	HOLDER=$!
	trap 'kill "$HOLDER" 2>/dev/null || true; rm -rf "$SHARED"' EXIT
	i=0
	until { [ -e "$SHARED/$name" ] && ! flock -n "$SHARED/$name" true; } || [ $i -ge 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	[ "$(stat -c %U "$SHARED/$name" 2>/dev/null)" = nobody ] && ! flock -n "$SHARED/$name" true &&
		pass "user nobody made the lock file and holds it" || fail "nobody does not hold a lock file"
	VZP11_LOCK_DIR=$SHARED run timeout 60 ${VZP11_WRAPPER:-} "$VZP11_BIN" rotate "$PKI/sys-renewed.p12" \
		--password-source env:VZT_P12
	expect_rc 1 "rotate with the lock file planted by nobody in a shared directory"
	expect_in "$T/err" "lock file $SHARED/$name of token '$TOKEN_LABEL' belongs to user nobody" \
		"says whose the lock file is"
	expect_not_in "$T/err" "waiting" "refused at once, not waited for"
	expect_unchanged before "refused for the planted lock"
	kill "$HOLDER" 2>/dev/null || true
	wait "$HOLDER" 2>/dev/null || true
	# the default directory, as root, with nobody's file in /run/lock
	env -u VZP11_LOCK_DIR unshare -m --propagation private sh -c '
		mount -t tmpfs -o mode=755 vzp11-test /run || exit 96
		mkdir -m 1777 /run/lock
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			sh -c "exec 9>>\"\$1\" && flock 9 && exec sleep 60" sh "/run/lock/$1" \
			</dev/null >/dev/null 2>&1 &
		h=$!
		i=0
		until { [ -e "/run/lock/$1" ] && ! flock -n "/run/lock/$1" true; } || [ $i -ge 100 ]; do
			sleep 0.05
			i=$((i + 1))
		done
		stat -c "planted %U" "/run/lock/$1"
		timeout 60 ${VZP11_WRAPPER:-} "$VZP11_BIN" rotate "$2" --password-source env:VZT_P12 			>"$3/out" 2>"$3/err"
		echo "rc $?"
		stat -c "dir %U %a" /run/vzp11-locks
		stat -c "file %U %a" "/run/vzp11-locks/$1"
		kill $h' sh "$name" "$PKI/sys-renewed.p12" "$T" >"$T/ns.out" 2>&1 || true
	expect_in "$T/ns.out" "^planted nobody$" "user nobody holds /run/lock/$name"
	expect_in "$T/ns.out" "^rc 0$" "rotate with the default lock directory completes"
	expect_not_in "$T/err" "waiting" "without waiting for nobody's lock"
	expect_in "$T/ns.out" "^dir root 755$" "its lock directory /run/vzp11-locks is root's, mode 0755"
	expect_in "$T/ns.out" "^file root 600$" "the lock file in it is root's, mode 0600"
	[ "$(serial_of $L)" = "$NEW" ] && pass "'$L' is the renewal" || fail "'$L' is $(serial_of $L)"
}

# A label write of the switch fails and rotate undoes the switch (exit 1).
# It says to run the same command again for a failure that can pass (the
# device), and keeps the token's own hint for one that would come again
# (the token refuses the label: CKR_ATTRIBUTE_READ_ONLY). The write that
# fails is the switch's second (the old key to LABEL.previous), after the
# renewal's certificate took LABEL.
case_label_write_hints() {
	setup
	cp -a "$T/hsm/tokens" "$T/pristine"
	for rv in CKR_ATTRIBUTE_READ_ONLY CKR_DEVICE_ERROR; do
		rm -rf "$T/hsm/tokens" && cp -a "$T/pristine" "$T/hsm/tokens"
		FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_FUNC=C_SetAttributeValue \
			FAULTY_P11_FAIL_NTH=2 FAULTY_P11_RV=$rv FAULTY_P11_REPORT=$T/report \
			VZP11_MODULE=$FAULTY_P11 rot_new "$PKI/sys-renewed.p12"
		expect_rc 1 "rotate when a label write of the switch fails with $rv"
		expect_in "$T/err" "C_SetAttributeValue failed: $rv.*the switch was undone" \
			"$rv: says the write failed and the switch was undone"
		[ "$(serial_of $L)" = "$OLD" ] && uri_single && pass "$rv: '$L' is the old one, one key and one certificate" ||
			fail "$rv: '$L' is $(serial_of $L)"
		cp "$T/err" "$T/err-$rv"
	done
	expect_not_in "$T/err-CKR_ATTRIBUTE_READ_ONLY" "run the same command again" \
		"a refused label: it does not say to run the command again"
	expect_in "$T/err-CKR_ATTRIBUTE_READ_ONLY" "running the command again will not help" \
		"a refused label: the token's own hint"
	expect_in "$T/err-CKR_DEVICE_ERROR" "run the same command again to switch" \
		"a device error: run the same command again"
	rot_new "$PKI/sys-renewed.p12"
	expect_rc 0 "after the device error, the same command again"
	[ "$(serial_of $L)" = "$NEW" ] && pass "it switched" || fail "'$L' is $(serial_of $L)"
}

case_json() {
	setup
	run vz --json rotate "$PKI/sys-renewed.p12" --password-source env:VZT_P12
	expect_rc 0 "rotate --json"
	python3 - "$T/out" "$NEW" "$OLD" >"$T/check" 2>&1 <<'PY' || true
import json, sys
o = json.load(open(sys.argv[1]))
assert o["status"] == "rotated", o
assert o["active"]["serial"] == sys.argv[2] and o["active"]["label"] == "vecozo-system", o
assert o["previous"]["serial"] == sys.argv[3] and o["previous"]["label"] == "vecozo-system.previous", o
steps = [(s["object"], s["to"]) for s in o["label_changes"]]
assert steps == [("certificate", "vecozo-system"), ("private key", "vecozo-system.previous"),
                 ("certificate", "vecozo-system.previous"), ("public key", "vecozo-system.previous"),
                 ("public key", "vecozo-system"), ("private key", "vecozo-system")], steps
print("json ok")
PY
	expect_in "$T/check" "^json ok$" "the JSON names both certificates and the label changes in order"
}

# Each call of rotate fails in turn (FAULT_SWEEP_STRIDE samples; every call
# that changes a label or deletes fails in turn always). After each: LABEL
# names exactly one complete certificate and key, a COV check with it is
# answered, and the next rotate completes the renewal.
sweep_one() { # sweep_one WHAT ENV...
	what=$1
	shift
	restore
	env "$@" FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_REPORT=$T/report \
		VZP11_MODULE=$FAULTY_P11 "$VZP11_BIN" rotate $op >"$T/out" 2>"$T/err" && fault_rc=0 || fault_rc=$?
	swept=$((swept + 1))
	ok=true
	[ "$fault_rc" -eq 0 ] || [ -s "$T/err" ] || { ok=false; echo "  no message on failure"; }
	s=$(serial_of $L)
	case " $OLD $NEW " in *" $s "*) ;; *) ok=false; echo "  '$L' names '$s'" ;; esac
	# whatever failed, rotate leaves LABEL as a URI finds it: one key, one certificate
	uri_single || ok=false
	cov_with
	[ "$rc" -eq 0 ] && grep -q "^Result: *Gevonden" "$T/cov.out" || { ok=false; echo "  COV with '$L' failed:"; sed 's/^/  | /' "$T/cov.err" | head -3; }
	# A run the fault did not stop is complete; one it stopped, the same
	# command run again completes (run twice, --rollback would go back).
	if [ "$fault_rc" -ne 0 ]; then
		run vz rotate $op
		[ "$rc" -eq 0 ] || { ok=false; echo "  completing: exit $rc"; sed 's/^/  | /' "$T/err" | head -3; }
	fi
	[ "$(serial_of $L)" = "$want" ] || { ok=false; echo "  completed, but '$L' is $(serial_of $L)"; }
	uri_single || ok=false
	objects | grep 'label:' | sort >"$T/labels"
	cmp -s "$T/labels" "$T/want-labels" || { ok=false; echo "  completed, but labels differ:"; diff "$T/want-labels" "$T/labels" | head; }
	$ok && survived=$((survived + 1)) || fail "$op: fault $what ($(sed -n 's/^injected //p' "$T/report"))"
}

sweep() { # sweep OP... : sets up its own start state in $T/pristine first
	op="$*"
	cp -a "$T/hsm/tokens" "$T/pristine"
	restore() { rm -rf "$T/hsm/tokens" && cp -a "$T/pristine" "$T/hsm/tokens"; }
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 run vz rotate $op
	must "clean run of rotate $op"
	want=$(serial_of $L)
	objects | grep 'label:' | sort >"$T/want-labels"
	k=$(sed -n 's/^calls //p' "$T/report")
	swept=0 survived=0
	for f in C_SetAttributeValue C_DestroyObject; do
		m=$(sed -n "s/^func $f //p" "$T/report")
		i=1
		while [ "$i" -le "${m:-0}" ]; do
			sweep_one "$f #$i" FAULTY_P11_FAIL_FUNC=$f FAULTY_P11_FAIL_NTH=$i
			i=$((i + 1))
		done
	done
	stride=$((${ROTATE_SWEEP_STRIDE:-10} * ${FAULT_SWEEP_STRIDE:-1}))
	n=1
	while [ "$n" -le "$k" ]; do
		sweep_one "at call $n" FAULTY_P11_FAIL_AT=$n
		n=$((n + stride))
	done
	echo "survived $survived of $swept injected faults ($k calls, every ${stride}th, and each label change and deletion): rotate $op"
	[ "$survived" -eq "$swept" ] && pass "every injected fault left one usable '$L', one key and one certificate by URI, and rotate $op completed"
	restore
	rm -rf "$T/pristine"
}

case_sweep() {
	setup
	rights sys-rsa2048 sys-renewed
	start_mock
	sweep "$PKI/sys-renewed.p12" --password-source env:VZT_P12
	run vz rotate "$PKI/sys-renewed.p12" --password-source env:VZT_P12
	must "rotation before the rollback sweep"
	sweep --rollback
	run vz rotate --rollback
	must "rollback before the finish sweep"
	sweep --finish
}

"case_$(echo "$CASE" | tr - _)"
finish
