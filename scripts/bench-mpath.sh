#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The multipath benchmarks of docs/BENCHMARKS.md, interleaved per
# repetition on this shared machine:
#   1. 128 KiB WRITE QD 8: raw libfabric, one path, two paths (127.0.0.1
#      and 127.0.0.2) -> two/one ratio;
#   2. 4 KiB WRITE QD 32: raw, librtrs with fencing off (RTRS_FENCE=0, the
#      kernel's at-least-once mode) and on -> fencing cost;
#   3. failover stall, two paths, 4 KiB WRITE QD 32, path 0 cut at 2 s:
#      hard (the server resets the path, rtrsctl server-disconnect) and, as
#      root, silent (iptables DROP, heartbeat 200 ms x 3); longest gap
#      between completions and longest request;
# and one timeline of a silent cut plotted to docs/img/ (PLOT=1).
#
#   scripts/bench-mpath.sh [BUILD_DIR]     REPS=5 TIME=4 OUT=build/bench-mpath
#       PROVIDER=tcp (the raw floor's libfabric provider)
#       LIB_PROVIDER= (librtrs's; none: the library's default, sock)
set -euo pipefail
build=${1:-build/plain}
reps=${REPS:-5}
secs=${TIME:-4}
out=${OUT:-build/bench-mpath}
perf="$build/tools/rtrs-perf"
ctl="$build/tools/rtrsctl"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.tl
rawprov=${PROVIDER:-tcp}
export RTRS_PROVIDER=${LIB_PROVIDER:-} RTRS_LOG_LEVEL=err RTRS_RUN_DIR=$out/run

