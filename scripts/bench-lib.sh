# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Shared by the benchmark scripts (sourced): start a server in the
# background and learn its port. Needs $out (log directory) and the array
# pids (killed by the caller's cleanup).

start() { # name cmd... ; sets PID_<name> and PORT_<name> (first listener)
	local name=$1; shift
	"$@" > "$out/$name.srv" 2>&1 &
	pids+=($!)
	eval "PID_$name=$!"
	for _ in $(seq 1 200); do
		local p
		p=$(awk '/^listening/{n=split($2,a,":"); print a[n]; exit}' "$out/$name.srv")
		if [ -n "$p" ]; then eval "PORT_$name=$p"; return 0; fi
		sleep 0.05
	done
	echo "bench: $name did not start" >&2
	exit 1
}
