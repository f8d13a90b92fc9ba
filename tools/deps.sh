#!/usr/bin/env bash
# Installs the Debian packages that herald's build, tests and benchmarks need.
# Idempotent and quick when everything is present (one dpkg-query, no apt-get call).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang clang-format clang-tidy libclang-rt-14-dev
  libsimdjson-dev libabsl-dev libconcurrentqueue-dev libtomlplusplus-dev
  libboost-dev libssl-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev curl bc
  openssl nginx libcli11-dev libre2-dev nats-server libnats-dev
  chromium fonts-ipafont-gothic
)

# chromium (with a Japanese font, for the catalog's Japanese names) runs the dashboard's browser
# tests; heraldctl is built on CLI11.
# nats-server and libnats-dev carry the JetStream mode (--store jetstream) and its tests.
# `tools/deps.sh bench` adds what bench/run.sh needs: the plots and perf.
if [[ "${1:-}" == "bench" ]]; then packages+=(gnuplot-nox linux-perf); fi

# Node.js and npm run the reference signature verifier in the tests; a machine that already has
# them (from any source) keeps its own.
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    "${sudo_cmd[@]}" apt-get update
    "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi
