#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# rtrsctl against a running rtrs-perf server and a two-path rtrs-perf client
# doing verified IO: every verb, text and JSON, the socket's permissions, a
# non-owner refused, and the sockets gone when the processes exit; each
# path's provider, domain and the source address it uses; the server's
# counters reset; max_reconnect_attempts changed under a reconnecting
# session.
#
#   test_rtrsctl.sh RTRS_PERF RTRSCTL
set -uo pipefail
perf=$1 ctl=$2
work=$(mktemp -d)
export RTRS_RUN_DIR=$work/run
pass=0 fail=0
spid=0 cpid=0

cleanup() {
	[ "$cpid" -gt 0 ] && kill -9 "$cpid" 2>/dev/null
	[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { # description command...
	local d=$1; shift
	if "$@"; then ok; else bad "$d"; fi
}
# retry a condition for up to 10 s (states change asynchronously)
eventually() {
	local d=$1; shift
	for _ in $(seq 1 100); do
		if "$@" >/dev/null 2>&1; then ok; return 0; fi
		sleep 0.1
	done
	bad "$d"
	return 1
}
path_state() { # idx state: the text stats say so
	"$ctl" stats perfsess | awk -v i="$1" -v st="$2" '
		/^client session/ { c = 1 } /^server/ { c = 0 }
		c && $1 == "path" && $2 == i { p = 1; next }
		c && p && $1 == "state:" { exit !($2 == st) }'
}
path_recon() { # idx: the client path's successful reconnects
	"$ctl" stats perfsess | awk -v i="$1" '
		/^client session/ { c = 1 } /^server/ { c = 0 }
		c && $1 == "path" { p = ($2 == i); next }
		c && p && $1 == "stats/reconnects:" { print $2; exit }'
}
path_field() { # idx field: a client path's line "field: value" of stats
	"$ctl" stats perfsess | awk -v i="$1" -v k="$2:" '
		/^client session/ { c = 1 } /^server/ { c = 0 }
		c && $1 == "path" { p = ($2 == i); next }
		c && p && $1 == k { print $2; exit }'
}
srv_src() { # id: the server's src_addr of path id of perfsess
	"$ctl" --pid "$spid" stats perfsess | awk -v i="$1" '
		/^server session/ { s = 1 }
		s && $1 == "path" { p = ($2 == i); next }
		s && p && $1 == "src_addr:" { print $2; exit }'
}
writes() { # client's write count
	"$ctl" --json stats perfsess | grep -o '"clients":\[{[^}]*' |
		grep -o '"write_cnt":[0-9]*' | grep -o '[0-9]*$'
}

. "$(dirname "$0")/lib.sh"
srv_start_two "$work" "$perf" server --size 64M
# (the clients run until they are stopped: --time only bounds them; the
# lab guest runs these steps slowly)
"$perf" client --connect "$a1,$a2" --name perfsess --rw write --bs 4k \
	--qd 16 --time 900 --size 16M --verify --hb 200,3 > "$work/clt.out" 2>&1 &
cpid=$!
eventually "client socket" test -S "$RTRS_RUN_DIR/$cpid.sock"
eventually "both paths connected" sh -c "'$ctl' list | grep -q 'paths 2/2 connected'"

# the socket: owner-only, in an owner-only directory
check "socket mode 0600" [ "$(stat -c %a "$RTRS_RUN_DIR/$cpid.sock")" = 600 ]
check "directory mode 0700" [ "$(stat -c %a "$RTRS_RUN_DIR")" = 700 ]
# a non-owner is refused even when the directory is opened up: the socket's
# mode stops it
chmod 755 "$RTRS_RUN_DIR" "$work"
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: the non-owner check needs root (setpriv to nobody)"
elif command -v setpriv >/dev/null; then
	# the non-owner runs a copy of rtrsctl and librtrs it can reach (the
	# build tree, and the sanitizers' suppression files named in the
	# environment, may sit below a directory only root can enter;
	# rtrsctl starts no library thread, so it needs none)
	mkdir -p "$work/nb"
	cp "$ctl" "$(ldd "$ctl" | awk '/librtrs/ { print $3 }')" "$work/nb/"
	chmod -R a+rX "$work/nb"
	nobody() {
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			env -u TSAN_OPTIONS -u LSAN_OPTIONS -u ASAN_OPTIONS \
			LD_LIBRARY_PATH="$work/nb" "$work/nb/rtrsctl" "$@"
	}
	out=$(nobody --pid "$cpid" list 2>&1)
	check "non-owner refused (got: $out)" grep -q "Permission denied" <<<"$out"
	out=$(nobody disconnect perfsess 0 2>&1)
	check "non-owner cannot run a verb" [ $? -ne 0 ]
	check "the non-owner's rtrsctl ran and found nothing (got: $out)" \
		grep -q "no client session perfsess" <<<"$out"
	check "path 0 untouched by the non-owner" path_state 0 connected
else
	bad "setpriv (util-linux) missing"
fi
chmod 700 "$RTRS_RUN_DIR" "$work"

# list and stats, text and JSON
out=$("$ctl" list)
check "list shows the client" grep -q "^client perfsess " <<<"$out"
check "list shows the server session" grep -q "^server session perfsess " <<<"$out"
check "list shows both processes" [ "$(grep -c '^process ' <<<"$out")" -eq 2 ]
out=$("$ctl" --json list)
check "json list has processes" grep -q '^{"processes":\[{"pid":' <<<"$out"
check "json: two client paths" [ "$(grep -o '"dst_addr"' <<<"$out" | wc -l)" -eq 2 ]
out=$("$ctl" stats perfsess)
check "stats uses the kernel's names" grep -q "stats/rdma: " <<<"$out"
check "stats shows mpath_policy" grep -q "mpath_policy: min-inflight (MI: 1)" <<<"$out"
"$ctl" stats nosuchsess >/dev/null 2>&1
check "stats of an unknown session fails" [ $? -eq 1 ]

# policy
check "policy rr" "$ctl" policy perfsess rr
check "policy reads back" [ "$("$ctl" policy perfsess)" = round-robin ]
check "policy ML (kernel spelling)" "$ctl" policy perfsess ML
check "policy reads back min-latency" [ "$("$ctl" policy perfsess)" = min-latency ]
"$ctl" policy perfsess fastest 2>/dev/null
check "bad policy refused" [ $? -eq 1 ]
check "policy back to mi" "$ctl" policy perfsess 1

# disconnect / reconnect
check "disconnect path 1" "$ctl" disconnect perfsess 1
check "path 1 closed" path_state 1 closed
w1=$(writes); sleep 0.5; w2=$(writes)
check "IO continues on path 0 ($w1 -> $w2)" [ "$w2" -gt "$w1" ]
check "reconnect path 1" "$ctl" reconnect perfsess 1
check "path 1 connected" path_state 1 connected
"$ctl" disconnect perfsess 7 2>/dev/null
check "disconnect of an empty slot fails" [ $? -eq 1 ]

# reset-stats: path 1's reconnect count goes back to 0 0 (at least 1
# before: in the lab guest a slow path may also have reconnected once more)
check "reconnect counted" sh -c "'$ctl' stats perfsess | grep -Eq 'stats/reconnects: [1-9][0-9]* [0-9]+'"
check "reset-stats" "$ctl" reset-stats perfsess
check "counters zeroed" sh -c "! '$ctl' stats perfsess | grep -Eq 'stats/reconnects: [1-9]'"

# add-path / remove-path; the same path twice is refused
out=$("$ctl" add-path perfsess "$a2" 2>&1)
check "add-path of path 1 again refused (got '$out')" grep -q "File exists" <<<"$out"
# path 2 from a source of our own: on loopback the server's address
# itself, in the RDMA lab the client end of that wire
src_for() {
	case "$1" in
	"${LAB_RXE_SRV:-}") echo "$LAB_RXE_CLT" ;;
	"${LAB_SIW_SRV:-}") echo "$LAB_SIW_CLT" ;;
	"${LAB_RXE2_SRV:-}") echo "$LAB_RXE2_CLT" ;;
	*) echo "$1" ;;
	esac
}
SRC2=$(src_for "$ADDR2")
out=$("$ctl" add-path perfsess "$SRC2@$a2")
check "add-path returns slot 2 (got '$out')" [ "$out" = 2 ]
check "path 2 connected" path_state 2 connected
# what each path runs on: the provider, its domain (the kernel's
# hca_name: "lo" for tcp on loopback, the device for verbs) and the source
# address it uses, here the one given; the server sees the same address
prov=${RTRS_PROVIDER:-tcp}
for i in 0 1 2; do
	v=$(path_field $i provider)
	check "path $i provider is $prov (got '$v')" [ "$v" = "$prov" ]
	v=$(path_field $i hca_name)
	check "path $i has a domain (got '$v')" [ -n "$v" ] && [ "$v" != - ]
