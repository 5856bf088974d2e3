#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# `rnbd map` through ublk, in the lab guest (root and ublk_drv: the host
# kernel has none; without them the test is skipped, 77). An rnbd-server
# export of a 64 MiB file over two paths ($RTRS_PROVIDER, $RTRS_TEST_ADDRS)
# mapped as /dev/ublkbN:
#   quick: a missing export refused (exit 1, no device); its size, block sizes, FUA
#          and a hardware queue per CPU; 16 MiB of random bytes written
#          with O_DIRECT (and fsync: a flush) read back identical with
#          O_DIRECT and present in the server's file; write-zeroes (and
#          discard where the export has it) seen in the file;
#          list-mapped; unmap: no device, no daemon, no state file
#   full:  that, and mkfs.ext4, mount, files written, unmounted, mounted
#          again and compared, e2fsck -fn clean; fio randwrite 4k-128k
#          QD 16 with verify=crc32c, 0 errors; a read-only mapping
#          refuses writes; a --foreground daemon ended with SIGTERM
#          removes its device
#   nokernel: (the host) without /dev/ublk-control map exits 3 and says
#          why; list-mapped, unmap of nothing and bad usage; mappings whose
#          daemon is gone (not running, or a zombie) listed dead and
#          removed by unmap
# Failover under the block device (each maps the export by itself; the
# daemon's counters come from its control socket through rtrsctl):
#   cut:   fio randwrite 4k-128k QD 16 with verify=crc32c on the device;
#          after 16 writes path 0's cable is pulled (lab-link rxe down)
#          until its heartbeats fail it, then plugged in again: fio 0
#          errors, requests failed over, path 0 reconnected
#   restart: fio with verify and a dd of 8 MiB of random bytes (4 MiB
#          before, 4 MiB while the server is down) while rnbd-server is
#          killed (-9) and started again on the same addresses within
#          --no-path-timeout: fio 0 errors, dd succeeds, the 8 MiB read
#          back identical through the device and in the server's file,
#          the device opened again on the new server
#   kill:  the map daemon killed (-9) under an O_DIRECT reader: the reader
#          ends with an IO error (no hung IO), /dev/ublkbN goes away,
#          list-mapped shows the mapping dead, unmap deletes the rest
#          (/dev/ublkcN, the state file); a new map works again
#
#   test_ublk.sh RNBD_SERVER RNBD [quick|full|nokernel|cut|restart|kill]
set -uo pipefail
srvbin=$1 cli=$2 mode=${3:-full}
if [ "$mode" = nokernel ]; then
	[ -e /dev/ublk-control ] && { echo "skip: this kernel has ublk"; exit 77; }
	export RNBD_RUN_DIR=$(mktemp -d)
	trap 'rm -rf "$RNBD_RUN_DIR"' EXIT
	fail=0
	"$cli" map -s 127.0.0.1:1 -d disk 2> "$RNBD_RUN_DIR/err"; rc=$?
	[ $rc -eq 3 ] && grep -q "this kernel has no ublk" "$RNBD_RUN_DIR/err" ||
		{ echo "FAIL: map without ublk: exit $rc, $(cat "$RNBD_RUN_DIR/err")"; fail=1; }
	[ "$("$cli" list-mapped --json)" = "[]" ] || { echo "FAIL: list-mapped"; fail=1; }
	[ -z "$("$cli" list-mapped)" ] || { echo "FAIL: list-mapped"; fail=1; }
	"$cli" unmap /dev/ublkb7 2>/dev/null; rc=$?
	[ $rc -eq 1 ] || { echo "FAIL: unmap of nothing: exit $rc"; fail=1; }
	# mappings whose daemon is gone: a pid that does not run, and a
	# zombie named rnbd (its parent does not reap it): listed dead,
	# unmap removes them at once
	mk_state() { # ID PID
		printf 'pid=%s\ndev=/dev/ublkb%s\ndevice=disk\nsession=s\nservers=127.0.0.1:1\naccess=rw\n' \
			"$2" "$1" > "$RNBD_RUN_DIR/ublkb$1"
	}
	ln -s /bin/true "$RNBD_RUN_DIR/rnbd"
	sh -c '"$1" & exec sleep 60' sh "$RNBD_RUN_DIR/rnbd" & zpar=$!
	zpid=""
	for _ in $(seq 1 100); do
		zpid=$(pgrep -P "$zpar" -x rnbd) && grep -q '^State:.*Z' "/proc/$zpid/status" && break
		sleep 0.1
	done
	[ -n "$zpid" ] || { echo "FAIL: no zombie"; fail=1; }
	mk_state 5 "$zpid"
	mk_state 6 999999999
	"$cli" list-mapped > "$RNBD_RUN_DIR/list"
	for i in 5 6; do
		grep -qP "^/dev/ublkb$i\tdisk\t127.0.0.1:1\trw\tpid [0-9]+\tdead$" "$RNBD_RUN_DIR/list" ||
			{ echo "FAIL: list-mapped: ublkb$i not dead: $(cat "$RNBD_RUN_DIR/list")"; fail=1; }
	done
	[ "$("$cli" list-mapped --json | grep -o '"alive":false' | wc -l)" = 2 ] ||
		{ echo "FAIL: list-mapped --json: $("$cli" list-mapped --json)"; fail=1; }
	for i in 5 6; do
		t0=$SECONDS
		"$cli" unmap "/dev/ublkb$i"; rc=$?
		echo "unmap of a dead mapping (ublkb$i): exit $rc in $((SECONDS - t0)) s"
		[ $rc -eq 0 ] && [ ! -e "$RNBD_RUN_DIR/ublkb$i" ] ||
			{ echo "FAIL: unmap of a dead mapping ublkb$i: exit $rc"; fail=1; }
	done
	kill "$zpar" 2>/dev/null; wait "$zpar" 2>/dev/null
	rm -f "$RNBD_RUN_DIR/rnbd" "$RNBD_RUN_DIR/list"
	[ "$("$cli" list-mapped --json)" = "[]" ] || { echo "FAIL: list-mapped after unmap"; fail=1; }
	for a in "unmap" "unmap /dev/sda" "list-mapped --bogus" "map -s 127.0.0.1:1" \
		 "map -s 127.0.0.1:1 -d disk --queues 0" \
		 "map -s 127.0.0.1:1 -d disk --queues 17"; do
		# shellcheck disable=SC2086
		"$cli" $a 2>/dev/null; rc=$?
		[ $rc -eq 2 ] || { echo "FAIL: rnbd $a: exit $rc, not a usage error"; fail=1; }
	done
	exit $fail
