#!/bin/sh
# config.sh CASE: the configuration files as an admin uses them: settings
# from /etc (the build's sysconfdir), the user's file and --config, below
# the environment and the command line; files others could change, unknown
# keys and PINs refused, naming file and line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mock.sh"
CASE=$1
export XDG_CONFIG_HOME=$TESTWORK/$CASE-xdg # never the runner's own file

# conf FILE: writes stdin to FILE, mode 0600.
conf() {
	mkdir -p "$(dirname "$1")"
	cat >"$1"
	chmod 600 "$1"
}

# setting KEY FILE: "VALUE|FROM" of KEY in `vzp11 --json config` output FILE.
setting() {
	python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))
s = [x for x in o["settings"] if x["key"] == sys.argv[2]][0]
print("%s|%s" % (s["value"], s["from"]))' "$2" "$1"
}

expect_setting() { # expect_setting KEY VALUE FROM-REGEX
	got=$(setting "$1" "$T/out")
	case $got in
	"$2|"*) echo "${got#*|}" | grep -Eq -- "$3" && pass "$1 = $2 from ${got#*|}" ||
		fail "$1 comes from '${got#*|}', expected /$3/" ;;
	*) fail "$1 is '${got%%|*}', expected '$2'" ;;
	esac
}

# The system file's place, as this build has it; in a private mount
# namespace a tmpfs goes over its parent directory (never over /etc), so
# the real one is never touched.
system_file() {
	vz --json config >"$T/sys.json"
	SYSFILE=$(python3 -c 'import json, sys
print([f["file"] for f in json.load(open(sys.argv[1]))["files"] if f["kind"] == "system"][0])' "$T/sys.json")
	SYSPARENT=$(dirname "$(dirname "$SYSFILE")")
	case $SYSPARENT in
	/etc | /) echo "SKIP: the system file is under $SYSPARENT here; not replaced"; exit 77 ;;
	esac
	[ "$(id -u)" -eq 0 ] && unshare -m --propagation private true 2>/dev/null ||
		{ echo "SKIP: needs root and unshare -m"; exit 77; }
}

# ns CONTENT-FILE ARGS: vzp11 ARGS with CONTENT-FILE as the system file.
ns() {
	src=$1
	shift
	# shellcheck disable=SC2016
	run unshare -m --propagation private sh -c '
		mount -t tmpfs -o mode=755 vzp11-test "$1" || exit 96
		mkdir -p "$(dirname "$2")" && cp "$3" "$2" && chmod 644 "$2" || exit 96
		shift 3
		exec "$@"' sh "$SYSPARENT" "$SYSFILE" "$src" ${VZP11_WRAPPER:-} "$VZP11_BIN" "$@"
}

case_precedence() {
	system_file
	conf "$T/system.conf" <<EOF
module = /nonexistent/system.so
token = system-token
label = system-label
[cov]
agb = 11111111
jobs = 2
EOF
	conf "$XDG_CONFIG_HOME/vzp11/config" <<EOF
token = user-token
label = user-label
[cov]
jobs = 3
EOF
	conf "$T/explicit.conf" <<EOF
# comments and blank lines are fine

label = explicit-label
EOF
	VZP11_TOKEN=env-token ns "$T/system.conf" --json --module /cli/module.so config --config "$T/explicit.conf"
	expect_rc 0 "vzp11 config"
	expect_setting module /cli/module.so "^command line$"
	expect_setting token env-token "^environment VZP11_TOKEN$"
	expect_setting label explicit-label "explicit.conf:3$"
	expect_setting cov.jobs 3 "xdg/vzp11/config:4$"
	expect_setting cov.agb 11111111 "vzp11/vzp11.conf:5$"
	expect_setting cov.retries 3 "^default$"
	ns "$T/system.conf" config
	expect_in "$T/out" "^# system file $SYSFILE$" "text: names the system file"
	expect_in "$T/out" "^cov.jobs +3 +# .*xdg/vzp11/config:4$" "text: value and origin, one line each"
}

