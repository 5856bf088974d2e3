#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# In the lab guest (CTest rdma.perf): rtrs-perf over libfabric's verbs
# provider on each wire, rxe and siw, one session each: randrw with
# --verify at 4 KiB and at 124 KiB. Each run: IOs done, 0 errors, 0 verify
# errors.
#
#   test_perf.sh RTRS_PERF [SECONDS]
set -uo pipefail
[ -n "${LAB_RXE_SRV:-}" ] || { echo "skip: runs in the RDMA lab (tests/rdma/lab.sh run)"; exit 77; }
perf=$1 secs=${2:-2}
work=$(mktemp -d)
spid=0
trap '[ "$spid" -gt 0 ] && kill "$spid" 2>/dev/null; wait; rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }
num() { grep -o "\"$1\":[0-9.]*" <<< "$2" | head -1 | cut -d: -f2; }

for wire in rxe siw; do
	srv=LAB_${wire^^}_SRV
	"$perf" server --provider verbs --listen "${!srv}:0" > "$work/srv.out" 2>&1 &
	spid=$!
	for _ in $(seq 1 300); do grep -q '^listening' "$work/srv.out" && break; sleep 0.1; done
	addr=$(awk '/^listening/ { print $2; exit }' "$work/srv.out")
	[ -n "$addr" ] || { ko "$wire: server did not start: $(cat "$work/srv.out")"; continue; }
	for bs in 4096 126976; do
		j=$("$perf" client --provider verbs --connect "$addr" --rw randrw \
			--verify --bs "$bs" --qd 8 --time "$secs" --json 2> "$work/clt.err")
		rc=$?
		ios=$(num ios "$j") e=$(num errors "$j") v=$(num verify_errors "$j")
		if [ "$rc" -eq 0 ] && [ "${ios:-0}" -gt 0 ] && [ "$e" = 0 ] && [ "$v" = 0 ]; then
			ok "$wire bs=$bs: $ios IOs, $(num iops "$j") IOPS, errors 0, verify errors 0"
		else
			ko "$wire bs=$bs: exit $rc, ios ${ios:-?} errors ${e:-?} verify ${v:-?}"
			tail -5 "$work/clt.err"
		fi
	done
	kill "$spid"; wait "$spid" 2>/dev/null; spid=0
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
