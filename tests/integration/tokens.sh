#!/bin/sh
# tokens.sh CASE: vzp11 on the other PKCS#11 implementations Debian ships,
# each started here and nowhere else: import (or --use-token-key on the
# TPM), list, show, check, selftest and a COV check through the mock with
# the token's key, RSA and EC where the token signs them, one refusal
# before anything is written and one after (tests/faulty-p11 in front of the
# real module fails a later write), each leaving the token as it was
# (pkcs11-tool, object by object).
#   opencryptoki   openCryptoki's soft token behind its own pkcsslotd
#   tpm            tpm2-pkcs11 on swtpm, tpm2-abrmd on a private D-Bus
#   nss            NSS softoken in a database of the test's own (--module-args,
#                  and p11-kit's x-init-reserved for the registered name)
#   p11kit-server  SoftHSM behind `p11-kit server` (a remote HSM on a socket)
# Each case runs in private namespaces (PID, mount, IPC, network: only
# 127.0.0.1): nothing it starts outlives it, nothing the machine registered
# with p11-kit is loaded, and no system state of a token is touched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"
CASE=$1

if [ -z "${VZT_TOKENS_NS:-}" ]; then
	if ! command -v unshare >/dev/null || [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root and unshare (private namespaces for the token's daemons)"
		exit 77
	fi
	unshare --pid --fork --mount --ipc --net true 2>/dev/null ||
		{ echo "SKIP: unshare of PID, mount, IPC and network namespaces is not allowed here"; exit 77; }
	# --kill-child: a test stopped by its timeout takes the namespace along.
	VZT_TOKENS_NS=1 exec unshare --pid --fork --kill-child --mount-proc --mount --ipc --net \
		--propagation private sh "$0" "$@"
fi
ip link set lo up

# Under the sanitizers (scripts/test's second build): openCryptoki,
# tpm2-pkcs11 and NSS softoken leave memory behind at exit that is theirs,
# not vzp11's (LeakSanitizer stops every run there); AddressSanitizer and
# UBSan still watch every access. vzp11's own leaks are the rest of the
# suite's to find, with and without the sanitizers.
SANITIZED=false
case ${VZT_SANITIZE:-none} in
none | '') ;;
*)
	SANITIZED=true
	export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0"
	;;
esac

T=$TESTWORK/tokens-$CASE
rm -rf "$T"
mkdir -p "$T"
umask 077

# The daemons this case started, stopped in reverse order at the end (the
# PID namespace ends the rest).
PIDS=""
cleanup() {
	stop_mock
	for p in $PIDS; do
		kill "$p" 2>/dev/null || true
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null || true
	done
	PIDS=""
}
trap cleanup EXIT
started() { PIDS="$1 $PIDS"; }

# wait_for WHAT CMD...: CMD succeeds within 10 s, or the test fails.
wait_for() {
	what=$1
	shift
	i=0
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || { fail "$what did not come up within 10 s"; finish; }
		sleep 0.1
	done
}

# A private p11-kit registry (no system module is loaded): only what the
# case registers.
mkdir -p "$T/p11-kit/modules" "$T/p11-kit/etc"
echo "user-config: none" >"$T/p11-kit/etc/pkcs11.conf"
mount --bind "$T/p11-kit/modules" /usr/share/p11-kit/modules
[ -d /etc/pkcs11 ] && mount --bind "$T/p11-kit/etc" /etc/pkcs11

# Both test certificates may do COV at the mock.
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
{
	echo "$(fingerprint "$PKI/sys-rsa2048.crt") cov billing"
	echo "$(fingerprint "$PKI/sys-ec256.crt") cov billing"
} >"$T/rights"

# p11 ARGS: pkcs11-tool on this case's token (lib.sh's objects, snapshot and
# expect_unchanged use it); P11_MODULE, P11_TOKEN and P11_PIN_VAR (the name of
# the variable holding the PIN) are set by the case. The PIN reaches
# pkcs11-tool in its environment (VZT_P11_PIN), never on its command line.
p11() {
	VZT_P11_PIN=$(printenv "$P11_PIN_VAR") pkcs11-tool --module "$P11_MODULE" \
		--token-label "$P11_TOKEN" --login --pin env:VZT_P11_PIN "$@"
}

