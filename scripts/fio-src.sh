#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# Fetch the source of the installed Debian fio (the same version: fio only
# loads engines built against its own headers) and configure it, so that
# fio/rnbd-engine.c can be built. The deb-src lines are derived from this
# machine's own apt sources, in a private apt directory under DEST; the
# system's apt configuration is not touched.
#
#   scripts/fio-src.sh DEST      -> DEST/fio-<version>/config-host.h
set -euo pipefail
dest=$(mkdir -p "$1" && cd "$1" && pwd)
ver=$(dpkg-query -W -f='${Version}' fio 2>/dev/null) || {
	echo "fio-src: fio is not installed" >&2; exit 1; }
up=${ver#*:}
up=${up%-*}
src=$dest/fio-$up
if [ -f "$src/config-host.h" ] && [ "$(cat "$dest/version" 2>/dev/null)" = "$ver" ]; then
	exit 0
fi
apt=$dest/apt
rm -rf "$apt" "$src"
mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache/archives/partial"
# deb822 files: Types: deb -> deb-src; one-line files: deb -> deb-src
n=0
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	sed -e 's/^Types:.*\bdeb\b.*/Types: deb-src/' "$f" > "$apt/sources.list.d/src$n.sources"
	n=$((n + 1))
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	grep -E '^deb ' "$f" | sed 's/^deb /deb-src /' > "$apt/sources.list.d/src$n.list" || true
	n=$((n + 1))
done
opts=(-o "APT::Sandbox::User=root" -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
      -o "Debug::NoLocking=1")
apt-get "${opts[@]}" -qq update
(cd "$dest" && apt-get "${opts[@]}" -qq source "fio=$ver" > /dev/null)
[ -d "$src" ] || { echo "fio-src: no $src after apt-get source" >&2; exit 1; }
(cd "$src" && ./configure --disable-native > "$dest/configure.log" 2>&1) || {
	echo "fio-src: configure failed, see $dest/configure.log" >&2; exit 1; }
echo "$ver" > "$dest/version"
echo "fio-src: fio $ver source ready in $src"
