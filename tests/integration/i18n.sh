#!/bin/sh
# i18n.sh CASE: Dutch messages. `catalog`: every message the sources mark
# (xgettext with the keywords of po/meson.build) has a Dutch translation in
# po/nl.po, none fuzzy, formats that match (msgfmt --check), option names,
# commands and VECOZO's own terms kept. `runtime`: vzp11 speaks Dutch when
# LC_ALL/LANG is nl_NL, English otherwise, and its JSON keys do not change.
. "$(dirname "$0")/lib.sh"
: "${PODIR:?the build's po directory (the .mo files)}"
CASE=$1

case_catalog() {
	command -v xgettext >/dev/null && command -v msgmerge >/dev/null ||
		{ echo "SKIP: gettext tools are not installed"; exit 77; }
	# The keywords, from the one place they are listed.
	kw=$(sed -n "/^keywords = \[/,/\]/p" "$SRCDIR/po/meson.build" | grep -o "'[^']*'" | tr -d "'")
	args=""
	for k in $kw; do
		args="$args --keyword=$k"
		case $k in *:*) args="$args --flag=$k:c-format" ;; esac
	done
	(cd "$SRCDIR" && xgettext --from-code=UTF-8 $args -o "$T/fresh.pot" -f po/POTFILES) 2>"$T/xgettext.err" ||
		{ fail "xgettext failed"; cat "$T/xgettext.err"; finish; }
	n=$(grep -c '^msgid "' "$T/fresh.pot")
	[ "$n" -gt 400 ] && pass "the sources mark $n messages" || fail "only $n messages marked"
	msgmerge -q --no-fuzzy-matching "$SRCDIR/po/nl.po" "$T/fresh.pot" -o "$T/merged.po"
	msgattrib --untranslated --no-obsolete "$T/merged.po" | grep '^msgid' | tail -n +2 >"$T/untranslated"
	[ ! -s "$T/untranslated" ] && pass "every marked message has a Dutch translation" ||
		{ fail "$(wc -l <"$T/untranslated") messages without a Dutch translation:"; head -10 "$T/untranslated"; }
	msgattrib --only-fuzzy --no-obsolete "$SRCDIR/po/nl.po" | grep '^msgid' >"$T/fuzzy" || true
	[ ! -s "$T/fuzzy" ] && pass "no fuzzy translation" ||
		{ fail "$(wc -l <"$T/fuzzy") fuzzy translations:"; head -5 "$T/fuzzy"; }
	if msgfmt --check -o /dev/null "$SRCDIR/po/nl.po" 2>"$T/msgfmt.err"; then
		pass "msgfmt --check: formats and header agree"
	else
		fail "msgfmt --check"
		head -10 "$T/msgfmt.err"
	fi
	# What must stay as it is, in every translation.
	python3 - "$SRCDIR/po/nl.po" >"$T/kept" 2>&1 <<'PY' || true
import re, sys
entries, cur, field = [], None, None
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    m = re.match(r'^(msgid|msgstr) "(.*)"$', line)
    if m:
        if m.group(1) == "msgid":
            cur = {"msgid": "", "msgstr": ""}
            entries.append(cur)
        field = m.group(1)
        cur[field] += m.group(2)
    elif line.startswith('"') and cur is not None:
        cur[field] += line[1:-1]
    elif not line.strip():
        field = None
KEEP = ["Niet geauthenticeerd", "Niet geautoriseerd", "Zoekresultaat", "traceerId",
        "conversatieId", "Indienen", "VECOZO", "OK", "WARNING", "CRITICAL", "UNKNOWN"]
bad = []
for e in entries:
    i, s = e["msgid"], e["msgstr"]
    if not i or not s:
        continue
    want = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", i))
    want |= set(re.findall(r"\b(?:VZP11_[A-Z_]+|CK[ARM]_[A-Z0-9_]+|C_[A-Za-z]+)\b", i))
    want |= {w for w in KEEP if re.search(r"\b%s\b" % re.escape(w), i)}
    want |= set(re.findall(r"'vzp11 (?:import|list|show|remove|rotate|cov|declare-status|declare|"
                           r"retour|journal|gateway|check|selftest|config)\b", i))
    missing = [w for w in sorted(want) if w not in s]
    if missing:
        bad.append("%r loses %s" % (i[:70], missing))