# no_secrets_in PID WHAT: the process has none of the test's VZT_*
# variables (PINs, passwords) in its environment (lib.sh's no_secrets).
no_secrets_in() {
	read_proc "$1"
	expect_in "$T/environ" "^PATH=" "$2's environment was read"
	expect_not_in "$T/environ" "^VZT_" "$2 has none of the test's secrets in its environment"
}

# exercise LABEL KIND: what a user does with an imported certificate: list,
# show, check, selftest and a COV check against the mock.
exercise() {
	label=$1 kind=$2
	run vz list
	expect_rc 0 "list"
	expect_in "$T/out" "^$label +CN=Demo Praktijk .* $kind\$" "list shows '$label' with its $kind key"
	run vz show "$label"
	expect_rc 0 "show $label"
	expect_in "$T/out" "^key on token: sensitive=yes extractable=no value-readable=no" \
		"show: the key is sensitive and not extractable"
	cp "$T/out" "$T/show-$label"
	run vz check --label "$label"
	expect_rc 0 "check --label $label"
	expect_in "$T/out" "^VZP11 OK - " "check: OK"
	expect_in "$T/out" "chain complete on the token" "check: the chain is on the token"
	run vz selftest --label "$label" --endpoint "$ENDPOINT" --cacert "$PKI/root.crt"
	expect_rc 0 "selftest --label $label against the mock"
	expect_in "$T/out" "^ok +cov handshake .*Zoekresultaat Gevonden" \
		"selftest: a COV check signed by the token's key"
	cp "$T/out" "$T/selftest-$label"
	run vz cov --label "$label" --endpoint "$ENDPOINT" --cacert "$PKI/root.crt" \
		--bsn 999979668 --birthdate 1962-03-15
	expect_rc 0 "cov --label $label"
	expect_in "$T/out" "^Result: +Gevonden" "cov: the mock answers Gevonden"
	cp "$T/err" "$T/cov-err-$label"
}

# refused_midway WHAT MODULE ENV... -- IMPORT-ARGS...: the import through
# faulty-p11 in front of MODULE (the token's own), with the faults in ENV,
# fails after it wrote to the token: the message names the refused call,
# and every object is as in the snapshot "before" (take it first).
refused_midway() {
	what=$1 real=$2
	shift 2
	while [ "$1" != -- ]; do
		export "${1?}"
		shift
	done
	shift
	FAULTY_P11_MODULE=$real FAULTY_P11_REPORT=$T/report VZP11_MODULE=$FAULTY_P11 imp "$@"
	unset FAULTY_P11_CREATE_FAIL_ATTR FAULTY_P11_FAIL_FUNC FAULTY_P11_FAIL_NTH FAULTY_P11_RV \
		VZP11_MODULE_ARGS
	expect_rc 1 "$what"
	expect_in "$T/report" "^injected " "$what: the fault was injected"
	writes=$(sed -n 's/^func \(C_CreateObject\|C_SetAttributeValue\|C_DestroyObject\) \([0-9]*\)$/\2/p' \
		"$T/report" | awk '{n += $1} END {print n + 0}')
	[ "$writes" -ge 3 ] && pass "$what: the refusal came after writes ($writes write calls)" ||
		fail "$what: only $writes write calls before the refusal"
	expect_in "$T/err" "the token is unchanged" "$what: says the token is unchanged"
	expect_unchanged before "$what"
}

# import_ok FILE LABEL: vzp11 import of a test .p12.
import_ok() {
	imp "$1" --label "$2"
	expect_rc 0 "import $(basename "$1") as '$2'"
	expect_in "$T/out" "^Imported '$2' on token " "import says it is on the token"
	cp "$T/out" "$T/import-$2"
}