# The settings reach the commands: a COV check with nothing on the command
# line but --stdin, everything else from the user's file; the command line
# and the environment still win.
case_cov_from_file() {
	imp "$PKI/sys-rsa2048.p12" --label praktijk-a
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
	start_mock
	unset VZP11_MODULE VZP11_PIN_SOURCE
	conf "$XDG_CONFIG_HOME/vzp11/config" <<EOF
module = $SOFTHSM_MODULE
pin-source = env:VZT_PIN
label = praktijk-a
env = prd
cacert = $PKI/chain.pem
[cov]
endpoint = $ENDPOINT
jobs = 1
EOF
	echo "999979668,1962-03-15" >"$T/stdin"
	run vz cov --stdin <"$T/stdin"
	expect_rc 0 "cov with every setting from the user's file"
	expect_in "$T/out" "^Result: +Gevonden" "answered (the section's endpoint over the global env)"
	run vz cov --stdin --label nothing-here <"$T/stdin"
	expect_rc 1 "the command line's --label wins"
	expect_in "$T/err" "label 'nothing-here'" "names the command line's label"
	# An environment name no table has fails at once, before any network,
	# and shows which setting won: not the file's endpoint (that would be
	# "not both").
	run vz cov --stdin --env bogus <"$T/stdin"
	expect_in "$T/err" "unknown environment 'bogus'" "--env on the command line replaces the file's endpoint"
	VZP11_ENV=bogus run vz cov --stdin <"$T/stdin"
	expect_in "$T/err" "unknown environment 'bogus'" "VZP11_ENV replaces the file's endpoint"
	VZP11_MODULE=/nonexistent/env.so run vz cov --stdin <"$T/stdin"
	expect_rc 1 "VZP11_MODULE wins over the file"
	expect_in "$T/err" "/nonexistent/env.so" "names the environment's module"
}

case_flow() {
	imp "$PKI/sys-rsa2048.p12"
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
	start_mock
	export VZP11_JOURNAL=$T/journal.db
	conf "$T/explicit.conf" <<EOF
cacert = $PKI/root.crt
[billing]
endpoint = https://localhost:$(cat "$T/port")/berichtenservice
from = Praktijk:01234567
[flow "declaratie"]
type = 303
version = 3.1
EOF
	printf '0100declaratie\n9900\n' >"$T/decl.txt"
	run vz --config "$T/explicit.conf" --json declare "$T/decl.txt" --to Zorgverzekeraar:3311 --flow declaratie
	expect_rc 0 "declare with a named flow and the sender from the file"
	expect_in "$T/out" '"status":"accepted"' "accepted"
	run vz --config "$T/explicit.conf" --json journal
	expect_in "$T/out" '"flow":"303:3.1' "the journal has the flow the name stands for"
	run vz --config "$T/explicit.conf" declare "$T/decl.txt" --to Zorgverzekeraar:3311 --flow nonesuch
	expect_rc 2 "an unknown flow name"
	expect_in "$T/err" "neither TYPE\[/SUBTYPE\]:VERSION.SUBVERSION\[:ACTION\] nor a \[flow \"nonesuch\"\]" "says so"
}

# Module arguments go with the module named in the same place: the command
# line's, the environment's, one file's. A module named in a more important
# place leaves the others' arguments out (-v says so); SoftHSM refuses any
# (CKR_ARGUMENTS_BAD), and faulty-p11 with FAULTY_P11_TAKE_ARGS takes them
# and reports what it got.
case_module_args() {
	imp "$PKI/sys-rsa2048.p12"
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
	unset VZP11_MODULE VZP11_MODULE_ARGS
	export FAULTY_P11_TAKE_ARGS=1 FAULTY_P11_REPORT=$T/report
	printf 'module = %s\nmodule-args = file-args\n' "$FAULTY_P11" | conf "$T/with-args.conf"
	printf 'module = %s\n' "$SOFTHSM_MODULE" | conf "$T/softhsm.conf"
	listed() { # listed WHAT: the certificate was listed
		expect_rc 0 "$1"
		expect_in "$T/out" "^vecozo-system " "$1: the certificate is listed"
	}
	args_seen() { # args_seen ARGS WHAT: the module got ARGS
		expect_in "$T/report" "^init-args $1\$" "$2: the module got '$1'"
		rm -f "$T/report"
	}
	# the pairs: each place's module with its own arguments
	run vz --config "$T/with-args.conf" list
	listed "module and module-args from a file"
	args_seen file-args "file"
	VZP11_MODULE=$FAULTY_P11 VZP11_MODULE_ARGS=env-args run vz --config "$T/with-args.conf" list
	listed "VZP11_MODULE and VZP11_MODULE_ARGS over a file's pair"
	args_seen env-args "environment"
	VZP11_MODULE=$FAULTY_P11 VZP11_MODULE_ARGS=env-args \
		run vz --module "$FAULTY_P11" --module-args cli-args list
	listed "--module and --module-args over the environment's pair"
	args_seen cli-args "command line"
	# a module named above leaves the arguments below out
	run vz -v --config "$T/with-args.conf" --module "$SOFTHSM_MODULE" list
	listed "--module over a file's module and module-args"
	expect_in "$T/err" "module arguments of $T/with-args.conf:2 are left out: they go with a module named there, and the module in use comes from command line" \
		"-v says the file's arguments were left out"
	VZP11_MODULE=$FAULTY_P11 VZP11_MODULE_ARGS=env-args run vz -v list --module "$SOFTHSM_MODULE"
	listed "--module (after the command) over VZP11_MODULE and VZP11_MODULE_ARGS"
	expect_in "$T/err" "module arguments of environment VZP11_MODULE_ARGS are left out" \
		"-v says the environment's arguments were left out"
	VZP11_MODULE=$SOFTHSM_MODULE run vz --config "$T/with-args.conf" list
	listed "VZP11_MODULE over a file's module and module-args"
	VZP11_MODULE_ARGS=env-args run vz --config "$T/softhsm.conf" list
	listed "a file's module over VZP11_MODULE_ARGS alone"
	# one file's pair is not another file's: the user's arguments do not
	# go with --config's module
	printf 'module = %s\nmodule-args = user-args\n' "$FAULTY_P11" | conf "$XDG_CONFIG_HOME/vzp11/config"
	run vz --config "$T/softhsm.conf" list
	listed "--config's module over the user file's pair"
	run vz list
	listed "the user file's pair"
	args_seen user-args "the user's file"
	run vz --json --config "$T/softhsm.conf" config
	expect_setting module-args user-args "xdg/vzp11/config:2, left out: the module comes from .*softhsm.conf:1\$"
	run vz --json config
	expect_setting module-args user-args "xdg/vzp11/config:2\$"
	rm -f "$XDG_CONFIG_HOME/vzp11/config"
	# --module-args on the command line names no module of its own
	VZP11_MODULE=$SOFTHSM_MODULE run vz list --module-args cli-args
	expect_rc 2 "--module-args without --module"
	expect_in "$T/err" "the command line names no module: the module comes from environment VZP11_MODULE" \
		"says where the module comes from"
	expect_in "$T/err" "give --module on the command line too" "says what to do"
}

