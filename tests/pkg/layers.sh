#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#
# layers.sh SRC_DIR: scripts/check-layers.sh finds what it is for.  A small
# tree with one violation of each kind (a call circle, a call up a layer, an
# include circle, a 101-line function, a 1,001-line file, a 400-line
# rnbd-server) must fail with exactly those lines; listed in its
# layers.allow it passes; a stale line in the list fails again.
set -euo pipefail
src=$(cd "$1" && pwd)
check=$src/scripts/check-layers.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t"/src/util "$t"/src/core "$t"/include "$t"/tools "$t"/scripts \
	"$t"/build/o.dir/src/util "$t"/build/o.dir/src/core

# util calls core (up a layer), core calls util: a circle of two files
cat > "$t"/src/util/u.c <<'EOF'
#include "u.h"
int c_fn(int);
int u_fn(int x)
{
	return x + 1;
}
int big(int x)
{
EOF
for i in $(seq 98); do echo "	x += $i;" >> "$t"/src/util/u.c; done
cat >> "$t"/src/util/u.c <<'EOF'
	return c_fn(x);
}
EOF
cat > "$t"/src/core/c.c <<'EOF'
int u_fn(int);
int c_fn(int x)
{
	return u_fn(x) * 2;
}
EOF
for i in $(seq 996); do echo "/* $i */" >> "$t"/src/core/c.c; done
# two headers including each other
printf '#pragma once\n#include "v.h"\n' > "$t"/src/util/u.h
printf '#pragma once\n#include "u.h"\n' > "$t"/src/util/v.h
for i in $(seq 400); do echo "/* $i */"; done > "$t"/tools/rnbd-server.c
cc -c -o "$t"/build/o.dir/src/util/u.c.o "$t"/src/util/u.c
cc -c -o "$t"/build/o.dir/src/core/c.c.o "$t"/src/core/c.c

want='call circle src/core/c.c src/util/u.c
call up src/util/u.c -> src/core/c.c (c_fn)
func src/util/u.c:big 101 lines (limit 100)
include circle src/util/u.h src/util/v.h
size src/core/c.c 1001 lines (limit 1000)
size tools/rnbd-server.c 400 lines (limit 400)'

run() { CHECK_LAYERS_ROOT=$t "$check" "$t"/build > "$t"/out 2>&1; }
fail() { echo "layers: $*"; cat "$t"/out; exit 1; }

# 1. every violation found, nothing else
: > "$t"/scripts/layers.allow
if run; then fail "a tree with violations passed"; fi
got=$(sed -n 's/^  //p' "$t"/out | sort)
[ "$got" = "$want" ] || { echo "want:"; echo "$want"; echo "got:"; echo "$got"; fail "wrong findings"; }

# 2. the known ones listed: it passes
echo "$want" > "$t"/scripts/layers.allow
run || fail "the listed violations did not pass"
grep -q '6 known violations' "$t"/out || fail "the known ones not counted"

# 3. a listed line that no longer occurs fails (the list only shrinks)
echo "func src/util/u.c:gone 200 lines (limit 100)" >> "$t"/scripts/layers.allow
if run; then fail "a stale line of the list passed"; fi
grep -q 'fixed, remove from' "$t"/out || fail "the stale line not named"
echo "layers: 6 violations found, listed ones pass, a stale one fails"
