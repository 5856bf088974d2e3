#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Block devices side by side in one lab guest run (docs/BENCHMARKS.md,
# "rnbd map and the kernel's block devices"): the same backing (a loop
# device over a file in the guest's memory), the same fio rows, one device
# at a time, every network hop over soft-RoCE (rxe, the lab's
# 192.168.77.0/24 veth pair):
#   ublk   /dev/ublkbN: `rnbd map --provider verbs` -> our rnbd-server
#          (--provider verbs) exporting the loop device;
#   krnbd  /dev/rnbd0: the kernel's rnbd-client -> our rnbd-server
#          --provider rdma (the kernel's wire, docs/protocol.md 6.1)
#          exporting the loop device: what a user-space server costs;
#   rnbd   /dev/rnbd0: the kernel's rnbd-client -> the kernel's
#          rnbd-server (RTRS over rxe) exporting the loop device;
#   nvme   /dev/nvmeXn1: the kernel's nvme-rdma -> nvmet-rdma (NVMe-oF
#          over rxe), namespace the loop device;
#   nbd    /dev/nbd0: the kernel's nbd (nbd-client, Unix socket) ->
#          nbdkit with our rnbd plugin -> our rnbd-server over rxe;
#   local  the loop device itself (the ceiling).
# Rows: 4 KiB randread/randwrite at QD 1 and 32, 128 KiB read/write at QD
# 8; fio libaio, O_DIRECT, one job. Prints a table of IOPS, MiB/s and p50/
# p99 latency, and each device's ratio to ublk. Under TCG the absolute
# numbers are emulation speed; the ratios of one run are what it shows.
#
#   tests/rdma/lab.sh run --timeout 2400 -- scripts/bench-block.sh [BUILD]
#       TIME=5 (seconds a row) SIZE=256M DEVS="local ublk nbd nvme krnbd rnbd"
#       ROWS="r4k1 w4k1 r4k32 w4k32 r128k8 w128k8"
#       INVALIDATE=0: both servers, ours and the kernel's, without
#       always_invalidate (with it the kernel's fails over rxe at QD 32)
#   (the guest sees these with lab.sh's --env NAME). A row whose fio does
#   not end within TIME + 60 s is "hung": the device's other rows are
#   skipped and it is left as it is (its IO may be stuck in the kernel).
# Needs, in the guest: fio, nbd-client, nbdkit (scripts/deps.sh lab), the
# lab's modules (lab-modules rnbd ublk, nvme-rdma, nvmet-rdma, nbd).
set -uo pipefail
[ -n "${LAB_RXE_SRV:-}" ] || { echo "bench-block.sh runs inside tests/rdma/lab.sh run" >&2; exit 2; }
B=$(cd "${1:-build/plain}" && pwd)
secs=${TIME:-5}
size=${SIZE:-256M}
INVAL=${INVALIDATE:-0}
devs=${DEVS:-local ublk nbd nvme krnbd rnbd}
rows=${ROWS:-r4k1 w4k1 r4k32 w4k32 r128k8 w128k8}
srvbin=$B/tools/rnbd-server cli=$B/tools/rnbd plugin=$B/nbdkit-rnbd-plugin.so
for t in fio nbd-client nbdkit python3; do
	command -v $t > /dev/null || { echo "bench-block: needs $t (scripts/deps.sh lab)" >&2; exit 1; }
done
W=$(mktemp -d)
export RNBD_RUN_DIR=$W/run RTRS_LOG_LEVEL=err
srv=$LAB_RXE_SRV
loop="" spid=0 npid=0 cur=""
say() { echo "bench-block: $*" >&2; }

cleanup() {
	teardown
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$W"
}
trap cleanup EXIT

wait_for() {   # SECONDS CMD...: until CMD succeeds
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}

our_server() {   # PORT [PROVIDER] (a port per device: rdma_cm may hold
		 # one a while; provider verbs, or rdma for the kernel's wire)
	"$srvbin" --provider "${2:-verbs}" --listen "$srv:$1" --export "disk=$loop" \
		--always-invalidate "$INVAL" \
		> "$W/srv.out" 2> "$W/srv.err" &
	spid=$!
	wait_for 30 grep -q '^listening' "$W/srv.out" ||
		{ say "rnbd-server: $(cat "$W/srv.err")"; return 1; }
}

