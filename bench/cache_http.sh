#!/usr/bin/env bash
# Cache throughput over HTTP keep-alive: exact hits, semantic hits and misses against a
# cache of N entries, next to nginx serving a static 1 KB response (the HTTP floor), all
# with wrk, the same connection count, alternating rounds; medians and ratios reported.
# Each embedder in EMBEDDERS (default: model2vec ngram) is measured in the same run.
# Prompts: entry i asks "How do I <verb> the <adjective> <noun> in the <place>?" with the words
# picked from bench/bench_words.txt by a permutation of i (100^4 combinations, so entries
# rarely share three words); its semantic search is a rewording ("... in my <place>?").
# Usage: bench/cache_http.sh BUILD_DIR [ENTRIES...]   (default: 10000 100000)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-build}"; shift || true
SIZES=("${@:-10000 100000}")
[ $# -eq 0 ] && SIZES=(10000 100000)
CONNS="${CONNS:-64}"; SECS="${SECS:-5}"; ROUNDS="${ROUNDS:-3}"
read -r -a EMBEDDER_LIST <<< "${EMBEDDERS:-model2vec ngram}"
WORDS="$ROOT/bench/bench_words.txt"
OUT="$ROOT/bench/results"; mkdir -p "$OUT"
WORK="$(mktemp -d)"; chmod 755 "$WORK"
trap 'kill $(cat "$WORK"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx: a static 1 KB JSON body.
NG_PORT=$(free_port); mkdir -p "$WORK/www"; chmod 755 "$WORK/www"
python3 -c 'import json; print(json.dumps({"data":[{"response":"x"*990}]}), end="")' > "$WORK/www/hit"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 2; pid $WORK/nginx.pid; error_log $WORK/nginx-error.log warn; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$NG_PORT; location = /hit { root $WORK/www; default_type application/json; } } }
CONF
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" & echo $! > "$WORK/nginx.pid"

