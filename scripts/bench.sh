#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The rtrs-perf benchmark matrix of docs/BENCHMARKS.md: every repetition
# runs the raw libfabric floor and librtrs back to back (interleaved), so
# ratios are taken within one repetition on this shared, noisy machine.
#
#   scripts/bench.sh [BUILD_DIR]      REPS=5 TIME=3 PROVIDER=tcp
#                                     LIB_PROVIDER=
# PROVIDER is the raw floor's libfabric provider (rtrs-perf raw);
# LIB_PROVIDER librtrs's, by default none: the library's default (sock,
# librtrs's own TCP transport), against the raw libfabric tcp provider.
# LIB_PROVIDER=tcp measures librtrs over libfabric's tcp.
#
# Prints a markdown table; raw per-run JSON goes to $OUT (default
# build/bench).
set -euo pipefail
build=${1:-build/plain}
reps=${REPS:-5}
secs=${TIME:-3}
prov=${PROVIDER:-tcp}
libprov=${LIB_PROVIDER:-}
out=${OUT:-build/bench}
perf="$build/tools/rtrs-perf"
mkdir -p "$out"
rm -f "$out"/*.json
unset RTRS_PROVIDER
export RTRS_LOG_LEVEL=err

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

. "$(dirname "$0")/bench-lib.sh"

start raw env RTRS_PROVIDER="$prov" "$perf" raw server --listen 127.0.0.1:0
start inv env RTRS_PROVIDER="$libprov" "$perf" server --listen 127.0.0.1:0 --size 256M
start noinv env RTRS_PROVIDER="$libprov" "$perf" server --listen 127.0.0.1:0 --size 256M --no-invalidate

run() { # case rep cmd...
	local c=$1 r=$2; shift 2
	if ! "$@" --json > "$out/$c.$r.json" 2>/dev/null; then
		echo "bench: $c rep $r failed" >&2
	fi
}

for r in $(seq 1 "$reps"); do
	echo "bench: repetition $r/$reps" >&2
	run raw_w4k "$r" env RTRS_PROVIDER="$prov" "$perf" raw client --connect "127.0.0.1:$PORT_raw" --rw write --bs 4096 --qd 32 --time "$secs"
	run lib_w4k "$r" env RTRS_PROVIDER="$libprov" "$perf" client --connect "127.0.0.1:$PORT_inv" --rw write --bs 4k --qd 32 --time "$secs"
	run noinv_w4k "$r" env RTRS_PROVIDER="$libprov" "$perf" client --connect "127.0.0.1:$PORT_noinv" --rw write --bs 4k --qd 32 --time "$secs"
	run raw_w128k "$r" env RTRS_PROVIDER="$prov" "$perf" raw client --connect "127.0.0.1:$PORT_raw" --rw write --bs 131072 --qd 8 --time "$secs"
	run lib_w128k "$r" env RTRS_PROVIDER="$libprov" "$perf" client --connect "127.0.0.1:$PORT_inv" --rw write --bs 128k --qd 8 --time "$secs"
	run raw_r128k "$r" env RTRS_PROVIDER="$prov" "$perf" raw client --connect "127.0.0.1:$PORT_raw" --rw read --bs 131072 --qd 8 --time "$secs"
	run lib_r128k "$r" env RTRS_PROVIDER="$libprov" "$perf" client --connect "127.0.0.1:$PORT_inv" --rw read --bs 128k --qd 8 --time "$secs"
	run raw_r4k1 "$r" env RTRS_PROVIDER="$prov" "$perf" raw client --connect "127.0.0.1:$PORT_raw" --rw read --bs 4096 --qd 1 --time "$secs"
	run lib_r4k1 "$r" env RTRS_PROVIDER="$libprov" "$perf" client --connect "127.0.0.1:$PORT_inv" --rw read --bs 4k --qd 1 --time "$secs"
done

# field FILE KEY -> number
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1"; }
p50() { sed -n 's/.*"p50":\([0-9.]*\).*/\1/p' "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {if (!NR) {print "n/a"; exit} m=int((NR+1)/2); if (NR%2) print a[m]; else print (a[m]+a[m+1])/2}'; }
vals() { # case getter
	for r in $(seq 1 "$reps"); do f="$out/$1.$r.json"; [ -s "$f" ] && $2 "$f"; done
}
iops() { field "$1" iops; }
mibs() { field "$1" mib_s; }
ratios() { # num den getter [invert]
	for r in $(seq 1 "$reps"); do
		a="$out/$1.$r.json"; b="$out/$2.$r.json"
		[ -s "$a" ] && [ -s "$b" ] || continue
		x=$($3 "$a"); y=$($3 "$b")
		awk -v x="$x" -v y="$y" 'BEGIN { if (y > 0) printf "%.3f\n", x / y }'
	done
}
list() { tr '\n' ' ' | sed 's/ $//'; }

row() { # label num den getter unit target
	local n d r
	n=$(vals "$2" "$4" | median); d=$(vals "$3" "$4" | median)
	r=$(ratios "$2" "$3" "$4" | median)
	printf '| %s | %s %s | %s %s | **%s** (%s) | %s |\n' "$1" "$n" "$5" "$d" "$5" "$r" \
		"$(ratios "$2" "$3" "$4" | list)" "$6"
}

echo
echo "provider: raw $prov, librtrs ${libprov:-the default (sock)}, $reps repetitions x ${secs}s per run, $(nproc) CPUs, $(date -u +%Y-%m-%d)"
echo
echo '| case | librtrs (median) | baseline (median) | ratio, median (per rep) | target |'
echo '|---|---|---|---|---|'
row "4 KiB WRITE QD32, ops/s vs raw fi_writedata" lib_w4k raw_w4k iops "IOPS" ">= 0.90"
row "128 KiB WRITE QD8, MiB/s vs raw" lib_w128k raw_w128k mibs "MiB/s" ">= 0.95"
row "128 KiB READ QD8, MiB/s vs raw" lib_r128k raw_r128k mibs "MiB/s" ">= 0.95"
row "4 KiB READ QD1, p50 us vs raw round trip (lower is better)" lib_r4k1 raw_r4k1 p50 "us" "<= 1.30"
row "4 KiB WRITE QD32, always_invalidate on vs off" lib_w4k noinv_w4k iops "IOPS" ">= 0.95"

# memory: resident set of the server process with its sessions, and of an
# idle client session
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
srv_before=$(rss "$PID_noinv")
"$perf" client --connect "127.0.0.1:$PORT_noinv" --rw write --bs 128k --qd 512 --size 128M \
	--time 1 --json > "$out/mem.json" 2>/dev/null &
cpid=$!
sleep 0.8
cli_rss=$(rss "$cpid" || echo 0)
srv_during=$(rss "$PID_noinv")
wait "$cpid" || true
echo
echo "memory: a session with all 512 chunks of 128 KiB in use adds $(( (srv_during - srv_before) / 1024 )) MiB" \
     "to the server's resident set; the client process (rtrs-perf with 512 x 128 KiB of its own buffers)" \
     "was at $(( cli_rss / 1024 )) MiB."
