#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The rnbd command line against a real rnbd-server over two paths: copy a
# file onto the device, read it back (an unaligned length), copy the whole
# device out, compare; info; bench; refusals exit 1 (usage errors 2): a
# second writer in rnbd's words, a read or write past the end with nothing
# done; a server killed and restarted under bench and under a write, with
# no error and the data intact.
#
#   test_rnbd_cli.sh RNBD_SERVER RNBD
set -uo pipefail
srvbin=$1 cli=$2
work=$(mktemp -d)
spid=0
trap '[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null; rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

truncate -s 16M "$work/disk"
head -c 3000000 /dev/urandom > "$work/in.bin"
. "$(dirname "$0")/lib.sh"
srv_start_two "$work" "$srvbin" --export "disk=$work/disk" \
	--export "ro=$work/disk:ro"

"$cli" info -s "$s" -d disk > "$work/info" || bad "info failed"
grep -q "^size 16777216$" "$work/info" || bad "info: $(cat "$work/info")"
"$cli" copy -s "$s" -d disk --from "$work/in.bin" --progress 2> "$work/copy.err" ||
	bad "copy to the device failed: $(cat "$work/copy.err")"
grep -q "100.0%" "$work/copy.err" || bad "no progress shown"
cmp -n 3000000 "$work/disk" "$work/in.bin" || bad "the exported file differs"
"$cli" read -s "$s" -d disk --length 3000000 -o "$work/out.bin" || bad "read failed"
cmp "$work/in.bin" "$work/out.bin" || bad "read back differs"
"$cli" copy -s "$s" -d disk --to "$work/all.bin" || bad "copy from the device failed"
cmp "$work/all.bin" "$work/disk" || bad "device copy differs"
printf 'tail' | "$cli" write -s "$s" -d disk --offset 4096 -i - --fua || bad "write from stdin failed"
[ "$(dd if="$work/disk" bs=1 skip=4096 count=4 2>/dev/null)" = tail ] || bad "stdin write not in the file"
"$cli" list-exports -s "$s" > "$work/list" || bad "list-exports failed"
grep -qP '^disk\trw$' "$work/list" && grep -qP '^ro\tro$' "$work/list" ||
	bad "list-exports: $(cat "$work/list")"
# bench: a short run of each kind, no error, some IO
for rw in randwrite randread write read; do
	j=$("$cli" bench -s "$s" -d disk --rw "$rw" --bs 4k --qd 8 --time 0.5 --json) ||
		bad "bench $rw failed"
	grep -q '"errors":0' <<<"$j" && ! grep -q '"iops":0.0' <<<"$j" ||
		bad "bench $rw: $j"
done
"$cli" bench -s "$s" -d disk --rw sideways 2>/dev/null; [ $? -eq 2 ] || bad "bad --rw not a usage error"
# refusals: a read-only export written, a missing device, a bad offset
"$cli" write -s "$s" -d ro -i "$work/in.bin" 2>/dev/null; [ $? -eq 1 ] || bad "ro write not refused"
"$cli" info -s "$s" -d nosuch 2>/dev/null; [ $? -eq 1 ] || bad "missing device not refused"
"$cli" read -s "$s" -d disk --offset 100 -o /dev/null 2>/dev/null; [ $? -eq 1 ] || bad "unaligned offset not refused"
"$cli" bogus -s "$s" -d disk 2>/dev/null; [ $? -eq 2 ] || bad "bad command not a usage error"

# wait_for CMD: up to 10 s for CMD to succeed
wait_for() {
	for _ in $(seq 1 100); do eval "$1" && return 0; sleep 0.1; done
	return 1
}
# a second writer: refused (exit 1) with rnbd's meaning of -EPERM, not
# librtrs's; the first holds the device open, blocked on its input
mkfifo "$work/hold"
"$cli" write -s "$s" -d disk --session holder -i "$work/hold" & wp=$!
wait_for 'grep -q "session holder opened disk (rw)" "$work/srv.err"' ||
	bad "the first writer did not open the device"
printf x | "$cli" write -s "$s" -d disk -i - 2> "$work/w2.err"; rc=$?
[ $rc -eq 1 ] && grep -q "open disk: the file is already open for writing (through any of its names)" "$work/w2.err" &&
	! grep -q "session name in use" "$work/w2.err" ||
	bad "second writer: exit $rc, $(cat "$work/w2.err")"
: > "$work/hold"
wait "$wp" || bad "the first writer failed"
# past the end: refused before any IO, the export unchanged, no output
cp "$work/disk" "$work/disk.before"
head -c 8192 /dev/urandom > "$work/8k"
"$cli" write -s "$s" -d disk --offset $((16777216 - 4096)) -i "$work/8k" 2> "$work/end.err"; rc=$?
[ $rc -eq 1 ] && grep -q "write: offset 16773120 + length 8192 is past the end of the device (size 16777216)" "$work/end.err" ||
	bad "write straddling the end: exit $rc, $(cat "$work/end.err")"
head -c $((16777216 + 4096)) /dev/urandom > "$work/big"
"$cli" copy -s "$s" -d disk --from "$work/big" 2> "$work/end.err"; rc=$?
[ $rc -eq 1 ] && grep -q "past the end of the device" "$work/end.err" ||
	bad "copy of a file larger than the device: exit $rc, $(cat "$work/end.err")"
cmp "$work/disk" "$work/disk.before" || bad "a refused write changed the export"
"$cli" read -s "$s" -d disk --offset $((16777216 - 4096)) --length 8192 > "$work/end.out" 2> "$work/end.err"; rc=$?
[ $rc -eq 1 ] && [ ! -s "$work/end.out" ] &&
	grep -q "read: offset 16773120 + length 8192 is past the end" "$work/end.err" ||
	bad "read straddling the end: exit $rc, $(wc -c < "$work/end.out") bytes out, $(cat "$work/end.err")"
