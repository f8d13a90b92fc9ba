#!/usr/bin/env bash
# Builds the release preset and runs herald with configs/herald.toml, the embedded default.
# Until the daemon lands, this runs the routing demo: it loads the catalog and the subscriptions
# in configs/, routes sample events and prints which profile got what.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target herald-demo
exec build/release/bin/herald-demo --config configs/herald.toml \
  --subscriptions configs/demo/subscriptions.json --events configs/demo/events.ndjson "$@"
