#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The rnbd fio matrix of docs/BENCHMARKS.md, peers measured in the same
# run and interleaved per repetition on this shared machine:
#   rnbd   fio's external engine librnbd-fio.so -> rnbd-server exporting a
#          1 GiB file on tmpfs (TCP loopback), the library's and the
#          engine's defaults: nothing set (RTRS_PROVIDER, RTRS_PIN and
#          RTRS_POLL_US unset on both sides, rtrs(7) chooses: the sock
#          backend);
#   rnbd-t the same with a server without always_invalidate (READs sent
#          straight from a mapping of the file, no key per request): the
#          one setting left that is worth changing, and a security one;
#   rnbd-f the same over libfabric's tcp provider (RTRS_PROVIDER=tcp on
#          both sides), the default before the sock backend;
#   nbd    fio's nbd engine -> `nbdkit memory size=1G` on TCP loopback;
#   raw    the libfabric provider itself: `rtrs-perf raw client` (one per
#          job) with the row's size, direction and depth, sequential;
#   local  fio on the same tmpfs file: psync at QD 1, io_uring otherwise
#          (reference: block-peers.md section 3), O_DIRECT.
# Rows: 4 KiB randread/randwrite at QD 1 and 32, 128 KiB read/write at
# QD 8, each with 1 and 2 jobs; each job has its own session/connection
# and its own 512 MiB half of the device. Latency is fio's total latency.
# Then the IONOS RNBD profile (block-peers.md section 5) against rnbd and
# nbd, and (PLOT=1) a bar chart in docs/img/rnbd-matrix.png.
#
#   scripts/bench-rnbd.sh [BUILD_DIR]
#       REPS=3 TIME=5 IONOS_TIME=10 OUT=build/bench-rnbd PLOT=0
#       SRV_ARGS="..." (extra rnbd-server options)
#   A part of it (no IONOS profile, no chart unless all of it ran):
#       PEERS="rnbd nbd" ROWS="r4k1 w4k1" JOBS="1 2" IONOS=0
set -euo pipefail
build=${1:-build/plain}
reps=${REPS:-3}
secs=${TIME:-5}
ionos_secs=${IONOS_TIME:-10}
out=${OUT:-build/bench-rnbd}
srv="$build/tools/rnbd-server"
engine="$(cd "$build" && pwd)/fio/librnbd-fio.so"
for t in fio nbdkit nbdcopy jq; do
	command -v $t >/dev/null || { echo "bench-rnbd: needs $t (scripts/deps.sh bench)" >&2; exit 1; }
done
[ -x "$srv" ] && [ -f "$engine" ] || { echo "bench-rnbd: build $build first" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.csv
out=$(cd "$out" && pwd)
export RTRS_LOG_LEVEL=err RTRS_RUN_DIR=$out/run
disk=/dev/shm/rnbd-bench.$$

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -f "$disk"
}
trap cleanup EXIT

echo "bench-rnbd: 1 GiB on tmpfs, prefilled" >&2
dd if=/dev/zero of="$disk" bs=1M count=1024 status=none

. "$(dirname "$0")/bench-lib.sh"
# the defaults: nothing of rtrs(7) set in any process
unset RTRS_PROVIDER RTRS_PIN RTRS_POLL_US
# shellcheck disable=SC2086
start rnbd "$srv" --listen 127.0.0.1:0 --export "disk=$disk" ${SRV_ARGS:-}
# shellcheck disable=SC2086
start rnbdt "$srv" --listen 127.0.0.1:0 --export "disk=$disk" \
	--always-invalidate 0 ${SRV_ARGS:-}
# shellcheck disable=SC2086
start rnbdf env RTRS_PROVIDER=tcp "$srv" --listen 127.0.0.1:0 \
	--export "disk=$disk" ${SRV_ARGS:-}
# a raw server serves one client at a time: one per job
start raw1 "$build/tools/rtrs-perf" raw server --listen 127.0.0.1:0
start raw2 "$build/tools/rtrs-perf" raw server --listen 127.0.0.1:0

# nbdkit on the first free port from 10809
for port in $(seq 10809 10909); do
	ss -ltn "sport = :$port" | grep -q LISTEN && continue
	nbdkit -f -i 127.0.0.1 -p "$port" memory size=1G allocator=malloc \
		> "$out/nbd.srv" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do
		ss -ltn "sport = :$port" | grep -q LISTEN && break
		sleep 0.05
	done
	ss -ltn "sport = :$port" | grep -q LISTEN && break
