#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# The documentation against the tree:
#  - every file the README, docs/*.md and the man pages cite (a path under
#    one of the repository's directories, a path starting with ../, or a
#    *.md name) is in the repository;
#  - the C code the README's "A client and a server" section shows is
#    examples/hello.c's, line for line ("/* ... */" lines mark what is left
#    out), so the README shows the program the suite builds and runs.
#   docs.sh SRCDIR
set -u
src=$(cd "$1" && pwd)
fail=0
bad() { echo "FAIL: $*"; fail=1; }
cd "$src" || exit 1

tops=$(for d in */; do
	case $d in build/|.*) ;; *) printf '%s|' "${d%/}" ;; esac
done)
tops=${tops%|}
for doc in README.md docs/*.md docs/man/*.[1378]; do
	dir=$(dirname "$doc")
	grep -o -E "(^|[^A-Za-z0-9_./-])((\.\./)+|($tops)/)[][A-Za-z0-9_./*-]*[]A-Za-z0-9_*-]|[A-Za-z0-9_-]+\.md([^A-Za-z0-9_]|$)" "$doc" |
	sed -E 's/^[^A-Za-z0-9_.]//; s/(\.md)[^A-Za-z0-9_]$/\1/' | sort -u |
	while read -r p; do
		case $p in
		*.md)
			case $p in */*) ;; *)
				# a bare document name: ours, somewhere
				find . -path ./build -prune -o -name "$p" -print |
					grep -q . || echo "FAIL: $doc cites $p: not in the repository"
				continue ;;
			esac ;;
		esac
		found=
		for base in "$src" "$src/$dir"; do
			# a glob like wire.[ch] is fine; tools/x names tools/x.c's program
			for f in $base/$p $base/$p.c; do
				[ -e "$f" ] || continue
				case $(realpath "$f") in "$src"/*) found=1 ;; esac
			done
		done
		[ -n "$found" ] || echo "FAIL: $doc cites $p: not in the repository"
	done
done | grep . && fail=1

# the README's example
[ -f examples/hello.c ] || { echo "FAIL: no examples/hello.c"; exit 1; }
awk '/^## A client and a server/ { s = 1; next } s && /^## / { s = 0 }
     s && /^```c/ { c = 1; next } c && /^```/ { c = 0 } c' README.md >"${TMPDIR:-/tmp}/readme-example.$$"
n=$(grep -c . "${TMPDIR:-/tmp}/readme-example.$$")
[ "$n" -ge 20 ] || bad "README.md: no C example under '## A client and a server'"
while IFS= read -r line; do
	case $line in ''|*'/* ... '*|*'/* ... */') continue ;; esac
	grep -qxF -- "$line" examples/hello.c || bad "README.md example line not in examples/hello.c: $line"
done <"${TMPDIR:-/tmp}/readme-example.$$"
rm -f "${TMPDIR:-/tmp}/readme-example.$$"
[ $fail = 0 ] && echo "docs cite only files of the repository; the README shows examples/hello.c ($n lines)"
exit $fail
