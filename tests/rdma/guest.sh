#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# PID 1 of the lab guest, started by the initramfs (tests/rdma/lab.sh) on
# the host's root file system. /lab is the run's share with the host:
#   env, job       what to run (written by lab.sh)
#   mode           "job" or "shell"
#   out            the job's stdout and stderr
#   status         its exit status, written last
#   setup.log      what this script did; setup.failed if the lab did not
#                  come up (the job did not run)
# Sets up soft-RoCE and soft-iWARP (see README.md for the network), runs
# the job, powers off.
share=/lab
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=${TERM:-dumb}
exec 3>>"$share/setup.log"
log() { echo "[$(cut -d" " -f1 /proc/uptime)] $*" >&3; }
off() {
	sync
	echo o > /proc/sysrq-trigger
	sleep 10
}
fail() {
	log "setup failed: $*"
	echo "$*" > "$share/setup.failed"
	off
}
run() {        # a setup command, logged; its failure ends the boot
	log "+ $*"
	"$@" >&3 2>&1 || fail "$*"
}

# ------------------------------------------------------------ the system
# the static busybox for the plumbing: a dynamic binary costs ~50 ms more
# to start here (9p, TCG)
bb=/bin/busybox
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$bb mount -t tmpfs -o mode=1777 shm /dev/shm
$bb mount -t tmpfs -o mode=0755 run /run
$bb mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
$bb mount -t configfs configfs /sys/kernel/config 2>/dev/null
for l in ptmx:pts/ptmx fd:/proc/self/fd stdin:/proc/self/fd/0 \
	 stdout:/proc/self/fd/1 stderr:/proc/self/fd/2; do
	$bb ln -sfn "${l#*:}" "/dev/${l%%:*}"
done
$bb hostname lab
ulimit -l unlimited
ulimit -n 65536
echo 1 > /proc/sys/kernel/panic_on_oops 2>/dev/null || true

# ------------------------------------------------------------ RDMA
KVER=$(uname -r)
export LAB_MODULES=/lib/modules/$KVER/extra
run modprobe -a rdma_rxe rdma_ucm rdma_cm ib_uverbs loop libcrc32c veth
run insmod "$LAB_MODULES/siw.ko"

# Two veth pairs, both ends in this namespace, each pair one "wire":
#   vrxe0 192.168.77.1 (server) <-> vrxe1 192.168.77.2 (client)  rxe0, rxe1
#   vsiw0 192.168.78.1 (server) <-> vsiw1 192.168.78.2 (client)  siw0, siw1
# Traffic between the two addresses of a pair must cross the pair, not the
# loopback (rxe drops what comes in on lo, and a cut would cut nothing):
#  - the local table is looked up after two rules for what this host
#    sends to the lab's nets: the main table, else "unreachable" (a link
#    that is down never falls back to the loopback); received packets
#    still find their local address;
#  - each end has its address twice: NET.x/32, whose GID rxe uses, and
#    NET.x peer NET.y, whose route to the peer the kernel restores when
#    the link comes up again. (A peer address alone gives rxe the peer's
#    GID - roce_gid_mgmt takes ifa_address, which is the peer - and
#    rdma_bind_addr fails with ENODEV.) The stray GID stays in the table.
# Setting either end down cuts the wire: on the down end connects fail at
# once (ENETUNREACH), on the other end they time out (no ARP answer);
# traffic in flight is lost. Up again, new connections work - over rxe
# only after `lab-link rxe reset` if a QP failed during the cut (README).
export LAB_RXE_SRV=192.168.77.1 LAB_RXE_CLT=192.168.77.2
export LAB_SIW_SRV=192.168.78.1 LAB_SIW_CLT=192.168.78.2
export LAB_RXE_LINK=vrxe1 LAB_RXE_LINK_SRV=vrxe0
export LAB_SIW_LINK=vsiw1 LAB_SIW_LINK_SRV=vsiw0
export LAB_RXE_DEV_SRV=rxe0 LAB_RXE_DEV_CLT=rxe1
export LAB_SIW_DEV_SRV=siw0 LAB_SIW_DEV_CLT=siw1
# one ip(8) and one rdma(8) process: every exec costs here
for k in all default; do
	echo 0 > /proc/sys/net/ipv4/conf/$k/rp_filter
	echo 1 > /proc/sys/net/ipv4/conf/$k/accept_local
done
wire() {       # PREFIX NET: veth pair PREFIX0/PREFIX1 with NET.1/NET.2
	local a=${1}0 b=${1}1 net=$2
	printf '%s\n' "link add $a type veth peer name $b" \
		"addr add $net.1/32 dev $a" "addr add $net.1 peer $net.2/32 dev $a" \
		"addr add $net.2/32 dev $b" "addr add $net.2 peer $net.1/32 dev $b" \
		"link set $a up" "link set $b up" \
		"rule add pref 10 iif lo to $net.0/24 lookup main" \
		"rule add pref 20 iif lo to $net.0/24 unreachable"
}
{
	echo "link set lo up"
	wire vrxe 192.168.77
	wire vsiw 192.168.78
	echo "rule add pref 100 lookup local"
	echo "rule del pref 0 lookup local"
} > /run/lab-net
run ip -b /run/lab-net
printf '%s\n' "link add rxe0 type rxe netdev vrxe0" \
	"link add rxe1 type rxe netdev vrxe1" \
	"link add siw0 type siw netdev vsiw0" \
	"link add siw1 type siw netdev vsiw1" > /run/lab-rdma
run rdma -b /run/lab-rdma
active() {
	local n=0 f st
	for f in /sys/class/infiniband/*/ports/1/state; do
		read -r st < "$f" && [[ $st == *ACTIVE ]] && n=$((n + 1))
	done
	[ "$n" -ge 4 ]
}
for ((i = 0; i < 100; i++)); do
	active && break
	$bb sleep 0.1
done
active || { rdma link show >&3 2>&1; fail "RDMA links not ACTIVE"; }
log "lab up"

# ------------------------------------------------------------ the job
mode=$(cat "$share/mode" 2>/dev/null)
if [ "$mode" = shell ]; then
	(. "$share/env"; export PATH=$share/bin:$PATH; cd "$HOME"
	 setsid -c bash -i) </dev/ttyS0 >/dev/ttyS0 2>&1
	off
fi
read -r t_job _ < /proc/uptime
(
	. "$share/env"
	export PATH=$share/bin:$PATH
	exec bash "$share/job"
) </dev/null >>"$share/out" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
	{
		echo "lab: exit status $rc; kernel warnings and errors since the job started:"
		dmesg --level=emerg,alert,crit,err,warn |
			awk -v t="$t_job" '{ s = $0; sub(/^\[ */, "", s) } s + 0 >= t + 0'
	} >>"$share/out" 2>&1
fi
echo "$rc" > "$share/status.tmp" && mv "$share/status.tmp" "$share/status"
off