# wrk request generators: a random stored question, reworded or not, or an unrelated one.
cat > "$WORK/search.lua" <<'LUA'
local n = tonumber(os.getenv("ENTRIES"))
local kind = os.getenv("KIND")
local lists = {}
for line in io.lines(os.getenv("WORDS")) do
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  lists[#lists + 1] = words
end
-- Entry i's four words: digits of (i * 2654435761) mod 100^4, one per list.
local function words(i)
  local j = (i * 2654435761) % 100000000
  local out = {}
  for k = 1, 4 do out[k] = lists[k][(j % 100) + 1]; j = math.floor(j / 100) end
  return out
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
request = function()
  local i = math.random(0, n - 1)
  local w = words(i)
  local p
  if kind == "exact" then
    p = string.format("How do I %s the %s %s in the %s?", w[1], w[2], w[3], w[4])
  elseif kind == "semantic" then
    p = string.format("How do I %s the %s %s in my %s?", w[1], w[2], w[3], w[4])
  else
    p = string.format("Where can I buy a %d piece puzzle of planet %d?", i, i % 89)
  end
  return wrk.format(nil, "/v1/caches/bench/entries/search", nil, '{"prompt":"' .. p .. '"}')
end
LUA

rps() { WORDS="$WORDS" ENTRIES="$1" KIND="$2" wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$WORK/search.lua" "$3" | awk '/Requests\/sec/ {print $2}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
JSON="["
for embedder in "${EMBEDDER_LIST[@]}"; do
for n in "${SIZES[@]}"; do
  SC_PORT=$(free_port)
  cat > "$WORK/sc.toml" <<CONF
[server]
threads = 2
max_connections = 100000
[log]
level = "warn"
[[caches]]
id = "bench"
api_keys = ["bench"]
# Throughput, not hit quality, is measured here: a threshold low enough that the reworded
# prompts below are semantic hits (the check before the load prints each tier).
similarity_threshold = 0.7
embedder = "$embedder"
CONF
  "$ROOT/$BUILD/src/semcached" serve --config "$WORK/sc.toml" --port "$SC_PORT" --data-dir "$WORK/data" \
    > "$WORK/semcached.log" 2>&1 & echo $! > "$WORK/semcached.pid"
  sleep 0.5
  echo "cache_http: $embedder embedder, storing $n entries" >&2
  python3 - "$SC_PORT" "$n" "$WORDS" <<'PY'
import http.client, json, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
lists = [line.split() for line in open(sys.argv[3])]
def words(i):
    j = (i * 2654435761) % 100000000
    out = []
    for k in range(4):
        out.append(lists[k][j % 100]); j //= 100
    return out
c = http.client.HTTPConnection("127.0.0.1", port)
answer = "y" * 900
t = time.time()
for i in range(n):
    body = json.dumps({"prompt": "How do I %s the %s %s in the %s?" % tuple(words(i)), "response": answer})
    c.request("POST", "/v1/caches/bench/entries", body, {"Authorization": "Bearer bench", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 201: sys.exit("store failed: %d" % r.status)
    if i and i % 20000 == 0: print("  %d stored, %.0f/s" % (i, i / (time.time() - t)), file=sys.stderr)
print("  %d stored in %.1f s (%.0f/s, one connection)" % (n, time.time() - t, n / (time.time() - t)), file=sys.stderr)
PY
  url="http://127.0.0.1:$SC_PORT"
  read -r w1 w2 w3 w4 < <(python3 -c "
lists=[l.split() for l in open('$WORDS')]
j=(7*2654435761)%100000000
out=[]
for k in range(4): out.append(lists[k][j%100]); j//=100
print(*out)")
  for kind in exact semantic miss; do
    case $kind in
      exact) prompt="How do I $w1 the $w2 $w3 in the $w4?" ;;
      semantic) prompt="How do I $w1 the $w2 $w3 in my $w4?" ;;
      *) prompt="Where can I buy a 7 piece puzzle of planet 7?" ;;
    esac
    hdr=$(curl -s -D - -o /dev/null -X POST "$url/v1/caches/bench/entries/search" -H 'Authorization: Bearer bench' \
          -d "{\"prompt\":\"$prompt\"}" | tr -d '\r' | awk -F': ' '/X-Semcached-Tier/ {print $2}')
    echo "  check $kind -> tier $hdr" >&2
    want=$([ $kind = miss ] && echo miss || echo $kind)
    [ "$hdr" = "$want" ] || { echo "cache_http: a $kind request was answered as $hdr" >&2; exit 1; }
  done
  ex=(); se=(); mi=(); ng=()
  for r in $(seq 1 "$ROUNDS"); do
    ex+=("$(rps "$n" exact "$url")"); se+=("$(rps "$n" semantic "$url")"); mi+=("$(rps "$n" miss "$url")")
    ng+=("$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$NG_PORT/hit" | awk '/Requests\/sec/ {print $2}')")
  done
  mex=$(median "${ex[@]}"); mse=$(median "${se[@]}"); mmi=$(median "${mi[@]}"); mng=$(median "${ng[@]}")
  rss=$(awk '/VmRSS/ {print $2}' /proc/$(cat "$WORK/semcached.pid")/status)
  printf '\n%s embedder, %s entries, %s connections, median of %s rounds of %s s\n' "$embedder" "$n" "$CONNS" "$ROUNDS" "$SECS"
  printf '%-28s %12.0f req/s\n' "exact hits" "$mex" "semantic hits" "$mse" "misses" "$mmi" "nginx static 1 KB" "$mng"
  printf '%-28s %12.2f\n' "exact / nginx" "$(awk -v a="$mex" -v b="$mng" 'BEGIN{print a/b}')" \
    "semantic / exact" "$(awk -v a="$mse" -v b="$mex" 'BEGIN{print a/b}')"
  printf '%-28s %12d KB\n' "semcached resident" "$rss"
  JSON="$JSON$([ "$JSON" = "[" ] || echo ,){\"embedder\":\"$embedder\",\"entries\":$n,\"exact\":$mex,\"semantic\":$mse,\"miss\":$mmi,\"nginx\":$mng,\"rss_kb\":$rss}"
  kill "$(cat "$WORK/semcached.pid")"; wait "$(cat "$WORK/semcached.pid")" 2>/dev/null || true; rm -f "$WORK/semcached.pid"
  rm -rf "$WORK/data"
done
done
echo "$JSON]" > "$OUT/cache_http.json"
echo "wrote $OUT/cache_http.json"
