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

# Three wires, each a switch (a bridge in the network namespace lab-wire)
# with one port per end:
#   vrxe0 192.168.77.1 (server, rxe0) -- w-rxe0 [br-rxe] w-rxe1 -- vrxe1 192.168.77.2 (client, rxe1)
#   vsiw0 192.168.78.1 (server, siw0) -- w-siw0 [br-siw] w-siw1 -- vsiw1 192.168.78.2 (client, siw1)
#   vrxe20 192.168.79.1 (server, rxe2) -- w-rxe20 [br-rxe2] w-rxe21 -- vrxe21 192.168.79.2 (client, rxe3)
# The second rxe wire gives the kernel's RTRS two paths (it cannot run
# over siw, and refuses a second path between the same two addresses).
# A cut is a cable pulled: the switch port of the client end goes down,
# the client's NIC loses its carrier (lab-link). Setting the NIC itself
# down (ip link set vrxe1 down) is another thing: Debian's 6.1 rxe then
# takes no packet any more on that device once its RC QPs were flushed
# (seen here: new connections time out long after it is up again), and
# the kernel drops the routes through it.
# Traffic between the two addresses must cross the wire, not the loopback
# (rxe drops what comes in on lo, and a cut would cut nothing):
#  - each address is a /32 with a host route to the other end through its
#    NIC (routes stay when only the carrier goes); no peer-form address,
#    whose GID would be the peer's (roce_gid_mgmt takes ifa_address);
#  - what this host sends to the lab's nets looks up the main table, else
#    is unreachable, before the local table: nothing falls back to lo;
#  - fixed MACs and permanent neighbour entries, no ARP: the kernel's
#    address resolution (6.1 drivers/infiniband/core/addr.c) loses the
#    wake-up when the ARP answer comes back inside neigh_event_send(), as
#    it does over veth, and then waits for its timeout: the kernel's RTRS
#    client took 18-30 s to connect (rtrs_client "init_conns() failed:
#    err=-110" at its 30 s), with these entries 0.4 s.
export LAB_RXE_SRV=192.168.77.1 LAB_RXE_CLT=192.168.77.2
export LAB_SIW_SRV=192.168.78.1 LAB_SIW_CLT=192.168.78.2
export LAB_RXE2_SRV=192.168.79.1 LAB_RXE2_CLT=192.168.79.2
export LAB_RXE_LINK=vrxe1 LAB_RXE_LINK_SRV=vrxe0
export LAB_SIW_LINK=vsiw1 LAB_SIW_LINK_SRV=vsiw0
export LAB_RXE2_LINK=vrxe21 LAB_RXE2_LINK_SRV=vrxe20
export LAB_RXE_DEV_SRV=rxe0 LAB_RXE_DEV_CLT=rxe1
export LAB_SIW_DEV_SRV=siw0 LAB_SIW_DEV_CLT=siw1
export LAB_RXE2_DEV_SRV=rxe2 LAB_RXE2_DEV_CLT=rxe3
export LAB_WIRE_NS=lab-wire
# one ip(8) and one rdma(8) process: every exec costs here
for k in all default; do
	echo 0 > /proc/sys/net/ipv4/conf/$k/rp_filter
	echo 1 > /proc/sys/net/ipv4/conf/$k/accept_local
done
wire() {       # NAME NET: vNAME0/vNAME1 with NET.1/NET.2 on switch br-NAME
	local a=v${1}0 b=v${1}1 net=$2
	local mac=02:00:c0:a8:$(printf %02x "${net##*.}")
	printf '%s\n' "link add $a address $mac:01 type veth peer name w-${1}0 netns lab-wire" \
		"link add $b address $mac:02 type veth peer name w-${1}1 netns lab-wire" >&4
	printf '%s\n' "link add br-$1 type bridge" \
		"link set w-${1}0 master br-$1" "link set w-${1}1 master br-$1" \
		"link set br-$1 up" "link set w-${1}0 up" \
		"link set w-${1}1 up" >&5
	printf '%s\n' "addr add $net.1/32 dev $a" "addr add $net.2/32 dev $b" \
		"link set $a up" "link set $b up" \
		"route add $net.2/32 dev $a src $net.1" \
		"route add $net.1/32 dev $b src $net.2" \
		"neigh replace $net.2 lladdr $mac:02 dev $a nud permanent" \
		"neigh replace $net.1 lladdr $mac:01 dev $b nud permanent" \
		"rule add pref 10 iif lo to $net.0/24 lookup main" \
		"rule add pref 20 iif lo to $net.0/24 unreachable" >&6
}
run ip netns add lab-wire
{
	echo "link set lo up" >&5
	wire rxe 192.168.77
	wire siw 192.168.78
	wire rxe2 192.168.79
	echo "rule add pref 100 lookup local" >&6
	echo "rule del pref 0 lookup local" >&6
} 4>/run/lab-net1 5>/run/lab-net2 6>/run/lab-net3
run ip -b /run/lab-net1
run ip -n lab-wire -b /run/lab-net2
run ip -b /run/lab-net3
printf '%s\n' "link add rxe0 type rxe netdev vrxe0" \
	"link add rxe1 type rxe netdev vrxe1" \
	"link add siw0 type siw netdev vsiw0" \
	"link add siw1 type siw netdev vsiw1" \
	"link add rxe2 type rxe netdev vrxe20" \
	"link add rxe3 type rxe netdev vrxe21" > /run/lab-rdma
run rdma -b /run/lab-rdma
active() {
	local n=0 f st
	for f in /sys/class/infiniband/*/ports/1/state; do
		read -r st < "$f" && [[ $st == *ACTIVE ]] && n=$((n + 1))
	done
	[ "$n" -ge 6 ]
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
