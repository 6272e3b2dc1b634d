#!/bin/sh
# prompt.sh CASE: asking for a secret on the terminal, under script(1).
. "$(dirname "$0")/lib.sh"

# Ctrl-C at the password prompt: vzp11 ends, and the terminal echoes again.
case_interrupted_prompt() {
	command -v script >/dev/null || { echo "SKIP: no script(1)"; exit 77; }
	# The shell in the terminal survives the Ctrl-C (a trap with a command is
	# not inherited), then shows the terminal's echo setting.
	inner="trap : INT; \"\$0\" import \"\$1\"; echo \"exit \$?\"; stty -a"
	(sleep 1.5; printf '\003'; sleep 1.5) |
		script -qec "sh -c '$inner' '$VZP11_BIN' '$PKI/sys-rsa2048.p12'" /dev/null >"$T/tty" 2>&1 || true
	tr -d '\r' <"$T/tty" >"$T/screen"
	expect_in "$T/screen" "Enter password for .*sys-rsa2048" "the password was asked for"
	expect_in "$T/screen" "exit 130$" "vzp11 ended by the interrupt"
	expect_in "$T/screen" "[; ]echo[; ]" "echo is on again"
	expect_not_in "$T/screen" "-echo[; ]" "echo is not left off"
}

new_token "prompt-$1"
"case_$(echo "$1" | tr - _)"
finish
