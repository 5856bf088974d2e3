#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The rnbd command line against a real rnbd-server over two paths: copy a
# file onto the device, read it back (an unaligned length), copy the whole
# device out, compare; info; bench; refusals exit 1 (usage errors 2).
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
kill -TERM "$spid"
wait "$spid" || bad "server exit status $?"
spid=0
[ "$fail" -eq 0 ] && echo "rnbd cli: all passed"
exit "$fail"
