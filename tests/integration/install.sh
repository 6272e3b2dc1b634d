#!/bin/sh
# install.sh CASE: what `meson install` puts where.
#   destdir: `meson install --destdir` of this build: the binary, a man page
#   for every docs/*.scd (when scdoc was found), the bash completion and every
#   unit in scripts/systemd/ with ExecStart= naming the installed binary,
#   docs/vzp11.conf.example (when there is one) in the doc directory,
#   each in the directory the build was configured for; with a prefix other
#   than /usr, nothing outside the prefix.
set -eu
: "${VZP11_BIN:?}" "${SRCDIR:?}" "${TESTWORK:?}" "${BUILDDIR:?}" "${PREFIX:?}" "${BINDIR:?}"
: "${MANDIR:?}" "${DOCDIR:?}" "${COMPLETIONDIR:?}" "${UNITDIR:?}" "${MAN_PAGES:?}"
T=$TESTWORK/install-$1
rm -rf "$T"
mkdir -p "$T"

. "$(dirname "$0")/checks.sh"
# the directory D as installed under the destdir (relative ones are under the prefix)
under() {
	case $1 in
	/*) echo "$T/dest$1" ;;
	*) echo "$T/dest$PREFIX/$1" ;;
	esac
}

case_destdir() {
	if ! meson install -C "$BUILDDIR" --no-rebuild --destdir "$T/dest" >"$T/install.log" 2>&1; then
		fail "meson install failed"
		sed 's/^/  | /' "$T/install.log"
		return
	fi
	bin=$(under "$BINDIR")/vzp11
	[ -x "$bin" ] && pass "the binary is in $BINDIR" || fail "no executable $bin"
	"$bin" --version | grep -q '^vzp11 ' && pass "the installed binary runs" ||
		fail "the installed vzp11 --version does not answer"

	n=0
	for src in "$SRCDIR"/docs/*.scd; do
		page=$(basename "$src" .scd)
		sect=${page##*.}
		f=$(under "$MANDIR")/man$sect/$page
		if [ "$MAN_PAGES" = true ]; then
			[ -s "$f" ] && n=$((n + 1)) || fail "man page $page is not in $MANDIR/man$sect"
		elif [ -e "$f" ]; then
			fail "$page installed though the build has no scdoc"
		fi
	done
	[ "$MAN_PAGES" = true ] && [ "$n" -gt 0 ] && pass "$n man pages installed"
	[ "$MAN_PAGES" = true ] || pass "no scdoc: no man pages, and no error"
	if [ "$MAN_PAGES" = true ]; then
		grep -q '^\.TH "vzp11-cov" "1"' "$(under "$MANDIR")/man1/vzp11-cov.1" &&
			pass "vzp11-cov.1 is a man page (roff)" || fail "vzp11-cov.1 is not roff from scdoc"
	fi

	if [ -f "$SRCDIR/docs/vzp11.conf.example" ]; then
		cmp -s "$(under "$DOCDIR")/vzp11.conf.example" "$SRCDIR/docs/vzp11.conf.example" &&
			pass "the example configuration is in $DOCDIR" ||
			fail "docs/vzp11.conf.example is not in $DOCDIR"
	fi

	c=$(under "$COMPLETIONDIR")/vzp11
	cmp -s "$c" "$SRCDIR/scripts/completion/vzp11" && pass "the bash completion is in $COMPLETIONDIR" ||
		fail "no bash completion $c"

	units=0
	for src in "$SRCDIR"/scripts/systemd/*.service "$SRCDIR"/scripts/systemd/*.timer; do
		[ -e "$src" ] || continue
		u=$(under "$UNITDIR")/$(basename "$src")
		if ! [ -f "$u" ]; then
			fail "$(basename "$src") is not in $UNITDIR"
			continue
		fi
		units=$((units + 1))
		if grep -q '^Exec[A-Za-z]*=.*vzp11' "$src"; then
			if grep '^Exec[A-Za-z]*=' "$u" | grep -v "=$BINDIR/vzp11\( \|\$\)" | grep -q vzp11; then
				fail "$(basename "$u"): an Exec line does not name $BINDIR/vzp11"
				grep '^Exec' "$u" | sed 's/^/  | /'
			else
				pass "$(basename "$u"): Exec lines name $BINDIR/vzp11"
			fi
		fi
	done
	[ "$units" -ge 2 ] && pass "$units systemd units in $UNITDIR" || fail "only $units systemd units installed"

	if [ "$PREFIX" != /usr ]; then
		outside=$(cd "$T/dest" && find . ! -type d | sed 's#^\.##' | grep -v "^$PREFIX/" || true)
		[ -z "$outside" ] && pass "nothing installed outside $PREFIX" ||
			fail "installed outside $PREFIX: $outside"
	fi
}

"case_$(echo "$1" | tr - _)"
checks_end
