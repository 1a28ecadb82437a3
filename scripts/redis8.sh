#!/usr/bin/env bash
# Provides a private Redis 8 (with vector sets) under .deps/redis8 of the repository.
#
# Debian 12 ships Redis 7.0, which has no vector sets. Debian 13 ships Redis 8.0 built for its
# own C library, so we download (never install) trixie's packages with a private apt list,
# unpack them into the prefix, and start the binaries through trixie's own dynamic loader.
# The system's libc is never touched. See docs/redis8-on-debian12.md.
#
# Result: .deps/redis8/bin/redis-server and .deps/redis8/bin/redis-cli, ordinary wrappers
# that take the usual arguments.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="${SEMCACHED_REDIS8_PREFIX:-$ROOT/.deps/redis8}"
BIN="$PREFIX/bin"

if [ -x "$BIN/redis-server" ] && "$BIN/redis-server" --version 2>/dev/null | grep -q 'v=8\.'; then
  echo "redis8: present: $("$BIN/redis-server" --version)"
  exit 0
fi

PKGS=(redis-server redis-tools libc6 libstdc++6 libgcc-s1 libssl3t64 libjemalloc2 liblzf1
      libsystemd0 libatomic1 libcap2 zlib1g libzstd1 liblz4-1 liblzma5 libgcrypt20
      libgpg-error0)

# shellcheck source=trixie_apt.sh
source "$ROOT/scripts/trixie_apt.sh"
mkdir -p "$PREFIX"
trixie_download "${PKGS[@]}"

for deb in "$TRIXIE_DEBS"/*.deb; do
  dpkg-deb -x "$deb" "$PREFIX"
done

LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
LOADER="$LIBDIR/ld-linux-x86-64.so.2"
[ -e "$LOADER" ] || LOADER="$PREFIX/lib64/ld-linux-x86-64.so.2"
mkdir -p "$BIN"

# The server binary picks its mode from argv[0]: redis-server is a link to redis-check-rdb.
cat > "$BIN/redis-server" <<WRAP
#!/bin/sh
exec "$LOADER" --library-path "$LIBDIR" --argv0 redis-server "$PREFIX/usr/bin/redis-check-rdb" "\$@"
WRAP
cat > "$BIN/redis-cli" <<WRAP
#!/bin/sh
exec "$LOADER" --library-path "$LIBDIR" --argv0 redis-cli "$PREFIX/usr/bin/redis-cli" "\$@"
WRAP
chmod +x "$BIN/redis-server" "$BIN/redis-cli"

"$BIN/redis-server" --version
