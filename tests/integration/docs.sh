#!/bin/sh
# docs.sh CASE: the man pages in docs/ say what `--help` says.
#   man-pages: every command `vzp11 --help` lists has a page
#   docs/vzp11-COMMAND.1.scd and every such page a command; every long option
#   (and -X, --long pair) a command's --help names is an entry of its page
#   (a global option may be an entry of vzp11(1) instead), every entry of a
#   page is an option of its command or a global one, and vzp11(1)'s entries
#   are exactly the global options of `vzp11 --help`. An entry is a line of
#   the source that starts with the option in bold, *--label* _LABEL_, and is
#   followed by the indented description.
set -eu
: "${VZP11_BIN:?}" "${SRCDIR:?}" "${TESTWORK:?}"
T=$TESTWORK/docs-$1
rm -rf "$T"
mkdir -p "$T"
DOCS=${DOCS:-$SRCDIR/docs}

. "$(dirname "$0")/checks.sh"

# help [CMD]: the help text in English (the options are the same in every
# language, the headings are not).
help() {
	LC_ALL=C LANGUAGE='' "$VZP11_BIN" "$@" --help
}
# long options named in a text on stdin, one a line
longopts() { grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }
# "-X, --long" pairs named in a text on stdin
pairs() { grep -oE -- '(^|[ [])-[a-zA-Z], --[a-z][a-z0-9-]*' | sed 's/^[ [ ]*//' | sort -u; }
# the entry lines of a page source, without the bold and underline marks:
# a line that starts with a bold option and is followed by an indented one
entries() {
	awk 'prev ~ /^\*-/ && /^\t/ { print prev } { prev = $0 }' "$1" | tr -d '*_'
}

case_man_pages() {
	help >"$T/global.help"
	# the paragraph after "Global options", and the commands' synopses
	sed -n '/^Global options/,/^$/p' "$T/global.help" | longopts >"$T/global.opts"
	sed -n '/^Global options/,/^$/p' "$T/global.help" | pairs >"$T/global.pairs"
	sed -n '/^Commands:/,/^$/p' "$T/global.help" | awk '
		/^  [a-z]/ { cmd = $1 }
		/^  / && cmd != "" { print cmd "\t" $0 }' >"$T/synopses"
	cut -f1 "$T/synopses" | sort -u >"$T/commands"
	[ -s "$T/global.opts" ] || { fail "no global options found in vzp11 --help"; checks_end; }
	[ -s "$T/commands" ] || { fail "no commands found in vzp11 --help"; checks_end; }
	pass "vzp11 --help names $(wc -l <"$T/commands") commands and $(wc -l <"$T/global.opts") global options"

	main=$DOCS/vzp11.1.scd
	if [ -f "$main" ]; then
		entries "$main" | longopts >"$T/main.doc"
		entries "$main" | pairs >"$T/main.pairs"
		compare "$T/global.opts" "$T/main.doc" "vzp11 --help (global options)" "vzp11(1)"
		compare "$T/global.pairs" "$T/main.pairs" "vzp11 --help (global options)" "vzp11(1)" short
	else
		fail "docs/vzp11.1.scd is missing"
		: >"$T/main.doc"
	fi
	# global options vzp11(1) documents may stand in for a command's page
	comm -12 "$T/global.opts" "$T/main.doc" >"$T/global.doc"

	while read -r cmd; do
		page=$DOCS/vzp11-$cmd.1.scd
		if ! [ -f "$page" ]; then
			fail "vzp11 --help lists '$cmd', but docs/vzp11-$cmd.1.scd is missing"
			continue
		fi
		help "$cmd" >"$T/$cmd.help" || { fail "vzp11 $cmd --help failed"; continue; }
		awk -F'\t' -v c="$cmd" '$1 == c { print $2 }' "$T/synopses" >>"$T/$cmd.help"
		longopts <"$T/$cmd.help" >"$T/$cmd.opts"
		pairs <"$T/$cmd.help" >"$T/$cmd.pairs"
		entries "$page" | longopts >"$T/$cmd.doc"
		entries "$page" | pairs >"$T/$cmd.docpairs"
		# help -> page: on the page, or a global option on vzp11(1)
		sort -u "$T/$cmd.doc" "$T/global.doc" >"$T/$cmd.known"
		missing=$(comm -23 "$T/$cmd.opts" "$T/$cmd.known" | tr '\n' ' ')
		[ -z "$missing" ] && pass "vzp11-$cmd(1) documents every option of $cmd --help" ||
			fail "$cmd --help names ${missing}but vzp11-$cmd(1) does not document it (an entry line '*--option* ...')"
		# page -> help: the command's own options, or global ones
		sort -u "$T/$cmd.opts" "$T/global.opts" >"$T/$cmd.allowed"
		extra=$(comm -13 "$T/$cmd.allowed" "$T/$cmd.doc" | tr '\n' ' ')
		[ -z "$extra" ] && pass "every option vzp11-$cmd(1) documents is in $cmd --help" ||
			fail "vzp11-$cmd(1) documents ${extra}which $cmd --help does not name"
		compare "$T/$cmd.pairs" "$T/$cmd.docpairs" "$cmd --help" "vzp11-$cmd(1)" short
	done <"$T/commands"

	# every command page belongs to a command
	for page in "$DOCS"/vzp11-*.1.scd; do
		[ -e "$page" ] || continue
		cmd=$(basename "$page" .1.scd)
		cmd=${cmd#vzp11-}
		grep -qxF "$cmd" "$T/commands" ||
			fail "docs/vzp11-$cmd.1.scd has no command '$cmd' in vzp11 --help"
	done
}

# compare A B NAME-A NAME-B [short]: the option lists A and B are equal.
compare() {
	what=${5:-long}
	only_a=$(comm -23 "$1" "$2" | tr '\n' ' ')
	only_b=$(comm -13 "$1" "$2" | tr '\n' ' ')
	[ -z "$only_a" ] || fail "$3 names ${only_a}but $4 does not document it"
	[ -z "$only_b" ] || fail "$4 documents ${only_b}but $3 does not name it"
	[ -n "$only_a$only_b" ] || pass "$4 and $3 agree on their $what options"
}

"case_$(echo "$1" | tr - _)"
checks_end
