#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The security soak (issue 15; not in CI): verified mixed IO over two
# paths for MINUTES while the links flap, the server restarts and hostile
# peers attack the same server beside it. Passes when the client ends with
# 0 errors and 0 verify errors, every attack was refused, and the client's
# and each server incarnation's RSS stayed flat (growth after warm-up
# under 10 % + 4 MiB). The result goes to docs/BENCHMARKS.md by hand.
#
#   scripts/soak.sh [BUILD_DIR] [MINUTES]     (root: network namespaces)
#   FLAP_S=40 RESTART_S=300 PROVIDER=tcp DELAY_US=0
#
# DELAY_US makes the server answer every request that late (rtrs-perf
# server --delay-us): the IO rate and the CPU it takes go down, for a soak
# beside other work on a small machine.
#
# Two namespaces joined by two veth pairs (10.78.0.0/24, 10.78.1.0/24);
# everything is removed at the end, also on failure.
set -uo pipefail
build=${1:-build/plain}
mins=${2:-30}
flap=${FLAP_S:-40}
restart=${RESTART_S:-300}
prov=${PROVIDER:-tcp}
delay=${DELAY_US:-0}
perf=$build/tools/rtrs-perf
hostile=$build/tests/test_hostile
[ "$(id -u)" -eq 0 ] || { echo "soak: needs root (network namespaces)" >&2; exit 2; }
[ -x "$perf" ] && [ -x "$hostile" ] || { echo "soak: build $build first" >&2; exit 2; }

C=soakc$$ S=soaks$$
work=$(mktemp -d)
export RTRS_PROVIDER=$prov RTRS_LOG_LEVEL=${RTRS_LOG_LEVEL:-err} RTRS_RUN_DIR=$work/run
A0=10.78.0.2:7600 A1=10.78.1.2:7600
secs=$((mins * 60))
spid=0 cpid=0 hpid=0 fail=0

