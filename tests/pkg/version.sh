#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# One version, CMake's, everywhere it is written down: the generated
# <rtrs/version.h>, the .pc files, the man page footers (sources carry
# @PROJECT_VERSION@, the build fills it in) and the README's status line.
#   version.sh SRCDIR BUILDDIR VERSION
set -u
src=$1 build=$2 ver=$3
fail=0
bad() { echo "FAIL: $*"; fail=1; }

grep -q "^#define RTRS_VERSION_STRING \"$ver\"$" "$build/include/rtrs/version.h" ||
	bad "include/rtrs/version.h: RTRS_VERSION_STRING is not \"$ver\""
grep -rn '#define RTRS_VERSION_M' "$src/include" | grep -v 'version.h.in:' &&
	bad "a version number written by hand in include/"
for pc in "$build"/*.pc; do
	grep -qx "Version: $ver" "$pc" || bad "$pc: not Version: $ver"
done
grep -q "^Status (v$ver)" "$src/README.md" || bad "README.md: no 'Status (v$ver)'"
for page in "$src"/docs/man/*.[1378]; do
	name=${page##*/}
	# alias pages (.so) have no footer
	grep -q '^\.so ' "$page" && continue
	grep -q '^\.TH .* "librtrs @PROJECT_VERSION@" ' "$page" ||
		bad "docs/man/$name: .TH footer is not \"librtrs @PROJECT_VERSION@\""
	grep -q "^\.TH .* \"librtrs $ver\" " "$build/man/$name" ||
		bad "build man/$name: .TH footer is not \"librtrs $ver\""
done
[ $fail = 0 ] && echo "version $ver everywhere"
exit $fail