done
if [ "$prov" = tcp ] || [ "$prov" = net ]; then
	v=$(path_field 0 hca_name)
	check "loopback domain is lo (got '$v')" [ "$v" = lo ]
fi
src2=$(path_field 2 src_resolved)
check "path 2 sends from $SRC2 (got '$src2')" grep -q "^$SRC2:[1-9][0-9]*\$" <<<"$src2"
srv_src_is() { [ "$(srv_src "$1")" = "$2" ]; }
eventually "the server's path 2 comes from $src2 (got '$(srv_src 2)')" \
	srv_src_is 2 "$src2"
src0=$(path_field 0 src_resolved)
src0_ok() { [[ $src0 =~ ^.+:[1-9][0-9]*$ ]]; }
check "path 0 has a source address (got '$src0')" src0_ok
out=$("$ctl" --json stats perfsess)
check "json: provider of 3 paths" [ "$(grep -o "\"provider\":\"$prov\"" <<<"$out" | wc -l)" -eq 3 ]
check "json: hca_name" grep -q '"hca_name":"[^"]' <<<"$out"
check "json: src_resolved of path 2" grep -q "\"src_resolved\":\"$src2\"" <<<"$out"
out=$("$ctl" list)
check "list: provider/domain and source of path 2" \
	grep -q "^  2 .* $prov/[^ ]* *$src2\$" <<<"$out"