print("\n".join(bad) if bad else "kept ok")
PY
	expect_in "$T/kept" "^kept ok$" "options, commands, VZP11_ variables, PKCS#11 names and VECOZO's terms stay in every translation"
}

# nl ARGS: vzp11 in Dutch, with this build's translations where this build
# looks for them: a private mount namespace puts them there (a tmpfs over
# the nearest existing parent), so nothing outside changes.
nl() {
	run unshare -m --propagation private sh -c '
		mount -t tmpfs -o mode=755 vzp11-test "$1" || exit 96
		mkdir -p "$2" && mount --bind "$3" "$2" || exit 96
		shift 3
		exec "$@"' sh "$LOCALE_PARENT" "$LOCALEDIR" "$PODIR" \
		env LC_ALL=nl_NL.UTF-8 ${VZP11_WRAPPER:-} "$VZP11_BIN" "$@"
}

case_runtime() {
	locale -a 2>/dev/null | grep -qix 'nl_NL.utf-*8' ||
		{ echo "SKIP: the nl_NL.UTF-8 locale is not generated (scripts/install-deps does it)"; exit 77; }
	[ "$(id -u)" -eq 0 ] && unshare -m --propagation private true 2>/dev/null ||
		{ echo "SKIP: needs root and unshare -m"; exit 77; }
	LOCALEDIR=$(grep -ao '/[[:alnum:]/._-]*/share/locale' "$VZP11_BIN" | head -n 1 || true)
	[ -n "$LOCALEDIR" ] || { fail "cannot find the build's locale directory in the binary"; finish; }
	LOCALE_PARENT=$LOCALEDIR
	while [ ! -d "$LOCALE_PARENT" ]; do LOCALE_PARENT=$(dirname "$LOCALE_PARENT"); done
	case $LOCALE_PARENT in
	/usr/share | /usr | /) echo "SKIP: $LOCALEDIR is under $LOCALE_PARENT, not replaced"; exit 77 ;;
	esac
	[ -f "$PODIR/nl/LC_MESSAGES/vzp11.mo" ] || { fail "no nl .mo in $PODIR"; finish; }
	# What the Dutch catalogue says, through gettext(1) on the same .mo.
	dutch() { TEXTDOMAINDIR=$PODIR LC_ALL=nl_NL.UTF-8 gettext -d vzp11 "$1"; }
	msg="Keep a VECOZO system certificate on a PKCS#11 token and use it from there."
	nl --help
	expect_rc 0 "vzp11 --help in Dutch"
	want=$(dutch "Usage: vzp11 [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]
$msg

Commands:
" | head -n 1)
	[ "$want" != "Usage: vzp11 [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]" ] &&
		pass "the catalogue has Dutch for the help ('$want')" || fail "the help is not translated in nl.po"
	expect_in "$T/out" "^$(printf '%s' "$want" | sed 's/[][.*^$]/\\&/g')\$" "the help is in Dutch"
	expect_not_in "$T/out" "^Usage: " "no English help"
	nl list --label x
	expect_rc 2 "a usage error in Dutch"
	want=$(dutch "unknown or incomplete option '%s'" | sed "s/%s/--label/")
	expect_in "$T/err" "$(printf '%s' "$want" | sed 's/[][.*^$]/\\&/g')" "the usage error is in Dutch"
	# JSON keys and values stay; the same run in English gives the same.
	new_token i18n-json
	imp "$PKI/sys-rsa2048.p12"
	nl --json list
	expect_rc 0 "list --json in Dutch"
	cp "$T/out" "$T/nl.json"
	LC_ALL=C.UTF-8 run vz --json list
	cmp -s "$T/out" "$T/nl.json" && pass "the JSON is the same in Dutch and English" ||
		{ fail "the JSON differs in Dutch"; diff "$T/out" "$T/nl.json" | head -5; }
	# English without a Dutch locale setting.
	LC_ALL=C.UTF-8 run vz list --label x
	expect_in "$T/err" "unknown or incomplete option '--label'" "English in the C locale"
}

new_token "i18n-$CASE"
"case_$CASE"
finish
