#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# No false positives from heartbeats: 60 s of heavy two-path load (128 KiB
# writes at QD 32 from two threads, CPU-bound on this machine) against a
# slow peer (every answer 200 us late, from one worker thread), with the
# tightest heartbeat allowed (100 ms x 3 missed). No path may be declared
# dead on either side: hb_timeouts 0, failovers 0, reconnects 0, errors 0.
#
#   test_soak.sh RTRS_PERF [SECONDS]
set -uo pipefail
perf=$1 secs=${2:-60}
work=$(mktemp -d)
spid=0
trap '[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null; rm -rf "$work"' EXIT

. "$(dirname "$0")/lib.sh"
srv_start_two "$work" "$perf" server --size 64M --delay-us 200
# the server's heartbeat is its default (1 s x 5); the client's is the
# tightest: it is the side that would fail over
"$perf" client --connect "$a1,$a2" --rw write --bs 128k --qd 16 --threads 2 \
	--size 64M --time "$secs" --hb 100,3 --json > "$work/clt.json" \
	2> "$work/clt.err"
rc=$?
kill -TERM "$spid"
wait "$spid"
spid=0
j=$(tail -1 "$work/clt.json")
echo "client: $j"
grep "rtrs-perf server: reads" "$work/srv.err"
fail=0
for k in errors failovers hb_timeouts reconnects; do
	# the session's and each path's (hb_timeouts): the largest
	v=$(grep -o "\"$k\":[0-9]*" <<<"$j" | grep -o '[0-9]*$' | sort -n | tail -1)
	if [ "${v:-1}" -ne 0 ]; then
		echo "FAIL: client $k = ${v:-?}" >&2
		fail=1
	fi
done
grep -q "hb-timeouts 0 " "$work/srv.err" || { echo "FAIL: server hb timeouts" >&2; fail=1; }
[ "$rc" -eq 0 ] || { echo "FAIL: client exit $rc" >&2; cat "$work/clt.err" >&2; fail=1; }
[ "$fail" -eq 0 ] && echo "no false positive in $secs s of load"
exit "$fail"
