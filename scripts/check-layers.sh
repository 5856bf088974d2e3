#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#
# check-layers.sh BUILD_DIR: the structure rules of docs/design.md
# ("Layers and limits"), checked from the sources and from the objects of a
# build:
#   size     no file under src/ over 1,000 lines; tools/rnbd-server.c
#            under 400
#   func     no function in src/ over 100 lines (from the line opening its
#            body, a "{" in column 0, to the "}" in column 0 that ends it)
#   include  no circle of #include "..." among src/ and include/ files
#   call     no circle of calls between src/ files (a file calls another
#            when its object has an undefined symbol that the other
#            defines: nm), and no call or include up a layer:
#            util < proto < fabric < core < rnbd
# Each violation is one line.  scripts/layers.allow lists the ones still
# known while the redesign of issue 17 removes them: a violation not in it
# fails, and so does a line of it that no longer occurs (the list only
# shrinks).  Exit 0 clean, 1 on a violation, 2 on a usage error.
set -euo pipefail
# CHECK_LAYERS_ROOT: another tree to check (tests/pkg/layers.sh)
root=${CHECK_LAYERS_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
build=${1:-}
[ -n "$build" ] && [ -d "$build" ] || {
	echo "usage: $0 BUILD_DIR (a build of this tree with its objects)" >&2
	exit 2
}
build=$(cd "$build" && pwd)
cd "$root"
allow=scripts/layers.allow
out=$(mktemp)
trap 'rm -f "$out" "$out".*' EXIT

srcs=$(find src -name '*.c' | sort)
hdrs=$(find src include -name '*.h' | sort)

# ---- size ----
for f in $srcs $hdrs; do
	case $f in include/*) continue ;; esac
	n=$(wc -l < "$f")
	[ "$n" -le 1000 ] || echo "size $f $n lines (limit 1000)"
done >> "$out"
n=$(wc -l < tools/rnbd-server.c)
[ "$n" -lt 400 ] || echo "size tools/rnbd-server.c $n lines (limit 400)" >> "$out"

# ---- func ----
# shellcheck disable=SC2086
awk '
FNR == 1 { infn = 0; prev = "" }
/^\{/ { if (!infn) { start = FNR; name = prev; infn = 1 } next }
/^\}/ { if (infn) { n = FNR - start + 1; infn = 0
		if (n > 100) {
			# the name: the identifier before "(" in the lines
			# before the body
			match(name, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)
			fn = (RSTART ? substr(name, RSTART, RLENGTH - 1) : name)
			gsub(/[ \t]/, "", fn)
			printf "func %s:%s %d lines (limit 100)\n", FILENAME, fn, n
		} }
	next }
!infn && /\(/ { prev = $0 }
' $srcs >> "$out"

# the layer of a file: its directory under src/; the public headers in
# include/ declare and hold no code: every layer may include them
layer_awk='
function layer(f) {
	if (f ~ /^src\/util\//) return 1
	if (f ~ /^src\/proto\//) return 2
	if (f ~ /^src\/fabric\//) return 3
	if (f ~ /^src\/core\//) return 4
	if (f ~ /^src\/rnbd\//) return 5
	if (f ~ /^include\//) return 0
	return 9
}'

# Tarjan: every strongly connected component of more than one file of the
# edge list "from to" on stdin is one circle line "KIND a b c"
scc_awk='
function visit(v,    i, w) {
	idx[v] = low[v] = ++counter; stack[++sp] = v; on[v] = 1
	for (i = 1; i <= nout[v]; i++) {
		w = out[v, i]
		if (!(w in idx)) { visit(w); if (low[w] < low[v]) low[v] = low[w] }
		else if (on[w] && idx[w] < low[v]) low[v] = idx[w]
	}
	if (low[v] == idx[v]) {
		comp = ""; k = 0
		do { w = stack[sp--]; on[w] = 0; memb[++k] = w } while (w != v)
		if (k > 1) {
			# sorted, so that a circle always prints the same
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
				if (memb[j] < memb[i]) { t = memb[i]; memb[i] = memb[j]; memb[j] = t }
			for (i = 1; i <= k; i++) comp = comp " " memb[i]
			print KIND " circle" comp
		}
	}
}
{ if (!(($1, $2) in seen)) { seen[$1, $2] = 1; out[$1, ++nout[$1]] = $2 }
  nodes[$1] = 1; nodes[$2] = 1 }
END { for (v in nodes) if (!(v in idx)) visit(v) }
'

# ---- include ----
for f in $srcs $hdrs; do
	d=$(dirname "$f")
	sed -n 's/^#[ \t]*include[ \t]*"\([^"]*\)".*/\1/p' "$f" | while read -r inc; do
		for cand in "$d/$inc" "src/$inc" "include/$inc"; do
			if [ -f "$cand" ]; then
				echo "$f $(realpath --relative-to=. "$cand")"
				break
			fi
		done
	done
done > "$out.inc"
awk -v KIND=include "$scc_awk" "$out.inc" >> "$out"
awk "$layer_awk"'
{ a = layer($1); b = layer($2)
  if (b != 9 && a != 9 && b > a) printf "include up %s -> %s\n", $1, $2 }' "$out.inc" >> "$out"

# ---- call ----
# one object per source file (a file built into two libraries is one node)
objs=$(find "$build" -name '*.c.o' -path '*/src/*' | sort)
[ -n "$objs" ] || { echo "$0: no objects of src/ in $build: build it first" >&2; exit 2; }
for o in $objs; do
	s=src/${o#*/src/}
	s=${s%.o}
	[ -f "$s" ] || continue
	echo "$s $o"
done | sort -u -k1,1 > "$out.objs"
while read -r s o; do
	nm --defined-only -g "$o" | awk -v s="$s" 'NF == 3 && $2 ~ /[TDBRVW]/ { print "D", $3, s }'
	nm -u "$o" | awk -v s="$s" '{ print "U", $NF, s }'
done < "$out.objs" | awk '
$1 == "D" { def[$2] = $3; next }
{ use[++n] = $2 " " $3 }
END { for (i = 1; i <= n; i++) { split(use[i], a, " ")
	if ((a[1] in def) && def[a[1]] != a[2]) print a[2], def[a[1]], a[1] } }
' | sort -u > "$out.calls"
cut -d' ' -f1,2 "$out.calls" | sort -u | awk -v KIND=call "$scc_awk" >> "$out"
awk "$layer_awk"'
{ a = layer($1); b = layer($2)
  if (b > a) printf "call up %s -> %s (%s)\n", $1, $2, $3 }' "$out.calls" | sort -u >> "$out"

# ---- against the list of known ones ----
sort -u "$out" > "$out.now"
grep -v '^#' "$allow" 2>/dev/null | sed '/^[[:space:]]*$/d' | sort -u > "$out.allow" || true
new=$(comm -23 "$out.now" "$out.allow")
gone=$(comm -13 "$out.now" "$out.allow")
known=$(comm -12 "$out.now" "$out.allow" | wc -l)
rc=0
if [ -n "$new" ]; then
	echo "check-layers: new violations (docs/design.md, \"Layers and limits\"):"
	echo "$new" | sed 's/^/  /'
	rc=1
fi
if [ -n "$gone" ]; then
	echo "check-layers: fixed, remove from $allow:"
	echo "$gone" | sed 's/^/  /'
	rc=1
fi
echo "check-layers: $(wc -l < "$out.objs") objects, $(wc -l < "$out.calls") cross-file calls," \
	"$(wc -l < "$out.inc") includes; $known known violations left in $allow"
exit $rc
