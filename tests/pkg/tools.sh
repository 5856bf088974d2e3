#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Every tool: --help prints its usage on stdout and exits 0, --version
# prints "<tool> VERSION" (CMake's) and exits 0; rtrs-perf's server and
# client take --help too. An nbdkit plugin given with --plugin must report
# the same version to nbdkit --dump-plugin.
#   tools.sh VERSION [--plugin PLUGIN.so] TOOL...
set -u
ver=$1
shift
plugin=
if [ "${1:-}" = --plugin ]; then
	plugin=$2
	shift 2
fi
fail=0
bad() { echo "FAIL: $*"; fail=1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

help() {        # help LABEL CMD...: exit 0, "usage" on stdout
	label=$1
	shift
	"$@" >"$out" 2>/dev/null
	rc=$?
	[ $rc = 0 ] || bad "$label: exit $rc"
	grep -q usage "$out" || bad "$label: no usage on stdout"
}

for t in "$@"; do
	name=${t##*/}
	help "$name --help" "$t" --help
	v=$("$t" --version 2>/dev/null)
	rc=$?
	[ $rc = 0 ] || bad "$name --version: exit $rc"
	[ "$v" = "$name $ver" ] || bad "$name --version: '$v', want '$name $ver'"
	if [ "$name" = rtrs-perf ]; then
		help "rtrs-perf server --help" "$t" server --help
		help "rtrs-perf client --help" "$t" client --help
	fi
done
if [ -n "$plugin" ]; then
	nbdkit --dump-plugin "$plugin" 2>/dev/null | grep -qx "version=$ver" ||
		bad "$plugin: nbdkit --dump-plugin: no version=$ver"
fi
[ $fail = 0 ] && echo "$# tools: --help and --version $ver"
exit $fail