# bad_conf WHAT EXIT REGEX: $T/bad.conf as --config is refused, with the
# message, and no command runs.
bad_conf() {
	run vz --config "$T/bad.conf" list
	expect_rc "$2" "$1"
	expect_in "$T/err" "$3" "$1: says why"
	expect_not_in "$T/out" "." "$1: nothing else happened"
}

case_refusals() {
	printf 'label = x\n[cov]\njobs = 2\nbogus = 1\n' | conf "$T/bad.conf"
	bad_conf "an unknown key" 2 "bad.conf:4: unknown key 'bogus' in this section"
	printf 'label = x\n\n[covv]\njobs = 2\n' | conf "$T/bad.conf"
	bad_conf "an unknown section" 2 "bad.conf:3: unknown section \[covv\]"
	printf '[cov]\njobs = 99\n' | conf "$T/bad.conf"
	bad_conf "a number out of range" 2 "bad.conf:2: jobs takes a number from 1 to 32"
	printf 'env = production\n' | conf "$T/bad.conf"
	bad_conf "an unknown environment" 2 "bad.conf:1: env is tst, acc or prd"
	printf 'pin = %s\n' "$VZT_PIN" | conf "$T/bad.conf"
	bad_conf "a PIN in the file" 2 "bad.conf:1: 'pin' is not a setting: a PIN or password is never kept"
	expect_not_in "$T/err" "$VZT_PIN" "the PIN is not repeated"
	printf 'pin-source = pass:%s\n' "$VZT_PIN" | conf "$T/bad.conf"
	bad_conf "a pass: PIN source" 2 "bad.conf:1: pin-source: "
	expect_not_in "$T/err" "$VZT_PIN" "the PIN is not repeated"
	printf 'this is not ini\n' | conf "$T/bad.conf"
	bad_conf "a line that is not INI" 2 "bad.conf:1: "
	printf '[flow declaratie]\ntype = 1\n' | conf "$T/bad.conf"
	bad_conf "a flow section without quotes" 2 'bad.conf:1: a flow section is written \[flow "NAME"\]'
	printf 'label = x\n' | conf "$T/bad.conf"
	chmod 620 "$T/bad.conf"
	bad_conf "a file its group may change" 1 "bad.conf can be changed by its group; it is not read"
	chmod 602 "$T/bad.conf"
	bad_conf "a file anyone may change" 1 "bad.conf can be changed by anyone"
	chmod 600 "$T/bad.conf"
	if [ "$(id -u)" -eq 0 ]; then
		chown nobody "$T/bad.conf"
		bad_conf "a file of another user" 1 "bad.conf belongs to uid [0-9]+, neither root nor you"
		chown 0 "$T/bad.conf"
	fi
	run vz --config "$T/missing.conf" list
	expect_rc 1 "--config names a file that is not there"
	expect_in "$T/err" "cannot read the configuration .*missing.conf" "says so"
	# A bad user file stops every command, but not --help or --version.
	printf '[nope]\n' | conf "$XDG_CONFIG_HOME/vzp11/config"
	run vz list
	expect_rc 2 "a bad user file"
	expect_in "$T/err" "xdg/vzp11/config:1: unknown section \[nope\]" "names the user's file and line"
	run vz --version
	expect_rc 0 "--version with a bad user file"
	rm -f "$XDG_CONFIG_HOME/vzp11/config"
}

new_token "$CASE"
"case_$(echo "$CASE" | tr - _)"
finish
