#!/usr/bin/env bash
# Builds and runs every test: the debug preset (AddressSanitizer + UndefinedBehaviorSanitizer),
# then ctest with output on failure. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh
jobs=$(nproc)

# Test-only npm packages, pinned by tests/ui/package-lock.json: playwright-core (the dashboard's
# browser test, driving Debian's chromium) and the reference Standard Webhooks verifier. Installed
# with npm ci into build/npm, again only when the lockfile changed.
echo "== npm test tools (tests/ui/package-lock.json -> build/npm)"
mkdir -p build/npm
if ! cmp -s tests/ui/package-lock.json build/npm/package-lock.json ||
  [[ ! -d build/npm/node_modules/playwright-core ]]; then
  cp tests/ui/package.json tests/ui/package-lock.json build/npm/
  (cd build/npm && npm ci --no-audit --no-fund --silent)
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