check "remove-path 2" "$ctl" remove-path perfsess 2
check "slot 2 gone" sh -c "! '$ctl' stats perfsess | grep -q '^  path 2$'"

# server-disconnect: the server closes one of its paths, which it numbers
# as the client does; the client fails over and reconnects that one
srv_ids() { # the server's path numbers of perfsess, sorted, on one line
	"$ctl" --pid "$spid" stats perfsess |
		awk '/^server session/ { s = 1 } s && $1 == "path" { print $2 }' |
		sort | tr '\n' ' '
}
ids_are() { [ "$(srv_ids)" = "$1" ]; }
recon_above() { [ "$(path_recon "$1")" -gt "$2" ]; }
eventually "server paths numbered as the client's: 0 1 (got '$(srv_ids)')" ids_are "0 1 "
r0=$(path_recon 0) r1=$(path_recon 1)
check "server-disconnect 1" "$ctl" server-disconnect perfsess 1
eventually "client path 1 reconnected" recon_above 1 "$r1"
eventually "client back to 2/2 connected" sh -c "'$ctl' list | grep -q 'paths 2/2 connected'"
check "client path 0 untouched ($r0 -> $(path_recon 0))" [ "$(path_recon 0)" = "$r0" ]
"$ctl" server-disconnect perfsess 7 2>/dev/null
check "server-disconnect of no such path fails" [ $? -eq 1 ]

# --pid of a process without a socket
"$ctl" --pid 999999 list >/dev/null 2>&1
check "--pid of no process: nothing listed" [ "$("$ctl" --pid 999999 list 2>/dev/null | wc -l)" -eq 0 ]

# the client ends cleanly: verified IO, no errors; its socket goes
kill -INT "$cpid"
wait "$cpid"
rc=$?
check "client exit 0 (no IO or verify errors)" [ "$rc" -eq 0 ]
check "client saw no errors" grep -q "errors 0, verify errors 0" "$work/clt.out"
check "client socket removed" [ ! -e "$RTRS_RUN_DIR/$cpid.sock" ]
cpid=0

# server-reset-stats: the listener's counters, its sessions' and their
# paths' go to 0, then count the next client's
# requests exactly
srv_rdma() { # the listener's "rdma:" line: read_cnt read_bytes write_cnt write_bytes
	"$ctl" --pid "$spid" stats | awk '/^server / { s = 1; next }
		s && $1 == "rdma:" { print $2, $3, $4, $5; exit }'
}
srv_executed() {
	"$ctl" --pid "$spid" stats | awk '$1 == "executed" { print $2; exit }'
}
set -- $(srv_rdma)
check "server counted the writes (got '$*')" [ "${3:-0}" -gt 0 ]
check "server-reset-stats" "$ctl" server-reset-stats
check "server rdma 0 (got '$(srv_rdma)')" [ "$(srv_rdma)" = "0 0 0 0" ]
check "server executed 0 (got '$(srv_executed)')" [ "$(srv_executed)" = 0 ]
out=$("$ctl" --pid "$spid" --json stats)
check "json: every server counter 0" \
	[ "$(grep -o '"\(read\|write\)_\(cnt\|bytes\)":[1-9]' <<<"$out" | wc -l)" -eq 0 ]
"$perf" client --connect "$a1" --name cntsess --rw write --bs 4k --qd 4 \
	--time 1 --size 4M --json > "$work/c2.json" 2>&1
ios=$(grep -o '"ios":[0-9]*' "$work/c2.json" | grep -o '[0-9]*$')
check "second client wrote (got '${ios:-}')" [ "${ios:-0}" -gt 0 ]
check "server counts them again: 0 0 $ios $((ios * 4096)) (got '$(srv_rdma)')" \
	[ "$(srv_rdma)" = "0 0 $ios $((ios * 4096))" ]
