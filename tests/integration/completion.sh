#!/bin/bash
# completion.sh CASE: an admin presses TAB after `vzp11 ...` in bash, with
# scripts/completion/vzp11 loaded by bash-completion. Every completion runs
# in a fresh bash that sources bash-completion and the file, sets COMP_WORDS,
# COMP_CWORD, COMP_LINE and COMP_POINT as bash would, and calls the function
# `complete -p vzp11` names; COMPREPLY is what the case checks.
. "$(dirname "$0")/lib.sh"

BASH_COMPLETION=${BASH_COMPLETION:-/usr/share/bash-completion/bash_completion}
[ -f "$BASH_COMPLETION" ] || { echo "SKIP: bash-completion is not installed"; exit 77; }
COMPLETION=$SRCDIR/scripts/completion/vzp11

new_token "completion-$1"
# `vzp11` on the PATH is a wrapper that records how it was run (argument
# list, PIN source, terminal) and then runs the binary under test.
mkdir -p "$T/bin"
cat >"$T/bin/vzp11" <<WRAP
#!/bin/sh
{
	printf 'argv:'; printf ' %s' "\$@"; echo
	echo "pin_source:\${VZP11_PIN_SOURCE-unset}"
	if [ -t 0 ]; then echo "stdin:tty"; else echo "stdin:not-a-tty"; fi
	if (: </dev/tty) 2>/dev/null; then echo "ctty:yes"; else echo "ctty:no"; fi
} >>"$T/calls"
exec "$VZP11_BIN" "\$@"
WRAP
chmod 755 "$T/bin/vzp11"
export PATH="$T/bin:$PATH"

# The driver: complete the line $1 (the cursor at its end) and write the
# replies, one a line and sorted, to $T/reply.
cat >"$T/drive.sh" <<DRIVE
. "$BASH_COMPLETION"
. "$COMPLETION"
line=\$1
words=()
for w in \$line; do
	# bash splits words at = and : too (COMP_WORDBREAKS)
	while [[ \$w =~ ^([^=:]*)([=:])(.*)\$ ]]; do
		[[ -n \${BASH_REMATCH[1]} ]] && words+=("\${BASH_REMATCH[1]}")
		words+=("\${BASH_REMATCH[2]}")
		w=\${BASH_REMATCH[3]}
	done
	[[ -n \$w ]] && words+=("\$w")
