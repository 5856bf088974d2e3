#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# examples/rnbd_hello against a real rnbd-server exporting a scratch file:
# it must exit 0, and its block must be in the file.
#   rnbd_hello.sh RNBD_SERVER RNBD_HELLO
set -uo pipefail
srvbin=$1 hello=$2
work=$(mktemp -d)
spid=0
trap '[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null; rm -rf "$work"' EXIT
truncate -s 1M "$work/disk"
. "$(dirname "$0")/../integration/lib.sh"
srv_start_two "$work" "$srvbin" --export "disk=$work/disk"
"$hello" "$a1" disk || { cat "$work/srv.err"; exit 1; }
[ "$(head -c 11 "$work/disk")" = "hello, rnbd" ] || { echo "FAIL: the block is not in the file"; exit 1; }
kill -TERM "$spid"
wait "$spid" || { echo "FAIL: rnbd-server exit status $?"; exit 1; }
spid=0