done
nbd_uri="nbd://127.0.0.1:$port/"
nbdcopy "$disk" "$nbd_uri"      # the same prefill as the file

rows=(r4k1:randread:4k:1 r4k32:randread:4k:32 w4k1:randwrite:4k:1
      w4k32:randwrite:4k:32 r128k:read:128k:8 w128k:write:128k:8)
peers=(rnbd rnbd-t rnbd-f nbd raw local)
jobs=(1 2)
ionos=${IONOS:-1}
part=0
if [ -n "${PEERS:-}${ROWS:-}${JOBS:-}" ]; then
	part=1 ionos=${IONOS:-0}
	# shellcheck disable=SC2206
	[ -n "${PEERS:-}" ] && peers=($PEERS)
	# shellcheck disable=SC2206
	[ -n "${JOBS:-}" ] && jobs=($JOBS)
	if [ -n "${ROWS:-}" ]; then
		sel=()
		for r in "${rows[@]}"; do
			case " $ROWS " in *" ${r%%:*} "*) sel+=("$r") ;; esac
		done
		rows=("${sel[@]}")
	fi
fi

fio_run() { # result-file fio-args...
	local f=$1; shift
	# the nbd engine prints a line before the JSON
	(cd "$out" && fio "$@" --output-format=json) 2> "$f.err" | sed -n '/^{/,$p' > "$f" ||
		echo "bench-rnbd: $(basename "$f") failed: $(head -3 "$f.err")" >&2
}

# rtrs-perf raw clients, one per job, folded into fio's JSON shape
raw_run() { # result-file read|write bs qd jobs
	local f=$1 rw=$2 bs=$3 qd=$4 nj=$5 i
	case $bs in *k) bs=$(( ${bs%k} * 1024 )) ;; esac
	local cl=()
	for i in $(seq 1 "$nj"); do
		local port_var=PORT_raw$i
		"$build/tools/rtrs-perf" raw client --connect "127.0.0.1:${!port_var}" \
			--rw "$rw" --bs "$bs" --qd "$qd" --time "$secs" --json > "$f.$i" 2>/dev/null &
		cl+=($!)
	done
	wait "${cl[@]}" || true
	jq -s --arg d "$rw" '{jobs: [{error: (map(.errors) | add),
		($d): {iops: (map(.iops) | add), bw_bytes: (map(.mib_s) | add * 1048576),
		       io_bytes: 1, lat_ns: {percentile: {
			"50.000000": (map(.lat_us.p50) | max * 1000),
			"99.000000": (map(.lat_us.p99) | max * 1000)}}},
		(if $d == "read" then "write" else "read" end): {iops: 0, bw_bytes: 0, io_bytes: 0}}]}' \
		"$f".[0-9]* > "$f" 2>/dev/null || echo "bench-rnbd: $(basename "$f") failed" >&2
	rm -f "$f".[0-9]*
}

matrix_run() { # peer row nj rep
	local peer=$1 row=$2 nj=$3 r=$4 name rw bs qd eng=()
	IFS=: read -r name rw bs qd <<< "$row"
	case $peer in
	rnbd|rnbd-t|rnbd-f)
		local p=$PORT_rnbd
		[ "$peer" = rnbd-t ] && p=$PORT_rnbdt
		[ "$peer" = rnbd-f ] && p=$PORT_rnbdf
		eng=(--ioengine=external:"$engine" --rnbd_server="127.0.0.1:$p"
		     --rnbd_device=disk)
		# a second writing job needs the migration mode
		[ "$nj" -gt 1 ] && [ "${rw%read}" = "$rw" ] && eng+=(--rnbd_access=migration)
		;;
	raw)
		raw_run "$out/$peer.$name.j$nj.$r.json" "${rw#rand}" "$bs" "$qd" "$nj"
		return
		;;
	nbd) eng=(--ioengine=nbd --uri="$nbd_uri") ;;
	local)
		eng=(--filename="$disk" --direct=1)
		if [ "$qd" -eq 1 ]; then eng+=(--ioengine=psync); else eng+=(--ioengine=io_uring); fi
		;;
	esac
	local prov=${RTRS_PROVIDER:-}
	[ "$peer" = rnbd-f ] && prov=tcp
	RTRS_PROVIDER=$prov fio_run "$out/$peer.$name.j$nj.$r.json" --name="$peer-$name" "${eng[@]}" \
		--rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs="$nj" \
		--size=512m --offset_increment=512m --norandommap --randrepeat=0 \
		--time_based --runtime="$secs" --ramp_time=1 --group_reporting \
		--lat_percentiles=1 --verify=0
}

