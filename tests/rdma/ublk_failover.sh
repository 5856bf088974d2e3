# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# shellcheck shell=bash disable=SC2154
# Sourced by test_ublk.sh for its modes cut, restart and kill (see there):
# the server runs ($spid at $a1,$a2, $s), $work, $cli, $srvbin, bad(),
# step() and $bg (background processes the cleanup kills) are set.

ctl=$(dirname "$cli")/rtrsctl
MiB=1048576
# poll until CMD (a shell string) succeeds: at most N tries 0.2 s apart.
# A bound against a hang, not a timing: the slow emulated guest takes what
# it takes below it.
wait_for() {
	local cmd=$1 n=${2:-600} i
	for ((i = 0; i < n; i++)); do
		eval "$cmd" && return 0
		sleep 0.2
	done
	return 1
}
# the map daemon's session counters (rtrsctl on its control socket)
sstat() { # KEY: the session's counter KEY (the first, session-wide one)
	"$ctl" --pid "$pid" --json stats "$sess" 2>/dev/null |
		grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2
}
pstate() { # IDX: the state of client path IDX
	"$ctl" --pid "$pid" --json stats "$sess" 2>/dev/null |
		grep -o "{\"idx\":$1,\"state\":\"[a-z]*\"" | cut -d'"' -f6
}
precon() { # IDX: the successful reconnects of client path IDX
	"$ctl" --pid "$pid" --json stats "$sess" 2>/dev/null |
		grep -o "{\"idx\":$1,[^}]*" | grep -o '"reconnects_ok":[0-9]*' |
		cut -d: -f2
}
map_dev() { # SESSION [ARGS...]: map the export, set dev, pid, sess
	sess=$1
	shift
	dev=$("$cli" map -s "$s" -d disk --session "$sess" "$@") ||
		{ bad "map failed"; exit 1; }
	[ -b "$dev" ] || { bad "map printed '$dev'"; exit 1; }
	pid=$("$cli" list-mapped --json | sed -n "s|.*\"dev\":\"$dev\"[^}]*\"pid\":\([0-9]*\).*|\1|p")
	[ -n "$pid" ] || { bad "list-mapped: $("$cli" list-mapped --json)"; exit 1; }
	echo "mapped $dev, daemon $pid, session $sess"
}
fio_start() { # NAME OFFSET SIZE: randwrite 4k-128k QD 16, verify=crc32c
	fio --name="$1" --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-128k --iodepth=16 --offset="$2" \
		--size="$3" --verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output-format=terse --terse-version=3 > "$work/$1.fio" 2>&1 &
	fp=$!
	bg="$bg $fp"
}
fio_check() { # NAME: fio $fp exits 0 with 0 errors; prints what it did
	local rc
	wait "$fp"
	rc=$?
	# terse v3: field 5 the error count, 6 KiB read (the verify reads),
	# 47 KiB written
	echo "fio $1: exit $rc, errors $(cut -d';' -f5 "$work/$1.fio" | tail -1)," \
		"read $(cut -d';' -f6 "$work/$1.fio" | tail -1) KiB," \
		"written $(cut -d';' -f47 "$work/$1.fio" | tail -1) KiB"
	[ "$rc" -eq 0 ] && [ "$(cut -d';' -f5 "$work/$1.fio" | tail -1)" = 0 ] ||
		bad "fio $1: $(cat "$work/$1.fio")"
}
unmap_dev() {
	"$cli" unmap "$dev" || bad "unmap failed"
	[ ! -e "$dev" ] || bad "$dev still there after unmap"
	[ -z "$(ls "$RNBD_RUN_DIR")" ] || bad "state left: $(ls "$RNBD_RUN_DIR")"
}

case $mode in
cut)
	command -v lab-link > /dev/null || { echo "skip: lab-link: runs in the RDMA lab"; exit 77; }
	step "map over $s"
	map_dev ublk-cut --no-path-timeout 120000
	step "fio, and path 0's cable pulled after 16 writes"
	fio_start cut 0 32M
	wait_for '[ "$(sstat write_cnt)" -ge 16 ]' ||
		bad "IO did not start: $(sstat write_cnt) writes"
	lab-link rxe down
	# until the heartbeats failed path 0 (no longer connected)
	wait_for '[ "$(pstate 0)" != connected ]' 1500 ||
		bad "path 0 still connected with its cable out"
	echo "path 0 $(pstate 0) after the cut; writes $(sstat write_cnt), failovers $(sstat failovers)"
	lab-link rxe up || bad "lab-link rxe up failed"
	fio_check cut
	fo=$(sstat failovers)
	echo "session: writes $(sstat write_cnt), reads $(sstat read_cnt), errors $(sstat errors), failovers $fo"
	[ "${fo:-0}" -ge 1 ] || bad "no request failed over ($fo)"
	[ "$(sstat errors)" = 0 ] || bad "the session counted $(sstat errors) errors"
	wait_for '[ "$(pstate 0)" = connected ]' 1500 ||
		bad "path 0 did not come back: $(pstate 0)"
	echo "path 0 $(pstate 0), reconnects $(precon 0)"
	[ "$(precon 0)" -ge 1 ] || bad "path 0 did not reconnect"
	step unmap
	unmap_dev
	;;
