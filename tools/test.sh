#!/usr/bin/env bash
# Builds and runs every test: the debug preset (AddressSanitizer + UndefinedBehaviorSanitizer),
# then ctest with output on failure. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh
jobs=$(nproc)

# Test-only npm packages (the reference Standard Webhooks verifier), in a folder of their own.
echo "== npm test tools (build/npm)"
mkdir -p build/npm
[[ -f build/npm/package.json ]] || echo '{"private": true}' > build/npm/package.json
if [[ ! -d build/npm/node_modules/standardwebhooks ]]; then
  (cd build/npm && npm install --no-audit --no-fund --silent standardwebhooks@1)
fi

echo "== format (clang-format, .clang-format)"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror

echo "== configure (debug: ASan + UBSan)"
cmake --preset debug >/dev/null
echo "== build"
cmake --build --preset debug -j "$jobs"
echo "== clang-tidy (.clang-tidy, with -Wthread-safety over the lock annotations)"
bash tools/tidy.sh
echo "== test"
ctest --preset debug -j "$jobs" --timeout 900

# The concurrency tests again under ThreadSanitizer: routers, snapshot publishing, queues, sinks,
# webhook delivery, the dead-letter store and its writer.
echo "== configure, build and test (tsan: concurrency tests)"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs" --target index_test engine_test delivery_test store_test deliver_test
ctest --preset tsan -R "^(index_test|engine_test|delivery_test|store_test|deliver_test)$" --timeout 900
