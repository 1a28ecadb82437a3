#!/usr/bin/env bash
# HTTP floor: how close semcached's HTTP layer comes to nginx serving the same bytes.
#
# Starts semcached (GET /healthz) and a private nginx serving a static file with the same
# body, both on loopback with 2 workers/threads, and drives each with wrk over keep-alive,
# alternating rounds so drift on this noisy machine hits both alike. Reports the median
# requests/s of each and their ratio. Usage: bench/http_floor.sh BUILD_DIR [ROUNDS] [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"
ROUNDS="${2:-3}"
SECS="${3:-5}"
CONNS="${CONNS:-64}"
OUT="$ROOT/bench/results"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'kill $(cat "$WORK"/*.pid 2>/dev/null) 2>/dev/null || true; [ -n "${KEEP:-}" ] && cat "$WORK"/*.log; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SC_PORT=$(free_port)
"$ROOT/$BUILD/src/semcached" serve --port "$SC_PORT" --data-dir "$WORK/data" \
  --set server.threads=2 --log-level warn > "$WORK/semcached.log" 2>&1 &
echo $! > "$WORK/semcached.pid"

NG_PORT=$(free_port)
mkdir -p "$WORK/www"; chmod 755 "$WORK" "$WORK/www"
printf '{"status":"ok"}' > "$WORK/www/healthz"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$NG_PORT;
    location = /healthz { root $WORK/www; default_type application/json; }
  }
}
CONF
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" &
sleep 0.5

for url in "http://127.0.0.1:$SC_PORT/healthz" "http://127.0.0.1:$NG_PORT/healthz"; do
  curl -sf "$url" > /dev/null || { echo "http_floor: $url not answering" >&2; exit 1; }
done

rps() { wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$1" | awk '/Requests\/sec/ {print $2}'; }
sc=(); ng=()
for r in $(seq 1 "$ROUNDS"); do
  sc+=("$(rps "http://127.0.0.1:$SC_PORT/healthz")")
  ng+=("$(rps "http://127.0.0.1:$NG_PORT/healthz")")
  echo "round $r: semcached ${sc[-1]} req/s, nginx ${ng[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
msc=$(median "${sc[@]}"); mng=$(median "${ng[@]}")
ratio=$(awk -v a="$msc" -v b="$mng" 'BEGIN {printf "%.3f", a/b}')
printf '\n%-28s %14s\n' "server (GET /healthz, c=$CONNS)" "median req/s"
printf '%-28s %14.0f\n' "semcached" "$msc" "nginx (static file)" "$mng"
printf '%-28s %14s\n' "ratio semcached/nginx" "$ratio"
cat > "$OUT/http_floor.json" <<JSON
{"benchmark":"http_floor","connections":$CONNS,"seconds":$SECS,"rounds":$ROUNDS,
 "semcached_rps":[$(IFS=,; echo "${sc[*]}")],"nginx_rps":[$(IFS=,; echo "${ng[*]}")],
 "semcached_median":$msc,"nginx_median":$mng,"ratio":$ratio}
JSON
echo "wrote $OUT/http_floor.json"