for r in $(seq 1 "$reps"); do
	for nj in "${jobs[@]}"; do
		for row in "${rows[@]}"; do
			echo "bench-rnbd: rep $r/$reps, ${row%%:*}, $nj job(s)" >&2
			for peer in "${peers[@]}"; do
				matrix_run "$peer" "$row" "$nj" "$r"
			done
		done
	done
done

# the IONOS profile (block-peers.md 5), our engine instead of libaio
ionos_run() { # peer rep
	local eng=()
	case $1 in
	rnbd) eng=(--ioengine=external:"$engine" --rnbd_server="127.0.0.1:$PORT_rnbd" --rnbd_device=disk) ;;
	rnbd-t) eng=(--ioengine=external:"$engine" --rnbd_server="127.0.0.1:$PORT_rnbdt" --rnbd_device=disk) ;;
	nbd) eng=(--ioengine=nbd --uri="$nbd_uri") ;;
	esac
	fio_run "$out/ionos.$1.$2.json" --name="ionos-$1" "${eng[@]}" \
		--bssplit=512/20:1k/16:2k/9:4k/12:8k/19:16k/10:32k/8:64k/4 \
		--fadvise_hint=0 --rw=randrw:2 --random_distribution=zipf:1.2 \
		--time_based --runtime="$ionos_secs" --ramp_time=2 \
		--iodepth=129 --iodepth_batch_submit=128 --iodepth_batch_complete=128 \
		--numjobs=1 --group_reporting --size=1g --lat_percentiles=1
}
[ "$ionos" = 1 ] && for r in $(seq 1 "$reps"); do
	echo "bench-rnbd: IONOS profile, rep $r/$reps" >&2
	ionos_run rnbd "$r"
	ionos_run rnbd-t "$r"
	ionos_run nbd "$r"
done

