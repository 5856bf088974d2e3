#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# tests/pkg/consumer, a CMake project with find_package(librtrs VERSION
# EXACT REQUIRED), configured with CMAKE_PREFIX_PATH set to the scratch
# prefix that pkg.install filled, built and run: the shared consumer on the
# prefix's librtrs.so, the static one (RTRS_BUILD_STATIC) on no librtrs.so.
#   find_package.sh PREFIX SRCDIR WORKDIR VERSION STATIC(ON|OFF)
set -eu
prefix=$1 src=$2 work=$3 ver=$4 static=$5
unset LD_LIBRARY_PATH
rm -rf "$work"
set -x
cmake -S "$src/tests/pkg/consumer" -B "$work" -G Ninja \
	-DCMAKE_PREFIX_PATH="$prefix" -DWANT_VERSION="$ver"
cmake --build "$work"
set +x
ldd "$work/consumer" | grep -q "librtrs.so.0 => $prefix/" ||
	{ echo "FAIL: consumer does not use $prefix's librtrs"; exit 1; }
"$work/consumer" "$ver"
case $static in
ON|on|1|TRUE|true|YES|yes)
	[ -x "$work/consumer_static" ] ||
		{ echo "FAIL: no librtrs::rnbd_static in the package"; exit 1; }
	if ldd "$work/consumer_static" | grep -E 'lib(rtrs|rnbd)\.so'; then
		echo "FAIL: consumer_static uses a shared librtrs or librnbd"
		exit 1
	fi
	"$work/consumer_static" "$ver"
	;;
esac