cleanup() {
	for p in $cpid $hpid $spid; do [ "$p" -gt 0 ] && kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$C" 2>/dev/null
	ip netns del "$S" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
bad() { fail=$((fail + 1)); echo "soak: FAIL: $*" >&2; }
say() { echo "soak [$(date -u +%H:%M:%S)] $*"; }

ip netns add "$C" && ip netns add "$S" || { echo "soak: cannot make namespaces" >&2; exit 2; }
for i in 0 1; do
	ip link add "skc$i-$$" netns "$C" type veth peer name "sks$i-$$" netns "$S" || exit 2
	ip -n "$C" addr add "10.78.$i.1/24" dev "skc$i-$$"
	ip -n "$S" addr add "10.78.$i.2/24" dev "sks$i-$$"
	ip -n "$C" link set "skc$i-$$" up
	ip -n "$S" link set "sks$i-$$" up
done
ip -n "$C" link set lo up
ip -n "$S" link set lo up

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
incarnation=0
server_start() {
	incarnation=$((incarnation + 1))
	ip netns exec "$S" "$perf" server --listen "$A0,$A1" --size 128M \
		--store "$work/store" --delay-us "$delay" \
		> "$work/srv.$incarnation.out" 2>&1 &
	spid=$!
	for _ in $(seq 1 100); do
		[ "$(grep -c '^listening' "$work/srv.$incarnation.out")" -ge 2 ] && return 0
		sleep 0.1
	done
	bad "server did not start"; cat "$work/srv.$incarnation.out" >&2
	exit 1
}
# the server's RSS samples of this incarnation: first after warm-up, max
srv_first=0 srv_max=0 srv_t0=0
srv_judge() {
	[ "$srv_first" -gt 0 ] || return 0
	say "server #$incarnation RSS: $srv_first kB after warm-up, at most $srv_max kB"
	[ "$srv_max" -le $((srv_first * 11 / 10 + 4096)) ] ||
		bad "server #$incarnation RSS grew: $srv_first -> $srv_max kB"
}

server_start
ip netns exec "$C" "$perf" client --connect "$A0,$A1" --name soak \
	--rw randrw --bs 16k --qd 16 --size 128M --verify --time "$secs" \
	--hb 200,3 --no-path-timeout 30000 --json \
	> "$work/clt.json" 2> "$work/clt.err" &
cpid=$!
ip netns exec "$C" "$hostile" attack "$A0" "$secs" > "$work/hostile.out" 2>&1 &
hpid=$!
say "$mins min on $prov: link flap every ${flap}s, server restart every ${restart}s, answers delayed ${delay} us, hostile peers beside"

t0=$(date +%s) clt_first=0 clt_max=0 next_flap=$flap next_restart=$restart
link=0 srv_t0=0
while kill -0 "$cpid" 2>/dev/null; do
	sleep 5
	t=$(( $(date +%s) - t0 ))
	# RSS: warm-up is the first 2 minutes of the client, 1 of a server
	r=$(rss "$cpid")
	if [ "$t" -ge 120 ]; then
		[ "$clt_first" -gt 0 ] || clt_first=$r
		[ "$r" -gt "$clt_max" ] && clt_max=$r
	fi
	if [ $((t - srv_t0)) -ge 60 ]; then
		r=$(rss "$spid")
		[ "$srv_first" -gt 0 ] || srv_first=$r
		[ "$r" -gt "$srv_max" ] && srv_max=$r
	fi
	if [ "$t" -ge "$next_flap" ] && [ "$t" -lt $((secs - 30)) ]; then
		say "link $link down for 5 s"
		ip -n "$C" link set "skc$link-$$" down
		sleep 5
		ip -n "$C" link set "skc$link-$$" up
		link=$((1 - link))
		next_flap=$((next_flap + flap))
	fi
	if [ "$t" -ge "$next_restart" ] && [ "$t" -lt $((secs - 60)) ]; then
		srv_judge
		say "server restart (SIGKILL, 2 s down)"
		kill -9 "$spid"; wait "$spid" 2>/dev/null
		sleep 2
		server_start
		srv_first=0 srv_max=0 srv_t0=$t
		next_restart=$((next_restart + restart))
	fi
	if [ $((t % 60)) -lt 5 ]; then
		say "client RSS $(rss "$cpid") kB, server RSS $(rss "$spid") kB; $(tail -1 "$work/hostile.out" 2>/dev/null)"
	fi
done
wait "$cpid"; rc=$?; cpid=0
wait "$hpid"; hrc=$?; hpid=0
srv_judge
kill -TERM "$spid"; wait "$spid" 2>/dev/null; spid=0

j=$(tail -1 "$work/clt.json")
num() { grep -o "\"$1\":[0-9]*" <<<"$j" | head -1 | grep -o '[0-9]*$'; }
say "client: exit $rc, ios $(num ios), errors $(num errors), verify errors $(num verify_errors), failovers $(num failovers)"
say "client RSS: $clt_first kB after warm-up, at most $clt_max kB"
say "hostile: $(tail -1 "$work/hostile.out") (exit $hrc)"
grep -h 'rtrs-perf server: reads' "$work"/srv.*.out | sed 's/^/soak: /'
[ "$rc" -eq 0 ] || { bad "client exit $rc"; tail -5 "$work/clt.err" >&2; }
[ "$(num errors)" = 0 ] || bad "IO errors: $(num errors)"
[ "$(num verify_errors)" = 0 ] || bad "verify errors: $(num verify_errors)"
[ "$hrc" -eq 0 ] || bad "hostile peers: exit $hrc"
[ "$clt_max" -le $((clt_first * 11 / 10 + 4096)) ] ||
	bad "client RSS grew: $clt_first -> $clt_max kB"
[ "$fail" -eq 0 ] && say "PASS" || say "FAILED ($fail)"
exit $((fail > 0))
