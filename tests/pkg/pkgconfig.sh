#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Programs built with pkg-config against the scratch prefix that
# pkg.install filled, and run: the consumer with --libs librnbd (which
# requires librtrs), and examples/hello.c as the README builds it;
# examples/rnbd_hello.c is only built (it needs an rnbd-server).
#   pkgconfig.sh PREFIX SRCDIR WORKDIR VERSION
set -eu
prefix=$1 src=$2 work=$3 ver=$4
PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name librtrs.pc)")
export PKG_CONFIG_PATH
unset LD_LIBRARY_PATH
for m in librtrs librnbd; do
	v=$(pkg-config --modversion $m)
	[ "$v" = "$ver" ] || { echo "FAIL: $m version $v, want $ver"; exit 1; }
done
rm -rf "$work"
mkdir -p "$work"
set -x
${CC:-cc} -std=c11 -Wall -Wextra -Werror "$src/tests/pkg/consumer/consumer.c" \
	$(pkg-config --cflags --libs librnbd) \
	-Wl,-rpath,"$(pkg-config --variable=libdir librnbd)" -o "$work/consumer"
ldd "$work/consumer" | grep -q "librtrs.so.0 => $prefix/" ||
	{ echo "FAIL: consumer does not use $prefix's librtrs"; exit 1; }
"$work/consumer" "$ver"
cd "$work"
${CC:-cc} -std=c11 -Wall -Wextra -Werror "$src/examples/hello.c" \
	$(pkg-config --cflags --libs librtrs) \
	-Wl,-rpath,"$(pkg-config --variable=libdir librtrs)" -o hello
./hello
${CC:-cc} -std=c11 -Wall -Wextra -Werror "$src/examples/rnbd_hello.c" \
	$(pkg-config --cflags --libs librnbd) -o rnbd_hello
