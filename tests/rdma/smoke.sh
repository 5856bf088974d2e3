#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The lab's smoke test, run inside the guest (CTest lab.smoke):
#   tests/rdma/lab.sh run -- tests/rdma/smoke.sh
# The six RDMA devices are there and ACTIVE, libfabric's verbs provider
# lists them, and rping between the two addresses of each wire works (3
# round trips, data verified) with the traffic on the wire, not on lo.
set -uo pipefail
[ -n "${LAB_RXE_SRV:-}" ] || { echo "smoke.sh runs inside tests/rdma/lab.sh run"; exit 2; }
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }
pkts() { cat "/sys/class/net/$1/statistics/tx_packets"; }

for d in "$LAB_RXE_DEV_SRV" "$LAB_RXE_DEV_CLT" "$LAB_SIW_DEV_SRV" "$LAB_SIW_DEV_CLT" \
	"$LAB_RXE2_DEV_SRV" "$LAB_RXE2_DEV_CLT"; do
	if rdma link show "$d/1" 2>/dev/null | grep -q 'state ACTIVE'; then
		ok "device $d ACTIVE"
	else
		ko "device $d ACTIVE"
	fi
	if fi_info -p verbs -t FI_EP_MSG -d "$d" >/dev/null 2>&1; then
		ok "fi_info -p verbs lists $d"
	else
		ko "fi_info -p verbs lists $d"
	fi
done

rping_pair() {  # NAME SERVER CLIENT LINK
	local name=$1 srv=$2 clt=$3 link=$4 spid lo0 w0 rc=0
	lo0=$(pkts lo) w0=$(pkts "$link")
	timeout 60 rping -s -a "$srv" -V -C 3 > /tmp/rping-s.log 2>&1 &
	spid=$!
	sleep 1
	timeout 60 rping -c -a "$srv" -I "$clt" -V -C 3 > /tmp/rping-c.log 2>&1 || rc=$?
	wait "$spid" || rc=$((rc ? rc : $?))
	if [ "$rc" -eq 0 ]; then
		ok "rping over $name ($clt -> $srv)"
	else
		ko "rping over $name ($clt -> $srv): exit $rc"
		cat /tmp/rping-s.log /tmp/rping-c.log
	fi
	if [ $(($(pkts "$link") - w0)) -gt 0 ] && [ "$(pkts lo)" -eq "$lo0" ]; then
		ok "$name traffic on $link, none on lo"
	else
		ko "$name traffic on $link ($(($(pkts "$link") - w0)) packets), lo ($(($(pkts lo) - lo0)))"
	fi
}
rping_pair rxe "$LAB_RXE_SRV" "$LAB_RXE_CLT" "$LAB_RXE_LINK"
rping_pair siw "$LAB_SIW_SRV" "$LAB_SIW_CLT" "$LAB_SIW_LINK"
rping_pair rxe2 "$LAB_RXE2_SRV" "$LAB_RXE2_CLT" "$LAB_RXE2_LINK"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
