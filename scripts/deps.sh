#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Install the Debian packages librtrs needs to build, test and demo
# (`deps.sh plot`: gnuplot for scripts/plot-timeline; `deps.sh bench`:
# what scripts/bench-rnbd.sh adds; `deps.sh lab`: the host side of the
# RDMA lab, tests/rdma/lab.sh; `deps.sh fuzz`: clang and its libFuzzer
# runtime for `make fuzz`).
# As root it runs apt-get; otherwise it prints the one command to run.
set -euo pipefail

PKGS=(cmake ninja-build pkg-config gcc libfabric-dev libfabric-bin
      libcmocka-dev iproute2 iptables procps valgrind liburing-dev
      nbdkit nbdkit-plugin-dev qemu-utils libnbd-bin fuse3 fuse2fs e2fsprogs
      fio dpkg-dev linux-libc-dev librdmacm-dev libibverbs-dev)
# (linux-libc-dev: <linux/ublk_cmd.h> for `rnbd map`, Linux >= 6.0's uapi;
# librdmacm-dev, libibverbs-dev: the rdma backend, src/fabric/rdma/)
# `deps.sh plot`: only what scripts/plot-timeline needs; `deps.sh bench`:
# what scripts/bench-rnbd.sh needs on top of the build's packages
if [ "${1:-}" = plot ]; then
	PKGS=(gnuplot-nox)
elif [ "${1:-}" = bench ]; then
	PKGS=(gnuplot-nox jq fio nbdkit libnbd-bin)
elif [ "${1:-}" = fuzz ]; then
	# libFuzzer and the sanitizer runtimes (a recommendation of clang's,
	# not installed with --no-install-recommends)
	PKGS=(clang libclang-rt-dev)
elif [ "${1:-}" = lab ]; then
	# qemu and the initramfs; apt-get download, dpkg-deb and depmod for
	# the kernel; gcc-12 and make for the out-of-tree modules against
	# Debian's headers (their kbuild tools link libelf); the RDMA user
	# space that runs in the guest from the host's root file system
	PKGS=(qemu-system-x86 busybox-static kmod cpio xz-utils gzip
	      coreutils util-linux apt dpkg gcc-12 make libelf1 libssl3 zlib1g
	      iproute2 rdma-core ibverbs-providers ibverbs-utils rdmacm-utils
	      perftest librdmacm-dev libibverbs-dev libfabric-bin nbd-client)
fi

# one dpkg-query for all: tests/rdma/lab.sh calls this on every prepare
# (dpkg-query fails when it has never heard of a package: not an error here)
installed=" $({ dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null || true; } |
	awk '/ install ok installed$/ { printf "%s ", $1 }')"
missing=()
for p in "${PKGS[@]}"; do
	[[ $installed == *" $p "* ]] || missing+=("$p")
done
# the fio engine builds against the installed fio's own source
fio_src() {
	[ -n "${1:-}" ] && return 0
	"$(dirname "$0")/fio-src.sh" "$(dirname "$0")/../.deps"
}
if [ ${#missing[@]} -eq 0 ]; then
	fio_src "${1:-}"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "librtrs needs: ${missing[*]}" >&2
	echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
fio_src "${1:-}"
