# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Shared by the shell tests (sourced).

# srv_start_two PERF DIR [server args...]: an rtrs-perf server on 127.0.0.1:0
# and 127.0.0.2:0 in the background; sets spid, a1 and a2 (its addresses),
# its output in DIR/srv.out and DIR/srv.err. Exits 1 if it does not start.
srv_start_two() {
	local perf=$1 dir=$2
	shift 2
	"$perf" server --listen 127.0.0.1:0,127.0.0.2:0 "$@" \
		> "$dir/srv.out" 2> "$dir/srv.err" &
	spid=$!
	for _ in $(seq 1 100); do
		[ "$(grep -c '^listening' "$dir/srv.out")" -ge 2 ] && break
		sleep 0.1
	done
	a1=$(awk '/^listening/ { print $2; exit }' "$dir/srv.out")
	a2=$(awk '/^listening/ { n++; if (n == 2) print $2 }' "$dir/srv.out")
	if [ -z "$a1" ] || [ -z "$a2" ]; then
		echo "server did not start" >&2
		cat "$dir/srv.err" >&2
		exit 1
	fi
}

# rnbd_srv_start RNBD_SERVER DIR [args...]: an rnbd-server on 127.0.0.1:0
# and 127.0.0.2:0 in the background; sets spid and s ("addr1,addr2"); its
# output in DIR/srv.out and DIR/srv.err. Exits 1 if it does not start.
rnbd_srv_start() {
	local bin=$1 dir=$2
	shift 2
	"$bin" --listen 127.0.0.1:0,127.0.0.2:0 "$@" \
		> "$dir/srv.out" 2> "$dir/srv.err" &
	spid=$!
	for _ in $(seq 1 100); do
		[ "$(grep -c '^listening' "$dir/srv.out")" -ge 2 ] && break
		sleep 0.1
	done
	s=$(awk '/^listening/ { printf "%s%s", (n++ ? "," : ""), $2 }' "$dir/srv.out")
	if [ -z "$s" ]; then
		echo "rnbd-server did not start" >&2
		cat "$dir/srv.err" >&2
		exit 1
	fi
}
