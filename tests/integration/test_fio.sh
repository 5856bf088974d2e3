#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# fio with verify=crc32c on an rnbd device, three ways: the native engine
# (librnbd-fio.so, two paths) in poll mode (its default) and with librtrs
# threads (rnbd_poll=0), and fio's own nbd engine through
# nbdkit-rnbd-plugin. Every job must end with err=0 and fio's exit 0
# (verify_fatal stops on the first mismatch).
#
#   test_fio.sh RNBD_SERVER ENGINE PLUGIN
set -uo pipefail
srvbin=$(realpath "$1") engine=$(realpath "$2") plugin=$(realpath "$3")
command -v fio >/dev/null || { echo "skip: no fio"; exit 77; }
work=$(mktemp -d)
spid=0 npid=0
cleanup() {
	[ "$npid" -gt 0 ] && kill "$npid" 2>/dev/null
	[ "$spid" -gt 0 ] && kill "$spid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

mb=${RTRS_TEST_FIO_MB:-32}
truncate -s $((2 * mb))M "$work/disk"
. "$(dirname "$0")/lib.sh"
srv_start_two "$work" "$srvbin" --export "disk=$work/disk"

run() { # name, then the engine lines
	local name=$1; shift
	{
		echo "[global]"
		for l in "$@"; do echo "$l"; done
		cat <<JOB
size=${mb}m
verify=crc32c
do_verify=1
verify_fatal=1
verify_state_save=0
[w4k]
rw=randwrite
bs=4k
iodepth=16
[rw64k]
stonewall
rw=randrw
bs=64k
iodepth=4
offset=${mb}m
JOB
	} > "$work/$name.fio"
	if ! (cd "$work" && fio "$work/$name.fio") > "$work/$name.out" 2>&1; then
		bad "$name: fio failed"
		tail -20 "$work/$name.out" >&2
	fi
	[ "$(grep -c 'err= 0' "$work/$name.out")" -eq 2 ] || bad "$name: a job had errors"
	echo "$name: $(grep -E '^ +(READ|WRITE):' "$work/$name.out" | tr -s ' ' | paste -sd ';')"
}

run native "ioengine=external:$engine" "rnbd_server=$s" "rnbd_device=disk"
run native-threads "ioengine=external:$engine" "rnbd_server=$s" \
	"rnbd_device=disk" "rnbd_poll=0"

if command -v nbdkit >/dev/null; then
	nbdkit_start "$work" "$plugin" "$s" disk
	run nbd "ioengine=nbd" "uri=nbd+unix:///?socket=$sock"
	kill "$npid"; wait "$npid" 2>/dev/null; npid=0
else
	echo "skip: no nbdkit (nbd engine part)"
fi
kill -TERM "$spid"; wait "$spid" || bad "rnbd-server exit $?"; spid=0
[ "$fail" -eq 0 ] && echo "fio: all passed"
exit "$fail"
