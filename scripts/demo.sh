#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The main job: a server and a client on loopback, verified IO, statistics.
set -euo pipefail
build=${1:-build/plain}
exec "$build/tools/rtrs-demo" --time "${RTRS_DEMO_TIME:-5}"