# ---- openCryptoki: its soft token, state under $T --------------------------
case_opencryptoki() {
	OCK=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
	[ -e "$OCK" ] && command -v pkcsslotd >/dev/null ||
		{ echo "SKIP: openCryptoki is not installed (scripts/install-deps)"; exit 77; }
	getent group pkcs11 >/dev/null || { echo "SKIP: no pkcs11 group (openCryptoki's package makes it)"; exit 77; }
	# Its paths are built in: its configuration, token directory and lock
	# directory are the test's own here (bind mounts, a private /run); its
	# shared memory is this IPC namespace's.
	mkdir -p "$T/ock/etc" "$T/ock/lib/swtok/TOK_OBJ"
	printf 'version opencryptoki-3.1\nslot 3\n{\nstdll = libpkcs11_sw.so\n}\n' \
		>"$T/ock/etc/opencryptoki.conf"
	chgrp -R pkcs11 "$T/ock"
	chmod -R g+rwX "$T/ock"
	mount --bind "$T/ock/etc" /etc/opencryptoki
	mount --bind "$T/ock/lib" /var/lib/opencryptoki
	mount -t tmpfs -o mode=0755 tmpfs /run
	mkdir -p /run/lock/opencryptoki/swtok
	chgrp -R pkcs11 /run/lock/opencryptoki
	chmod -R 0770 /run/lock/opencryptoki
	# shellcheck disable=SC2046
	env $(no_secrets) pkcsslotd || { fail "pkcsslotd did not start"; finish; }
	started "$(cat /run/pkcsslotd.pid)"
	# A fresh soft token's SO PIN is openCryptoki's documented default; its
	# PINs are 4 to 8 characters.
	export VZT_OCK_SO_DEFAULT=87654321 VZT_OCK_SO=so-47110 VZT_OCK_PIN=pin47110
	P11_MODULE=$OCK P11_TOKEN=vzp11-ock P11_PIN_VAR=VZT_OCK_PIN
	pkcs11-tool --module "$OCK" --slot 3 --init-token --label vzp11-ock \
		--so-pin env:VZT_OCK_SO_DEFAULT >"$T/init.log" 2>&1 &&
		pkcs11-tool --module "$OCK" --slot 3 --login --login-type so \
			--so-pin env:VZT_OCK_SO_DEFAULT --change-pin --new-pin env:VZT_OCK_SO \
			>>"$T/init.log" 2>&1 &&
		pkcs11-tool --module "$OCK" --slot 3 --login --login-type so --so-pin env:VZT_OCK_SO \
			--init-pin --new-pin env:VZT_OCK_PIN >>"$T/init.log" 2>&1 ||
		{ fail "initializing the openCryptoki token"; cat "$T/init.log"; finish; }
	export VZP11_MODULE=$OCK VZP11_TOKEN=vzp11-ock VZP11_PIN_SOURCE=env:VZT_OCK_PIN

	import_ok "$PKI/sys-rsa2048.p12" vecozo-system
	expect_in "$T/out" "^not kept: +CKA_CERTIFICATE_CATEGORY " \
		"import says the token keeps no certificate category"
	expect_in "$T/out" "^not kept: +CKA_ALLOWED_MECHANISMS " \
		"import says the token keeps no mechanism list"
	start_mock
	trap cleanup EXIT
	exercise vecozo-system rsa-2048
	expect_in "$T/selftest-vecozo-system" "^ok +pss +token 'vzp11-ock' signs RSA-PSS, but its RSA PKCS#1 v1.5 signature does not verify" \
		"selftest: RSA-PSS only (pkcs11-provider's PKCS#1 v1.5 signature does not verify here)"
	expect_in "$T/cov-err-vecozo-system" "RSA-PSS signatures only" "cov says so once"
	[ "$(grep -c "RSA-PSS signatures only" "$T/cov-err-vecozo-system")" -eq 1 ] &&
		pass "... exactly once" || fail "cov said it $(grep -c "RSA-PSS signatures only" "$T/cov-err-vecozo-system") times"
	expect_in "$T/selftest-vecozo-system" "^ok +key attributes .*imported: the key was outside the token once" \
		"selftest: the key's origin as show says it (created), not 'generated'"
	expect_not_in "$T/selftest-vecozo-system" "PIN" "selftest blames no PIN"

	# No ECDSA on this token: an EC certificate is refused, nothing written.
	snapshot before
	imp "$PKI/sys-ec256.p12" --label ec
	expect_rc 1 "import of an EC certificate"
	expect_in "$T/err" "cannot sign with an EC key: it offers no ECDSA mechanism" \
		"says what the token cannot do"
	expect_in "$T/err" "RSA key" "says what to do instead"
	expect_not_in "$T/err" "run the command again" "does not say to run it again"
	expect_unchanged before "refused EC import"
	# The token full when the certificate comes, after the key pair was
	# written: both destroyed again.
	refused_midway "a refusal after the key pair was written" "$OCK" \
		FAULTY_P11_CREATE_FAIL_ATTR=CKA_ISSUER FAULTY_P11_RV=CKR_DEVICE_MEMORY -- \
		"$PKI/sys-renewed.p12" --label renewed
	expect_in "$T/err" "C_CreateObject \(certificate\) failed: CKR_DEVICE_MEMORY" "names the refused call"
}

