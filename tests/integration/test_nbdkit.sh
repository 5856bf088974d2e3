#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Standard NBD clients on an rnbd device, through nbdkit-rnbd-plugin:
#   - nbdinfo sees the size, multi-conn, FUA, trim and zero;
#   - qemu-img convert writes a random image in and reads it out again:
#     checksums equal the source, and the exported file holds it;
#   - nbdcopy copies it out too;
#   - nbdfuse shows the export as a file: mkfs.ext4, e2fsck -fn clean,
#     fuse2fs mounts it, files written and read back, e2fsck clean again.
#
#   test_nbdkit.sh RNBD_SERVER PLUGIN
set -uo pipefail
srvbin=$1 plugin=$2
for t in nbdkit qemu-img nbdinfo nbdcopy; do
	command -v "$t" >/dev/null || { echo "skip: no $t"; exit 77; }
done
work=$(mktemp -d)
spid=0 npid=0 fpid=0 f2pid=0
cleanup() {
	[ "$f2pid" -gt 0 ] && { fusermount3 -u "$work/mnt" 2>/dev/null; kill "$f2pid" 2>/dev/null; }
	[ "$fpid" -gt 0 ] && { fusermount3 -u "$work/fuse" 2>/dev/null; kill "$fpid" 2>/dev/null; }
	[ "$npid" -gt 0 ] && kill "$npid" 2>/dev/null
	[ "$spid" -gt 0 ] && kill "$spid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

truncate -s 64M "$work/disk"
. "$(dirname "$0")/lib.sh"
srv_start_two "$work" "$srvbin" --export "disk=$work/disk"
nbdkit_start "$work" "$plugin" "$s" disk
uri="nbd+unix:///?socket=$sock"

info=$(nbdinfo "$uri" 2>&1) || bad "nbdinfo: $info"
grep -q "export-size: 67108864" <<<"$info" || bad "nbdinfo size: $info"
for f in can_multi_conn can_fua can_trim can_zero can_flush; do
	grep -q "$f: true" <<<"$info" || bad "nbdinfo: $f not true"
done

head -c $((48 << 20)) /dev/urandom > "$work/src.img"
truncate -s 64M "$work/src.img"
qemu-img convert -n -f raw -O raw "$work/src.img" "$uri" || bad "qemu-img convert in"
qemu-img convert -f raw -O raw "$uri" "$work/out.img" || bad "qemu-img convert out"
a=$(sha256sum < "$work/src.img") b=$(sha256sum < "$work/out.img") c=$(sha256sum < "$work/disk")
[ "$a" = "$b" ] || bad "qemu-img read back differs"
[ "$a" = "$c" ] || bad "the exported file differs"
nbdcopy "$uri" "$work/copy.img" || bad "nbdcopy"
[ "$(sha256sum < "$work/copy.img")" = "$a" ] || bad "nbdcopy differs"
qemu-io -f raw -c "write -P 0x5a 1M 64k" -c "read -P 0x5a 1M 64k" "$uri" \
	> "$work/qemu-io.log" 2>&1 || bad "qemu-io pattern: $(cat "$work/qemu-io.log")"

# fuse2fs in the foreground: it writes the file system back after
# fusermount3 returns, so a second mount waits for it to exit
f2_mount() {    # OPTIONS
	fuse2fs -f -o "$1" "$work/fuse/disk" "$work/mnt" > "$work/fuse2fs.log" 2>&1 &
	f2pid=$!
	for _ in $(seq 1 100); do
		mountpoint -q "$work/mnt" && return 0
		kill -0 "$f2pid" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
f2_umount() {
	fusermount3 -u "$work/mnt"
	wait "$f2pid"
	local st=$?
	f2pid=0
	return "$st"
}

if command -v nbdfuse >/dev/null && command -v fuse2fs >/dev/null && [ -e /dev/fuse ]; then
	mkdir -p "$work/fuse" "$work/mnt"
	nbdfuse "$work/fuse/disk" "$uri" > "$work/nbdfuse.log" 2>&1 &
	fpid=$!
	for _ in $(seq 1 100); do [ -e "$work/fuse/disk" ] && break; sleep 0.1; done
	mkfs.ext4 -q -F "$work/fuse/disk" || bad "mkfs.ext4"
	e2fsck -fn "$work/fuse/disk" > "$work/fsck1.log" 2>&1 || bad "e2fsck after mkfs: $(cat "$work/fsck1.log")"
	if f2_mount fakeroot; then
		for i in $(seq 1 20); do
			head -c $((i * 10000)) /dev/urandom > "$work/mnt/f$i"
		done
		sync
		sums=$(cd "$work/mnt" && sha256sum f* | sort)
		f2_umount || bad "fuse2fs exit $?: $(cat "$work/fuse2fs.log")"
		if f2_mount fakeroot,ro; then
			[ "$(cd "$work/mnt" && sha256sum f* | sort)" = "$sums" ] || bad "files differ after remount"
			f2_umount || bad "fuse2fs ro exit $?: $(cat "$work/fuse2fs.log")"
		else
			bad "fuse2fs remount: $(cat "$work/fuse2fs.log")"
		fi
		e2fsck -fn "$work/fuse/disk" > "$work/fsck2.log" 2>&1 || bad "e2fsck after files: $(cat "$work/fsck2.log")"
	else
		bad "fuse2fs mount: $(cat "$work/fuse2fs.log")"
	fi
	fusermount3 -u "$work/fuse" || bad "nbdfuse unmount"
	wait "$fpid" 2>/dev/null
	fpid=0
else
	echo "skip: nbdfuse/fuse2fs or /dev/fuse missing (filesystem part)"
fi

kill "$npid"; wait "$npid" 2>/dev/null; npid=0
kill -TERM "$spid"; wait "$spid" || bad "rnbd-server exit $?"; spid=0
[ "$fail" -eq 0 ] && echo "nbdkit: all passed"
exit "$fail"
