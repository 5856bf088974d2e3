#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The project's RDMA lab: Debian's 6.1 kernel booted under qemu (TCG) on
# the host's own root file system (9p, read-only, a tmpfs overlay on top),
# with soft-RoCE (rxe) and soft-iWARP (siw) over veth pairs, and the
# kernel's RTRS, RNBD and ublk built out of tree as peers. See README.md.
#
#   lab.sh prepare                  build or check the cache ($RTRS_LAB_DIR,
#                                   default <repo>/.lab)
#   lab.sh run [--timeout SEC] [--env NAME[=VALUE]]... [--] CMD [ARGS...]
#                                   boot, run CMD in the caller's cwd, power
#                                   off; CMD's output on stdout, its exit
#                                   status as ours (124: timeout, 125: the
#                                   lab itself failed, 77: cannot prepare)
#   lab.sh shell                    the same with an interactive shell
#
# Nothing is installed on the host except the packages of `scripts/deps.sh
# lab` (as root); everything else lives in the cache and in a temporary
# directory per run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
LAB=${RTRS_LAB_DIR:-$repo/.lab}

# the 9p/overlay stack the initramfs loads, in dependency order
BOOT_MODS=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev
	   virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay)
say() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit "${2:-125}"; }

# ---------------------------------------------------------------- prepare

# host packages: scripts/deps.sh lab installs what is missing as root;
# otherwise something missing means the lab cannot be prepared (77)
host_tools() {
	if [ "$(id -u)" -ne 0 ]; then
		"$repo/scripts/deps.sh" lab >&2 || {
			say "cannot prepare: host packages missing, not root"
			exit 77
		}
		return 0
	fi
	"$repo/scripts/deps.sh" lab >&2 || die "scripts/deps.sh lab failed"
}

# Debian's current 6.1 kernel: KVER (6.1.0-NN-amd64) and the package
# version PKGVER that the headers and the source must match, from what
# linux-image-amd64 depends on (`apt-cache depends linux-image-amd64`
# names it; `apt-cache show` also gives the "(= VERSION)"). apt here keeps
# no binary cache, so one look-up takes seconds: the answer is kept in
# the cache with the size and time of apt's package lists, and looked up
# again when they change (apt-get update).
apt_lists() { stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null | cksum; }
apt_resolve() {
	apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
		sed -n 's/^Depends:.*linux-image-\([0-9][^ ,]*\) (= \([^)]*\)).*/\1 \2/p' |
		head -1
}
resolve() {
	local fp got=""
	fp=$(apt_lists)
	if [ -f "$LAB/resolved" ] && [ "$(head -1 "$LAB/resolved")" = "$fp" ]; then
		got=$(sed -n 2p "$LAB/resolved")
	else
		got=$(apt_resolve)
		if [ -z "$got" ] && [ "$(id -u)" -eq 0 ]; then
			say "apt: linux-image-amd64 unknown, apt-get update"
			apt-get update -qq >&2 || true
			fp=$(apt_lists)
			got=$(apt_resolve)
		fi
		if [ -n "$got" ]; then
			printf '%s\n%s\n' "$fp" "$got" > "$LAB/resolved.$$"
			mv "$LAB/resolved.$$" "$LAB/resolved"
		elif [ -f "$LAB/current" ]; then
			got=$(cat "$LAB/current")   # offline: what the cache has
			say "apt cannot resolve linux-image-amd64; using the cached $got"
		elif [ "$(id -u)" -ne 0 ]; then
			say "cannot prepare: apt does not know linux-image-amd64 (apt-get update as root)"
			exit 77
		else
			die "cannot resolve linux-image-amd64"
		fi
	fi
	read -r KVER PKGVER <<< "$got"
	[ -n "${PKGVER:-}" ] || die "cannot parse linux-image-amd64's dependency: $got"
	SERIES=$(echo "$KVER" | cut -d. -f1,2)       # 6.1
	ABI=${KVER%-amd64}                           # 6.1.0-NN
	D=$LAB/${KVER}_$PKGVER
	ROOT=$D/root
	MODDIR=$ROOT/lib/modules/$KVER
	HDR=$ROOT/usr/src/linux-headers-$KVER
	EXTRA=$MODDIR/extra
}