# ---- TPM 2.0: tpm2-pkcs11 on swtpm, tpm2-abrmd on a private D-Bus ---------
case_tpm() {
	TPM=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so
	for c in swtpm tpm2-abrmd dbus-daemon tpm2_ptool; do
		command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (scripts/install-deps)"; exit 77; }
	done
	[ -e "$TPM" ] || { echo "SKIP: tpm2-pkcs11 is not installed"; exit 77; }
	mkdir -p "$T/tpm/state" "$T/tpm/store"
	# shellcheck disable=SC2046
	env $(no_secrets) swtpm socket --tpm2 --tpmstate "dir=$T/tpm/state" --flags not-need-init,startup-clear \
		--server type=tcp,port=2321,bindaddr=127.0.0.1 \
		--ctrl type=tcp,port=2322,bindaddr=127.0.0.1 --log "file=$T/swtpm.log" &
	started $!
	# shellcheck disable=SC2046
	env $(no_secrets) dbus-daemon --session --nofork --nopidfile --address="unix:path=$T/bus" \
		>"$T/dbus.log" 2>&1 &
	started $!
	export DBUS_SESSION_BUS_ADDRESS=unix:path=$T/bus
	wait_for "the private D-Bus" test -S "$T/bus"
	wait_for "swtpm" sh -c "ss -Hltn 'sport = :2321' | grep -q LISTEN"
	# shellcheck disable=SC2046
	env $(no_secrets) tpm2-abrmd --session --allow-root --tcti=swtpm:host=127.0.0.1,port=2321 >"$T/abrmd.log" 2>&1 &
	started $!
	export TPM2TOOLS_TCTI=tabrmd:bus_type=session TPM2_PKCS11_TCTI=tabrmd:bus_type=session
	export TPM2_PKCS11_STORE=$T/tpm/store TPM2_PKCS11_LOG_LEVEL=0
	wait_for "tpm2-abrmd" tpm2_getcap properties-fixed
	# tpm2_ptool takes PINs only as arguments: allowed for this throwaway
	# token alone (a real one follows vzp11-import(1)'s recipe).
	export VZT_TPM_PIN=4711-tpm-test
	tpm2_ptool init --path="$T/tpm/store" >"$T/ptool.log" 2>&1 &&
		tpm2_ptool addtoken --pid=1 --label=vzp11-tpm --sopin=so-4711-tpm \
			--userpin="$VZT_TPM_PIN" --path="$T/tpm/store" >>"$T/ptool.log" 2>&1 ||
		{ fail "making the TPM token"; cat "$T/ptool.log"; finish; }
	P11_MODULE=$TPM P11_TOKEN=vzp11-tpm P11_PIN_VAR=VZT_TPM_PIN
	export VZP11_MODULE=$TPM VZP11_TOKEN=vzp11-tpm VZP11_PIN_SOURCE=env:VZT_TPM_PIN

	# The token takes no private key over PKCS#11: a plain import says so,
	# points to the recipe, and leaves the token as it was.
	tpm_key "$PKI/sys-renewed.p12" rsa seeded
	snapshot before
	imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "a plain import onto the TPM"
	expect_in "$T/err" "cannot take an existing private key over PKCS#11" "says what the token cannot do"
	expect_in "$T/err" "import --use-token-key' \\(see vzp11-import\\(1\\)\\)" "points to the recipe"
	expect_not_in "$T/err" "session RSA key|run the command again" "names no internal step, no retry"
	expect_unchanged before "refused plain import"
	# --use-token-key with no matching key on the token: refused, unchanged
	imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 1 "--use-token-key before the key is on the token"
	expect_in "$T/err" "there is none to adopt" "says there is no key to adopt"
	expect_in "$T/err" "tpm2_ptool import" "says how to put it there"
	expect_unchanged before "nothing to adopt"

	# The recipe: the key from the .pfx onto the TPM with tpm2_ptool, then
	# --use-token-key for the certificate, its public key and the chain.
	tpm_key "$PKI/sys-rsa2048.p12" rsa imported-by-ptool
	# Refused at the certificate, after the key's label, CKA_ID, uses and
	# mechanism list were changed: all written back.
	snapshot before
	refused_midway "--use-token-key refused after the key was changed" "$TPM" \
		FAULTY_P11_CREATE_FAIL_ATTR=CKA_ISSUER FAULTY_P11_RV=CKR_DEVICE_MEMORY -- \
		"$PKI/sys-rsa2048.p12" --use-token-key
	expect_in "$T/report" "^func C_SetAttributeValue" "the key was changed before the refusal"
	imp "$PKI/sys-rsa2048.p12" --use-token-key --json
	expect_rc 0 "import --use-token-key (RSA)"
	expect_in "$T/out" '"key_import":"adopted"' "the key on the token was adopted"
	expect_in "$T/out" '"label":"vecozo-system"' "under the label asked for"
	expect_in "$T/out" '"sensitive":true,"extractable":false' "now sensitive and not extractable"
	imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 0 "the same again"
	expect_in "$T/out" "already on the token" "changes nothing"
	p11 --list-objects --type privkey >"$T/tpm-keys" 2>&1
	expect_not_in "$T/tpm-keys" "label: +imported-by-ptool" "no key under tpm2_ptool's label is left"
	# mkpki writes the subject key identifier as the hash of the key: what
	# vzp11 takes for CKA_ID
	ski=$(openssl x509 -in "$PKI/sys-rsa2048.crt" -noout -ext subjectKeyIdentifier |
		sed -n 's/^ *\([0-9A-F:]*\)$/\1/p' | tr -d ':' | tr 'A-F' 'a-f')
	run vz --json show vecozo-system
	expect_in "$T/out" "\"id\":\"$ski\"" "the key's CKA_ID is now the certificate's key identifier"
	tpm_key "$PKI/sys-ec256.p12" ecc ec-by-ptool
	imp "$PKI/sys-ec256.p12" --use-token-key --label ec
	expect_rc 0 "import --use-token-key (EC)"
	expect_in "$T/out" "^The key already on the token was adopted" "says the key was adopted"
	start_mock
	trap cleanup EXIT
	exercise vecozo-system rsa-2048
	exercise ec ec-256
	# tpm2_ptool's RSA key comes with a mechanism list beyond signing (show
	# said mechanisms=any before vzp11 wrote its own): the token took it
	expect_in "$T/show-vecozo-system" "^key use: +sign=yes decrypt=no unwrap=no derive=no sign-recover=no mechanisms=signature-only\$" \
		"the adopted RSA key may only sign, with signature mechanisms only (CKA_ALLOWED_MECHANISMS written)"
	expect_not_in "$T/show-vecozo-system" "^not kept:" "the token kept everything vzp11 wrote"
	# the token's fields (model, manufacturer, ...) without their NUL
	# padding; id= is the key identifier's bytes, where %00 is one of them
	grep -E '^(cert|key) URI:' "$T/show-vecozo-system" | sed 's/;id=[^;]*//' >"$T/uris"
	[ -s "$T/uris" ] || fail "show printed no URIs"
	expect_not_in "$T/uris" "%00" "no NUL padding in the URIs' token fields"
	# The token named by the URI vzp11 printed (its model is NUL-padded).
	uri=$(sed -n 's/^cert URI: *\(pkcs11:.*;token=[^;]*\);.*/\1/p' "$T/show-vecozo-system")
	expect_in "$T/show-vecozo-system" "^cert URI: +pkcs11:model=SW%20%20%20TPM;" "the URI names the model"
	VZP11_TOKEN=$uri run vz list
	expect_rc 0 "list with --token $uri"
	expect_in "$T/out" "^vecozo-system " "the URI finds the token"
}