# ---- summary ----
# IOPS, MiB/s, p50 and p99 us of a result (read + write; the larger p99)
jv() { # file expression
	[ -s "$1" ] || { echo 0; return; }
	jq -r ".jobs[0] | $2" "$1" 2>/dev/null || echo 0
}
iops() { jv "$1" '(.read.iops + .write.iops) | floor'; }
mibs() { jv "$1" '((.read.bw_bytes + .write.bw_bytes) / 1048576 * 10 | floor) / 10'; }
pct() { jv "$1" "[.read, .write] | map(select(.io_bytes > 0) | .lat_ns.percentile[\"$2\"] // 0) | max / 1000 | floor"; }
errs() { jv "$1" '.error'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
across() { # fn peer.row.jN [arg]: the value for each rep, one per line
	for r in $(seq 1 "$reps"); do $1 "$out/$2.$r.json" ${3:+"$3"}; done
}
ratio() { # a-peer b-peer row.jN: median over reps of a/b
	for r in $(seq 1 "$reps"); do
		awk -v a="$(iops "$out/$1.$3.$r.json")" -v b="$(iops "$out/$2.$3.$r.json")" \
			'BEGIN { if (b > 0) printf "%.2f\n", a / b }'
	done | median
}

bad=0
for f in "$out"/*.json; do
	[ "$(errs "$f")" = 0 ] && [ "$(iops "$f")" -gt 0 ] || { echo "bench-rnbd: $(basename "$f"): error or no IO" >&2; bad=1; }
done

label() { case $1 in
	r4k1) echo "4k randread QD1" ;; r4k32) echo "4k randread QD32" ;;
	w4k1) echo "4k randwrite QD1" ;; w4k32) echo "4k randwrite QD32" ;;
	r128k) echo "128k read QD8" ;; w128k) echo "128k write QD8" ;; esac; }

has() { case " ${peers[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
rnbds=()
for p in rnbd rnbd-t rnbd-f; do has $p && rnbds+=("$p"); done
echo
echo "Medians of $reps runs of ${secs} s (after 1 s ramp); IOPS (p50/p99 us of total latency); X/nbd = median of the per-run ratios."
echo
hdr="| case | jobs |" sep="|---|---:|"
for p in "${peers[@]}"; do
	if [ "$p" = local ]; then hdr+=" local IOPS |"; else hdr+=" $p IOPS, p50/p99 us |"; fi
	sep+="---:|"
done
if has nbd; then for p in "${rnbds[@]}"; do hdr+=" $p/nbd |" sep+="---:|"; done; fi
has raw && has rnbd && hdr+=" rnbd/raw |" sep+="---:|"
echo "$hdr"
echo "$sep"
: > "$out/matrix.csv"
cell() { # peer key: "IOPS, p50/p99"
	printf "%.0f, %s/%s" "$(across iops "$1.$2" | median)" \
		"$(across pct "$1.$2" 50.000000 | median)" "$(across pct "$1.$2" 99.000000 | median)"
}
for nj in "${jobs[@]}"; do
	for row in "${rows[@]}"; do
		n=${row%%:*} k=$n.j$nj
		line="| $(label "$n") | $nj |"
		printf '"%s, %dj"' "$(label "$n")" "$nj" >> "$out/matrix.csv"
		for p in "${peers[@]}"; do
			if [ "$p" = local ]; then
				line+=" $(printf %.0f "$(across iops local.$k | median)") |"
			else
				line+=" $(cell "$p" "$k") |"
			fi
			printf '\t%s' "$(across iops "$p.$k" | median)" >> "$out/matrix.csv"
		done
		echo >> "$out/matrix.csv"
		if has nbd; then for p in "${rnbds[@]}"; do line+=" $(ratio "$p" nbd "$k") |"; done; fi
		has raw && has rnbd && line+=" $(ratio rnbd raw "$k") |"
		echo "$line"
	done
done
if [ "$ionos" = 1 ]; then
	echo
	echo "IONOS profile (bssplit 512..64k, randrw:2, zipf:1.2, QD 129, batch 128), ${ionos_secs} s after 2 s ramp, medians of $reps:"
	echo
	echo "| peer | read IOPS | write IOPS | MiB/s | mean latency us (read) | p99 us | runs (read IOPS) |"
	echo "|---|---:|---:|---:|---:|---:|---|"
	for p in rnbd rnbd-t nbd; do
		printf "| %s | %s | %s | %s | %s | %s | %s |\n" "$p" \
			"$(across jv ionos.$p '.read.iops | floor' | median)" \
			"$(across jv ionos.$p '.write.iops | floor' | median)" \
			"$(across mibs ionos.$p | median)" \
			"$(across jv ionos.$p '.read.lat_ns.mean / 1000 | floor' | median)" \
			"$(across pct ionos.$p 99.000000 | median)" \
			"$(across jv ionos.$p '.read.iops | floor' | paste -sd ' ')"
	done
fi

if [ "${PLOT:-0}" = 1 ] && [ "$part" = 0 ]; then
	command -v gnuplot >/dev/null || "$(dirname "$0")/deps.sh" bench
	mkdir -p docs/img
	gnuplot <<GP
set terminal pngcairo size 1400,650 font ",10" noenhanced
set output "docs/img/rnbd-matrix.png"
set title "fio on a 1 GiB tmpfs export, 2 shared vCPUs, TCP loopback; medians of $reps runs"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [1000:*]
set ylabel "IOPS (log scale)"
set xtics rotate by -30 scale 0
set key outside top center horizontal
set grid ytics
set datafile separator "\t"
plot "$out/matrix.csv" using 2:xtic(1) title "rnbd (defaults: sock)" lc rgb "#1f77b4", \
     "" using 3 title "rnbd (no always_invalidate)" lc rgb "#6baed6", \
     "" using 4 title "rnbd over libfabric tcp" lc rgb "#9467bd", \
     "" using 5 title "NBD (nbdkit memory, fio nbd engine)" lc rgb "#ff7f0e", \
     "" using 6 title "raw libfabric tcp (rtrs-perf raw)" lc rgb "#2ca02c", \
     "" using 7 title "local tmpfs, no network" lc rgb "#9a9a9a"
GP
	echo "bench-rnbd: docs/img/rnbd-matrix.png" >&2
fi
exit $bad
