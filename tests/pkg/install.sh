#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# cmake --install BUILD --prefix PREFIX into an empty scratch prefix:
# everything lands under PREFIX (nothing in the system's directories), and
# the installed tools, plugin and fio engine start without LD_LIBRARY_PATH,
# on the libraries of PREFIX, and man finds the functions' pages. The
# fixture of the pkg.consumer.* tests.
#   install.sh BUILDDIR PREFIX VERSION
set -u
build=$1 prefix=$2 ver=$3
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# An absolute DESTINATION is installed there whatever --prefix says: refuse
# before it writes into the system.
abs=$(find "$build" -name cmake_install.cmake \
	-exec grep -h 'file(INSTALL DESTINATION "/' {} +)
if [ -n "$abs" ]; then
	echo "FAIL: installs outside the prefix:"
	echo "$abs"
	exit 1
fi
rm -rf "$prefix"
mkdir -p "$prefix"
if ! cmake --install "$build" --prefix "$prefix" >"$prefix/.install.log" 2>&1; then
	cat "$prefix/.install.log"
	exit 1
fi
outside=$(grep -v "^$prefix/" "$build/install_manifest.txt")
[ -z "$outside" ] || bad "installed outside $prefix: $outside"

unset LD_LIBRARY_PATH
# $1 resolves its librtrs (and librnbd) to the copies in PREFIX
resolves() {
	libs=$(ldd "$1" 2>&1 | grep -E 'lib(rtrs|rnbd)\.so|not found')
	echo "$libs" | grep -q librtrs || bad "$1: no librtrs"
	echo "$libs" | grep -v "=> $prefix/" | grep . &&
		bad "$1: libraries not from $prefix"
}
for t in rtrs-perf rtrs-demo rtrsctl rnbd rnbd-server; do
	f=$prefix/bin/$t
	if [ ! -x "$f" ]; then
		bad "$t: not installed in $prefix/bin"
		continue
	fi
	v=$("$f" --version 2>&1)
	[ "$v" = "$t $ver" ] || bad "$f --version: '$v'"
	resolves "$f"
done
plugin=$(find "$prefix" -name nbdkit-rnbd-plugin.so)
if [ -z "$plugin" ]; then
	bad "no nbdkit-rnbd-plugin.so in $prefix"
else
	resolves "$plugin"
	nbdkit --dump-plugin "$plugin" 2>&1 | grep -qx "version=$ver" ||
		bad "$plugin does not load into nbdkit"
fi
for m in $(find "$prefix" -name librnbd-fio.so); do
	resolves "$m"
done
# man finds a function documented on another function's page (an alias)
if command -v man >/dev/null; then
	p=$(man -M "$prefix/share/man" -w rtrs_clt_close 2>&1)
	[ "$p" = "$prefix/share/man/man3/rtrs_clt_open.3" ] ||
		bad "man rtrs_clt_close: '$p'"
fi
[ $fail = 0 ] && echo "installed into $prefix; tools start: $(ls "$prefix/bin" | tr '\n' ' ')"
exit $fail