check "server executed $ios (got '$(srv_executed)')" [ "$(srv_executed)" = "$ios" ]
"$ctl" --pid 999999 server-reset-stats >/dev/null 2>&1
check "server-reset-stats without a listener fails" [ $? -eq 1 ]
"$ctl" server-reset-stats extra >/dev/null 2>&1
check "server-reset-stats takes no argument" [ $? -eq 2 ]
kill -TERM "$spid"
wait "$spid"
check "server socket removed" [ ! -e "$RTRS_RUN_DIR/$spid.sock" ]
spid=0

# max_reconnect_attempts at run time: a session opened to reconnect
# forever, its server gone; set to 2 while its paths are reconnecting,
# each gives up after its second failed attempt and stays closed
srv_start_two "$work" "$perf" server --size 16M
"$perf" client --connect "$a1,$a2" --name recsess --rw write --bs 4k \
	--qd 4 --time 900 --size 4M --no-path-timeout 120000 \
	> "$work/rec.out" 2>&1 &
cpid=$!
rec_list() { "$ctl" --pid "$cpid" stats recsess; }
rec_failed() { # idx: failed reconnects of path idx
	rec_list | awk -v i="$1" '$1 == "path" { p = ($2 == i); next }
		p && $1 == "stats/reconnects:" { print $3; exit }'
}
rec_state() {
	rec_list | awk -v i="$1" '$1 == "path" { p = ($2 == i); next }
		p && $1 == "state:" { print $2; exit }'
}
eventually "recsess connected" sh -c "'$ctl' list | grep -q '^client recsess .*paths 2/2 connected'"
v=$("$ctl" max-reconnect-attempts recsess)
check "max-reconnect-attempts default -1 (got '$v')" [ "$v" = -1 ]
"$ctl" max-reconnect-attempts recsess -2 2>/dev/null
check "max-reconnect-attempts -2 refused" [ $? -eq 1 ]
"$ctl" max-reconnect-attempts recsess often 2>/dev/null
check "max-reconnect-attempts 'often' refused" [ $? -eq 1 ]
check "still -1" [ "$("$ctl" max-reconnect-attempts recsess)" = -1 ]
kill -9 "$spid"
wait "$spid" 2>/dev/null
spid=0
failed_ge() { [ "$(rec_failed 0)" -ge "$1" ] && [ "$(rec_failed 1)" -ge "$1" ]; }
eventually "both paths reconnecting and failing" failed_ge 1
# a path that failed more often already gives up at once; one with an
# attempt under way when the value changes, after that one (+1)
p0=$(rec_failed 0) p1=$(rec_failed 1)
lim0=$(( p0 > 2 ? p0 + 1 : 3 )) lim1=$(( p1 > 2 ? p1 + 1 : 3 ))
check "set max-reconnect-attempts 2" "$ctl" max-reconnect-attempts recsess 2
v=$("$ctl" --json max-reconnect-attempts recsess)
check "json reads back 2 (got '$v')" [ "$v" = '{"max_reconnect_attempts":2}' ]
check "stats show it" sh -c "'$ctl' stats recsess | grep -q '^  max_reconnect_attempts: 2\$'"
gave_up() { [ "$(rec_state 0)" = closed ] && [ "$(rec_state 1)" = closed ]; }
eventually "both paths gave up: closed" gave_up
f0=$(rec_failed 0) f1=$(rec_failed 1)
sleep 3
check "path 0 stays closed after 2 attempts (failed $f0 -> $(rec_failed 0))" \
	[ "$(rec_state 0)" = closed ] && [ "$(rec_failed 0)" = "$f0" ] && \
	[ "$f0" -ge 2 ] && [ "$f0" -le "$lim0" ]
check "path 1 stays closed after 2 attempts (failed $f1 -> $(rec_failed 1))" \
	[ "$(rec_state 1)" = closed ] && [ "$(rec_failed 1)" = "$f1" ] && \
	[ "$f1" -ge 2 ] && [ "$f1" -le "$lim1" ]
kill -9 "$cpid"
wait "$cpid" 2>/dev/null
cpid=0

# RTRS_CTL=0: no socket at all
RTRS_CTL=0 "$perf" server --listen "$ADDR1:0" --exit-after 1 > "$work/s2.out" 2>&1 &
p=$!
sleep 0.5
check "RTRS_CTL=0 serves no socket" [ ! -e "$RTRS_RUN_DIR/$p.sock" ]
wait "$p"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
