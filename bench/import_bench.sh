#!/usr/bin/env bash
# Times the bulk import of N subscriptions (default 1,000,000) into a release heraldd over HTTP:
# one NDJSON POST to /subscriptions/1/import, persisted to a fresh data_dir, then a restart that
# replays them. Usage: bench/import_bench.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
cmake --preset release >/dev/null
cmake --build --preset release --target heraldd >/dev/null
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT

start_daemon() {
  build/release/bin/heraldd --listen 127.0.0.1:0 --data-dir "$work/data" > "$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$work/log" && break; sleep 0.1; done
  url=$(grep -o "http://[^ ]*" "$work/log" | head -1)
}

awk -v n="$n" 'BEGIN {
  split("SMS MMS WHATSAPP VIBER EMAIL RCS", ch, " ");
  split("DELIVERY DELIVERY DELIVERY DELIVERY OPEN CLICK", ev, " ");
  for (i = 0; i < n; i++) {
    c = i % 6 + 1;
    printf("{\"channel\":\"%s\",\"subscriptionId\":\"sub-%d\",\"events\":[\"%s\"],\"criteria\":[{\"applicationId\":\"app-%d\"}],\"profile\":{\"profileId\":\"p%d\"}}\n", ch[c], i, ev[c], i % 125000, i % 100);
  }
}' > "$work/import.ndjson"
echo "import: $n subscriptions, $(du -h "$work/import.ndjson" | cut -f1) of NDJSON"

start_daemon
for p in $(seq 0 99); do
  curl -sf -X POST "$url/subscriptions/1/profiles" -H 'content-type: application/json' \
    -d "{\"profileId\":\"p$p\",\"webhook\":{\"notifyUrl\":\"https://example.com/$p\"}}" > /dev/null
done
t0=$(date +%s.%N)
result=$(curl -sf -X POST "$url/subscriptions/1/import" -H 'content-type: application/x-ndjson' \
  --data-binary @"$work/import.ndjson" | head -c 200)
t1=$(date +%s.%N)
echo "import answer: $result"
printf 'import: %.1f s (%.0f subscriptions/s)\n' "$(echo "$t1 - $t0" | bc)" "$(echo "$n / ($t1 - $t0)" | bc -l)"
kill -TERM $pid; wait $pid || true

t0=$(date +%s.%N)
start_daemon
t1=$(date +%s.%N)
printf 'restart with %s subscriptions: %.1f s to listening\n' "$n" "$(echo "$t1 - $t0" | bc)"
grep "state in" "$work/log" || true
