#!/usr/bin/env bash
# bench/foundation.sh — the foundation's performance numbers, measured in one run on this machine:
#   1. audit append throughput with the hash chain (SQLite, PostgreSQL)     go test -bench AuditAppend
#   2. audit verify of 1,000,000 rows (SQLite, PostgreSQL)                  go test -bench AuditVerify
#   3. authenticated GET /api/v1/auth/me: throughput and p99 under wrk (JWT and API key)
#   4. cold start to /readyz 200 and idle RSS of `it0 serve` on SQLite
# Targets (issue 2): ≥ 5,000 appends/s on SQLite; verify 1M rows < 10 s; RSS < 60 MB; cold start < 1 s.
# Env: SKIP_GO_BENCH=1 skips 1-2; DURATION (10s) and CONNS (50) tune wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
T=$(mktemp -d /tmp/it0-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
go build -o "$T/it0" ./cmd/it0

if [[ ${SKIP_GO_BENCH:-0} != 1 ]]; then
  echo "== audit append and verify (go test -bench)"
  go test -run '^$' -bench 'AuditAppend|AuditVerify' -benchtime 1x -timeout 30m ./internal/store/ | grep -E '^Benchmark' | tee "$T/go.txt" || true
  go test -run '^$' -bench 'AuditAppend' -benchtime 3s ./internal/store/ | grep -E '^Benchmark' | tee -a "$T/go.txt"
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_it0 DIR PORT: starts it0 serve, prints its pid; the caller waits for readiness.
start_it0() {
  IT0_BOOTSTRAP_ADMIN_PASSWORD=bench-password IT0_LOG_LEVEL=warn "$T/it0" serve --data-dir "$1" --addr "127.0.0.1:$2" >/dev/null 2>>"$T/serve.log" &
  echo $!
}

wait_ready() { # PORT → seconds from now until /readyz answers 200
  python3 - "$1" <<'PY'
import sys, time, urllib.request
t0 = time.monotonic()
while True:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=1).status == 200:
            break
    except Exception:
        time.sleep(0.002)
print("%.3f" % (time.monotonic() - t0))
PY
}

echo "== cold start to /readyz and idle RSS (SQLite)"
for run in 1 2 3; do
  P=$(port); D="$T/data$run"
  t0=$(date +%s.%N)
  pid=$(start_it0 "$D" "$P"); PIDS+=("$pid")
  wait_ready "$P" >/dev/null
  t1=$(date +%s.%N)
  first=$(python3 -c "print('%.3f' % ($t1 - $t0))")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  t0=$(date +%s.%N)
  pid=$(start_it0 "$D" "$P"); PIDS+=("$pid")
  wait_ready "$P" >/dev/null
  t1=$(date +%s.%N)
  warm=$(python3 -c "print('%.3f' % ($t1 - $t0))")
  sleep 3
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  echo "run $run: first start (migrate + bootstrap) ${first}s, restart ${warm}s, idle RSS $((rss / 1024)) MB"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

echo "== GET /api/v1/auth/me under wrk (-c $CONNS -d $DURATION, 2 threads)"
P=$(port); pid=$(start_it0 "$T/load" "$P"); PIDS+=("$pid"); wait_ready "$P" >/dev/null
TOKEN=$(curl -s "http://127.0.0.1:$P/api/v1/auth/login" -d '{"email":"admin@it0.local","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
KEY=$(curl -s "http://127.0.0.1:$P/api/v1/auth/api-keys" -H "Authorization: Bearer $TOKEN" -d '{"name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
for kind in JWT APIKEY; do
  cred=$TOKEN; [[ $kind == APIKEY ]] && cred=$KEY
  wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "Authorization: Bearer $cred" "http://127.0.0.1:$P/api/v1/auth/me" > "$T/wrk.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.txt")
  p50=$(awk '$1=="50%" {print $2}' "$T/wrk.txt"); p99=$(awk '$1=="99%" {print $2}' "$T/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$T/wrk.txt"); non2xx=${non2xx:-0}
  echo "$kind: ${rps} req/s, p50 ${p50}, p99 ${p99}, non-2xx ${non2xx}"
done
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "RSS after load: $((rss / 1024)) MB"
