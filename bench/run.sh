#!/usr/bin/env bash
# Runs the benchmark suites with fixed seeds and records their JSON in bench/results/:
#   - micro (Google Benchmark): parse, index (MPHF vs absl::flat_hash_map), pipeline, latency;
#   - end to end: heraldd driven by herald-loadgen (NDJSON ingest alone, single events with one
#     webhook each, and NDJSON batches with batched webhooks), and the same routing work through nats-server core
#     pub/sub by herald-nats-peer, in the same run on the same machine;
#   - heraldd ingest under each durability setting (none, batch, always), NDJSON and single
#     events, back to back;
# then renders the plots (gnuplot) that bench/RESULTS.md embeds.
#
#   bench/run.sh               # everything (about 12 minutes on 2 cores)
#   bench/run.sh --quick       # smaller end-to-end runs, no micro suites
#   bench/run.sh --durability  # only the durability comparison
#   bench/run.sh --e2e         # everything but the micro suites
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 only_durability=0 skip_micro=0
[[ "${1:-}" == "--quick" ]] && quick=1
[[ "${1:-}" == "--durability" ]] && only_durability=1
[[ "${1:-}" == "--e2e" ]] && skip_micro=1

bash tools/deps.sh bench
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
bin=build/release/bin
out=bench/results
mkdir -p "$out"

if ((!quick && !only_durability && !skip_micro)); then
  for b in parse_bench index_bench pipeline_bench spool_bench; do
    echo "== $b"
    "$bin/$b" --benchmark_out="$out/$b.json" --benchmark_out_format=json
  done
fi

subs=10000 profiles=20 events=300000
((quick)) && events=50000

work=$(mktemp -d)
cleanup() {
  if [[ -n "${heraldd_pid:-}" ]]; then kill "$heraldd_pid" 2>/dev/null || true; fi
  if [[ -n "${nats_pid:-}" ]]; then kill "$nats_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

start_heraldd() {  # extra heraldd flags; a fresh data_dir each time
  port=$(free_port)
  rm -rf "$work/data"
  "$bin/heraldd" --listen "127.0.0.1:$port" --data-dir "$work/data" --allow-private-targets \
    --threads 2 --config configs/herald.toml "$@" >"$work/heraldd.log" 2>&1 &
  heraldd_pid=$!
  for _ in $(seq 100); do grep -q "; ready" "$work/heraldd.log" && break; sleep 0.1; done
}
stop_heraldd() {
  kill "$heraldd_pid" && wait "$heraldd_pid" 2>/dev/null || true
  heraldd_pid=
}

run_loadgen() {  # name, then loadgen flags
  local name=$1
  shift
  echo "-- $name"
  "$bin/herald-loadgen" --target "127.0.0.1:$port" --subscriptions "$subs" --profiles "$profiles" \
    --seed 42 --json --latency-out "$out/$name.latency.csv" "$@" | tee "$out/$name.json"
}

# What a 202 costs under each durability setting: ingest alone (no subscription matches), as
# NDJSON batches and as single events (one fsync per request unless grouped, under `always`).
durability_runs() {
  for mode in none batch always; do
    echo "== heraldd --durability $mode"
    start_heraldd --durability "$mode"
    run_loadgen "durability_${mode}_ndjson" --events "$events" --batch 1000 --concurrency 2 \
      --unmatched
    run_loadgen "durability_${mode}_single" --events $((events / 10)) --batch 1 --concurrency 8 \
      --unmatched
    stop_heraldd
  done
}
if ((only_durability)); then
  durability_runs
  exit 0
fi

echo "== heraldd (release, 2 threads, durability batch) and herald-loadgen: $subs subscriptions, $profiles profiles"
start_heraldd
run_loadgen e2e_ingest --events "$events" --batch 1000 --concurrency 2 --unmatched
run_loadgen e2e_single --events $((events / 3)) --batch 1 --concurrency 8 --max-bucket-size 1
# Latency means something below saturation: the same single events at a fixed rate.
run_loadgen e2e_paced --events $((events / 10)) --rate 10000 --batch 1 --concurrency 8 \
  --max-bucket-size 1
run_loadgen e2e_batched --events "$events" --batch 100 --concurrency 4 --max-bucket-size 100
stop_heraldd
durability_runs

echo "== nats-server core pub/sub and herald-nats-peer: the same subscriptions and events"
nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" >"$work/nats.log" 2>&1 &
nats_pid=$!
sleep 0.5
echo "-- nats"
"$bin/herald-nats-peer" --url "nats://127.0.0.1:$nport" --subscriptions "$subs" \
  --profiles "$profiles" --events "$events" --seed 42 --json --latency-out "$out/nats.latency.csv" \
  --compare "$out/e2e_batched.json" |
  tee "$out/nats.json"

field() { sed -E "s/.*\"$2\":([0-9.]+).*/\1/" "$out/$1.json"; }
ratio=$(awk -v h="$(field e2e_batched deliveries_per_second)" -v n="$(field nats deliveries_per_second)" \
  'BEGIN { printf "%.2f", h / n }')
printf '{"herald_deliveries_per_second":%s,"nats_deliveries_per_second":%s,"ratio":%s}\n' \
  "$(field e2e_batched deliveries_per_second)" "$(field nats deliveries_per_second)" "$ratio" \
  >"$out/e2e_ratio.json"

echo "== plots"
# Throughput against subscriptions, from the pipeline benchmark (in process, one router thread).
if [[ -f "$out/pipeline_bench.json" ]]; then
  for kind in Single Ndjson64; do
    grep -A16 "\"name\": \"BM_Pipeline$kind/" "$out/pipeline_bench.json" |
      awk -v k="$kind" '/"name"/ { split($0, a, "/"); n = a[2] + 0 }
                         /"items_per_second"/ { gsub(/[,]/, "", $2); print n, $2 / 1e6 }' \
        >"$work/pipeline_$kind.dat"
  done
  gnuplot <<GP || echo "plot: throughput_vs_subscriptions.svg failed"
set terminal svg size 720,420 font "sans,12"
set output "$out/throughput_vs_subscriptions.svg"
set title "parse + match + enqueue, one router thread"
set xlabel "subscriptions"; set ylabel "million events/s"; set logscale x; set grid
set yrange [0:*]; set key bottom left
plot "$work/pipeline_Single.dat" with linespoints lw 2 title "single events", \
     "$work/pipeline_Ndjson64.dat" with linespoints lw 2 title "NDJSON x64", \
     3 with lines dt 2 title "target at 100k (3 M/s)"
GP
fi
gnuplot <<GP || echo "plot: latency_distribution.svg failed"
set terminal svg size 720,420 font "sans,12"
set output "$out/latency_distribution.svg"
set title "ingest -> delivery latency, $subs subscriptions (same run)"
set xlabel "quantile"; set ylabel "latency (µs)"; set logscale y; set grid; set key top left
set datafile separator ","
set xrange [0:1]
plot "$out/e2e_paced.latency.csv" every ::1 using 1:2 with lines lw 2 title "heraldd, 10k events/s, 1 per webhook", \
     "$out/e2e_batched.latency.csv" every ::1 using 1:2 with lines lw 2 title "heraldd flat out, NDJSON x100, batched webhooks", \
     "$out/nats.latency.csv" every ::1 using 1:2 with lines lw 2 title "nats-server core pub/sub, flat out"
GP
echo "results in $out/"
