#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The integration tests over RDMA verbs: one lab guest runs the smoke test,
# then `ctest -L LABEL` on BUILD_DIR (a plain build).
#   make check-lab   -> check.sh build/plain rdma-subset   (part of make check)
#   make check-rdma  -> check.sh build/plain rdma          (every test)
# When the lab cannot be prepared here (not root and packages missing:
# lab.sh exits 77), it says so and succeeds, unless RTRS_LAB_REQUIRED=1
# (CI sets it).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?build dir}" && pwd) label=${2:-rdma-subset}
shift 2 || true
job="$here/smoke.sh && ctest --test-dir '$build' -L '^$label\$' --output-on-failure --timeout 900 $*"
echo "lab: ctest -L $label in the guest ($build)"
"$here/lab.sh" run --timeout "${RTRS_LAB_TIMEOUT:-3000}" -- bash -c "$job"
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "lab: cannot prepare the RDMA lab here (see above): the verbs tests did not run"
	[ "${RTRS_LAB_REQUIRED:-0}" = 1 ] && exit 1
	exit 0
fi
exit "$rc"