# ---- each device: up (sets DEV; no subshell, so that the servers' pids
# stay this shell's for the teardown) and down
up_ublk() {
	[ -e /dev/ublk-control ] || lab-modules ublk > /dev/null || return 1
	our_server 7100 || return 1
	DEV=$("$cli" map -s "$srv:7100" -d disk --provider verbs --session bb-ublk)
}
down_ublk() {
	for f in "$RNBD_RUN_DIR"/ublkb*; do
		[ -e "$f" ] && "$cli" unmap "${f##*/}"
	done
}
up_rnbd() {
	# always_invalidate=1 (the module's default) fails over rxe at QD 32:
	# "rxe_reg_fast_mr: mr->lkey = ... not free", the session drops
	if ! lsmod | grep -q '^rtrs_server '; then
		modprobe -a rdma_cm rtrs-core > /dev/null &&
			modprobe rtrs-server always_invalidate="$INVAL" || return 1
	fi
	lab-modules rnbd > /dev/null || return 1
	kmap bb-rnbd "$loop"
}
kmap() {   # SESSNAME DEVICE_PATH: the kernel's rnbd-client maps it (DEV)
	echo "sessname=$1 path=ip:$srv device_path=$2" \
		> /sys/class/rnbd-client/ctl/map_device || return 1
	local d=""
	wait_for 30 eval 'd=$(compgen -G "/sys/block/rnbd*" | head -1) && [ -b "/dev/${d##*/}" ]' ||
		return 1
	DEV=/dev/${d##*/}
}
up_krnbd() {
	# port 1234: the kernel's rtrs-server (loaded by rnbd, after this)
	# would hold it on every address
	lsmod | grep -q '^rtrs_server ' && rmmod rnbd_server rtrs_server
	modprobe -a rdma_cm rtrs-core rtrs-client rnbd-client > /dev/null || return 1
	our_server 1234 rdma || return 1
	kmap bb-krnbd disk
}
down_krnbd() { down_rnbd; }
down_rnbd() {
	local d
	for d in /sys/block/rnbd*; do
		[ -e "$d/rnbd/unmap_device" ] && echo normal > "$d/rnbd/unmap_device"
	done
}
NVMET=/sys/kernel/config/nvmet
up_nvme() {
	modprobe -a nvmet-rdma nvme-rdma > /dev/null || return 1
	mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
	local s=$NVMET/subsystems/bench p=$NVMET/ports/1 c
	mkdir -p "$s/namespaces/1" "$p" || return 1
	echo 1 > "$s/attr_allow_any_host"
	echo "$loop" > "$s/namespaces/1/device_path"
	echo 1 > "$s/namespaces/1/enable"
	echo rdma > "$p/addr_trtype"
	echo ipv4 > "$p/addr_adrfam"
	echo "$srv" > "$p/addr_traddr"
	echo 4420 > "$p/addr_trsvcid"
	ln -s "$s" "$p/subsystems/bench"
	echo "transport=rdma,traddr=$srv,trsvcid=4420,nqn=bench" > /dev/nvme-fabrics ||
		return 1
	wait_for 30 eval 'c=$(grep -l "^bench$" /sys/class/nvme/nvme*/subsysnqn | head -1) && compgen -G "/dev/$(basename "$(dirname "$c")")n1" > /dev/null' ||
		return 1
	DEV=/dev/$(basename "$(dirname "$c")")n1
}
down_nvme() {
	local c
	for c in /sys/class/nvme/nvme*; do
		[ "$(cat "$c/subsysnqn" 2>/dev/null)" = bench ] &&
			echo 1 > "$c/delete_controller"
	done
	[ -d "$NVMET/ports/1" ] || return 0
	rm -f "$NVMET/ports/1/subsystems/bench"
	rmdir "$NVMET/ports/1" 2>/dev/null
	echo 0 > "$NVMET/subsystems/bench/namespaces/1/enable" 2>/dev/null
	rmdir "$NVMET/subsystems/bench/namespaces/1" "$NVMET/subsystems/bench" 2>/dev/null
}
up_nbd() {
	modprobe nbd > /dev/null || return 1
	our_server 7101 || return 1
	nbdkit -f -U "$W/nbd.sock" "$plugin" server="$srv:7101" device=disk \
		provider=verbs session=bb-nbd > "$W/nbdkit.log" 2>&1 &
	npid=$!
	wait_for 30 test -S "$W/nbd.sock" || return 1
	nbd-client -unix "$W/nbd.sock" /dev/nbd0 -N "" > "$W/nbdc.log" 2>&1 ||
		{ say "nbd-client: $(cat "$W/nbdc.log")"; return 1; }
	DEV=/dev/nbd0
}
down_nbd() {
	nbd-client -d /dev/nbd0 > /dev/null 2>&1
}
up_local() { DEV=$loop; }
down_local() { :; }

teardown() {
	[ -n "$cur" ] && "down_$cur"
	cur=""
	[ "$npid" -gt 0 ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
	[ "$spid" -gt 0 ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	npid=0 spid=0
}

row_args() {   # ROW -> fio arguments
	case $1 in
	r4k1) echo "--rw=randread --bs=4k --iodepth=1" ;;
	w4k1) echo "--rw=randwrite --bs=4k --iodepth=1" ;;
	r4k32) echo "--rw=randread --bs=4k --iodepth=32" ;;
	w4k32) echo "--rw=randwrite --bs=4k --iodepth=32" ;;
	r128k8) echo "--rw=read --bs=128k --iodepth=8" ;;
	w128k8) echo "--rw=write --bs=128k --iodepth=8" ;;
	*) return 1 ;;
	esac
}

