#!/usr/bin/env bash
# Distributed mode on one machine (DESIGN §10): builds the release preset, starts a 3-node
# nats-server cluster with JetStream on loopback and two heraldd instances on it
# (--store jetstream, replicas 3), prints where they listen and a first command to try, and
# stops them all on Ctrl-C. State goes under build/cluster/ (removed at start; keep it with
# KEEP=1). Extra arguments go to both heraldd instances.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target heraldd heraldctl

root=$PWD/build/cluster
[[ "${KEEP:-0}" == 1 ]] || rm -rf "$root"
mkdir -p "$root"
nats_pids=()
heraldd_pids=()
# heraldd first (it hands back what it holds while NATS still runs), then the servers.
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping heraldd, then nats-server..."
  for pid in "${heraldd_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${heraldd_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${nats_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

routes="nats-route://127.0.0.1:16241, nats-route://127.0.0.1:16242, nats-route://127.0.0.1:16243"
urls=""
for n in 1 2 3; do
  cat >"$root/n$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:1424$n
http: 127.0.0.1:1824$n
jetstream { store_dir: "$root/n$n", max_memory_store: 256MB, max_file_store: 2GB }
cluster { name: herald-local, listen: 127.0.0.1:1624$n, routes: [$routes] }
CONF
  nats-server -c "$root/n$n.conf" -l "$root/n$n.log" &
  nats_pids+=($!)
  urls+="${urls:+,}nats://127.0.0.1:1424$n"
done
for n in 1 2 3; do
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:1824$n/healthz" >/dev/null && break
    sleep 0.05
  done
done
echo "nats-server cluster: $urls (monitoring on http://127.0.0.1:18241..3)"

for i in 1 2; do
  build/release/bin/heraldd --store jetstream --nats-url "$urls" --jetstream-replicas 3 \
    --listen "127.0.0.1:808$i" --data-dir "$root/heraldd$i" "$@" \
    > >(sed -u "s/^/[heraldd$i] /" | tee -i "$root/heraldd$i.log") 2>&1 &
  heraldd_pids+=($!)
done
for i in 1 2; do
  for _ in $(seq 600); do
    grep -q "; ready" "$root/heraldd$i.log" 2>/dev/null && break
    sleep 0.05
  done
  grep -q "; ready" "$root/heraldd$i.log" || { echo "heraldd$i did not start: $root/heraldd$i.log"; exit 1; }
done
cat <<EXAMPLE

Two heraldd instances share the cluster: http://127.0.0.1:8081 and http://127.0.0.1:8082

Try it (in another terminal): a subscription made through one instance routes on the other,
and an event posted to either is delivered once by whichever the stream hands it to.

  curl -s -X POST http://127.0.0.1:8081/subscriptions/1/subscription/SMS \\
    -H 'content-type: application/json' -d '{"subscriptionId":"dlr","events":["DELIVERY"],
    "profile":{"profileId":"dlr","webhook":{"notifyUrl":"https://hooks.example.com/dlr"}}}'
  curl -s http://127.0.0.1:8082/subscriptions/1/subscription/SMS/dlr
  curl -s -X POST http://127.0.0.1:8082/v1/events -H 'content-type: application/json' \\
    -d '{"channel":"SMS","event":"DELIVERY","eventId":"e-1","payload":{}}'
  curl -s http://127.0.0.1:8081/metrics | grep -E '^herald_(nats|stream|config)_'

Kill one of them (or a nats-server node) and post again: nothing answered 202 is lost.
Stop everything with Ctrl-C.
EXAMPLE
wait -n "${heraldd_pids[@]}" "${nats_pids[@]}" || true
