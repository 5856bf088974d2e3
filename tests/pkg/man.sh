#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The man pages in docs/man against the built libraries:
#  - every exported function has a page in man3, or an alias page
#    (".so man3/PAGE.3") whose target exists and lists it under NAME and
#    declares it in its SYNOPSIS; every alias names an exported function;
#  - every page has the sections it should: NAME, SYNOPSIS (not in section
#    7), DESCRIPTION and SEE ALSO; section 3 also RETURN VALUE, ERRORS and
#    THREAD SAFETY;
#  - every name() a page mentions is an exported function, and every
#    rtrs*/rnbd*(N) page it cites exists;
#  - every page renders without warnings (man --warnings).
#   man.sh MANDIR LIB.so...
set -u
man=$1
shift
fail=0
bad() { echo "FAIL: $*"; fail=1; }

syms=$(for lib in "$@"; do
	nm -D --defined-only "$lib" | awk '{ sub(/@.*/, "", $3); print $3 }'
done | grep -v -E '^(RTRS|RNBD)_[0-9.]+$' | sort -u)
[ -n "$syms" ] || { echo "FAIL: no exported symbols in $*"; exit 1; }

alias_of() { sed -n 's|^\.so man3/||p' "$1"; }
names_of() {    # the names under .SH NAME
	sed -n '/^\.SH NAME/{n;p;}' "$1" | sed 's/ \\-.*//' | tr ',' '\n' |
		sed 's/^ *//; s/ *$//'
}

for s in $syms; do
	f=$man/$s.3
	if [ ! -f "$f" ]; then
		bad "$s: no page docs/man/$s.3 (page or .so alias)"
		continue
	fi
	page=$f
	target=$(alias_of "$f")
	if [ -n "$target" ]; then
		page=$man/$target
		[ -f "$page" ] || { bad "$s.3: .so man3/$target: no such page"; continue; }
	fi
	names_of "$page" | grep -qx "$s" || bad "$s: not under NAME in ${page##*/}"
	sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$page" | grep -q "$s(" ||
		bad "$s: not in the SYNOPSIS of ${page##*/}"
done

for f in "$man"/*.[1378]; do
	name=${f##*/}
	sec=${name##*.}
	if [ -n "$(alias_of "$f")" ]; then
		echo "$syms" | grep -qx "${name%.3}" ||
			bad "$name: an alias for no exported function"
		continue
	fi
	want="NAME|DESCRIPTION|SEE ALSO"
	[ "$sec" = 7 ] || want="$want|SYNOPSIS"
	[ "$sec" = 3 ] && want="$want|RETURN VALUE|ERRORS|THREAD SAFETY"
	have=$(sed -n 's/^\.SH //p' "$f" | tr -d '"')
	echo "$want" | tr '|' '\n' | while read -r h; do
		echo "$have" | grep -qx "$h" || echo "FAIL: $name: no $h section"
	done | grep . && fail=1
	for fn in $(grep -o -E '(rtrs|rnbd)_[a-z0-9_]+(\\fR)? ?\(\)' "$f" |
		    sed -E 's/(\\fR)? ?\(\)$//' | sort -u); do
		echo "$syms" | grep -qx "$fn" || bad "$name: $fn() is not an exported function"
	done
	for ref in $(grep -o -E '(rtrs|rnbd|nbdkit-rnbd)[a-z0-9_-]*(\\fR)? ?\([1378]\)' "$f" |
		     sed -E 's/(\\fR)? ?\(([1378])\)$/.\2/' | sort -u); do
		[ -f "$man/$ref" ] || bad "$name: cites ${ref%.*}(${ref##*.}), which is not in docs/man"
	done
	if command -v man >/dev/null; then
		w=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null)
		[ -z "$w" ] || bad "$name: $w"
	fi
done
[ $fail = 0 ] && echo "$(echo "$syms" | wc -l) exported functions, all with man pages"
exit $fail
