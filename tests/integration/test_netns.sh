#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Multipath over real links: a client and a server network namespace joined
# by two veth pairs (two paths). rtrs-perf runs verified random read/write
# at QD 32 while one link is cut three ways:
#   linkdown  - `ip link set down` on the client's end, up again later
#   drop      - an iptables DROP on the server's end (silent loss), removed
#   restart   - the server is killed and started again (its data is a file)
# each asserting zero IO errors, zero data mismatches, failovers > 0 and
# every path back in CONNECTED. Then path 1 is slowed (a tbf rate limit,
# 20 Mbit/s): min-inflight and min-latency send most IO to path 0,
# round-robin alternates. Last both links are cut: the client gets errors
# and ends (no hang). Namespaces go even when the test fails.
#
# With RNBD_SERVER and FIO_ENGINE given (and fio installed), fio with
# verify=crc32c runs through the native rnbd engine while a link is cut
# and restored: zero errors, zero verify failures.
#
#   test_netns.sh RTRS_PERF [RNBD_SERVER FIO_ENGINE]   (root; 77 = skipped)
set -uo pipefail
perf=$1 rnbdsrv=${2:-} engine=${3:-}
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
command -v ip >/dev/null || { echo "skip: no ip(8)"; exit 77; }

C=rtrsc$$ S=rtrss$$
work=$(mktemp -d)
export RTRS_RUN_DIR=$work/run RTRS_LOG_LEVEL=${RTRS_LOG_LEVEL:-err}
PORT=7500
A0=10.77.0.2:$PORT A1=10.77.1.2:$PORT
spid=0 pass=0 fail=0

