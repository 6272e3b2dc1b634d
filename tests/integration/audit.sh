#!/bin/sh
# audit.sh CASE: the audit trail an admin reads after changing the token
# (import, import --replace, remove), taken from a stand-in for the syslog
# daemon. vzp11 runs in a private mount namespace whose /dev holds bind
# mounts of the device nodes it and SoftHSM use and, as /dev/log, the
# socket of tests/tools/syslog-sink; the real /dev is never changed.
. "$(dirname "$0")/lib.sh"

: "${SYSLOG_SINK:?}"
if ! command -v unshare >/dev/null || [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root and unshare (a private /dev/log in a mount namespace)"
	exit 77
fi
unshare -m --propagation private true 2>/dev/null ||
	{ echo "SKIP: unshare -m is not allowed here"; exit 77; }

DEV_NODES="null zero full random urandom tty"

# Run by sh -c inside the namespace: $1 is the private /dev ($T/dev). Its
# placeholder files get the real nodes bound onto them, then it replaces
# /dev (recursively, nodes included); then the command runs.
# shellcheck disable=SC2016
NS_SETUP='d=$1
shift
for n in '$DEV_NODES'; do
	[ -e "$d/$n" ] || continue
	mount --bind "/dev/$n" "$d/$n" || { echo "audit.sh: cannot bind /dev/$n" >&2; exit 96; }
done
mount --rbind "$d" /dev || { echo "audit.sh: cannot mount $d on /dev" >&2; exit 96; }
exec "$@"'

# private_dev: $T/dev, the /dev vzp11 sees (the sink's socket comes later).
private_dev() {
	mkdir "$T/dev"
	for n in $DEV_NODES; do
		if [ -c "/dev/$n" ]; then : >"$T/dev/$n"; fi
	done
	ln -s /proc/self/fd "$T/dev/fd"
	ln -s /proc/self/fd/0 "$T/dev/stdin"
	ln -s /proc/self/fd/1 "$T/dev/stdout"
	ln -s /proc/self/fd/2 "$T/dev/stderr"
}

# ns ARGS: vzp11 ARGS in the namespace, through run ($T/out, $T/err, $rc).
ns() {
	# shellcheck disable=SC2086
	run unshare -m --propagation private sh -c "$NS_SETUP" sh "$T/dev" \
		${VZP11_WRAPPER:-} "$VZP11_BIN" "$@"
}
ns_imp() { ns import "$@" --password-source env:VZT_P12; }

sink_pid=
# start_sink: the sink on $T/dev/log, writing $T/syslog, for at most 120 s.
start_sink() {
	"$SYSLOG_SINK" "$T/dev/log" "$T/syslog" 0 120 &
	sink_pid=$!
	i=0
	while ! [ -S "$T/dev/log" ]; do
		i=$((i + 1))
		[ "$i" -le 100 ] || { fail "the syslog sink did not start"; finish; }
		sleep 0.05
	done
}
# stop_sink: it writes what is queued and exits.
stop_sink() {
	kill -TERM "$sink_pid"
	wait "$sink_pid" || fail "the syslog sink failed"
	sink_pid=
}
trap '[ -z "$sink_pid" ] || kill -TERM "$sink_pid" 2>/dev/null || true' EXIT

# must ARGS: an ns run the case depends on.
must() {
	ns "$@"
	[ "$rc" -eq 0 ] || { fail "vzp11 $*"; cat "$T/err"; finish; }
}

# The token's serial as OpenSC sees it, not as vzp11 says.
token_serial() {
	pkcs11-tool --module "$SOFTHSM_MODULE" -L 2>/dev/null |
		awk -v l="$TOKEN_LABEL" '$1 == "token" && $2 == "label" {t = ($4 == l)}
			t && $1 == "serial" {print $4; exit}'
}

# check_records SPEC...: $T/syslog holds exactly one record per SPEC, in
# any order, and nothing else. A SPEC is KEY=VALUE pairs joined by commas:
# action, label, result (default ok), cert (a .crt file: subject, issuer,
# serial, SHA-256 fingerprint and id from openssl; none: null), arrived,
# previous (a .crt file), detail, old_label, new_label, error (a regular
# expression); a value
# "null" means JSON null, and a key not given must be null. Every record: <85> (authpriv.notice), ident vzp11 with
# the PID, the keys of the audit record (src/token/token.h) in their order, the token and the user.
check_records() {
	python3 - "$T/syslog" "$TOKEN_LABEL" "$(token_serial)" "$(id -u)" "$(id -un)" "$@" \
		>"$T/check" 2>&1 <<'PY' || true
import json, re, subprocess, sys
log, tok_label, tok_serial, uid, user = sys.argv[1:6]
specs = [dict(kv.split("=", 1) for kv in s.split(",")) for s in sys.argv[6:]]
KEYS = ["audit", "time", "action", "result", "label", "old_label", "new_label", "certificate",
        "id", "arrived", "previous", "token", "user", "detail", "error"]
problems = []

def openssl(crt, *args):
    return subprocess.run(["openssl", "x509", "-in", crt, "-noout", *args],
                          capture_output=True, text=True, check=True).stdout.strip()

def cert_of(crt, brief=False):
    if crt in (None, "null"):
        return None
    c = {"subject": openssl(crt, "-subject", "-nameopt", "RFC2253").split("=", 1)[1],
         "serial": openssl(crt, "-serial").split("=", 1)[1],
         "fingerprint_sha256": openssl(crt, "-fingerprint", "-sha256").split("=", 1)[1]}
    if not brief:
        c["issuer"] = openssl(crt, "-issuer", "-nameopt", "RFC2253").split("=", 1)[1]
    return c

def ski(crt):
    if crt in (None, "null"):
        return None
    return openssl(crt, "-ext", "subjectKeyIdentifier").splitlines()[-1].strip() \
        .replace(":", "").lower()

def value(v):
    return None if v in (None, "null") else v

records = []
for n, line in enumerate(open(log), 1):
    m = re.match(r"^<(\d+)>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d vzp11\[(\d+)\]: (.*)$", line)
    if not m:
        problems.append("line %d is not '<PRI>TIME vzp11[PID]: MESSAGE': %r" % (n, line))
        continue
    if re.match(r"^SoftHSM[.a-zA-Z]*\(\d+\): ", m.group(3)):
        continue  # the module's own logging (it shares the process's syslog)
    if m.group(1) != "85":
        problems.append("line %d: priority <%s>, not <85> (authpriv.notice)" % (n, m.group(1)))
    try:
        o = json.loads(m.group(3))
    except ValueError:
        problems.append("line %d: the message is not JSON: %r" % (n, m.group(3)))
        continue
    if list(o) != KEYS:
        problems.append("line %d: keys %s" % (n, list(o)))
        continue
    if o["audit"] != 1 or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", o["time"]):
        problems.append("line %d: audit %r, time %r" % (n, o["audit"], o["time"]))
    if o["token"] != {"label": tok_label, "serial": tok_serial,
                      "manufacturer": "SoftHSM project", "model": "SoftHSM v2"}:
        problems.append("line %d: token %s" % (n, o["token"]))
    if o["user"] != {"uid": int(uid), "name": user}:
        problems.append("line %d: user %s, not uid %s (%s)" % (n, o["user"], uid, user))
    if o["certificate"] is not None:
        na = o["certificate"].pop("not_after", "")
        nb = o["certificate"].pop("not_before", "")
        if not (re.match(r"^\d{4}-\d\d-\d\dT.*Z$", na) and re.match(r"^\d{4}-.*Z$", nb)):
            problems.append("line %d: validity %r to %r" % (n, nb, na))
    records.append((n, o))

for s in specs:
    want = {"action": s["action"], "result": s.get("result", "ok"),
            "label": value(s.get("label")), "old_label": value(s.get("old_label")),
            "new_label": value(s.get("new_label")),
            "certificate": cert_of(s.get("cert")), "id": ski(s.get("cert")),
            "arrived": value(s.get("arrived")), "previous": cert_of(s.get("previous"), True),
            "detail": value(s.get("detail"))}
    found = None
    for i, (n, o) in enumerate(records):
        if all(o[k] == v for k, v in want.items()) and (
                re.search(s["error"], o["error"] or "") if "error" in s else o["error"] is None):
            found = i
            break
    if found is None:
        problems.append("no record %s%s" % (want, ", error /%s/" % s["error"] if "error" in s else ""))
    else:
        records.pop(found)
for n, o in records:
    problems.append("line %d: a record no action explains: %s" % (n, o))
print("\n".join(problems) if problems else "records ok")
PY
	expect_in "$T/check" "^records ok$" "the $# audit records expected, right in every field, and no other"
	# Every secret of the run, and what vzp11 never logs.
	expect_not_in "$T/syslog" "$VZT_PIN|$VZT_SO_PIN|$VZT_P12" "no PIN or password in the records"
	expect_not_in "$T/syslog" "PRIVATE KEY|pin-value" "no key or PIN URI in the records"
}

CRT=$PKI/sys-rsa2048.crt
LABEL=vecozo-system
# The records of an import of sys-rsa2048.p12: the certificate and the two
# CA certificates the token did not have.
IMPORTED="action=import,label=$LABEL,cert=$CRT,arrived=created"
ISSUING_IN="action=import-ca,label=vzp11 Test Issuing CA G4,cert=$PKI/issuing.crt"
ROOT_IN="action=import-ca,label=vzp11 Test Root CA G4,cert=$PKI/root.crt"

# rotate: the renewal's import as LABEL.next, each label change (object,
# old and new label, whose certificate), and --finish's deletion.
case_rotate() {
	must import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	ns rotate "$PKI/sys-renewed.p12" --password-source env:VZT_P12
	expect_rc 0 "rotate"
	ns rotate --finish
	expect_rc 0 "rotate --finish"
	stop_sink
	new=$PKI/sys-renewed.crt
	step() { # step OBJECT FROM TO CERT
		echo "action=rotate,label=$LABEL,old_label=$2,new_label=$3,cert=$4,arrived=created,detail=$1"
	}
	check_records "$IMPORTED" "$ISSUING_IN" "$ROOT_IN" \
		"action=rotate-import,label=$LABEL.next,cert=$new,arrived=created" \
		"$(step certificate "$LABEL.next" "$LABEL" "$new")" \
		"$(step "private key" "$LABEL" "$LABEL.previous" "$CRT")" \
		"$(step certificate "$LABEL" "$LABEL.previous" "$CRT")" \
		"$(step "public key" "$LABEL" "$LABEL.previous" "$CRT")" \
		"$(step "public key" "$LABEL.next" "$LABEL" "$new")" \
		"$(step "private key" "$LABEL.next" "$LABEL" "$new")" \
		"action=rotate-finish,label=$LABEL.previous,cert=$CRT,arrived=created,detail=deleted"
}

case_import() {
	ns_imp "$PKI/sys-rsa2048.p12"
	expect_rc 0 "import"
	stop_sink
	check_records "$IMPORTED" "$ISSUING_IN" "$ROOT_IN"
}

case_import_unwrap() {
	ns_imp "$PKI/sys-ec256.p12" --label ec --unwrap
	expect_rc 0 "import --unwrap"
	stop_sink
	check_records "action=import,label=ec,cert=$PKI/sys-ec256.crt,arrived=unwrapped" \
		"$ISSUING_IN" "$ROOT_IN"
}

# A key another tool put on the token, adopted: the record names the
# certificate, how the key arrived as the token says (created: it came from
# outside) and that it was adopted.
case_import_use_token_key() {
	put_key "$PKI/sys-rsa2048.p12" by-hand 0102
	ns_imp "$PKI/sys-rsa2048.p12" --use-token-key
	expect_rc 0 "import --use-token-key"
	stop_sink
	check_records "$IMPORTED,detail=key adopted" "$ISSUING_IN" "$ROOT_IN"
}

case_replace() {
	must import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	ns_imp "$PKI/sys-renewed.p12" --replace
	expect_rc 0 "import --replace with a renewed certificate"
	stop_sink
	check_records "$IMPORTED" "$ISSUING_IN" "$ROOT_IN" \
		"action=replace,label=$LABEL,cert=$PKI/sys-renewed.crt,arrived=created,previous=$CRT"
}

case_replace_same_key() {
	must import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	ns_imp "$PKI/sys-samekey.p12" --replace
	expect_rc 0 "import --replace with a new certificate for the same key"
	stop_sink
	check_records "$IMPORTED" "$ISSUING_IN" "$ROOT_IN" \
		"action=replace,label=$LABEL,cert=$PKI/sys-samekey.crt,arrived=created,previous=$CRT,detail=key kept"
}

case_remove() {
	must import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	ns remove "$LABEL" --yes
	expect_rc 0 "remove"
	stop_sink
	check_records "$IMPORTED" "$ISSUING_IN" "$ROOT_IN" \
		"action=remove,label=$LABEL,cert=$CRT,arrived=created" \
		"action=remove-ca,label=vzp11 Test Issuing CA G4,cert=$PKI/issuing.crt,detail=no longer used" \
		"action=remove-ca,label=vzp11 Test Root CA G4,cert=$PKI/root.crt,detail=no longer used"
}

# An import the token refuses half-way is rolled back, and the attempt is
# on record with the reason.
case_import_rolled_back() {
	: "${FAULTY_P11:?}"
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_FUNC=C_CreateObject \
		FAULTY_P11_RV=CKR_DEVICE_MEMORY VZP11_MODULE=$FAULTY_P11 ns_imp "$PKI/sys-rsa2048.p12"
	expect_rc 1 "import on a full token"
	stop_sink
	check_records "action=import,label=$LABEL,cert=$CRT,result=failed,error=CKR_DEVICE_MEMORY.*the token is unchanged"
}

# A remove the token refuses: nothing goes, and each object that was to go
# is on record as a failed attempt.
case_remove_rolled_back() {
	: "${FAULTY_P11:?}"
	must import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	FAULTY_P11_MODULE=$SOFTHSM_MODULE FAULTY_P11_FAIL_FUNC=C_DestroyObject \
		FAULTY_P11_RV=CKR_DEVICE_ERROR VZP11_MODULE=$FAULTY_P11 ns remove "$LABEL" --yes
	expect_rc 1 "remove on a token that refuses it"
	stop_sink
	err="C_DestroyObject failed: CKR_DEVICE_ERROR.*nothing was removed"
	check_records "$IMPORTED" "$ISSUING_IN" "$ROOT_IN" \
		"action=remove,label=$LABEL,cert=$CRT,arrived=created,result=failed,error=$err" \
		"action=remove-ca,label=vzp11 Test Issuing CA G4,cert=$PKI/issuing.crt,detail=no longer used,result=failed,error=$err" \
		"action=remove-ca,label=vzp11 Test Root CA G4,cert=$PKI/root.crt,detail=no longer used,result=failed,error=$err"
}

# No syslog daemon (no /dev/log): the change is made and reported as usual.
case_no_syslog() {
	stop_sink
	ns --json import "$PKI/sys-rsa2048.p12" --password-source env:VZT_P12
	expect_rc 0 "import without a syslog daemon"
	expect_in "$T/out" '"status":"imported"' "import --json reports the import"
	expect_not_in "$T/err" "." "no message about the missing syslog"
	ns remove "$LABEL" --yes
	expect_rc 0 "remove without a syslog daemon"
}

new_token "audit-$1"
private_dev
start_sink
"case_$(echo "$1" | tr - _)"
finish
