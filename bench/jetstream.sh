#!/usr/bin/env bash
# Distributed heraldd (--store jetstream, DESIGN §10) against the bare two-hop JetStream pipeline
# it is built on (DESIGN §8: ≥ 0.8× of it), in one run on one machine:
#   - herald-js-pipeline: publish → fetch → publish → fetch → ack, heraldd's shapes and batch
#     sizes, nothing else;
#   - heraldd, one and two instances, driven by herald-loadgen (NDJSON ingest, batched webhooks
#     to its receivers), with each instance's CPU seconds;
# at R1 (one nats-server) and at R3 (a 3-node cluster on loopback). JSON lands in bench/results/.
#
#   bench/jetstream.sh              # 50k events per run (about 5 minutes on 2 cores)
#   EVENTS=200000 REPLICAS=3 bench/jetstream.sh   # more events, R3 only
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh bench
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
bin=${BIN:-build/release/bin}
out=bench/results
mkdir -p "$out"
events=${EVENTS:-50000} batch=100 subs=1000 profiles=20

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

urls=
start_nats() {  # nodes (1 or 3)
  local nodes=$1 routes= i
  local -a client cluster
  for ((i = 0; i < nodes; i++)); do client[i]=$(free_port) cluster[i]=$(free_port); done
  for ((i = 0; i < nodes; i++)); do routes+="nats-route://127.0.0.1:${cluster[i]},"; done
  urls=
  for ((i = 0; i < nodes; i++)); do
    mkdir -p "$work/n$i"
    {
      echo "server_name: n$i"
      echo "listen: 127.0.0.1:${client[i]}"
      echo "jetstream { store_dir: \"$work/n$i\", max_memory_store: 256MB, max_file_store: 4GB }"
      if ((nodes > 1)); then
        echo "cluster { name: bench, listen: 127.0.0.1:${cluster[i]}, routes: [${routes%,}] }"
      fi
    } >"$work/n$i.conf"
    nats-server -c "$work/n$i.conf" >"$work/n$i.log" 2>&1 &
    pids+=($!)
    urls+="nats://127.0.0.1:${client[i]},"
  done
  urls=${urls%,}
  sleep $((nodes > 1 ? 4 : 1))  # a cluster elects its JetStream meta leader
}
stop_nats() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  rm -rf "$work"/n*
}

cpu_seconds() {  # pid: user + system time so far
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

run_pipeline() {  # replicas
  echo "-- bare pipeline, R$1"
  "$bin/herald-js-pipeline" --url "${urls%%,*}" --events "$events" --batch "$batch" --fetch 64 \
    --replicas "$1" --prefix "pipe$1" --json | tee "$out/jetstream_pipeline_r$1.json"
}

run_heraldd() {  # replicas, instances
  local r=$1 n=$2 i targets= cpu= name="jetstream_heraldd_r$1_x$2"
  local -a hp
  echo "-- heraldd x$n, R$r"
  for ((i = 0; i < n; i++)); do
    local port
    port=$(free_port)
    local t0=$EPOCHREALTIME
    "$bin/heraldd" --listen "127.0.0.1:$port" --allow-private-targets --threads 2 \
      --store jetstream --nats-url "$urls" --jetstream-replicas "$r" \
      --jetstream-prefix "bench_r${r}_x$n" >"$work/heraldd$i.log" 2>&1 &
    hp[i]=$!
    pids+=($!)
    # The first start makes the streams, the 64 partition consumers and the buckets.
    for _ in $(seq 1200); do grep -q "; ready" "$work/heraldd$i.log" && break; sleep 0.1; done
    grep -q "; ready" "$work/heraldd$i.log" || { cat "$work/heraldd$i.log"; exit 1; }
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "   instance %d ready in %.1f s\n", '"$i"', b - a }'
    targets+="127.0.0.1:$port,"
  done
  local before=()
  for ((i = 0; i < n; i++)); do before[i]=$(cpu_seconds "${hp[i]}"); done
  "$bin/herald-loadgen" --target "${targets%,}" --subscriptions "$subs" --profiles "$profiles" \
    --events "$events" --batch "$batch" --concurrency 4 --max-bucket-size 100 --seed 42 --json \
    >"$work/lg.json" || echo "herald-loadgen: errors (see above)"
  for ((i = 0; i < n; i++)); do
    cpu+=$(awk -v a="${before[i]}" -v b="$(cpu_seconds "${hp[i]}")" 'BEGIN { printf "%.2f", b - a }'),
  done
  for ((i = 0; i < n; i++)); do
    kill "${hp[i]}" 2>/dev/null || {
      echo "heraldd $i died:"
      grep -A60 "ERROR\|runtime error\|malloc" "$work/heraldd$i.log" | head -80
    }
    wait "${hp[i]}" 2>/dev/null || true
  done
  sed -E "s/\}$/,\"replicas\":$r,\"instances\":$n,\"heraldd_cpu_seconds\":[${cpu%,}]}/" \
    "$work/lg.json" | tee "$out/$name.json"
}

for r in ${REPLICAS:-1 3}; do
  echo "== JetStream R$r ($((r == 1 ? 1 : 3)) nats-server), $events events, NDJSON x$batch"
  start_nats "$r"
  run_pipeline "$r"
  run_heraldd "$r" 1
  run_heraldd "$r" 2
  stop_nats
done

field() { sed -E "s/.*\"$2\":([0-9.]+).*/\1/" "$out/$1.json"; }
echo "== summary (events delivered per second; the ratio is to the bare pipeline at the same R)"
for r in ${REPLICAS:-1 3}; do
  p=$(field "jetstream_pipeline_r$r" events_per_second)
  for n in 1 2; do
    h=$(field "jetstream_heraldd_r${r}_x$n" deliveries_per_second)
    awk -v r="$r" -v n="$n" -v h="$h" -v p="$p" \
      'BEGIN { printf "R%s  heraldd x%s  %8.0f/s   pipeline %8.0f/s   ratio %.2f\n", r, n, h, p, h / p }'
  done
done
