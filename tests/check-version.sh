#!/bin/sh
# check-version.sh: the version is written once, in configure.ac's AC_INIT;
# everything that shows it must agree with configure's PACKAGE_VERSION:
# the header's SUBITER_VERSION_* macros, subiter_version(), the built
# subiter.pc (pkg-config --modversion), the .TH line of every man page and
# the values subiter_version(3) shows.
#
# Environment (set by `make check`): top_builddir, top_srcdir, PKG_CONFIG.
# Exit: 0 all agree, 1 a mismatch, 77 skip (no pkg-config), 99 harness
# error.

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}

prog="$top_builddir/tests/print-version"
pc="$top_builddir/subiter.pc"

if test ! -x "$prog" || test ! -f "$pc"; then
    echo "ERROR: $prog or $pc not built"
    exit 99
fi
if ! command -v "$PKG_CONFIG" >/dev/null 2>&1; then
    echo "SKIP: pkg-config not found (PKG_CONFIG='$PKG_CONFIG')"
    exit 77
fi

out=$("$prog") || {
    echo "ERROR: $prog failed"
    exit 99
}
want=$(printf '%s\n' "$out" | sed -n 's/^configure //p')
if test -z "$want"; then
    echo "ERROR: no configure version in the output of $prog"
    exit 99
fi

status=0
# agree WHAT VALUE: VALUE must be the configured version.
agree() {
    if test "$2" = "$want"; then
        echo "ok:   $1 $2"
    else
        echo "FAIL: $1 is '$2', configure says '$want'"
        status=1
    fi
}

# Each line of print-version after the first: "name value".
printf '%s\n' "$out" | sed 1d >"${TMPDIR:-/tmp}/check-version.$$"
while read -r name value; do
    agree "$name" "$value"
done <"${TMPDIR:-/tmp}/check-version.$$"
rm -f "${TMPDIR:-/tmp}/check-version.$$"

# A path to a .pc file is read as that file, whatever PKG_CONFIG_PATH says.
agree "pkg-config --modversion subiter.pc" \
    "$("$PKG_CONFIG" --modversion "$pc" 2>&1)"

# .TH TITLE SECTION DATE "subiter VERSION" "subiter Manual"
for page in "$top_srcdir"/man/*.[1-9]; do
    test -f "$page" || continue
    grep -q '^\.TH' "$page" || continue # a .so link page
    v=$(sed -n 's/^\.TH [^"]*"subiter \([^"]*\)".*/\1/p' "$page")
    agree "${page##*/} .TH" "$v"
done

# subiter_version(3) shows the macros' values in its synopsis.
page="$top_srcdir/man/subiter_version.3"
m() {
    sed -n "s/^\.B #define SUBITER_VERSION_$1  *//p" "$page" | tr -d '"'
}
agree "subiter_version.3 SUBITER_VERSION_MAJOR.MINOR.PATCH" \
    "$(m MAJOR).$(m MINOR).$(m PATCH)"
agree "subiter_version.3 SUBITER_VERSION_STRING" "$(m STRING)"

test "$status" -eq 0 && echo "PASS: the version is $want everywhere"
exit $status
