#!/bin/sh
# setup: the test PKI every integration test uses, built once per run.
set -eu
: "${TESTWORK:?}" "${SRCDIR:?}" "${MKP12:?}"
[ -e "${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" ] || { echo "SKIP: no SoftHSM2"; exit 77; }
rm -rf "$TESTWORK"
mkdir -p "$TESTWORK/pki"
chmod 700 "$TESTWORK"
# A random password per run, kept in a 0600 file for the tests to export.
VZP11_P12_PASS="pw-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export VZP11_P12_PASS
(umask 077 && printf '%s\n' "$VZP11_P12_PASS" >"$TESTWORK/pki/password")
"$SRCDIR/scripts/mkpki" "$TESTWORK/pki"
touch "$TESTWORK/pki/done"
echo "ok: test PKI in $TESTWORK/pki"
