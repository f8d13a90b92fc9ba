#!/usr/bin/env bash
# Builds and runs every test: the debug preset (AddressSanitizer + UndefinedBehaviorSanitizer),
# then ctest with output on failure. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh
jobs=$(nproc)

echo "== configure (debug: ASan + UBSan)"
cmake --preset debug >/dev/null
echo "== build"
cmake --build --preset debug -j "$jobs"
echo "== test"
ctest --preset debug -j "$jobs" --timeout 900