# one stamp per step; each stamp's key chains the recipes before it, so a
# changed recipe redoes its step and every later one; a step that ran drops
# the later steps' stamps (kernel empties root/, where the modules go)
STEPS=(kernel source modules initramfs)
KEY=""
stamp_ok() {   # STEP RECIPE
	KEY="$2|$KEY"
	[ -f "$D/stamps/$1" ] && [ "$(cat "$D/stamps/$1")" = "$KEY" ]
}
stamp_set() {  # STEP
	local s later=""
	mkdir -p "$D/stamps"
	for s in "${STEPS[@]}"; do
		[ -n "$later" ] && rm -f "$D/stamps/$s"
		[ "$s" = "$1" ] && later=1
	done
	printf '%s\n' "$KEY" > "$D/stamps/$1"
}

T0=0
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
step_begin() { T0=$(now_ms); say "$1 ..."; }
step_end() {
	local ms=$(($(now_ms) - T0))
	say "$1 done ($((ms / 1000)).$((ms % 1000 / 100)) s)"
}

debs() {       # download once per version, removed when prepare is done
	local want=(linux-image-$KVER=$PKGVER linux-headers-$KVER=$PKGVER
		    linux-headers-$ABI-common=$PKGVER linux-kbuild-$SERIES=$PKGVER
		    linux-source-$SERIES=$PKGVER) p n=0
	mkdir -p "$D/debs"
	for p in "${want[@]}"; do
		compgen -G "$D/debs/${p%%=*}_*.deb" >/dev/null && n=$((n + 1))
	done
	[ "$n" -eq ${#want[@]} ] && return 0
	step_begin "fetch: ${want[*]}"
	local opt=()
	[ "$(id -u)" -eq 0 ] && opt=(-o APT::Sandbox::User=root)
	(cd "$D/debs" && apt-get download -q "${opt[@]}" "${want[@]}" >/dev/null) ||
		die "apt-get download failed"
	step_end fetch
}
deb() { compgen -G "$D/debs/$1_*.deb" | head -1; }

prep_kernel() {
	stamp_ok kernel "kernel-v2" && return 0
	[ -z "$CHECK" ] || return 1
	debs
	step_begin "kernel: extract linux-image-$KVER, headers, kbuild"
	rm -rf "$ROOT"
	mkdir -p "$ROOT"
	local p
	for p in linux-image-$KVER linux-headers-$KVER linux-headers-$ABI-common \
		 linux-kbuild-$SERIES; do
		dpkg-deb -x "$(deb "$p")" "$ROOT"
	done
	rm -rf "$ROOT/usr/share/doc" "$ROOT/usr/share/bug"
	# the headers' Makefile includes the -common one by absolute path:
	# make it relative to itself so the cache works wherever it lives
	sed -i "s|^include /usr/src/\(linux-headers-[^/]*-common\)/Makefile|include \$(dir \$(lastword \$(MAKEFILE_LIST)))../\1/Makefile|" \
		"$HDR/Makefile"
	grep -q 'lastword' "$HDR/Makefile" || die "unexpected $HDR/Makefile"
	ln -sfn "../../../usr/src/linux-headers-$KVER" "$MODDIR/build"
	ln -sfn "../../../usr/src/linux-headers-$ABI-common" "$MODDIR/source"
	# qemu boots the uncompressed ELF through its PVH entry: no xz
	# decompression under TCG (4 s less per boot)
	local z=$ROOT/boot/vmlinuz-$KVER off
	[ -f "$z" ] || die "no vmlinuz in linux-image-$KVER"
	off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$z" | head -1 | cut -d: -f1)
	[ -n "$off" ] || die "$z: no xz payload"
	tail -c +$((off + 1)) "$z" | xz -dcq > "$D/vmlinux" 2>/dev/null || true
	[ "$(head -c 4 "$D/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] ||
		die "$z: cannot extract vmlinux"
	stamp_set kernel
	step_end kernel
}

# the parts of linux-source that the out-of-tree modules need
SRC_PARTS=(drivers/infiniband/sw/siw drivers/infiniband/ulp/rtrs
	   drivers/block/rnbd drivers/block/ublk_drv.c)
prep_source() {
	stamp_ok source "source-v1 ${SRC_PARTS[*]}" && return 0
	[ -z "$CHECK" ] || return 1
	debs
	step_begin "source: extract ${SRC_PARTS[*]} from linux-source-$SERIES"
	rm -rf "$D/src"
	mkdir -p "$D/src"
	dpkg-deb --fsys-tarfile "$(deb "linux-source-$SERIES")" |
		tar -x -O "./usr/src/linux-source-$SERIES.tar.xz" |
		tar -xJ -C "$D/src" --strip-components=1 \
		    "${SRC_PARTS[@]/#/linux-source-$SERIES/}"
	stamp_set source
	step_end source
}

kmake() {      # DIR ARGS...: an out-of-tree build against the headers
	local dir=$1 rc=0
	shift
	make -s -C "$HDR" M="$dir" -j"$(nproc)" "$@" modules > "$dir/build.log" 2>&1 ||
		rc=$?
	grep -v -e '^Skipping BTF generation' "$dir/build.log" >&2 || true
	[ "$rc" -eq 0 ] || die "module build in $dir failed"
}
prep_modules() {
	stamp_ok modules "modules-v1" && return 0
	[ -z "$CHECK" ] || return 1
	step_begin "modules: siw, rtrs, rnbd, ublk against linux-headers-$KVER"
	local s=$D/src B=$D/build
	rm -rf "$B" "$EXTRA"
	mkdir -p "$B" "$EXTRA"
	cp -a "$s/drivers/infiniband/sw/siw" "$B/siw"
	cp -a "$s/drivers/infiniband/ulp/rtrs" "$B/rtrs"
	cp -a "$s/drivers/block/rnbd" "$B/rnbd"
	mkdir -p "$B/ublk"
	cp "$s/drivers/block/ublk_drv.c" "$B/ublk/"
	echo 'obj-$(CONFIG_BLK_DEV_UBLK) += ublk_drv.o' > "$B/ublk/Kbuild"
	kmake "$B/siw" CONFIG_RDMA_SIW=m
	kmake "$B/rtrs" CONFIG_INFINIBAND_RTRS=m CONFIG_INFINIBAND_RTRS_CLIENT=m \
		CONFIG_INFINIBAND_RTRS_SERVER=m
	kmake "$B/rnbd" CONFIG_BLK_DEV_RNBD_CLIENT=m CONFIG_BLK_DEV_RNBD_SERVER=m \
		KBUILD_EXTRA_SYMBOLS="$B/rtrs/Module.symvers" ccflags-y="-I$B/rtrs"
	kmake "$B/ublk" CONFIG_BLK_DEV_UBLK=m
	# the image's own vermagic, from one of its modules
	local ref vm m
	ref=$(/sbin/modinfo -F vermagic "$MODDIR/kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko")
	for m in siw/siw rtrs/rtrs-core rtrs/rtrs-client rtrs/rtrs-server \
		 rnbd/rnbd-client rnbd/rnbd-server ublk/ublk_drv; do
		vm=$(/sbin/modinfo -F vermagic "$B/$m.ko")
		[ "$vm" = "$ref" ] || die "$m.ko: vermagic '$vm', kernel '$ref'"
		cp "$B/$m.ko" "$EXTRA/"
	done
	/sbin/depmod -b "$ROOT" "$KVER" || die "depmod failed"
	stamp_set modules
	step_end modules
}

# PID 1 of the initramfs: the 9p/overlay modules, the host's / read-only
# under a tmpfs upper layer, the job share, then the host's bash runs
# the share's guest.sh as the new PID 1
initramfs_init() {
	cat <<-EOF
	#!/bin/busybox sh
	# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
	/bin/busybox --install -s /bin
	export PATH=/bin
	fail() { echo "lab-init: \$*"; poweroff -f; }
	mount -t proc proc /proc
	mount -t sysfs sys /sys
	mount -t devtmpfs dev /dev
	for m in ${BOOT_MODS[*]}; do
		insmod /mods/\$m.ko || fail "insmod \$m"
	done
	o=trans=virtio,version=9p2000.L,msize=512000
	ro=\$o,ro
	for a in \$(cat /proc/cmdline); do
		case \$a in lab.9p=*) ro=\$ro,\${a#lab.9p=} ;; esac
	done
	mkdir -p /lower /rw /newroot /share
	mount -t 9p -o \$o labjob /share || fail "no labjob share"
	mount -t 9p -o \$ro hostroot /lower || fail "no hostroot share"
	mount -t tmpfs -o mode=0755 rw /rw
	mkdir -p /rw/upper /rw/work
	mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work \\
		overlay /newroot || fail "overlay"
	read -r mods < /share/modules
	mkdir -p /newroot/lib/modules /newroot/lab
	mount --bind "/lower\$mods" /newroot/lib/modules || fail "modules"
	mount --move /share /newroot/lab
	mount --move /proc /newroot/proc
	mount --move /sys /newroot/sys
	mount --move /dev /newroot/dev
	exec switch_root /newroot /bin/bash /lab/guest.sh
	EOF
}
prep_initramfs() {
	local init sum
	init=$(initramfs_init)
	sum=$( { echo "$init"; sha256sum /bin/busybox; } | sha256sum | cut -c1-16)
	stamp_ok initramfs "initramfs-$sum" && return 0
	[ -z "$CHECK" ] || return 1
	step_begin "initramfs: busybox, ${#BOOT_MODS[@]} modules"
	local w=$D/initramfs.d m f
	rm -rf "$w"
	mkdir -p "$w"/{bin,mods,proc,sys,dev}
	cp /bin/busybox "$w/bin/busybox"
	printf '%s\n' "$init" > "$w/init"
	chmod 755 "$w/init"
	for m in "${BOOT_MODS[@]}"; do
		f=$(find "$MODDIR/kernel" -name "$m.ko" | head -1)
		[ -n "$f" ] || die "no $m.ko in linux-image-$KVER"
		cp "$f" "$w/mods/"
	done
	(cd "$w" && find . | cpio -o -H newc --quiet | gzip -1) > "$D/initrd.gz.tmp"
	mv "$D/initrd.gz.tmp" "$D/initrd.gz"
	rm -rf "$w"
	stamp_set initramfs
	step_end initramfs
}

CHECK=""
prepare_all() {
	host_tools
	mkdir -p "$LAB"
	LAB=$(cd "$LAB" && pwd)
	resolve
	# every stamp current: done, no lock taken
	if (CHECK=1 KEY="" && prep_kernel && prep_source && prep_modules &&
	    prep_initramfs); then
		return 0
	fi
	exec 9> "$LAB/.lock"
	flock 9
	say "cache: $D"
	KEY=""
	prep_kernel
	prep_source
	prep_modules
	prep_initramfs
	rm -rf "$D/debs" "$D/build"
	printf '%s %s\n' "$KVER" "$PKGVER" > "$LAB/current"
	# an older kernel's cache goes when Debian's ABI moved
	local old
	for old in "$LAB"/*_*; do
		[ "$old" = "$D" ] || [ ! -d "$old/stamps" ] || {
			say "prune: $(basename "$old")"
			rm -rf "$old"
		}
	done
	exec 9>&-
	say "ready: $KVER ($PKGVER)"
}

# ---------------------------------------------------------------- run

# environment passed into the guest: RTRS_*, these names, --env NAME
PASS_ENV=(PATH LANG LC_ALL LC_CTYPE TZ TERM USER LOGNAME CI TMPDIR
	  ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS)
PASS_PREFIX='^(RTRS_|RNBD_|FI_|RDMAV_|IBV_)'

usage() {
	sed -n '/^#   lab.sh/,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

run_lab() {    # MODE ARGS...
	local mode=$1 timeout=1200 extra=() n
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) timeout=${2:?}; shift 2 ;;
		--timeout=*) timeout=${1#*=}; shift ;;
		--env) extra+=("${2:?}"); shift 2 ;;
		--env=*) extra+=("${1#*=}"); shift ;;
		--) shift; break ;;
		-h|--help) usage ;;
		-*) say "unknown option $1"; usage ;;
		*) break ;;
		esac
	done
	[ "$mode" = shell ] || [ $# -gt 0 ] || usage
	prepare_all

	T=$(mktemp -d "${TMPDIR:-/tmp}/rtrs-lab.XXXXXX")
	QPID=0 TPID=0
	trap 'cleanup' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	cp "$here/guest.sh" "$T/guest.sh"
	mkdir "$T/bin"
	cp "$here/lab-modules" "$here/lab-link" "$T/bin/"
	echo "$ROOT/lib/modules" > "$T/modules"
	echo "$mode" > "$T/mode"
	{
		for n in $(compgen -e); do
			if [[ $n =~ $PASS_PREFIX ]] || [[ " ${PASS_ENV[*]} " == *" $n "* ]]; then
				printf 'export %s=%q\n' "$n" "${!n}"
			fi
		done
		for n in "${extra[@]}"; do
			if [[ $n == *=* ]]; then
				printf 'export %s=%q\n' "${n%%=*}" "${n#*=}"
			elif [ -n "${!n+x}" ]; then
				printf 'export %s=%q\n' "$n" "${!n}"
			fi
		done
	} > "$T/env"
	{
		printf 'cd -- %q || exit 125\n' "$PWD"
		printf 'exec'
		printf ' %q' "$@"
		printf '\n'
	} > "$T/job"
	: > "$T/out"

	local q=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2G
		 -nographic -no-reboot -nic none
		 -kernel "$D/vmlinux" -initrd "$D/initrd.gz"
		 -append "console=ttyS0 loglevel=5 panic=-1 tsc=reliable mitigations=off rdinit=/init ${LAB_KERNEL_ARGS:-}"
		 -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
		 -virtfs "local,path=$T,mount_tag=labjob,security_model=none,multidevs=remap")
	local t0 rc
	t0=$(date +%s)
	if [ "$mode" = shell ]; then
		timeout --foreground "$timeout" "${q[@]}"
		return
	fi
	timeout -k 10 "$timeout" "${q[@]}" -monitor none -serial "file:$T/console.log" \
		</dev/null >"$T/qemu.log" 2>&1 &
	QPID=$!
	tail -n +1 -s 0.2 -f --pid=$QPID "$T/out" &
	TPID=$!
	rc=0
	wait $QPID || rc=$?
	QPID=0
	wait $TPID 2>/dev/null || true
	TPID=0
	if [ "$rc" -eq 124 ]; then
		say "timeout after ${timeout} s: qemu killed"
		exit 124
	fi
	if [ -f "$T/status" ]; then
		rc=$(cat "$T/status")
		if [ -n "${LAB_VERBOSE:-}" ]; then
			cat "$T/setup.log" >&2
			say "guest ran $(( $(date +%s) - t0 )) s, exit $rc"
		fi
		exit "$rc"
	fi
	say "the guest ended without a status (qemu exit $rc)"
	[ -f "$T/setup.failed" ] && say "lab setup failed: $(cat "$T/setup.failed")"
	for f in qemu.log setup.log console.log; do
		[ -s "$T/$f" ] || continue
		say "--- $f (tail)"
		tail -n 40 "$T/$f" >&2
	done
	exit 125
}

cleanup() {
	[ "$TPID" -gt 0 ] && kill "$TPID" 2>/dev/null
	[ "$QPID" -gt 0 ] && { kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; }
	if [ -n "${LAB_KEEP:-}" ]; then
		say "kept $T"
	else
		rm -rf "$T"
	fi
}

case ${1:-} in
prepare) shift; [ $# -eq 0 ] || usage; prepare_all ;;
run) shift; run_lab job "$@" ;;
shell) shift; run_lab shell "$@" ;;
*) usage ;;
esac