# ---- the run
modprobe loop 2> /dev/null
truncate -s "$size" /dev/shm/bench-block.img
loop=$(losetup -f --show /dev/shm/bench-block.img) || { say "losetup failed"; exit 1; }
dd if=/dev/urandom of="$loop" bs=1M count=$(( $(blockdev --getsize64 "$loop") >> 20 )) \
	oflag=direct status=none
echo "device,row,iops,mib_s,p50_us,p99_us" > "$W/res.csv"
for d in $devs; do
	say "$d: up"
	cur=$d
	DEV=""
	"up_$d" && [ -b "$DEV" ] || { say "$d: not available, skipped"; teardown; continue; }
	dev=$DEV
	say "$d: $dev"
	if ! dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct status=none; then
		say "$d: reading $dev fails: skipped"
		tail -5 "$W/nbdkit.log" "$W/srv.err" 2>/dev/null >&2
		dmesg | tail -5 >&2
		teardown
		continue
	fi
	for r in $rows; do
		# shellcheck disable=SC2046
		timeout -k 5 $((secs + 60)) \
		fio --name="$d-$r" --filename="$dev" --direct=1 --ioengine=libaio \
			$(row_args "$r") --runtime="$secs" --time_based --ramp_time=1 \
			--size="$size" --output-format=json > "$W/$d-$r.json" 2> "$W/fio.err"
		rc=$?
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			say "$d $r: hung (fio did not end in $((secs + 60)) s); $d's other rows skipped"
			echo "$d,$r,hung,,," >> "$W/res.csv"
			dmesg | tail -15 >&2
			cur=""
			break
		fi
		if [ $rc -ne 0 ]; then
			say "$d $r: fio failed: $(tail -3 "$W/fio.err")"
			[ "$d" = nbd ] && tail -5 "$W/nbdkit.log" >&2
			continue
		fi
		python3 - "$W/$d-$r.json" "$d" "$r" >> "$W/res.csv" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
s = j["read"] if j["read"]["io_bytes"] else j["write"]
p = s["clat_ns"]["percentile"]
print("%s,%s,%.0f,%.1f,%.0f,%.0f" % (sys.argv[2], sys.argv[3], s["iops"],
      s["bw_bytes"] / 1048576, p["50.000000"] / 1000, p["99.000000"] / 1000))
EOF
		tail -1 "$W/res.csv" >&2
	done
	teardown
done
python3 - "$W/res.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
devs = list(dict.fromkeys(r["device"] for r in rows))
names = list(dict.fromkeys(r["row"] for r in rows))
v = {(r["device"], r["row"]): r for r in rows}
print("| row | " + " | ".join(devs) + " |")
print("|---|" + "---|" * len(devs))
for n in names:
    cells = []
    base = v.get(("ublk", n))
    for d in devs:
        r = v.get((d, n))
        if not r:
            cells.append("-")
            continue
        if r["iops"] == "hung":
            cells.append("hung")
            continue
        c = "%s IOPS, p50 %s / p99 %s us" % (r["iops"], r["p50_us"], r["p99_us"])
        if base and base["iops"] != "hung" and d != "ublk" and float(r["iops"]):
            c += " (ublk %.2fx)" % (float(base["iops"]) / float(r["iops"]))
        cells.append(c)
    print("| %s | %s |" % (n, " | ".join(cells)))
EOF
echo "bench-block: csv"
cat "$W/res.csv"