pids=() rules=()
cleanup() {
	for r in "${rules[@]}"; do iptables -D $r 2>/dev/null || true; done
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

. "$(dirname "$0")/bench-lib.sh"
start raw env RTRS_PROVIDER="$rawprov" "$perf" raw server --listen 127.0.0.1:0
start lib "$perf" server --listen 127.0.0.1:0,127.0.0.2:0 --size 256M
sleep 0.1       # the second listener's line
PORT2_lib=$(awk '/^listening 127.0.0.2/{n=split($2,a,":"); print a[n]}' "$out/lib.srv")
one="127.0.0.1:$PORT_lib" two="127.0.0.1:$PORT_lib,127.0.0.2:$PORT2_lib"

run() { # case rep cmd...
	local c=$1 r=$2; shift 2
	"$@" --json > "$out/$c.$r.json" 2>/dev/null || echo "bench: $c rep $r failed" >&2
}

# a cut at 2 s of a two-path run; $1 = hard|silent, $2 = rep
cut_run() {
	local kind=$1 r=$2 cpid sid
	"$perf" client --connect "$two" --name "cut-$kind-$r" --rw write --bs 4k \
		--qd 32 --time 5 --hb 200,3 --timeline "$out/cut-$kind.$r.tl" --json \
		> "$out/cut-$kind.$r.json" 2>/dev/null &
	cpid=$!
	sleep 2
	if [ "$kind" = hard ]; then
		sid=$("$ctl" --pid "$PID_lib" stats "cut-$kind-$r" |
			awk '/^server session/ { s = 1 } s && $1 == "path" { print $2; exit }')
		"$ctl" server-disconnect "cut-$kind-$r" "$sid" >/dev/null
	else
		# both directions: a dead link, not a one-way loss (the
		# server's heartbeats would still count as liveness)
		local r1="INPUT -i lo -p tcp -d 127.0.0.1 --dport $PORT_lib -j DROP"
		local r2="INPUT -i lo -p tcp -s 127.0.0.1 --sport $PORT_lib -j DROP"
		iptables -I $r1
		iptables -I $r2
		rules+=("$r1" "$r2")
		sleep 1.5
		iptables -D $r1
		iptables -D $r2
		rules=()
	fi
	wait "$cpid" || echo "bench: cut-$kind rep $r failed" >&2
}

for r in $(seq 1 "$reps"); do
	echo "bench-mpath: repetition $r/$reps" >&2
	run raw_w128k "$r" env RTRS_PROVIDER="$rawprov" "$perf" raw client --connect "127.0.0.1:$PORT_raw" --rw write --bs 131072 --qd 8 --time "$secs"
	run one_w128k "$r" "$perf" client --connect "$one" --rw write --bs 128k --qd 8 --time "$secs"
	run two_w128k "$r" "$perf" client --connect "$two" --rw write --bs 128k --qd 8 --time "$secs"
	run raw_w4k "$r" env RTRS_PROVIDER="$rawprov" "$perf" raw client --connect "127.0.0.1:$PORT_raw" --rw write --bs 4096 --qd 32 --time "$secs"
	RTRS_FENCE=0 run nofence_w4k "$r" "$perf" client --connect "$one" --rw write --bs 4k --qd 32 --time "$secs"
	run fence_w4k "$r" "$perf" client --connect "$one" --rw write --bs 4k --qd 32 --time "$secs"
	cut_run hard "$r"
	[ "$(id -u)" -eq 0 ] && cut_run silent "$r"
done

field() { grep -o "\"$2\":[0-9.]*" "$1" | head -1 | cut -d: -f2; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
med() { for r in $(seq 1 "$reps"); do field "$out/$1.$r.json" "$2"; done | median; }
ratio() { # median over reps of a/b
	for r in $(seq 1 "$reps"); do
		awk -v a="$(field "$out/$1.$r.json" iops)" -v b="$(field "$out/$2.$r.json" iops)" \
			'BEGIN { if (b > 0) printf "%.3f\n", a / b }'
	done | median
}

echo
echo "| case | median IOPS | MiB/s | p99 us | ratio |"
echo "|---|---:|---:|---:|---|"
for c in raw_w128k one_w128k two_w128k raw_w4k nofence_w4k fence_w4k; do
	printf "| %s | %.0f | %.1f | %.1f | " "$c" "$(med $c iops)" "$(med $c mib_s)" "$(med $c p99)"
	case $c in
	two_w128k) printf "two/one %s, two/raw %s |\n" "$(ratio two_w128k one_w128k)" "$(ratio two_w128k raw_w128k)" ;;
	one_w128k) printf "one/raw %s |\n" "$(ratio one_w128k raw_w128k)" ;;
	fence_w4k) printf "fenced/unfenced %s, fenced/raw %s |\n" "$(ratio fence_w4k nofence_w4k)" "$(ratio fence_w4k raw_w4k)" ;;
	nofence_w4k) printf "unfenced/raw %s |\n" "$(ratio nofence_w4k raw_w4k)" ;;
	*) printf "|\n" ;;
	esac
done
echo
echo "| cut at 2 s (two paths, 4 KiB WRITE QD 32, hb 200 ms x 3) | median longest gap ms | median longest request ms | worst longest request ms | failovers (median) |"
echo "|---|---:|---:|---:|---:|"
for k in hard silent; do
	[ -f "$out/cut-$k.1.json" ] || continue
	printf "| %s | %s | %s | %s | %s |\n" "$k" \
		"$(med cut-$k max_gap_ms)" \
		"$(for r in $(seq 1 "$reps"); do grep -o '"max":[0-9.]*' "$out/cut-$k.$r.json" | cut -d: -f2; done | awk '{ print $1 / 1000 }' | median)" \
		"$(for r in $(seq 1 "$reps"); do grep -o '"max":[0-9.]*' "$out/cut-$k.$r.json" | cut -d: -f2; done | sort -g | tail -1 | awk '{ print $1 / 1000 }')" \
		"$(med cut-$k failovers)"
done
if [ "${PLOT:-0}" = 1 ] && [ -f "$out/cut-silent.1.tl" ]; then
	mkdir -p docs/img
	"$(dirname "$0")/plot-timeline" "$out/cut-silent.1.tl" docs/img/failover-timeline.png \
		"two paths, 4 KiB WRITE QD 32: path 0 silently cut (iptables DROP both ways) for 1.5 s"
fi