done
[[ \$line == *' ' || \${line: -1} == [=:] ]] && words+=("")
COMP_WORDS=("\${words[@]}")
COMP_CWORD=\$((\${#words[@]} - 1))
COMP_LINE=\$line
COMP_POINT=\${#line}
spec=\$(complete -p vzp11) || { echo "no completion registered for vzp11" >&2; exit 1; }
echo "\$spec" >"$T/spec"
fn=\$(echo "\$spec" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
COMPREPLY=()
"\$fn" vzp11 "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "\${COMPREPLY[@]}" | sed '/^\$/d' | LC_ALL=C sort >"$T/reply"
DRIVE

# comp LINE: complete LINE; the replies are in $T/reply, also as $reply
# (space-separated).
comp() {
	rm -f "$T/reply"
	( cd "${CWD:-$T}" && bash "$T/drive.sh" "$1" ) 2>"$T/comp.err" ||
		{ fail "completing '$1' failed"; sed 's/^/  | /' "$T/comp.err"; }
	reply=$(tr '\n' ' ' <"$T/reply" 2>/dev/null | sed 's/ $//')
}

expect_reply() { # expect_reply LINE 'EXPECTED REPLIES'
	comp "$1"
	if [ "$reply" = "$2" ]; then pass "'$1' completes to: $2"; else
		fail "'$1' completes to '$reply', expected '$2'"
		sed 's/^/  stderr: /' "$T/comp.err"
	fi
}

expect_offered() { # expect_offered LINE WORD...: each WORD is among the replies
	line=$1
	shift
	comp "$line"
	for w in "$@"; do
		if grep -qxF -- "$w" "$T/reply"; then pass "'$line' offers $w"; else
			fail "'$line' does not offer $w (got: $reply)"
		fi
	done
}

expect_not_offered() { # expect_not_offered LINE WORD...
	line=$1
	shift
	comp "$line"
	for w in "$@"; do
		if grep -qxF -- "$w" "$T/reply"; then fail "'$line' offers $w"; else
			pass "'$line' does not offer $w"
		fi
	done
}

case_commands() {
	comp "vzp11 "
	expect_in "$T/spec" "^complete -F [_a-zA-Z0-9]+ vzp11$" "bash knows a completion function for vzp11"
	expect_offered "vzp11 " import list show remove rotate cov declare declare-status retour \
		journal gateway check selftest
	# exactly the commands `vzp11 --help` lists, nothing else
	"$VZP11_BIN" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' | sort -u >"$T/help-commands"
	comp "vzp11 "
	cmp -s "$T/help-commands" "$T/reply" && pass "the commands offered are the ones --help lists" ||
		fail "offered: $reply; --help lists: $(tr '\n' ' ' <"$T/help-commands")"
	expect_reply "vzp11 dec" "declare declare-status"
	expect_reply "vzp11 ro" "rotate"
	# the value of a global option is not the command
	expect_offered "vzp11 --token import " list cov
	expect_offered "vzp11 --module /x.so --token t -v " check
	expect_reply "vzp11 --json li" "list"
}

case_options() {
	expect_offered "vzp11 cov --" --bsn --birthdate --batch --stdin --jobs --out --env --endpoint \
		--cacert --retries --connect-timeout --max-response --label --module --token --json
	expect_not_offered "vzp11 cov --" --unwrap --yes --listen
	expect_reply "vzp11 cov --ba" "--batch"
	expect_offered "vzp11 import --" --password-source --label --replace --allow-personal --unwrap
	expect_not_offered "vzp11 import --" --bsn --env
	expect_offered "vzp11 rotate --" --rollback --finish --unwrap --env
	expect_offered "vzp11 remove --" --yes
	expect_offered "vzp11 gateway --" --listen --upstream --pool --client-ca --tls-cert --tls-key \
		--max-request --drain --syslog
	expect_offered "vzp11 check --" --warn-days --crit-days --label
	expect_reply "vzp11 retour --l" "--label --limit"
	# before the command: the global options only
	expect_offered "vzp11 --" --module --token --pin-source --journal --json --verbose --quiet \
		--help --version
	expect_not_offered "vzp11 --" --bsn --label
	# global options after the command, and option values skipped
	expect_offered "vzp11 cov --bsn 999979668 --j" --jobs --json --journal
	expect_offered "vzp11 declare x.txt --flow 303:3.1 --f" --from --force --flow
	# an option that takes no value does not swallow the next word
	comp "vzp11 remove --yes "
	[ -z "$reply" ] && pass "'vzp11 remove --yes ' completes labels (none here)" ||
		fail "'vzp11 remove --yes ' completes to '$reply'"
}

case_env_values() {
	expect_reply "vzp11 cov --env " "acc prd tst"
	expect_reply "vzp11 cov --env p" "prd"
	expect_reply "vzp11 selftest --env=a" "acc"
	expect_reply "vzp11 --token t gateway --listen 127.0.0.1:0 --env t" "tst"
	expect_reply "vzp11 --pin-source " "env: fd: file: prompt stdin"
	expect_reply "vzp11 import x.p12 --password-source st" "stdin"
	expect_reply "vzp11 cov --jobs " ""
}

case_labels() {
	imp "$PKI/sys-rsa2048.p12"
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
	imp "$PKI/sys-ec256.p12" --label "ec label"
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
	imp "$PKI/sys-rsa4096.p12" --label "praktijk:2026"
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
	: >"$T/calls"
	expect_reply "vzp11 show " 'ec\ label praktijk:2026 vecozo-system'
	# bash replaces what follows the ':' (a COMP_WORDBREAKS character)
	expect_reply "vzp11 show praktijk:" '2026'
	expect_reply "vzp11 remove v" "vecozo-system"
	expect_reply "vzp11 remove ec" 'ec\ label'
	expect_reply "vzp11 cov --bsn 999979668 --label " 'ec\ label praktijk:2026 vecozo-system'
	expect_reply "vzp11 check --label=v" "vecozo-system"
	expect_reply "vzp11 show vecozo-system " ""
	# the token on the line is the one asked
	expect_reply "vzp11 --token $TOKEN_LABEL show v" "vecozo-system"
	expect_reply "vzp11 --token no-such-token show " ""
	expect_in "$T/calls" "^argv: --token no-such-token --json list --public$" "the --token on the line is passed on"
	expect_reply "vzp11 --module /nonexistent/module.so show " ""
	expect_in "$T/calls" "^argv: --module /nonexistent/module.so --json list --public$" "the --module on the line is passed on"
	# module arguments as typed, one pair of quotes taken off, never evaluated
	comp "vzp11 --module-args 'configdir' show "
	expect_in "$T/calls" "^argv: --module-args configdir --json list --public$" "the --module-args on the line are passed on"
}

# The label lookup never prompts: no PIN source (neither VZP11_PIN_SOURCE nor
# one on the line), no terminal, stdin /dev/null; here it runs inside a
# pseudo-terminal with VZP11_PIN_SOURCE=prompt, where a prompt would hang.
case_no_prompt() {
	command -v script >/dev/null || { echo "SKIP: script(1) is not installed"; exit 77; }
	imp "$PKI/sys-rsa2048.p12"
	[ "$rc" -eq 0 ] || { fail "import"; cat "$T/err"; finish; }
	: >"$T/calls"
	start=$(date +%s)
	VZP11_PIN_SOURCE=prompt timeout 20 script -qec \
		"bash '$T/drive.sh' 'vzp11 --pin-source env:VZT_PIN show '" /dev/null >"$T/script.out" 2>&1 ||
		fail "the completion in a terminal did not finish (exit $?)"
	took=$(($(date +%s) - start))
	reply=$(tr '\n' ' ' <"$T/reply" | sed 's/ $//')
	if [ "$reply" = "vecozo-system" ]; then pass "labels completed in a terminal"; else
		fail "completed '$reply' in a terminal"
		sed 's/^/  | /' "$T/script.out"
	fi
	[ "$took" -lt 3 ] && pass "and at once (${took}s)" || fail "it took ${took}s"
	# the help calls ran in the terminal too; the label lookup did not
	expect_in "$T/calls" "^ctty:yes$" "the test's completion ran with a terminal"
	grep -A3 -- '--json list --public$' "$T/calls" >"$T/check-call"
	expect_in "$T/check-call" "^argv: --json list --public$" "list --public is run without --pin-source"
	expect_in "$T/check-call" "^pin_source:unset$" "and without VZP11_PIN_SOURCE"
	expect_in "$T/check-call" "^stdin:not-a-tty$" "stdin is not the terminal"
	expect_in "$T/check-call" "^ctty:no$" "it has no controlling terminal to prompt on"
}

case_files() {
	d=$T/files
	mkdir -p "$d/sub" "$d/my dir"
	for f in a.p12 b.PFX c.pem d.csv e.txt F.TXT g.so; do : >"$d/$f"; done
	CWD=$d
	expect_reply "vzp11 import " "a.p12 b.PFX my dir sub"
	expect_reply "vzp11 rotate --label x " "a.p12 b.PFX my dir sub"
	expect_reply "vzp11 cov --batch " "d.csv my dir sub"
	expect_reply "vzp11 declare e.txt " "e.txt my dir sub"
	expect_reply "vzp11 retour --dir " "my dir sub"
	expect_reply "vzp11 retour --dir m" "my dir"
	expect_reply "vzp11 --module " "g.so my dir sub"
	expect_reply "vzp11 cov --out d" "d.csv"
	expect_reply "vzp11 import a.p12 " ""
	# bash replaces what follows the ':' (a COMP_WORDBREAKS character)
	expect_reply "vzp11 --pin-source file:c" "c.pem"
	CWD=
}

"case_$(echo "$1" | tr - _)"
finish
