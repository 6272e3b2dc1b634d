#!/bin/sh
# layout.sh CASE: the layout README's "How the code is laid out" describes.
#   includes: outside its folder, a folder of src/ is reached only through
#   its header FOLDER/FOLDER.h; src/ never includes pkcs11.h; and the folders'
#   includes have no circle.
#   calls: the folders' calls (the symbols the objects of the build define
#   and use) have no circle, and neither have the journal's face and its
#   backends.
set -eu
: "${SRCDIR:?}" "${BUILDDIR:?}" "${TESTWORK:?}"
T=$TESTWORK/layout-$1
rm -rf "$T"
mkdir -p "$T"

. "$(dirname "$0")/checks.sh"

# acyclic NAME: the "from to" edges on stdin have no circle (tsort).
acyclic() {
	if tsort >"$T/order" 2>"$T/tsort.err"; then
		pass "$1: no circle"
	else
		fail "$1 go round in a circle: $(grep -v 'input contains a loop' "$T/tsort.err" | sed 's/^tsort: //' | tr '\n' ' ')"
	fi
}

case_includes() {
	cd "$SRCDIR/src"
	folders=$(find . -mindepth 1 -maxdepth 1 -type d | sed 's|^\./||' | sort)
	[ -n "$folders" ] || { fail "no folders in src/"; checks_end; }
	for d in $folders; do
		[ -f "$d/$d.h" ] || fail "src/$d has no header $d/$d.h"
	done
	# every include of a file in another folder of src/: "FROM FILE INCLUDED"
	grep -rHoE '^#include "[^"]+"' --include='*.[ch]' . | sed 's|^\./||; s|:#include "| |; s|"$||' |
		while read -r file inc; do
			from=${file%%/*}
			[ "$from" = "$file" ] && from=main
			case $inc in
			*/*) echo "$from $file $inc" ;;
			esac
		done >"$T/edges"
	[ -s "$T/edges" ] || { fail "no includes across folders found"; checks_end; }
	bad=$(awk '{ split($3, p, "/"); if ($3 != p[1] "/" p[1] ".h") print $2 " includes " $3 }' "$T/edges")
	[ -z "$bad" ] && pass "other folders are included only through FOLDER/FOLDER.h" ||
		fail "a folder's inside is included from outside: $bad"
	if grep -rlE '#include [<"](pkcs11|p11-kit/pkcs11)\.h' . >"$T/p11" 2>/dev/null; then
		fail "src/ includes pkcs11.h: $(tr '\n' ' ' <"$T/p11")"
	else
		pass "src/ never includes pkcs11.h"
	fi
	awk '{ split($3, p, "/"); if ($1 != p[1]) print $1, p[1] }' "$T/edges" | sort -u >"$T/graph"
	acyclic "the folders' includes" <"$T/graph"
	checks_end
}

# objects ARCHIVE-OR-OBJECT...: "OBJECT TYPE SYMBOL" of the defined (T, D, B,
# R) and undefined (U) global symbols
objects() {
	nm -A -g "$@" 2>/dev/null | sed 's|^[^:]*\.a:||; s|^.*/||' |
		awk -F'[: ]+' 'NF >= 3 { print $1, $(NF - 1), $NF }'
}

case_calls() {
	command -v nm >/dev/null && command -v tsort >/dev/null || { fail "nm or tsort missing"; checks_end; }
	vz=$BUILDDIR/src/libvz.a
	gw=$BUILDDIR/src/gateway/libvzgw.a
	jr=$BUILDDIR/src/journal/libjournal.a
	main=$(find "$BUILDDIR/src/vzp11.p" -name 'main.c.o' | head -n 1)
	for f in "$vz" "$gw" "$jr" "$main"; do
		[ -f "$f" ] || { fail "no $f in the build"; checks_end; }
	done
	# folder of an object: its archive's for gateway and journal, the
	# part before the first '_' in libvz.a ("cov_covrun.c.o")
	{
		objects "$vz" | awk '{ split($1, p, "_"); print p[1], $0 }'
		objects "$gw" | awk '{ print "gateway", $0 }'
		objects "$jr" | awk '{ print "journal", $0 }'
		objects "$main" | awk '{ print "main", $0 }'
	} >"$T/symbols"
	awk '$3 != "U" { def[$4] = $1 } $3 == "U" { use[NR] = $1 " " $4 }
		END { for (i in use) { split(use[i], u, " "); if (u[2] in def && def[u[2]] != u[1]) print u[1], def[u[2]] } }' \
		"$T/symbols" | sort -u >"$T/graph"
	[ -s "$T/graph" ] || { fail "no calls between folders found"; checks_end; }
	acyclic "the folders' calls" <"$T/graph"
	# the journal: its face (journal.c) calls the backends through its
	# table; the backends never call the face
	objects "$jr" | awk '$2 != "U" { def[$3] = $1 } $2 == "U" { use[NR] = $1 " " $3 }
		END { for (i in use) { split(use[i], u, " "); if (u[2] in def && def[u[2]] != u[1]) print u[1], def[u[2]] } }' |
		sort -u >"$T/journal"
	[ -s "$T/journal" ] || { fail "no calls inside the journal found"; checks_end; }
	acyclic "the journal's files' calls" <"$T/journal"
	checks_end
}

"case_$1"
