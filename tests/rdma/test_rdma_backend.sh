#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# In the lab guest (CTest rdma.backend): the rdma-core backend
# (src/fabric/rdma/, --provider rdma), librtrs to librtrs over rxe.
# rtrs-perf server and client, one session: randrw with --verify (every
# block written first, every read compared) at 4 KiB and at 124 KiB, and
# a write-only run: IOs done, reads and writes both > 0 where asked, 0
# errors, 0 verify errors, and the traffic on the rxe wire; every
# endpoint closed with its drain markers back. Then siw
# (iWARP) is refused with "Operation not supported", at once and cleanly.
#
#   test_rdma_backend.sh RTRS_PERF [SECONDS]
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
pkts() { cat "/sys/class/net/$1/statistics/tx_packets"; }

"$perf" server --provider rdma --listen "$LAB_RXE_SRV:0" > "$work/srv.out" 2>&1 &
spid=$!
for _ in $(seq 1 300); do grep -q '^listening' "$work/srv.out" && break; sleep 0.1; done
addr=$(awk '/^listening/ { print $2; exit }' "$work/srv.out")
if [ -z "$addr" ]; then
	ko "rxe: server did not start: $(cat "$work/srv.out")"
else
	ok "rxe: rtrs-perf server --provider rdma listens on $addr"
	for run in "randrw 4096" "randrw 126976" "write 65536"; do
		set -- $run
		rw=$1 bs=$2 w0=$(pkts "$LAB_RXE_LINK")
		j=$("$perf" client --provider rdma --connect "$addr" --rw "$rw" \
			--verify --bs "$bs" --qd 8 --size 8M --time "$secs" \
			--json 2> "$work/clt.err")
		rc=$?
		ios=$(num ios "$j") e=$(num errors "$j") v=$(num verify_errors "$j")
		rd=$(num read_cnt "$j") wr=$(num write_cnt "$j") dw=$(($(pkts "$LAB_RXE_LINK") - w0))
		want_rd=1
		[ "$rw" = write ] && want_rd=0
		if [ "$rc" -eq 0 ] && [ "${ios:-0}" -gt 0 ] && [ "$e" = 0 ] &&
		   [ "$v" = 0 ] && [ "${wr:-0}" -gt 0 ] &&
		   { [ "$want_rd" = 0 ] || [ "${rd:-0}" -gt 0 ]; } && [ "$dw" -gt 0 ]; then
			ok "rxe $rw bs=$bs: $ios IOs ($rd reads verified, $((${rd:-0} * bs)) bytes; $wr writes), $(num iops "$j") IOPS, errors 0, verify errors 0, $dw packets on $LAB_RXE_LINK"
		else
			ko "rxe $rw bs=$bs: exit $rc, ios ${ios:-?} reads ${rd:-?} writes ${wr:-?} errors ${e:-?} verify ${v:-?} packets $dw"
			tail -5 "$work/clt.err"
		fi
	done
	kill "$spid"; wait "$spid" 2>/dev/null; spid=0
	# every endpoint closed with its drain markers back (no 5 s bound hit)
	if grep -q 'never flushed' "$work/srv.out" "$work/clt.err"; then
		ko "rxe: an endpoint closed without its flushes: $(grep -h 'never flushed' "$work/srv.out" "$work/clt.err" | head -2)"
	else
		ok "rxe: every endpoint closed with its flushed completions"
	fi
	# an ASan build (build/asan/tools/rtrs-perf): nothing reported
	if grep -q 'Sanitizer' "$work/srv.out" "$work/clt.err"; then
		ko "rxe: sanitizer report: $(grep -h -A3 'Sanitizer' "$work/srv.out" "$work/clt.err" | head -8)"
	fi
fi

# iWARP: not in this slice (no immediate data): refused, not hung
out=$(timeout 60 "$perf" server --provider rdma --listen "$LAB_SIW_SRV:0" 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q 'not supported' <<< "$out"; then
	ok "siw: refused (exit $rc): $(tail -1 <<< "$out")"
else
	ko "siw: exit $rc: $out"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
