#!/usr/bin/env bash
# Installs the npm packages the e2e tests use (the official LangCache SDK), from the lock
# file, into tests/e2e/*/node_modules. Installs Debian's nodejs and npm first if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "npm-deps: installing Debian's nodejs and npm"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
for dir in "$ROOT"/tests/e2e/*/; do
  [ -f "$dir/package-lock.json" ] || continue
  stamp="$dir/node_modules/.semcached-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
    continue
  fi
  echo "npm-deps: npm ci in ${dir#$ROOT/}"
  ( cd "$dir" && npm ci --no-audit --no-fund --loglevel=error )
  cp "$dir/package-lock.json" "$stamp"
done
