#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The defaults follow the CPUs a process may use (rtrs(7) "Progress
# threads"): rtrs-perf's server and client report, at engine start, how
# many progress threads they run, whether they are pinned and the busy-poll
# window; verified IO runs in each setting:
#   affinity  - taskset to one CPU: 1 thread, not pinned, no busy-poll
#   quota     - a cgroup CPU quota of one CPU (cgroup v2 cpu.max or v1
#               cpu.cfs_quota_us, whichever holds the cpu controller) on a
#               machine of two or more: 1 thread, not pinned even with
#               RTRS_PIN=1, no busy-poll
#   machine   - no limit: one thread per CPU of the mask, not pinned,
#               busy-poll 100 us when there are two CPUs or more
#   env       - RTRS_PIN=1 pins; RTRS_POLL_US=7 sets the window
#
#   test_cpus.sh RTRS_PERF   (the quota case needs root and a writable
#                             cgroup; without them it is skipped alone)
set -uo pipefail
perf=$1
work=$(mktemp -d)
export RTRS_RUN_DIR=$work/run RTRS_LOG_LEVEL=info
ncpu=$(nproc)
pass=0 fail=0 cg=
cleanup() {
	[ -n "$cg" ] && [ -d "$cg" ] && rmdir "$cg" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# run WRAPPER... : rtrs-perf server + verified client under the wrapper;
# sets $line to the client's "progress:" line
run() {
	local log=$work/clt.log slog=$work/srv.log port
	"$@" "$perf" server --listen 127.0.0.1:0 --exit-after 30 > "$slog" 2>&1 &
	local spid=$!
	for _ in $(seq 1 100); do
		port=$(sed -n 's/.*listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$slog" | head -1)
		[ -n "$port" ] && break
		sleep 0.05
	done
	if [ -z "$port" ]; then
		bad "$*: server did not listen: $(tail -3 "$slog")"
		kill $spid 2>/dev/null; wait $spid 2>/dev/null
		line= sline=
		return 1
	fi
	"$@" "$perf" client --connect "127.0.0.1:$port" --rw randrw --bs 4096 \
		--qd 8 --time 1 --verify --json > "$work/clt.json" 2> "$log"
	local rc=$?
	kill $spid 2>/dev/null; wait $spid 2>/dev/null
	line=$(grep -m1 'progress:' "$log")
	cons=$(sed -n 's/.*connected: \([0-9]*\) connections.*/\1/p' "$log" | head -1)
	sline=$(grep -m1 'progress:' "$slog")
	if [ $rc -ne 0 ] || ! grep -q '"errors":0,' "$work/clt.json" ||
	   ! grep -q '"verify_errors":0,' "$work/clt.json" ||
	   grep -q '"ios":0,' "$work/clt.json"; then
		bad "$*: verified IO failed (rc $rc): $(tail -3 "$log")"
		return 1
	fi
	ok "$*: verified IO"
}

expect() { # what line pattern
	if [[ "$2" == *"$3"* ]]; then ok "$1: '$3'"; else bad "$1: '$3' not in '$2'"; fi
}
expect_n() { # what value number
	if [ "$2" = "$3" ]; then ok "$1: $3"; else bad "$1: '$2', expected $3"; fi
}

# affinity: one CPU
run taskset -c 0 && {
	expect "taskset -c 0 (client)" "$line" "progress: 1 thread (usable CPUs: 1 of 1"
	expect "taskset -c 0 (client)" "$line" ", not pinned, busy-poll 0 us"
	expect "taskset -c 0 (server)" "$sline" "progress: 1 thread (usable CPUs: 1 of 1"
	expect_n "taskset -c 0: 1 IO connection and the user connection" "$cons" 2
}

# no limit
run env && {
	expect "no limit" "$line" "progress: $ncpu thread"
	expect "no limit" "$line" "usable CPUs: $ncpu of $ncpu in the affinity mask), not pinned"
	expect_n "no limit: an IO connection per CPU and the user connection" "$cons" $((ncpu + 1))
	if [ "$ncpu" -ge 2 ]; then
		expect "no limit" "$line" "busy-poll 100 us"
	else
		expect "no limit" "$line" "busy-poll 0 us"
	fi
}

# the environment wins
run env RTRS_PIN=1 RTRS_POLL_US=7 && \
	expect "RTRS_PIN=1 RTRS_POLL_US=7" "$line" "affinity mask), pinned, busy-poll 7 us"

# a CPU quota of one CPU
quota_dir() { # the cgroup directory of the cpu controller, v2 or v1
	local m
	m=$(awk '$0 ~ / - cgroup2 / { print $5; exit }' /proc/self/mountinfo)
	if [ -n "$m" ] && grep -qw cpu "$m/cgroup.controllers" 2>/dev/null &&
	   [ -f "$m/cgroup.subtree_control" ]; then
		echo "+cpu" > "$m/cgroup.subtree_control" 2>/dev/null
		mkdir "$m/rtrs-cpus.$$" 2>/dev/null && [ -f "$m/rtrs-cpus.$$/cpu.max" ] &&
			{ echo "v2 $m/rtrs-cpus.$$"; return; }
		rmdir "$m/rtrs-cpus.$$" 2>/dev/null
	fi
	m=$(awk '$0 ~ / - cgroup / && $NF ~ /(^|,)cpu(,|$)/ { print $5; exit }' /proc/self/mountinfo)
	if [ -n "$m" ] && mkdir "$m/rtrs-cpus.$$" 2>/dev/null; then
		echo "v1 $m/rtrs-cpus.$$"
		return
	fi
	return 1
}
inq() { # run a command in the cgroup $cg
	(echo $BASHPID > "$cg/cgroup.procs" && exec "$@")
}
if [ "$ncpu" -lt 2 ]; then
	echo "skip quota: one CPU"
elif [ "$(id -u)" -ne 0 ] || ! q=$(quota_dir); then
	echo "skip quota: no writable cgroup with the cpu controller"
else
	cg=${q#* }
	if [ "${q%% *}" = v2 ]; then
		echo "100000 100000" > "$cg/cpu.max"
	else
		echo 100000 > "$cg/cpu.cfs_period_us" && echo 100000 > "$cg/cpu.cfs_quota_us"
	fi
	echo "quota: ${q%% *} cgroup $cg, one CPU"
	run inq env RTRS_PIN=1 && {
		expect "quota of one CPU" "$line" "progress: 1 thread (usable CPUs: 1 of $ncpu"
		expect "quota of one CPU" "$line" "not pinned, busy-poll 0 us"
		expect_n "quota of one CPU: 1 IO connection and the user connection" "$cons" 2
	}
fi

echo "test_cpus: $pass passed, $fail failed"
[ $fail -eq 0 ]