"$cli" read -s "$s" -d disk --offset 16777216 --length 4096 -o "$work/end.out" 2>/dev/null; rc=$?
[ $rc -eq 1 ] && [ ! -s "$work/end.out" ] || bad "read past the end: exit $rc"
"$cli" read -s "$s" -d disk --offset 16777216 -o "$work/end.out" && [ ! -s "$work/end.out" ] ||
	bad "read of nothing at the end failed"

# The server restarts (killed, down ~1 s, back at the same addresses):
# IO waits for it (--no-path-timeout, default 30 s) and the device is
# opened again; no request fails.
nsrv=1
srv_kill() {
	kill -9 "$spid"
	wait "$spid" 2>/dev/null
}
srv_again() {
	nsrv=$((nsrv + 1))
	"$srvbin" --listen "$a1,$a2" --export "disk=$work/disk" \
		--export "ro=$work/disk:ro" > "$work/srv$nsrv.out" 2> "$work/srv$nsrv.err" &
	spid=$!
}
# bench: 32 writes in flight when the server dies
"$cli" bench -s "$s" -d disk --session benchr --rw randwrite --bs 4k --qd 32 \
	--time 3 --json > "$work/bench.json" 2> "$work/bench.err" & bp=$!
wait_for 'grep -q "session benchr opened disk" "$work/srv.err"' || bad "bench did not open the device"
srv_kill
sleep 1
srv_again
wait "$bp" || bad "bench across a server restart: exit $?, $(cat "$work/bench.err")"
grep -q '"errors":0' "$work/bench.json" && ! grep -q '"iops":0.0' "$work/bench.json" ||
	bad "bench across a server restart: $(cat "$work/bench.json")"
# a write fed through a pipe: 2 MiB before the restart, 2 MiB submitted
# while the server is down; all of it lands
head -c $((4 << 20)) /dev/urandom > "$work/r.bin"
mkfifo "$work/feed"
"$cli" write -s "$s" -d disk -i "$work/feed" 2> "$work/rw.err" & wp=$!
exec 4> "$work/feed"
head -c $((2 << 20)) "$work/r.bin" >&4
wait_for 'cmp -s -n $((2 << 20)) "$work/disk" "$work/r.bin"' || bad "the first half did not land"
srv_kill
{ tail -c +$(((2 << 20) + 1)) "$work/r.bin" >&4; } &
exec 4>&-
sleep 1
srv_again
wait "$wp" || bad "write across a server restart: exit $?, $(cat "$work/rw.err")"
cmp -n $((4 << 20)) "$work/disk" "$work/r.bin" || bad "write across a server restart: the data differ"
"$cli" read -s "$s" -d disk --length $((4 << 20)) -o "$work/r.out" && cmp "$work/r.out" "$work/r.bin" ||
	bad "read back after the restart differs"
kill -TERM "$spid"
wait "$spid" || bad "server exit status $?"
spid=0
# bad settings: exit 2 with a line that names them
printf 'listen %s:0\nexport d=%s\nzero-copy maybe\n' "$ADDR1" "$work/disk" > "$work/bad.conf"
"$srvbin" --config "$work/bad.conf" 2> "$work/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -q "bad.conf:3: zero-copy is on or off, not 'maybe'" "$work/bad.err" ||
	bad "bad config value: exit $rc, $(cat "$work/bad.err")"
"$srvbin" --listen "$ADDR1:0" --export "d=$work/disk" --threads 0 2> "$work/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -q "threads is 1..64, not '0'" "$work/bad.err" ||
	bad "bad --threads: exit $rc, $(cat "$work/bad.err")"

# A block device with 4 KiB logical blocks (a loop device, as root): O_DIRECT
# takes 4 KiB-aligned IO only, so a 512-byte write goes through the page
# cache and a 64 KiB one direct; both must land, and read back equal.
loop=
if [ "$(id -u)" -eq 0 ] && truncate -s 16M "$work/lo.img" &&
   loop=$(losetup -b 4096 --show -f "$work/lo.img" 2>/dev/null); then
	trap '[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null; losetup -d "$loop"; rm -rf "$work"' EXIT
	srv_start_two "$work" "$srvbin" --export "blk=$loop"
	grep -q "^export blk io=direct$" "$work/srv.out" || bad "loop device: $(grep export "$work/srv.out")"
	head -c 512 /dev/urandom > "$work/s512"
	head -c 65536 /dev/urandom > "$work/s64k"
	"$cli" write -s "$s" -d blk --offset 512 -i "$work/s512" || bad "512-byte write failed"
	"$cli" write -s "$s" -d blk --offset 8192 -i "$work/s64k" || bad "64 KiB write failed"
	"$cli" read -s "$s" -d blk --offset 512 --length 512 -o "$work/r512" &&
		cmp "$work/s512" "$work/r512" || bad "512-byte read back differs"
	"$cli" read -s "$s" -d blk --offset 8192 --length 65536 -o "$work/r64k" &&
		cmp "$work/s64k" "$work/r64k" || bad "64 KiB read back differs"
	kill -TERM "$spid"
	wait "$spid" || bad "server exit status $?"
	spid=0
	sync
	losetup -d "$loop"
	trap '[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null; rm -rf "$work"' EXIT
	cmp -n 512 -i 512:0 "$work/lo.img" "$work/s512" &&
		cmp -n 65536 -i 8192:0 "$work/lo.img" "$work/s64k" ||
		bad "the loop device's file differs"
else
	echo "skip: no 4 KiB loop device (needs root)"
fi
[ "$fail" -eq 0 ] && echo "rnbd cli: all passed"
exit "$fail"
