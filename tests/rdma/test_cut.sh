#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# In the lab guest (CTest rdma.cut): one session over two providers' wires,
# path 0 on rxe and path 1 on siw, verified randrw with 200 ms heartbeats
# (3 missed) and a 5 s no-path timeout; mid-run path 0's cable is pulled
# for 10 s (lab-link rxe down/up). The run ends with 0 errors and 0 verify
# errors, requests failed over, and path 0 reconnected and connected.
#
#   test_cut.sh RTRS_PERF
set -uo pipefail
[ -n "${LAB_RXE_SRV:-}" ] || { echo "skip: runs in the RDMA lab (tests/rdma/lab.sh run)"; exit 77; }
perf=$1
work=$(mktemp -d)
spid=0 cpid=0
cleanup() {
	[ "$(lab-link rxe state)" = up ] || lab-link rxe up
	[ "$cpid" -gt 0 ] && kill "$cpid" 2>/dev/null
	[ "$spid" -gt 0 ] && kill "$spid" 2>/dev/null
	wait
	rm -rf "$work"
}
trap cleanup EXIT
pass=0 fail=0
check() { local d=$1; shift; if "$@"; then echo "ok   $d"; pass=$((pass + 1)); else echo "FAIL $d"; fail=$((fail + 1)); fi; }
num() { grep -o "\"$1\":[0-9.]*" <<< "$2" | head -1 | cut -d: -f2; }
str() { grep -o "\"$1\":\"[^\"]*\"" <<< "$2" | head -1 | cut -d'"' -f4; }

"$perf" server --provider verbs --listen "$LAB_RXE_SRV:0,$LAB_SIW_SRV:0" > "$work/srv.out" 2>&1 &
spid=$!
for _ in $(seq 1 300); do [ "$(grep -c '^listening' "$work/srv.out")" -ge 2 ] && break; sleep 0.1; done
a1=$(awk '/^listening/ { print $2; exit }' "$work/srv.out")
a2=$(awk '/^listening/ { n++; if (n == 2) print $2 }' "$work/srv.out")
[ -n "$a1" ] && [ -n "$a2" ] || { echo "FAIL server did not start: $(cat "$work/srv.out")"; exit 1; }

"$perf" client --provider verbs --connect "$a1,$a2" --rw randrw --verify \
	--bs 4096 --qd 8 --hb 200,3 --no-path-timeout 5000 --time 45 --json \
	> "$work/clt.json" 2> "$work/clt.err" &
cpid=$!
# a few seconds of IO first (a progress line a second)
for _ in $(seq 1 600); do
	[ "$(grep -c 'IOPS' "$work/clt.err")" -ge 4 ] && break
	kill -0 "$cpid" 2>/dev/null || break
	sleep 0.1
done
check "IO under way before the cut" [ "$(grep -c 'IOPS' "$work/clt.err")" -ge 4 ]
lab-link rxe down
sleep 10
check "path 0's cable back in" lab-link rxe up
wait "$cpid"
rc=$?
cpid=0
j=$(cat "$work/clt.json")
p0=$(grep -o '{"idx":0,[^}]*}' <<< "$j")
echo "client: $(grep -v IOPS "$work/clt.err" | grep -c .) log lines; $j"
check "client exit 0" [ "$rc" -eq 0 ]
check "IOs done ($(num ios "$j"))" [ "$(num ios "$j")" -gt 0 ]
check "0 errors" [ "$(num errors "$j")" = 0 ]
check "0 verify errors" [ "$(num verify_errors "$j")" = 0 ]
check "requests failed over ($(num failovers "$j"))" [ "$(num failovers "$j")" -ge 1 ]
check "path 0 reconnected ($(num reconnects_ok "$p0"))" [ "$(num reconnects_ok "$p0")" -ge 1 ]
check "path 0 connected at the end ($(str state "$p0"))" [ "$(str state "$p0")" = connected ]
[ "$fail" -eq 0 ] || grep -v IOPS "$work/clt.err" | tail -20
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
