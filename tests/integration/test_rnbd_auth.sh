#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# rnbd-server with --key-file and --acl (issue 15 item 9), through the rnbd
# command line: the right key writes and reads back; no key, a wrong key
# and an unknown identity are refused at connect (exit 1, "Permission
# denied"); an export's access list: a listed rw identity writes, a
# read-only one reads but its write open is refused, an unlisted one is
# refused; an export without a list serves every identity; a key file
# others can read stops the server; --acl without --key-file is a usage
# error.
#
#   test_rnbd_auth.sh RNBD_SERVER RNBD
set -uo pipefail
srvbin=$1 cli=$2
work=$(mktemp -d)
spid=0
trap '[ "$spid" -gt 0 ] && kill -9 "$spid" 2>/dev/null; rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

KA=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
KB=f0e0d0c0b0a090807060504030201000f1e1d1c1b1a191817161514131211101
KC=c0c1c2c3c4c5c6c7c8c9cacbcccdcecfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf
KX=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
umask 077
printf 'alice %s\nbob %s\ncarol %s\n' $KA $KB $KC > "$work/srv.keys"
printf 'alice %s\n' $KA > "$work/alice.key"
printf 'bob %s\n' $KB > "$work/bob.key"
printf 'carol %s\n' $KC > "$work/carol.key"
printf 'alice %s\n' $KX > "$work/wrong.key"
printf 'mallory %s\n' $KX > "$work/mallory.key"
truncate -s 4M "$work/disk" "$work/open"
head -c 8192 /dev/urandom > "$work/in.bin"

. "$(dirname "$0")/lib.sh"

# refusals at start: a readable key file, an access list without keys
cp "$work/srv.keys" "$work/loose.keys"
chmod 644 "$work/loose.keys"
"$srvbin" --listen "$ADDR1:0" --export "disk=$work/disk" \
	--key-file "$work/loose.keys" > /dev/null 2> "$work/loose.err"
[ $? -eq 2 ] && grep -q "group or others" "$work/loose.err" ||
	bad "a readable key file did not stop the server: $(cat "$work/loose.err")"
"$srvbin" --listen "$ADDR1:0" --export "disk=$work/disk" \
	--acl "disk=alice" > /dev/null 2>&1
[ $? -eq 2 ] || bad "--acl without --key-file not a usage error"

srv_start_two "$work" "$srvbin" --export "disk=$work/disk" \
	--export "open=$work/open" --key-file "$work/srv.keys" \
	--acl "disk=alice:rw,bob:ro"

# the right key: write, read back
"$cli" write -s "$s" -d disk -i "$work/in.bin" --key-file "$work/alice.key" ||
	bad "alice's write failed"
"$cli" read -s "$s" -d disk --length 8192 -o "$work/out.bin" \
	--key-file "$work/alice.key" --identity alice || bad "alice's read failed"
cmp -s "$work/in.bin" "$work/out.bin" || bad "alice read back other data"
cmp -s -n 8192 "$work/in.bin" "$work/disk" || bad "the exported file differs"

# refused at connect: no key, a wrong key, an unknown identity
refused() {     # refused WHAT PATTERN ARGS...: exit 1, PATTERN in stderr
	local what=$1 pat=$2
	shift 2
	"$cli" "$@" > /dev/null 2> "$work/err"
	local rc=$?
	[ $rc -eq 1 ] && grep -q "$pat" "$work/err" ||
		bad "$what: exit $rc, $(cat "$work/err")"
}
refused "no key" "connect: Permission denied" info -s "$s" -d disk
refused "wrong key" "connect: Permission denied" info -s "$s" -d disk --key-file "$work/wrong.key"
refused "unknown identity" "connect: Permission denied" info -s "$s" -d disk --key-file "$work/mallory.key"

# the access list of disk: bob reads, cannot write; carol cannot open it
"$cli" read -s "$s" -d disk --length 8192 -o "$work/bob.bin" --ro \
	--key-file "$work/bob.key" || bad "bob's read-only open failed"
cmp -s "$work/in.bin" "$work/bob.bin" || bad "bob read other data"
refused "bob writing" "open disk: .*access list" write -s "$s" -d disk -i "$work/in.bin" \
	--key-file "$work/bob.key"
refused "carol reading" "open disk: .*access list" read -s "$s" -d disk --length 4096 -o /dev/null --ro \
	--key-file "$work/carol.key"
cmp -s -n 8192 "$work/in.bin" "$work/disk" || bad "the refused write changed the file"
# an export without a list: every identity
"$cli" write -s "$s" -d open -i "$work/in.bin" --key-file "$work/carol.key" ||
	bad "carol's write to an export without a list failed"
cmp -s -n 8192 "$work/in.bin" "$work/open" || bad "carol's write is not in the file"

kill "$spid"
wait "$spid" 2>/dev/null
spid=0
[ $fail = 0 ] && echo "rnbd auth: all passed"
exit $fail
