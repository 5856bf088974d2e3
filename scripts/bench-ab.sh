#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# librtrs of two builds against each other and against the raw provider,
# interleaved within every repetition (this machine is shared and noisy):
# a change's cost, e.g. software RMA (docs/BENCHMARKS.md).
#
#   scripts/bench-ab.sh BUILD_A BUILD_B     REPS=3 TIME=3 PROVIDER=tcp
#
# The servers run with their defaults (always_invalidate on). Prints a
# markdown table of medians; ratios are per repetition, then the median.
set -euo pipefail
a=$1 b=$2
reps=${REPS:-3}
secs=${TIME:-3}
export RTRS_PROVIDER=${PROVIDER:-tcp} RTRS_LOG_LEVEL=err
out=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
. "$(dirname "$0")/bench-lib.sh"

start raw "$a/tools/rtrs-perf" raw server --listen 127.0.0.1:0
start A "$a/tools/rtrs-perf" server --listen 127.0.0.1:0 --size 256M
start B "$b/tools/rtrs-perf" server --listen 127.0.0.1:0 --size 256M

cases=("w4k:--rw write --bs 4096 --qd 32" "w128k:--rw write --bs 131072 --qd 8"
       "r128k:--rw read --bs 131072 --qd 8" "r4k1:--rw read --bs 4096 --qd 1")
for r in $(seq 1 "$reps"); do
	echo "bench-ab: repetition $r/$reps" >&2
	for c in "${cases[@]}"; do
		n=${c%%:*} args=${c#*:}
		# shellcheck disable=SC2086
		"$a/tools/rtrs-perf" raw client --connect "127.0.0.1:$PORT_raw" $args --time "$secs" --json > "$out/raw.$n.$r" 2>/dev/null || true
		# shellcheck disable=SC2086
		"$a/tools/rtrs-perf" client --connect "127.0.0.1:$PORT_A" $args --time "$secs" --json > "$out/A.$n.$r" 2>/dev/null || true
		# shellcheck disable=SC2086
		"$b/tools/rtrs-perf" client --connect "127.0.0.1:$PORT_B" $args --time "$secs" --json > "$out/B.$n.$r" 2>/dev/null || true
	done
done

set +e   # the report: a missing run is a gap, not the end
get() { # file -> iops, or p50 for the QD 1 row
	case $1 in
	*r4k1*) sed -n 's/.*"p50":\([0-9.]*\).*/\1/p' "$1" | head -1 ;;
	*) sed -n 's/.*"iops":\([0-9.]*\).*/\1/p' "$1" | head -1 ;;
	esac
}
median() { sort -g | awk '{v[NR]=$1} END {if (!NR) {print "n/a"; exit} m=int((NR+1)/2); print (NR%2) ? v[m] : (v[m]+v[m+1])/2}'; }
col() { for r in $(seq 1 "$reps"); do f="$out/$1.$2.$r"; [ -s "$f" ] && get "$f"; done | median; }
ratio() { for r in $(seq 1 "$reps"); do x=$(get "$out/$1.$3.$r" 2>/dev/null); y=$(get "$out/$2.$3.$r" 2>/dev/null); [ -n "$x" ] && [ -n "$y" ] && awk -v x="$x" -v y="$y" 'BEGIN { if (y > 0) printf "%.3f\n", x / y }'; done | median; }

echo
echo "provider $RTRS_PROVIDER, $reps repetitions x ${secs}s, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%d)"
echo "A = $a, B = $b"
echo
echo "| case | raw | A | B | A / raw | B / raw | B / A |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in "${cases[@]}"; do
	n=${c%%:*}
	unit=IOPS
	[ "$n" = r4k1 ] && unit="p50 µs (lower is better)"
	echo "| $n ($unit) | $(col raw "$n") | $(col A "$n") | $(col B "$n") | $(ratio A raw "$n") | $(ratio B raw "$n") | $(ratio B A "$n") |"
done
