#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# In the lab guest (CTest kernel.rnbd.rxe): the kernel's own RNBD and RTRS
# (the lab's out-of-tree modules, Debian's 6.1) against ours, over rxe,
# through the rdma-core backend (--provider rdma). Issue 18.
#
#   kclient  the kernel's rnbd-client maps an export of
#            `rnbd-server --provider rdma --listen SRV:1234 --export
#            disk=FILE`: /dev/rnbdN appears with the export's size; 4 MiB
#            of random bytes written with O_DIRECT at 1 MiB read back
#            identical and are in FILE there; mkfs.ext4 then e2fsck -fn
#            clean; fio randwrite 4k-124k with verify=crc32c, 0 errors;
#            unmap: the device goes, our server sees the session end.
#   kserver  the kernel's rnbd-server exports a loop device on port 1234:
#            `rnbd write`/`rnbd read --provider rdma` round-trip 1 MiB at
#            an offset identical, present in the loop device's file;
#            `rnbd info` gives its size; fio's native engine (librnbd)
#            with verify=crc32c, 0 errors. The kernel logs no warning.
# Two paths, one over each rxe wire, and a cable pulled for 10 s mid-IO
# (lab-link rxe down/up; CTest kernel.cut.rxe, `make check-rdma` only:
# the kernel's heartbeats, 5 x 5 s, and its client's 30 s reconnect delay
# make it long):
#   kclient-cut  the kernel's rnbd-client maps our export over both
#            wires; fio randwrite 4k-124k QD 16 with verify_backlog
#            through the cut: exit 0, 0 errors; the kernel failed the cut
#            path's requests over to the other (its failover count); its
#            client reconnects the path once the cable is back, and our
#            server, which dropped the dead one, then has two paths.
#   kserver-cut  fio's native engine with both paths to the kernel's
#            rnbd-server, the same fio through the cut: 0 errors; our
#            client failed requests over (at least once: no fencing with
#            a kernel server); path 0 connects again once the kernel's
#            server has dropped its old one.
#
#   test_kernel.sh RNBD_SERVER RNBD_CLI [FIO_ENGINE|-]
#                  [kclient|kserver|all|kclient-cut|kserver-cut|cut]
set -uo pipefail
[ -n "${LAB_RXE_SRV:-}" ] || { echo "skip: runs in the RDMA lab (tests/rdma/lab.sh run)"; exit 77; }
srvbin=$1 cli=$2 engine=${3:--} what=${4:-all}
S=$LAB_RXE_SRV S2=${LAB_RXE2_SRV:-} MiB=1048576
work=$(mktemp -d)
spid=0 fp=0 loop=""
fails=0
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
step() { echo "--- $*"; }
# a kernel that warned (a WARN_ON in rtrs-clt.c, say) fails the test
warned() { dmesg | grep -E 'WARNING:|BUG:|Call Trace' | head -5; }
wait_for() { # SECONDS CMD...: poll every 0.2 s
	local n=$(($1 * 5)); shift
	for ((; n > 0; n--)); do "$@" && return 0; sleep 0.2; done
	return 1
}
cleanup() {
	local d
	for d in /sys/block/rnbd*; do
		[ -e "$d/rnbd/unmap_device" ] && echo force > "$d/rnbd/unmap_device" 2> /dev/null
	done
	[ "$(lab-link rxe state)" = up ] || lab-link rxe up
	[ "$fp" -gt 0 ] && kill "$fp" 2> /dev/null && wait "$fp"
	[ "$spid" -gt 0 ] && kill "$spid" 2> /dev/null && wait "$spid"
	[ -n "$loop" ] && losetup -d "$loop" 2> /dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fio_ok() { # RC OUT WHAT: fio exited 0 and its terse v3 line (field 5:
	   # the error count) says 0 errors
	if [ "$1" = 0 ] && [ "$(cut -d';' -f5 "$2" | tail -1)" = 0 ]; then
		ok "$3: 0 errors"
	else
		bad "$3: exit $1: $(tail -3 "$2")"
		return 1
	fi
}
rnbd_dev() { local d; d=$(compgen -G "/sys/block/rnbd*" | head -1) && [ -b "/dev/${d##*/}" ] && echo "/dev/${d##*/}"; }
server_says() { grep -q "$1" "$work/srv.log"; }

# the kernel's client unmaps DEV: it goes, our server sees session SESS
# end; the server stops (no sanitizer report), the client modules go
kunmap() { # DEV SESS
	echo normal > "/sys/block/${1#/dev/}/rnbd/unmap_device" || bad "unmap_device"
	wait_for 10 test ! -e "$1" || bad "$1 still there"
	wait_for 10 server_says "session $2 disconnected" &&
		ok "unmapped: $1 gone, the server's session ended" ||
		bad "the server did not see the session end: $(tail -3 "$work/srv.log")"
	kill "$spid"; wait "$spid"; spid=0
	grep -E 'Sanitizer|runtime error' "$work/srv.log" && bad "sanitizer report in rnbd-server"
	rmmod rnbd_client rtrs_client 2> /dev/null
}

kclient() {
	step "the kernel's rnbd-client -> rnbd-server --provider rdma"
	# the kernel's rtrs-server would hold port 1234 on every address
	lsmod | grep -q '^rtrs_server ' && rmmod rnbd_server rtrs_server
	modprobe -a rdma_cm rtrs-core rtrs-client rnbd-client || { bad "modprobe"; return; }
	local f=$work/disk.img dev
	truncate -s 64M "$f"
	"$srvbin" --provider rdma --listen "$S:1234" --export "disk=$f" > "$work/srv.log" 2>&1 &
	spid=$!
	wait_for 30 server_says '^listening' || { bad "rnbd-server: $(cat "$work/srv.log")"; return; }
	# the session name must be new to the kernel: a module reloaded in
	# this boot keeps none, but a name of an earlier case would clash
	timeout 120 sh -c "echo 'sessname=kclient path=ip:$S device_path=disk' > /sys/class/rnbd-client/ctl/map_device" ||
		{ bad "map_device failed: $(dmesg | grep -E 'rnbd|rtrs' | tail -3)"; return; }
	wait_for 30 rnbd_dev > /dev/null || { bad "no /dev/rnbd*"; return; }
	dev=$(rnbd_dev)
	[ "$(blockdev --getsize64 "$dev")" = $((64 * MiB)) ] &&
		ok "$dev mapped, 64 MiB" || bad "$dev: $(blockdev --getsize64 "$dev") bytes, not 64 MiB"

	head -c $((4 * MiB)) /dev/urandom > "$work/pat"
	dd if="$work/pat" of="$dev" bs=1M seek=1 oflag=direct status=none || bad "O_DIRECT write"
	dd if="$dev" of="$work/back" bs=1M skip=1 count=4 iflag=direct status=none || bad "O_DIRECT read"
	cmp -s "$work/pat" "$work/back" && ok "4 MiB written with O_DIRECT read back identical" ||
		bad "4 MiB read back differs"
	cmp -s "$work/pat" <(dd if="$f" bs=1M skip=1 count=4 status=none) &&
		ok "the 4 MiB are in the export's file at 1 MiB" || bad "the export's file differs"

	mkfs.ext4 -q -F "$dev" > "$work/mkfs" 2>&1 || bad "mkfs.ext4: $(cat "$work/mkfs")"
	e2fsck -fn "$dev" > "$work/fsck" 2>&1 && ok "mkfs.ext4, then e2fsck -fn clean" ||
		bad "e2fsck: $(tail -5 "$work/fsck")"

	timeout 300 fio --name=verify --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-124k --iodepth=16 --size=16M \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output-format=terse --terse-version=3 > "$work/fio" 2>&1
	fio_ok $? "$work/fio" "fio randwrite 4k-124k QD 16, verify=crc32c"

	kunmap "$dev" kclient
}

kserver() {
	step "rnbd --provider rdma -> the kernel's rnbd-server"
	local f=$work/loop.img
	truncate -s 64M "$f"
	loop=$(losetup -f --show "$f") || { bad "losetup"; return; }
	modprobe -a rdma_cm rtrs-core rtrs-server rnbd-server || { bad "modprobe"; return; }
	local o=(-s "$S:1234" -d "$loop" --provider rdma)
	timeout 120 "$cli" info "${o[@]}" > "$work/info" 2> "$work/info.err" &&
		grep -qx "size $((64 * MiB))" "$work/info" &&
		ok "rnbd info: $(tr '\n' ' ' < "$work/info" | cut -c1-100)" ||
		bad "rnbd info: $(cat "$work/info" "$work/info.err" | tail -5)"
	head -c $MiB /dev/urandom > "$work/pat1"
	RTRS_LOG_LEVEL=info timeout 120 "$cli" write "${o[@]}" --offset $((3 * MiB)) \
		-i "$work/pat1" 2> "$work/w.err" ||
		bad "rnbd write: $(tail -3 "$work/w.err")"
	timeout 120 "$cli" read "${o[@]}" --offset $((3 * MiB)) --length $MiB -o "$work/back1" 2> "$work/r.err" ||
		bad "rnbd read: $(tail -3 "$work/r.err")"
	cmp -s "$work/pat1" "$work/back1" && ok "rnbd write/read: 1 MiB identical" ||
		bad "rnbd read back differs"
	cmp -s "$work/pat1" <(dd if="$f" bs=1M skip=3 count=1 status=none) &&
		ok "the 1 MiB is in the loop device's file" || bad "the loop file differs"
	grep -q "kernel's RTRS" "$work/w.err" && ok "the client saw a kernel server: no fencing" ||
		bad "no 'kernel's RTRS' note: $(tail -2 "$work/w.err")"
	if [ "$engine" != - ] && command -v fio > /dev/null; then
		# The kernel's server with always_invalidate=1 (the default, the
		# write and read above) fails on Debian 6.1's rxe under load
		# ("rxe_reg_fast_mr: mr->lkey = ... not free": the request is
		# never answered; its own rnbd-client sees the same): fio runs
		# against always_invalidate=0, as scripts/bench-block.sh.
		rmmod rnbd_server rtrs_server &&
			modprobe rtrs-server always_invalidate=0 &&
			modprobe rnbd-server || bad "reloading rtrs-server"
		# the engine's default: its job's thread reads the CQs
		RTRS_PROVIDER=rdma timeout 300 fio --name=native --ioengine="external:$engine" \
			--rnbd_server="$S:1234" --rnbd_device="$loop" \
			--rw=randwrite --bsrange=4k-124k --iodepth=8 --size=8M \
			--offset=$((16 * MiB)) --verify=crc32c --do_verify=1 \
			--verify_fatal=1 --output-format=terse --terse-version=3 \
			> "$work/fio2" 2>&1
		fio_ok $? "$work/fio2" "fio native engine (librnbd, --provider rdma, randwrite 4k-124k QD 8), verify=crc32c"
	fi
	# the kernel server saw each session go
	wait_for 10 sh -c '[ -z "$(ls /sys/class/rnbd-server/ctl/devices/ 2> /dev/null)" ]' ||
		bad "the kernel's rnbd-server still has devices open: $(ls /sys/class/rnbd-server/ctl/devices/)"
	rmmod rnbd_server rtrs_server 2> /dev/null
}

# ------------------------------------------------ two paths, one cut
# fio through the cut: randwrite 4k-124k, time based, each block read back
# and checked (verify_backlog) while it runs; the options after NAME
cut_fio() { # NAME RUNTIME FIO-OPTIONS...
	local name=$1 rt=$2; shift 2
	timeout $((rt + 300)) fio --name="$name" "$@" --rw=randwrite \
		--bsrange=4k-124k --time_based --runtime="$rt" \
		--verify=crc32c --verify_backlog=64 --verify_fatal=1 \
		--output-format=terse --terse-version=3 > "$work/$name.fio" \
		2> "$work/$name.err" &
	fp=$!
}
cut_wait_fio() { # NAME: fio ended, 0 errors, something written
	local rc
	wait "$fp"; rc=$?; fp=0
	fio_ok "$rc" "$work/$1.fio" "fio through the cut" ||
		tail -5 "$work/$1.err"
	echo "     written $(cut -d';' -f47 "$work/$1.fio" | tail -1) KiB, read back $(cut -d';' -f6 "$work/$1.fio" | tail -1) KiB"
}
cable() { # pull the rxe wire's cable for 10 s, then plug it in again
	step "rxe cable pulled"
	lab-link rxe down
	sleep 10
	lab-link rxe up && step "rxe cable back" || bad "lab-link rxe up"
}
kpath() { # IP: the kernel client's path to IP (sysfs), or fail
	compgen -G "/sys/class/rtrs-client/kcut/paths/*@ip:$1" | head -1
}
kstat() { # IP FIELD: field FIELD of the path's stats/rdma (1 read count,
	  # 3 write count, 5 in flight, 6 requests failed over to it)
	local p; p=$(kpath "$1") && cut -d' ' -f"$2" "$p/stats/rdma"
}
kstate() { local p; p=$(kpath "$1") && cat "$p/state"; }

kclient_cut() {
	step "the kernel's rnbd-client, two paths -> rnbd-server --provider rdma; a cut"
	lsmod | grep -q '^rtrs_server ' && rmmod rnbd_server rtrs_server
	modprobe -a rdma_cm rtrs-core rtrs-client rnbd-client || { bad "modprobe"; return; }
	local f=$work/cut.img dev w
	truncate -s 64M "$f"
	"$srvbin" --provider rdma --listen "$S:1234,$S2:1234" --export "disk=$f" > "$work/srv.log" 2>&1 &
	spid=$!
	wait_for 30 sh -c "[ \$(grep -c '^listening' '$work/srv.log') -ge 2 ]" ||
		{ bad "rnbd-server: $(cat "$work/srv.log")"; return; }
	timeout 120 sh -c "echo 'sessname=kcut path=ip:$S path=ip:$S2 device_path=disk' > /sys/class/rnbd-client/ctl/map_device" ||
		{ bad "map_device failed: $(dmesg | grep -E 'rnbd|rtrs' | tail -3)"; return; }
	wait_for 30 rnbd_dev > /dev/null || { bad "no /dev/rnbd*"; return; }
	dev=$(rnbd_dev)
	[ "$(kstate "$S")" = connected ] && [ "$(kstate "$S2")" = connected ] &&
		ok "$dev mapped over two paths ($S, $S2)" ||
		bad "paths: $S $(kstate "$S"), $S2 $(kstate "$S2")"
	# QD 16 over two paths: requests are in flight on both when the
	# cable goes; their answers are lost, and only the kernel's
	# heartbeats (5 missed, 5 s apart) find the path dead
	cut_fio kcut 45 --filename="$dev" --ioengine=libaio --direct=1 --iodepth=16
	wait_for 60 sh -c "[ \"\$(cut -d' ' -f3 '$(kpath "$S")/stats/rdma')\" -ge 50 ]" ||
		bad "no writes on the rxe path before the cut"
	cable
	cut_wait_fio kcut
	w=$(kstat "$S2" 6)
	[ "${w:-0}" -ge 1 ] && ok "the kernel failed $w requests over to $S2" ||
		bad "no request failed over to $S2: $(cat "$(kpath "$S2")/stats/rdma")"
	# the kernel's client tries again 30 s after it gave the path up
	wait_for 120 sh -c "[ \"\$(cat '$(kpath "$S")/state')\" = connected ]" &&
		ok "the kernel's client reconnected the cut path ($(cut -d' ' -f2 "$(kpath "$S")/stats/reconnects") failed tries before)" ||
		bad "the cut path did not reconnect: $(kstate "$S")"
	# our server dropped the dead path (else it would have refused the
	# new one, or hold three): the session has two, both connected
	local j; j=$("$(dirname "$cli")/rtrsctl" --pid "$spid" --json stats)
	[ "$(grep -o '{"id":[0-9]*,"state":"connected"' <<< "$j" | wc -l)" = 2 ] &&
		[ "$(grep -o '{"id":[0-9]*,' <<< "$j" | wc -l)" = 2 ] &&
		ok "our server: two paths connected, the dead one gone (hb_timeouts $(grep -o '"hb_timeouts":[0-9]*' <<< "$j" | cut -d: -f2))" ||
		bad "our server's paths: $(grep -o '"paths":.*' <<< "$j" | head -c 600)"
	kunmap "$dev" kcut
}

kserver_cut() {
	step "fio's native engine, two paths -> the kernel's rnbd-server; a cut"
	[ "$engine" != - ] && command -v fio > /dev/null ||
		{ echo "skip kserver-cut: no fio engine"; return; }
	local f=$work/cutloop.img j st=""
	truncate -s 64M "$f"
	loop=$(losetup -f --show "$f") || { bad "losetup"; return; }
	# always_invalidate=0: see kserver()
	lsmod | grep -q '^rtrs_server ' && rmmod rnbd_server rtrs_server
	modprobe rtrs-server always_invalidate=0 && modprobe rnbd-server ||
		{ bad "modprobe"; return; }
	local ctl; ctl=$(dirname "$cli")/rtrsctl
	sst() { "$ctl" --json stats 2> /dev/null; }
	RTRS_PROVIDER=rdma RTRS_LOG_LEVEL=info cut_fio kserver 60 \
		--ioengine="external:$engine" --rnbd_server="$S:1234,$S2:1234" \
		--rnbd_device="$loop" --iodepth=8 --size=32M
	wait_for 60 sh -c "'$ctl' --json stats 2> /dev/null | grep -q '\"paths_connected\":2'" ||
		{ bad "fio's session did not connect both paths: $(sst | head -c 600)"; return; }
	wait_for 60 sh -c "[ \"\$('$ctl' --json stats 2> /dev/null | grep -o '\"write_cnt\":[0-9]*' | head -1 | cut -d: -f2)\" -ge 100 ]" ||
		bad "no writes before the cut"
	ok "fio's session up over two paths"
	cable
	# the kernel's server refuses the path again (-EEXIST) until its own
	# heartbeats drop the old one; then path 0 connects
	for ((i = 0; i < 300; i++)); do
		j=$(sst)
		st=$(grep -o '{"idx":0,"state":"[a-z]*"' <<< "$j" | cut -d'"' -f6)
		[ "$st" = connected ] && grep -q '"paths_connected":2' <<< "$j" && break
		kill -0 "$fp" 2> /dev/null || break
		sleep 0.2
	done
	grep -o '"failovers":[0-9]*' <<< "$j" | head -1 | grep -q '"failovers":[1-9]' &&
		ok "our client failed $(grep -o '"failovers":[0-9]*' <<< "$j" | head -1 | cut -d: -f2) requests over" ||
		bad "no failover: $(head -c 600 <<< "$j")"
	[ "$st" = connected ] && ok "path 0 connected again while fio ran" ||
		bad "path 0 $st at the end: $(grep -o '{"idx":0,[^}]*' <<< "$j")"
	cut_wait_fio kserver
	grep -c "path or connection already exists" "$work/kserver.err" |
		sed 's/^/     refused while the kernel kept the old path: /'
	wait_for 60 sh -c '[ -z "$(ls /sys/class/rnbd-server/ctl/devices/ 2> /dev/null)" ]' ||
		bad "the kernel's rnbd-server still has devices open: $(ls /sys/class/rnbd-server/ctl/devices/)"
	rmmod rnbd_server rtrs_server 2> /dev/null
}

[ "$what" != "${what%cut}" ] && [ -z "$S2" ] &&
	{ echo "skip: the lab has no second rxe wire (LAB_RXE2_SRV)"; exit 77; }
case $what in
kclient) kclient ;;
kserver) kserver ;;
all) kclient; kserver ;;
kclient-cut) kclient_cut ;;
kserver-cut) kserver_cut ;;
cut) kclient_cut; kserver_cut ;;
*) echo "usage: $0 RNBD_SERVER RNBD_CLI [FIO_ENGINE|-] [kclient|kserver|all|kclient-cut|kserver-cut|cut]"; exit 2 ;;
esac
w=$(warned)
[ -z "$w" ] || bad "the kernel warned: $w"
dmesg | grep -E 'rnbd|rtrs' | tail -12
echo "$fails failed"
[ "$fails" -eq 0 ]
