#!/usr/bin/env bash
# Provides hiredis 1.2 (static library and headers) under .deps/hiredis of the repository.
#
# Why not Debian 12's libhiredis-dev: it is 0.14, whose reply reader knows RESP2 only, and the
# Redis client must speak RESP3 too. Debian 13's libhiredis-dev 1.2 ships a static library
# that needs nothing newer than Debian 12's C library (checked with nm when this was written),
# so it is downloaded with the private trixie apt list, unpacked, and linked statically.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${SEMCACHED_HIREDIS_PREFIX:-$ROOT/.deps/hiredis}"
LIB="$PREFIX/usr/lib/x86_64-linux-gnu/libhiredis.a"

if [ -f "$LIB" ] && grep -q 'HIREDIS_MAJOR 1' "$PREFIX/usr/include/hiredis/hiredis.h" 2>/dev/null; then
  echo "hiredis: present: $(grep -E 'define HIREDIS_(MAJOR|MINOR|PATCH)' "$PREFIX/usr/include/hiredis/hiredis.h" | awk '{printf "%s%s", sep, $3; sep="."}')"
  exit 0
fi

# shellcheck source=trixie_apt.sh
source "$ROOT/scripts/trixie_apt.sh"
trixie_download libhiredis-dev
mkdir -p "$PREFIX"
for deb in "$TRIXIE_DEBS"/libhiredis-dev_*.deb; do
  dpkg-deb -x "$deb" "$PREFIX"
done
[ -f "$LIB" ] || { echo "hiredis: $LIB missing after unpacking" >&2; exit 1; }
echo "hiredis: unpacked into $PREFIX"
