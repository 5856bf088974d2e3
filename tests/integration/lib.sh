# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Shared by the shell tests (sourced).

# The test addresses: $RTRS_TEST_ADDRS "A1,A2" (the RDMA lab's), default
# 127.0.0.1 and 127.0.0.2.
ADDR1=127.0.0.1
ADDR2=127.0.0.2
case ${RTRS_TEST_ADDRS:-} in
?*,?*) ADDR1=${RTRS_TEST_ADDRS%%,*} ADDR2=${RTRS_TEST_ADDRS#*,} ;;
?*) ADDR1=$RTRS_TEST_ADDRS ;;
esac

# srv_start_two DIR CMD [args...]: run "CMD args --listen ADDR1:0,
# ADDR2:0" (rtrs-perf server, rnbd-server) in the background; sets spid,
# a1 and a2 (its two addresses) and s ("a1,a2"); its output in DIR/srv.out
# and DIR/srv.err. Exits 1 if it does not start.
srv_start_two() {
	local dir=$1
	shift
	"$@" --listen "$ADDR1:0,$ADDR2:0" > "$dir/srv.out" 2> "$dir/srv.err" &
	spid=$!
	for _ in $(seq 1 100); do
		[ "$(grep -c '^listening' "$dir/srv.out")" -ge 2 ] && break
		sleep 0.1
	done
	a1=$(awk '/^listening/ { print $2; exit }' "$dir/srv.out")
	a2=$(awk '/^listening/ { n++; if (n == 2) print $2 }' "$dir/srv.out")
	if [ -z "$a1" ] || [ -z "$a2" ]; then
		echo "server did not start: $*" >&2
		cat "$dir/srv.err" >&2
		exit 1
	fi
	s=$a1,$a2
}

# nbdkit_start DIR PLUGIN SERVERS DEVICE: serve the rnbd DEVICE on SERVERS
# through nbdkit-rnbd-plugin on the Unix socket DIR/nbd.sock; sets npid and
# sock; its log in DIR/nbdkit.log.
nbdkit_start() {
	sock=$1/nbd.sock
	nbdkit -f -U "$sock" "$2" server="$3" device="$4" > "$1/nbdkit.log" 2>&1 &
	npid=$!
	for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
}
