#!/usr/bin/env bash
# Installs the Debian packages semcached builds, tests and benchmarks with.
# Idempotent: asks apt only for what is missing, so a second run costs a dpkg query.
# Runs as root, or through sudo when it is there.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config git ca-certificates curl xz-utils openssl
  # libraries
  libboost1.81-dev          # Asio + Beast: the HTTP server, later the Redis client sockets
  libspdlog-dev libfmt-dev  # logs
  prometheus-cpp-dev        # /metrics
  libcli11-dev              # command line
  libtomlplusplus-dev       # configuration file
  nlohmann-json3-dev        # JSON bodies
  libssl-dev                # SHA-256, TLS
  libcurl4-openssl-dev      # upstream HTTP (embedders, LLM providers)
  libutf8proc-dev           # prompt normalization
  wordnet-base              # antonyms for the guards (extracted at build time)
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev libhnswlib-dev
  wrk nginx                 # HTTP load generator, and the HTTP floor baseline
  gnuplot-nox               # plots of the streaming benchmark (bench/results/*.png)
  prometheus                # promtool (alert rule tests), and a real server for the dashboard test
  protobuf-compiler libprotobuf-dev  # OTLP export (C++ generated from third_party/otlp-proto)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "deps: missing packages (${missing[*]}) and not root, no sudo: install them by hand" >&2
    exit 1
  fi
fi

echo "deps: installing ${#missing[@]} missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