fi
[ "$(id -u)" -eq 0 ] || { echo "skip: ublk needs root"; exit 77; }
if [ ! -e /dev/ublk-control ] && command -v lab-modules > /dev/null; then
	lab-modules ublk > /dev/null 2>&1
fi
[ -e /dev/ublk-control ] || { echo "skip: this kernel has no ublk"; exit 77; }

work=$(mktemp -d)
export RNBD_RUN_DIR=$work/run
spid=0 mnt=$work/mnt bg=""
cleanup() {
	for p in $bg; do kill -9 "$p" 2>/dev/null; done
	if command -v lab-link > /dev/null && [ "$(lab-link rxe state)" != up ]; then
		lab-link rxe up
	fi
	mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
	for f in "$RNBD_RUN_DIR"/ublkb*; do
		[ -e "$f" ] && "$cli" unmap "${f##*/}"
	done
	[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
step() { echo "== $* ($(date +%T))"; }
MiB=1048576

truncate -s 64M "$work/disk"
. "$(dirname "$0")/../integration/lib.sh"
srv_start_two "$work" "$srvbin" --export "disk=$work/disk"
case $mode in
cut|restart|kill)
	. "$(dirname "$0")/ublk_failover.sh"
	exit $fail ;;
esac

step map
# a missing export: the daemon says why, map exits 1, nothing is left
"$cli" map -s "$s" -d nosuch > "$work/none" 2> "$work/none.err"; rc=$?
[ $rc -eq 1 ] && grep -q "open nosuch" "$work/none.err" && [ ! -s "$work/none" ] ||
	bad "map of a missing export: exit $rc, $(cat "$work/none" "$work/none.err")"
ls /dev/ublkb* > /dev/null 2>&1 && bad "a device left: $(ls /dev/ublkb*)"
dev=$("$cli" map -s "$s" -d disk --session ublk-test) || { bad "map failed"; exit 1; }
[ -b "$dev" ] || { bad "map printed $dev: not a block device"; exit 1; }
echo "mapped $dev"
b=/sys/block/${dev#/dev/}
[ "$(blockdev --getsize64 "$dev")" -eq $((64 * MiB)) ] ||
	bad "size $(blockdev --getsize64 "$dev")"
"$cli" info -s "$s" -d disk > "$work/info" || bad "info failed"
lbs=$(awk '$1 == "logical_block_size" { print $2 }' "$work/info")
[ "$(cat "$b/queue/logical_block_size")" = "$lbs" ] ||
	bad "logical block size $(cat "$b/queue/logical_block_size"), export $lbs"
# a queue per IO connection: one per CPU here (at most 16)
ncpu=$(nproc); [ "$ncpu" -gt 16 ] && ncpu=16
nq=$(ls -d "$b"/mq/*/ | wc -l)
echo "$nq hardware queues"
[ "$nq" -eq "$ncpu" ] || bad "$nq hardware queues, $ncpu CPUs"
fua=$(awk '$1 == "fua" { print $2 == "yes" ? 1 : 0 }' "$work/info")
[ "$(cat "$b/queue/fua")" = "$fua" ] || bad "fua $(cat "$b/queue/fua"), export $fua"
pid=$("$cli" list-mapped --json | sed -n 's/.*"device":"disk".*"pid":\([0-9]*\).*/\1/p')
[ -n "$pid" ] && kill -0 "$pid" || bad "list-mapped: $("$cli" list-mapped --json)"
"$cli" list-mapped | grep -qP "^$dev\tdisk\t$s\trw\tpid $pid$" ||
	bad "list-mapped: $("$cli" list-mapped)"

step "16 MiB O_DIRECT"
head -c $((16 * MiB)) /dev/urandom > "$work/in"
dd if="$work/in" of="$dev" bs=1M oflag=direct conv=fsync status=none ||
	bad "write to $dev failed"
dd if="$dev" of="$work/out" bs=1M count=16 iflag=direct status=none ||
	bad "read from $dev failed"
cmp "$work/in" "$work/out" || bad "read back differs"
cmp -n $((16 * MiB)) "$work/in" "$work/disk" || bad "the server's file differs"
# the same from each CPU: each goes through its CPU's queue
for cpu in $(seq 0 $((nq - 1))); do
	head -c $MiB /dev/urandom > "$work/q$cpu"
	taskset -c "$cpu" dd if="$work/q$cpu" of="$dev" bs=1M seek=$((32 + cpu)) \
		oflag=direct conv=fsync status=none || bad "write from CPU $cpu failed"
	taskset -c "$cpu" dd if="$dev" of="$work/q$cpu.out" bs=1M skip=$((32 + cpu)) \
		count=1 iflag=direct status=none || bad "read from CPU $cpu failed"
	cmp "$work/q$cpu" "$work/q$cpu.out" || bad "CPU $cpu: read back differs"
done

step "write zeroes, discard"
head -c $MiB /dev/urandom | dd of="$dev" bs=1M seek=48 oflag=direct conv=fsync status=none
if [ "$(cat "$b/queue/write_zeroes_max_bytes")" -gt 0 ]; then
	blkdiscard -z -o $((48 * MiB)) -l $MiB "$dev" || bad "write-zeroes failed"
	cmp -n $MiB -i $((48 * MiB)):0 "$work/disk" /dev/zero ||
		bad "write-zeroes: the server's file is not zero"
	cmp -n $MiB -i $((48 * MiB)):0 "$dev" /dev/zero ||
		bad "write-zeroes: the device does not read zero"
else
	echo "(no write-zeroes on this export)"
fi
if [ "$(cat "$b/queue/discard_max_bytes")" -gt 0 ]; then
	blkdiscard -o $((56 * MiB)) -l $MiB "$dev" || bad "discard failed"
fi

if [ "$mode" = full ]; then
	step "ext4"
	mkdir -p "$mnt"
	mkfs.ext4 -q -F "$dev" || bad "mkfs.ext4 failed"
	mount "$dev" "$mnt" || bad "mount failed"
	cp "$work/in" "$mnt/in"
	for i in $(seq 1 20); do head -c $((i * 4000)) "$work/in" > "$mnt/f$i"; done
	umount "$mnt" || bad "umount failed"
	mount -o ro "$dev" "$mnt" || bad "mount again failed"
	cmp "$work/in" "$mnt/in" || bad "a file differs after remount"
	for i in $(seq 1 20); do
		cmp -s <(head -c $((i * 4000)) "$work/in") "$mnt/f$i" || bad "f$i differs"
	done
	umount "$mnt" || bad "umount failed"
	e2fsck -fn "$dev" > "$work/fsck" 2>&1 || bad "e2fsck: $(cat "$work/fsck")"

	step "fio verify=crc32c"
	fio --name=verify --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-128k --iodepth=16 --size=16M \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output-format=terse --terse-version=3 > "$work/fio" 2>&1 ||
		bad "fio: $(cat "$work/fio")"
	# terse v3: field 5 is the error count
	[ "$(cut -d';' -f5 "$work/fio" | tail -1)" = 0 ] || bad "fio errors: $(cat "$work/fio")"
fi

step unmap
"$cli" unmap "$dev" || bad "unmap failed"
[ ! -e "$dev" ] || bad "$dev still there"
[ ! -e "/dev/ublkc${dev#/dev/ublkb}" ] || bad "its char device still there"
! kill -0 "$pid" 2>/dev/null || bad "daemon $pid still runs"
[ -z "$(ls "$RNBD_RUN_DIR")" ] || bad "state left: $(ls "$RNBD_RUN_DIR")"
[ "$("$cli" list-mapped --json)" = "[]" ] || bad "list-mapped after unmap"

if [ "$mode" = full ]; then
	step "read-only"
	dev=$("$cli" map -s "$s" -d disk --ro) || bad "map --ro failed"
	[ "$(blockdev --getro "$dev")" = 1 ] || bad "$dev not read-only"
	dd if="$dev" of="$work/ro" bs=1M count=1 iflag=direct status=none &&
		cmp -n $MiB "$work/ro" "$work/disk" || bad "read-only read"
	! dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>/dev/null ||
		bad "a write to the read-only mapping succeeded"
	"$cli" unmap "$dev" || bad "unmap --ro failed"

	step "--foreground and SIGTERM"
	"$cli" map -s "$s" -d disk --foreground > "$work/fg" &
	fpid=$!
	for _ in $(seq 1 600); do [ -s "$work/fg" ] && break; sleep 0.1; done
	dev=$(cat "$work/fg")
	[ -b "$dev" ] || bad "foreground map: '$dev'"
	kill -TERM "$fpid"
	wait "$fpid" || bad "foreground daemon exit $?"
	[ ! -e "$dev" ] || bad "$dev still there after SIGTERM"
fi
step done
exit $fail
