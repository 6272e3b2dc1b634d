#!/bin/sh
# package.sh CASE: the Debian package, as an admin installs and removes it.
#   install-purge: scripts/package builds the .deb (leaving the source tree
#   as it was, lintian without errors); `dpkg -i` installs it: vzp11
#   --version, `man -w vzp11`, `man -w vzp11-cov`, the bash completion and
#   the systemd units (installed, not enabled); `dpkg --purge` then leaves
#   nothing behind: no file the package listed, no directory of its own, no
#   other path named after it that was not there before.
# Needs root and dpkg (else skipped); skipped too when vzp11 is installed
# already (by dpkg or by hand in /usr/bin), so an existing install is never
# touched.
set -eu
: "${SRCDIR:?}" "${TESTWORK:?}"
T=$TESTWORK/package-$1
rm -rf "$T"
mkdir -p "$T"

. "$(dirname "$0")/checks.sh"
skip() {
	echo "SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "installing a package needs root"
for p in dpkg dpkg-buildpackage dpkg-query; do
	command -v "$p" >/dev/null || skip "$p is not installed"
done
# Two runs on one machine (several build trees) take turns: one's purge
# must not pull the package from under the other.
lockdir=/run/lock
[ -d "$lockdir" ] || lockdir=/tmp
if command -v flock >/dev/null; then
	exec 9>"$lockdir/vzp11-package-test.lock"
	flock 9
fi
if dpkg-query -W -f='${Status}\n' vzp11 2>/dev/null | grep -q ' installed$\| half-\| unpacked$'; then
	skip "the package vzp11 is installed on this machine; not touching it"
fi
[ ! -e /usr/bin/vzp11 ] || skip "/usr/bin/vzp11 exists (not from a package); not overwriting it"

# paths named after vzp11 outside /proc, /sys, /tmp, /home and this build;
# not man-db's cache of formatted pages either (systemd-analyze verify reads
# the units' Documentation= pages, and man-db expires its cache itself)
named() {
	find /etc /usr /lib /var /opt /srv \( -path "$SRCDIR" -o -path "$TESTWORK" -o \
		-path /var/tmp -o -path /var/cache/apt -o -path /var/cache/man \) -prune -o \
		-name '*vzp11*' -print 2>/dev/null | sort
}

# tree_state: the source tree's status, with what is ignored (build
# directories aside, which tests write to)
tree_state() {
	git -C "$SRCDIR" status --porcelain --ignored 2>/dev/null | grep -v '^!! build' || true
}

installed=false
# man-db caches pages it formatted (for systemd-analyze verify); the test
# removes the ones it caused
mancache() { find /var/cache/man -name 'vzp11*' 2>/dev/null | sort; }
mancache >"$T/mancache.before"
cleanup() {
	if [ "$installed" = true ]; then
		dpkg --purge vzp11 >/dev/null 2>&1 || true
	fi
	mancache | comm -13 "$T/mancache.before" - | while IFS= read -r f; do rm -f "$f"; done
}
trap cleanup EXIT

case_install_purge() {
	tree_state >"$T/tree.before"
	if ! "$SRCDIR/scripts/package" "$T/out" >"$T/package.log" 2>&1; then
		fail "scripts/package failed"
		tail -n 40 "$T/package.log" | sed 's/^/  | /'
		return
	fi
	pass "scripts/package built $(cd "$T/out" && ls vzp11_*.deb)"
	if grep -q '^package: lintian: no errors' "$T/package.log"; then
		pass "lintian: no errors"
	elif grep -q 'lintian is not installed' "$T/package.log"; then
		echo "note: lintian is not installed; the package was not checked"
	else
		fail "lintian did not pass"
		sed 's/^/  | /' "$T/package.log"
	fi
	tree_state >"$T/tree.after"
	if cmp -s "$T/tree.before" "$T/tree.after"; then
		pass "the source tree is as it was"
	else
		fail "scripts/package changed the source tree"
		diff "$T/tree.before" "$T/tree.after" | sed 's/^/  | /'
	fi
	deb=$(ls "$T"/out/vzp11_*.deb)

	named >"$T/named.before"
	if ! dpkg -i "$deb" >"$T/dpkg-i.log" 2>&1; then
		installed=true
		fail "dpkg -i failed"
		sed 's/^/  | /' "$T/dpkg-i.log"
		return
	fi
	installed=true
	pass "dpkg -i installed it"
	dpkg -L vzp11 | sort >"$T/files"

	# the package's upstream version is the project's (meson.build)
	v=$(dpkg-query -W -f='${Version}' vzp11)
	v=${v%-*}
	project=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$SRCDIR/meson.build" | head -n1)
	[ "$v" = "$project" ] && pass "package version $v is meson.build's" ||
		fail "the package is version $v (debian/changelog), meson.build says $project"
	/usr/bin/vzp11 --version >"$T/version" 2>&1 || true
	re="^vzp11 $(echo "$project" | sed 's/\./\\./g')([^0-9.]|\$)"
	if grep -Eq "$re" "$T/version"; then pass "vzp11 --version: $(grep -E "$re" "$T/version")"; else
		fail "vzp11 --version does not say vzp11 $project:"
		sed 's/^/  | /' "$T/version"
	fi
	for page in vzp11 vzp11-cov; do
		if p=$(man -w "$page" 2>/dev/null) && grep -qxF "$p" "$T/files"; then
			pass "man -w $page: $p"
		else
			fail "man -w $page finds no page of the package (${p:-nothing})"
		fi
	done
	dir=$(pkg-config --variable=completionsdir bash-completion 2>/dev/null || true)
	dir=${dir:-/usr/share/bash-completion/completions}
	if [ -f "$dir/vzp11" ] && grep -qxF "$dir/vzp11" "$T/files"; then
		pass "the bash completion is in $dir"
	else
		fail "no bash completion $dir/vzp11 from the package"
	fi
	for unit in vzp11-check.service vzp11-check.timer; do
		f=$(grep "/systemd/system/$unit\$" "$T/files" || true)
		[ -n "$f" ] && [ -f "$f" ] && pass "$unit is in $(dirname "$f")" || fail "$unit is not installed"
	done
	grep -q '^ExecStart=/usr/bin/vzp11 ' "$(grep '/vzp11-check.service$' "$T/files")" &&
		pass "vzp11-check.service runs /usr/bin/vzp11" || fail "vzp11-check.service does not run /usr/bin/vzp11"
	enabled=$(find /etc/systemd/system -name 'vzp11*' 2>/dev/null || true)
	[ -z "$enabled" ] && pass "no unit is enabled" || fail "units enabled: $enabled"
	if command -v systemd-analyze >/dev/null; then
		for u in $(grep -E '/systemd/system/[^/]+\.(service|timer)$' "$T/files"); do
			if systemd-analyze verify "$u" >"$T/verify.log" 2>&1; then
				pass "systemd-analyze verify $(basename "$u")"
			else
				fail "systemd-analyze verify $(basename "$u")"
				sed 's/^/  | /' "$T/verify.log"
			fi
		done
	fi

	if ! dpkg --purge vzp11 >"$T/purge.log" 2>&1; then
		fail "dpkg --purge failed"
		sed 's/^/  | /' "$T/purge.log"
		return
	fi
	installed=false
	status=$(dpkg-query -W -f='${Status}' vzp11 2>/dev/null || true)
	case $status in
	"" | *not-installed) pass "dpkg --purge removed the package" ;;
	*) fail "after the purge dpkg says: $status" ;;
	esac
	left=0
	while IFS= read -r f; do
		[ "$f" != /. ] || continue
		[ -e "$f" ] || [ -L "$f" ] || continue
		# a directory other packages use (/usr/share/man/man1, ...) stays
		if [ -d "$f" ] && dpkg -S "$f" >/dev/null 2>&1; then
			continue
		fi
		fail "left behind: $f"
		left=$((left + 1))
	done <"$T/files"
	[ "$left" -eq 0 ] && pass "none of the package's $(wc -l <"$T/files") paths is left, apart from shared directories"
	named >"$T/named.after"
	new=$(comm -13 "$T/named.before" "$T/named.after" | tr '\n' ' ')
	[ -z "$new" ] && pass "no other path named after vzp11 is left (state files, enabled units)" ||
		fail "left behind: $new"
}

"case_$(echo "$1" | tr - _)"
checks_end