cleanup() {
	[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null
	wait 2>/dev/null
	ip netns del "$C" 2>/dev/null
	ip netns del "$S" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

if ! ip netns add "$C" || ! ip netns add "$S"; then
	echo "skip: cannot create network namespaces"
	exit 77
fi
for i in 0 1; do
	ip link add "rtc$i-$$" netns "$C" type veth peer name "rts$i-$$" netns "$S" || exit 1
	ip -n "$C" addr add "10.77.$i.1/24" dev "rtc$i-$$"
	ip -n "$S" addr add "10.77.$i.2/24" dev "rts$i-$$"
	ip -n "$C" link set "rtc$i-$$" up
	ip -n "$S" link set "rts$i-$$" up
done
ip -n "$C" link set lo up
ip -n "$S" link set lo up

server_start() {
	ip netns exec "$S" "$perf" server --listen "$A0,$A1" --size 32M \
		--store "$work/store" > "$work/srv.out" 2>&1 &
	spid=$!
	for _ in $(seq 1 100); do
		[ "$(grep -c '^listening' "$work/srv.out")" -ge 2 ] && return 0
		sleep 0.1
	done
	echo "server did not start" >&2
	cat "$work/srv.out" >&2
	exit 1
}

# run_case NAME SECONDS CUT_AT RESTORE_AT CUT_CMD RESTORE_CMD
run_case() {
	local name=$1 secs=$2 cut_at=$3 restore_at=$4 cut=$5 restore=$6
	local out=$work/$name.json tl=$work/$name.tl cpid rc j e v f last

	ip netns exec "$C" "$perf" client --connect "$A0,$A1" --name "netns-$name" \
		--rw randrw --bs 4k --qd 32 --size 32M --verify --time "$secs" \
		--hb 200,3 --no-path-timeout 10000 --timeline "$tl" --json \
		> "$out" 2> "$work/$name.err" &
	cpid=$!
	sleep "$cut_at"
	eval "$cut"
	sleep "$(awk -v a="$restore_at" -v b="$cut_at" 'BEGIN { print a - b }')"
	eval "$restore"
	wait "$cpid"
	rc=$?
	j=$(tail -1 "$out")
	e=$(grep -o '"errors":[0-9]*' <<<"$j" | head -1 | grep -o '[0-9]*$')
	v=$(grep -o '"verify_errors":[0-9]*' <<<"$j" | head -1 | grep -o '[0-9]*$')
	f=$(grep -o '"failovers":[0-9]*' <<<"$j" | head -1 | grep -o '[0-9]*$')
	last=$(tail -1 "$tl")
	echo "$name: exit $rc, errors ${e:-?}, verify errors ${v:-?}, failovers ${f:-?}, last row: $last"
	[ "$rc" -eq 0 ] && ok || { bad "$name: client exit $rc"; cat "$work/$name.err" >&2; }
	[ "${e:-1}" -eq 0 ] && ok || bad "$name: IO errors $e"
	[ "${v:-1}" -eq 0 ] && ok || bad "$name: verify errors $v"
	[ "${f:-0}" -gt 0 ] && ok || bad "$name: no failover"
	# columns: t iops p0_iops p0_state p1_iops p1_state; 1 = connected
	awk '{ exit !($4 == 1 && $6 == 1) }' <<<"$last" && ok ||
		bad "$name: a path is not back in CONNECTED at the end ($last)"
}

server_start
run_case linkdown 7 2 3.5 \
	"ip -n $C link set rtc0-$$ down" "ip -n $C link set rtc0-$$ up"
run_case drop 8 2 3.5 \
	"ip netns exec $S iptables -A INPUT -i rts1-$$ -j DROP" \
	"ip netns exec $S iptables -D INPUT -i rts1-$$ -j DROP"
run_case restart 7 2 2.5 \
	'kill -9 $spid; wait $spid 2>/dev/null' 'server_start'

# path 1 slowed: per-path completions summed from the timeline
pols="mi ml rr"
if ! ip netns exec "$C" tc qdisc add dev "rtc1-$$" root tbf rate 20mbit \
	burst 32kbit latency 1s; then
	bad "cannot slow path 1 (no tbf qdisc in this kernel?)"
	pols=""
fi
policy_case() { # policy -> "path0 path1" completions
	ip netns exec "$C" "$perf" client --connect "$A0,$A1" --name "netns-$1" \
		--rw write --bs 4k --qd 32 --size 32M --time 3 --policy "$1" \
		--hb 200,5 --timeline "$work/pol-$1.tl" --json \
		> "$work/pol-$1.json" 2> "$work/pol-$1.err" || echo "client failed" >&2
	awk '!/^#/ { a += $3 * 0.1; b += $5 * 0.1 } END { printf "%d %d\n", a, b }' \
		"$work/pol-$1.tl"
}
for pol in $pols; do
	read -r n0 n1 < <(policy_case "$pol")
	echo "slow path 1, policy $pol: path 0 $n0, path 1 $n1 completions"
	if [ "$pol" = rr ]; then
		# alternation: within 20% of each other
		[ "$n1" -gt 0 ] && [ $((n0 * 10)) -le $((n1 * 12)) ] &&
			[ $((n1 * 10)) -le $((n0 * 12)) ] && ok ||
			bad "rr with a slow path: $n0 / $n1 is not alternation"
	else
		[ "$n0" -gt $((n1 * 4)) ] && ok ||
			bad "$pol with a slow path 1: $n0 / $n1, most IO should avoid it"
	fi
done
[ -n "$pols" ] && ip netns exec "$C" tc qdisc del dev "rtc1-$$" root

# fio through the native rnbd engine, a link cut and restored under it
if [ -n "$rnbdsrv" ] && [ -n "$engine" ] && command -v fio >/dev/null; then
	kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=0
	truncate -s 64M "$work/rnbd.img"
	ip netns exec "$S" "$rnbdsrv" --listen "$A0,$A1" --export "disk=$work/rnbd.img" \
		> "$work/rnbd.out" 2>&1 &
	spid=$!
	for _ in $(seq 1 100); do
		[ "$(grep -c '^listening' "$work/rnbd.out")" -ge 2 ] && break
		sleep 0.1
	done
	cat > "$work/fio.job" <<JOB
[global]
ioengine=external:$engine
rnbd_server=$A0,$A1
rnbd_device=disk
size=48m
time_based=1
runtime=12
verify=crc32c
verify_fatal=1
verify_backlog=256
verify_state_save=0
[w]
rw=randwrite
bs=4k
iodepth=32
JOB
	(cd "$work" && RTRS_LOG_LEVEL=err ip netns exec "$C" fio "$work/fio.job") \
		> "$work/fio.out" 2>&1 &
	fpid=$!
	# the cut comes once fio's job has its device (both paths connected),
	# and 1 s of IO: the engine opens the device twice, first in fio's
	# parent to learn its size, then in the job (under load its start
	# alone can take seconds)
	for _ in $(seq 1 300); do
		[ "$(grep -c " opened disk " "$work/rnbd.out")" -ge 2 ] && break
		sleep 0.1
	done
	sleep 1
	ip netns exec "$S" iptables -A INPUT -i "rts0-$$" -j DROP
	# long enough for the default heartbeat (1 s x 5) to fail the path
	sleep 7
	ip netns exec "$S" iptables -D INPUT -i "rts0-$$" -j DROP
	if wait "$fpid" && grep -q "err= 0" "$work/fio.out"; then
		ok
		echo "fio under a cut: $(grep -E '^ +(read|write):' "$work/fio.out" | tr -s ' ' | paste -sd ';')"
	else
		bad "fio under a cut: $(tail -15 "$work/fio.out")"
	fi
	kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=0
	server_start
fi

# both links cut, no hold: requests fail, the client ends on its own
ip netns exec "$C" "$perf" client --connect "$A0,$A1" --name netns-both \
	--rw randrw --bs 4k --qd 32 --size 32M --verify --time 5 --hb 200,3 \
	--json > "$work/both.json" 2> "$work/both.err" &
cpid=$!
sleep 2
ip -n "$C" link set "rtc0-$$" down
ip -n "$C" link set "rtc1-$$" down
t0=$(date +%s)
for _ in $(seq 1 300); do
	kill -0 "$cpid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$cpid" 2>/dev/null; then
	bad "both cut: client still running 30 s later (hang)"
	kill -9 "$cpid"
fi
wait "$cpid"
rc=$?
e=$(tail -1 "$work/both.json" | grep -o '"errors":[0-9]*' | grep -o '[0-9]*$')
echo "both: exit $rc, errors ${e:-?}, ended $(( $(date +%s) - t0 )) s after the cut"
[ "$rc" -eq 1 ] && ok || bad "both cut: exit $rc, expected 1 (IO errors)"
[ "${e:-0}" -gt 0 ] && ok || bad "both cut: no IO error reported"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
