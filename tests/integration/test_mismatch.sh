#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Two ends of different transports on one TCP port: the socket backend
# (provider sock) against libfabric's tcp, both ways. Neither
# understands the other's first bytes (docs/protocol.md 2.6a): the client
# fails its open with an error, in seconds, the server logs the stranger
# and keeps serving (a client of its own provider then works), and
# nothing crashes.
#   test_mismatch.sh RTRS_PERF
set -u
perf=$1
dir=$(mktemp -d)
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
export RTRS_LOG_LEVEL=err
fail=0

# mismatch SERVER_PROV CLIENT_PROV
mismatch() {
	local sp=$1 cp=$2 addr rc t0 t1
	RTRS_PROVIDER=$sp "$perf" server --listen 127.0.0.1:0 \
		> "$dir/srv.out" 2> "$dir/srv.err" &
	spid=$!
	for _ in $(seq 1 100); do
		grep -q '^listening' "$dir/srv.out" && break
		sleep 0.1
	done
	addr=$(awk '/^listening/ { print $2; exit }' "$dir/srv.out")
	[ -n "$addr" ] || { echo "FAIL: $sp server did not start"; cat "$dir/srv.err"; exit 1; }
	t0=$(date +%s)
	RTRS_PROVIDER=$cp timeout 60 "$perf" client --connect "$addr" \
		--rw write --bs 4k --qd 1 --time 1 > "$dir/clt.out" 2> "$dir/clt.err"
	rc=$?
	t1=$(date +%s)
	if [ "$rc" -eq 0 ] || [ "$rc" -ge 124 ]; then
		echo "FAIL: a $cp client against a $sp server: exit $rc (want an error)"
		cat "$dir/clt.err"
		fail=1
	elif [ $((t1 - t0)) -gt 30 ]; then
		echo "FAIL: a $cp client against a $sp server took $((t1 - t0)) s to fail"
		fail=1
	else
		echo "ok: a $cp client against a $sp server fails ($(tail -1 "$dir/clt.err"))"
	fi
	# the server still serves its own kind, with verified IO
	if ! RTRS_PROVIDER=$sp timeout 60 "$perf" client --connect "$addr" \
		--rw randrw --bs 4k --qd 4 --time 1 --verify > "$dir/ok.out" 2> "$dir/ok.err"; then
		echo "FAIL: the $sp server does not serve a $sp client after the stranger"
		cat "$dir/ok.err"
		fail=1
	else
		echo "ok: the $sp server serves a $sp client after it"
	fi
	# a sock server names what it refused
	if [ "$sp" = sock ] && ! grep -q "not a connect of ours" "$dir/srv.err"; then
		echo "FAIL: the sock server did not log the stranger"
		cat "$dir/srv.err"
		fail=1
	fi
	if ! kill -0 "$spid" 2>/dev/null; then
		echo "FAIL: the $sp server died"
		cat "$dir/srv.err"
		fail=1
	fi
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	spid=
}

mismatch sock tcp
mismatch tcp sock
[ "$fail" -eq 0 ] && echo "test_mismatch: passed"
exit "$fail"