# tpm_key FILE.p12 rsa|ecc LABEL: the .pfx's key onto the TPM as the recipe
# does it: openssl writes it to a 0600 file, tpm2_ptool imports it, the
# file goes.
tpm_key() {
	openssl pkcs12 -in "$1" -nocerts -noenc -passin env:VZT_P12 -out "$T/key.pem" 2>"$T/openssl.log" &&
		tpm2_ptool import --label=vzp11-tpm --key-label="$3" --userpin="$VZT_TPM_PIN" \
			--privkey="$T/key.pem" --algorithm="$2" --path="$T/tpm/store" >"$T/ptool.log" 2>&1 ||
		{ fail "tpm2_ptool import of $(basename "$1")"; cat "$T/openssl.log" "$T/ptool.log"; finish; }
	shred -u "$T/key.pem" 2>/dev/null || rm -f "$T/key.pem"
}

# ---- NSS softoken: a database of the test's own ----------------------------
case_nss() {
	SOFTOKN=/usr/lib/x86_64-linux-gnu/libsoftokn3.so
	[ -e "$SOFTOKN" ] && command -v certutil >/dev/null ||
		{ echo "SKIP: NSS softoken or certutil is not installed (scripts/install-deps)"; exit 77; }
	export VZT_NSS_PIN=nss-4711-test
	mkdir -p "$T/nss"
	# certutil reads the new database's password from its -f file: a pipe
	# from the shell's own printf, so the PIN is in no file and no argv.
	printf '%s\n' "$VZT_NSS_PIN" | certutil -N -d "sql:$T/nss" -f /dev/stdin >"$T/certutil.log" 2>&1 ||
		{ fail "certutil -N"; cat "$T/certutil.log"; finish; }
	ARGS="configdir='sql:$T/nss' certPrefix='' keyPrefix='' secmod='secmod.db'"
	# Registered under a name of its own, with the same arguments as
	# x-init-reserved: pkcs11-tool reaches it through p11-kit's proxy.
	printf 'module: %s\nx-init-reserved: %s\n' "$SOFTOKN" "$ARGS" \
		>"$T/p11-kit/modules/nss-test.module"
	P11_MODULE=/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so P11_TOKEN="NSS Certificate DB" P11_PIN_VAR=VZT_NSS_PIN
	export VZP11_TOKEN="NSS Certificate DB" VZP11_PIN_SOURCE=env:VZT_NSS_PIN

	# Without its arguments NSS does not start: the message says what to give.
	VZP11_MODULE=$SOFTOKN run vz list
	expect_rc 1 "NSS softoken without --module-args"
	expect_in "$T/err" "C_Initialize failed: CKR_ARGUMENTS_BAD" "names the call and the code"
	expect_in "$T/err" "give them with --module-args" "says what to give"
	expect_not_in "$T/err" "run the command again" "does not say to run it again"

	# The module file with --module-args ...
	export VZP11_MODULE=$SOFTOKN VZP11_MODULE_ARGS="$ARGS"
	import_ok "$PKI/sys-rsa2048.p12" vecozo-system
	expect_in "$T/out" "^not kept: +CKA_ALLOWED_MECHANISMS " \
		"import says NSS keeps no mechanism list (it answered CKR_GENERAL_ERROR)"
	import_ok "$PKI/sys-ec256.p12" ec
	start_mock
	trap cleanup EXIT
	exercise vecozo-system rsa-2048
	# ... and the p11-kit name, whose x-init-reserved goes to the module and
	# to pkcs11-provider.
	unset VZP11_MODULE_ARGS
	export VZP11_MODULE=nss-test
	exercise ec ec-256
	# ... and the configuration file's module-args, as an admin writes it.
	printf 'module = %s\nmodule-args = %s\n' "$SOFTOKN" "$ARGS" >"$T/vzp11.conf"
	VZP11_MODULE= run vz --config "$T/vzp11.conf" list
	expect_rc 0 "list with module and module-args from a configuration file"
	expect_in "$T/out" "^ec +CN=Demo Praktijk" "the NSS database's certificates are listed"
	VZP11_MODULE= run vz --config "$T/vzp11.conf" config
	expect_in "$T/out" "^module-args +configdir='sql:.* # $T/vzp11.conf:2\$" \
		"vzp11 config shows module-args and where it came from"

	if grep -rlF -- "$VZT_NSS_PIN" "$T" >"$T/pin-files"; then
		fail "the NSS PIN is in files: $(tr '\n' ' ' <"$T/pin-files")"
	else pass "the NSS PIN is in no file of the test"; fi
	# Another certificate under a label in use: refused, nothing changed.
	snapshot before
	imp "$PKI/sys-renewed.p12" --label ec
	expect_rc 1 "another certificate under the label 'ec'"
	expect_in "$T/err" "already holds another certificate" "says the label is taken"
	expect_in "$T/err" "--replace" "says what to do"
	expect_unchanged before "refused import"
	# The renewal (same subject: NSS takes no second certificate under a
	# nickname with another subject) refused after the new objects were
	# written and the old certificate destroyed: the new ones destroyed,
	# the old one made again.
	refused_midway "--replace refused after the old certificate was destroyed" "$SOFTOKN" \
		VZP11_MODULE_ARGS="$ARGS" FAULTY_P11_FAIL_FUNC=C_DestroyObject FAULTY_P11_FAIL_NTH=2 \
		FAULTY_P11_RV=CKR_DEVICE_ERROR -- \
		"$PKI/sys-renewed.p12" --replace
	expect_in "$T/err" "C_DestroyObject failed: CKR_DEVICE_ERROR" "names the refused call"
}