restart)
	step "map over $s"
	map_dev ublk-rst --no-path-timeout 180000
	head -c $((8 * MiB)) /dev/urandom > "$work/in"
	step "4 MiB before the restart"
	dd if="$work/in" of="$dev" bs=1M count=4 oflag=direct conv=fsync status=none ||
		bad "the first write failed"
	fio_start rst 16M 32M
	wait_for '[ "$(sstat write_cnt)" -ge 64 ]' ||
		bad "IO did not start: $(sstat write_cnt) writes"
	w0=$(sstat write_cnt)
	step "rnbd-server killed after $w0 writes"
	kill -9 "$spid"
	wait "$spid" 2>/dev/null
	# the rest of the data while no server runs
	dd if="$work/in" of="$dev" bs=1M skip=4 seek=4 count=4 oflag=direct \
		conv=fsync status=none 2> "$work/dd.err" &
	dp=$!
	bg="$bg $dp"
	wait_for '[ "$(sstat paths_connected)" = 0 ]' 1500 ||
		bad "the session still has a path: $(sstat paths_connected)"
	echo "no path; held $(sstat held), inflight $(sstat inflight)"
	step "rnbd-server again at $a1,$a2"
	"$srvbin" --export "disk=$work/disk" --listen "$a1,$a2" \
		> "$work/srv2.out" 2> "$work/srv2.err" &
	spid=$!
	wait "$dp" || bad "dd across the restart: exit $?, $(cat "$work/dd.err")"
	fio_check rst
	# librtrs counts the new server's -EBADF answers (the device it does
	# not know yet) as errors; librnbd opens the device again and sends
	# them once more: the application sees none
	echo "session: writes $(sstat write_cnt), reads $(sstat read_cnt), errors $(sstat errors) (answers -EBADF, sent again after the re-open), failovers $(sstat failovers), held $(sstat held)"
	[ "$(sstat paths_connected)" = 2 ] || bad "paths connected: $(sstat paths_connected)"
	grep -q "session ublk-rst opened disk" "$work/srv2.err" ||
		bad "the new server did not see the device opened: $(cat "$work/srv2.err")"
	dd if="$dev" of="$work/out" bs=1M count=8 iflag=direct status=none ||
		bad "read back failed"
	cmp "$work/in" "$work/out" || bad "read back through $dev differs"
	cmp -n $((8 * MiB)) "$work/in" "$work/disk" || bad "the server's file differs"
	step unmap
	unmap_dev
	;;
kill)
	step "map over $s"
	map_dev ublk-kill
	b=${dev#/dev/}
	id=${b#ublkb}
	step "an O_DIRECT reader, and the daemon killed after 64 reads"
	dd if="$dev" of=/dev/null bs=4k iflag=direct > "$work/rd.out" 2> "$work/rd.err" &
	rp=$!
	bg="$bg $rp"
	wait_for '[ "$(sstat read_cnt)" -ge 64 ]' ||
		bad "IO did not start: $(sstat read_cnt) reads"
	kill -9 "$pid"
	# the kernel sees its daemon die (ublk checks every 5 s), fails the
	# IO in flight and removes the disk
	wait_for '! kill -0 "$rp" 2>/dev/null' 1500 || bad "the reader hangs"
	wait "$rp"
	rc=$?
	echo "reader: exit $rc, $(tail -1 "$work/rd.err")"
	[ "$rc" -ne 0 ] && grep -q "Input/output error" "$work/rd.err" ||
		bad "the reader did not see an IO error: exit $rc, $(cat "$work/rd.err")"
	wait_for '[ ! -e "$dev" ]' 1500 || bad "$dev still there"
	wait_for '! kill -0 "$pid" 2>/dev/null' 1500 || bad "daemon $pid still there"
	! dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null ||
		bad "$dev still reads"
	"$cli" list-mapped | grep -qP "^$dev\tdisk\t$s\trw\tpid $pid\tdead$" ||
		bad "list-mapped: $("$cli" list-mapped)"
	"$cli" list-mapped --json | grep -q "\"dev\":\"$dev\".*\"pid\":$pid,\"alive\":false" ||
		bad "list-mapped --json: $("$cli" list-mapped --json)"
	step "unmap of the dead mapping"
	"$cli" unmap "$dev" || bad "unmap failed"
	[ ! -e "/dev/ublkc$id" ] || bad "/dev/ublkc$id still there"
	[ -z "$(ls "$RNBD_RUN_DIR")" ] || bad "state left: $(ls "$RNBD_RUN_DIR")"
	[ "$("$cli" list-mapped --json)" = "[]" ] || bad "list-mapped after unmap"
	"$cli" unmap "$dev" 2>/dev/null && bad "a second unmap succeeded"
	step "map again"
	map_dev ublk-kill2
	dd if="$dev" of="$work/again" bs=1M count=1 iflag=direct status=none &&
		cmp -n $MiB "$work/again" "$work/disk" || bad "read after a new map"
	unmap_dev
	;;
esac
step done