# ---- SoftHSM behind p11-kit server: a remote HSM on a socket ---------------
case_p11kit_server() {
	CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
	[ -e "$CLIENT" ] || { echo "SKIP: p11-kit's client module is not installed"; exit 77; }
	if $SANITIZED; then
		echo "SKIP: p11-kit-client 0.24 reads past a buffer when pkcs11-provider first calls it"
		echo "(AddressSanitizer stops vzp11 there); the normal build runs this test"
		exit 77
	fi
	new_token "tokens-$CASE/hsm-side" vzp11-remote
	T=$TESTWORK/tokens-$CASE
	# shellcheck disable=SC2046
	env $(no_secrets) p11-kit server -f -n "$T/p11-kit.sock" --provider "$SOFTHSM_MODULE" "pkcs11:token=vzp11-remote" \
		>"$T/server.log" 2>&1 &
	server=$!
	started $server
	wait_for "p11-kit server" test -S "$T/p11-kit.sock"
	no_secrets_in "$server" "p11-kit server"
	export P11_KIT_SERVER_ADDRESS=unix:path=$T/p11-kit.sock
	# pkcs11-tool looks at the token itself, on the HSM's side (lib.sh).
	P11_MODULE=$SOFTHSM_MODULE P11_TOKEN=vzp11-remote P11_PIN_VAR=VZT_PIN
	export VZP11_MODULE=$CLIENT VZP11_TOKEN=vzp11-remote

	import_ok "$PKI/sys-rsa2048.p12" vecozo-system
	import_ok "$PKI/sys-ec256.p12" ec
	start_mock
	trap cleanup EXIT
	no_secrets_in "$MOCK_PID" "the mock"
	exercise vecozo-system rsa-2048
	# The remote end lists RSA-PSS and refuses CKM_SHA256_RSA_PKCS_PSS:
	# TLS 1.2 with PKCS#1 v1.5 by itself, said once, no PIN blamed, no
	# re-connect.
	expect_in "$T/selftest-vecozo-system" "^ok +pss +token 'vzp11-remote' offers RSA-PSS but did not sign with it" \
		"selftest: RSA-PSS tried and refused, PKCS#1 v1.5 instead"
	expect_in "$T/selftest-vecozo-system" "^skip +sign rsa_pss_rsae_sha256 " "selftest: no PSS signature counted"
	expect_not_in "$T/selftest-vecozo-system" "PIN|FAIL" "selftest: no failure, no PIN blamed"
	[ "$(grep -c "did not sign with it" "$T/cov-err-vecozo-system")" -eq 1 ] &&
		pass "cov says the fallback once" || { fail "cov's messages:"; cat "$T/cov-err-vecozo-system"; }
	expect_not_in "$T/cov-err-vecozo-system" "re-connect|PIN" "cov: no re-connect, no PIN blamed"
	exercise ec ec-256

	# A personal certificate: refused, nothing changed on the HSM.
	snapshot before
	imp "$PKI/personal.p12" --label person
	expect_rc 1 "a personal certificate"
	expect_in "$T/err" "personal certificate" "says it is personal"
	expect_unchanged before "refused personal certificate"
	# The remote HSM full when the certificate comes, after the key pair
	# was written over the socket: both destroyed again.
	refused_midway "a refusal after the key pair was written" "$CLIENT" \
		FAULTY_P11_CREATE_FAIL_ATTR=CKA_ISSUER FAULTY_P11_RV=CKR_DEVICE_MEMORY -- \
		"$PKI/sys-renewed.p12" --label renewed
}

"case_$(echo "$CASE" | tr - _)"
cleanup
finish
