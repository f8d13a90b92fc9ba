#!/usr/bin/env bash
# clang-tidy (.clang-tidy) over the project's sources, with clang's -Wthread-safety checking the
# lock annotations (engine/common/mutex.h). Uses the debug build's compile_commands.json; fails on
# the checks .clang-tidy lists as errors and prints the rest as warnings.
#
#   tools/tidy.sh            # every .cc under engine/ and tools/
#   tools/tidy.sh FILE...    # just those
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build/debug/compile_commands.json ]] || cmake --preset debug >/dev/null
if (($#)); then
  files=("$@")
else
  mapfile -t files < <(git ls-files 'engine/*.cc' 'tools/*.cc')
fi
# The database holds GCC's flags: clang does not judge GCC-only warnings, and is told that
# libstdc++'s <coroutine> is for it too (clang 14 implements C++20 coroutines but does not
# announce them, so neither libstdc++ 12 nor Asio would offer co_await).
args=(-extra-arg=-Wthread-safety -extra-arg=-Wno-unknown-warning-option
  -extra-arg=-D__cpp_impl_coroutine=201902L -extra-arg=-DBOOST_ASIO_HAS_CO_AWAIT=1
  -extra-arg=-DBOOST_ASIO_HAS_STD_COROUTINE=1)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
run-clang-tidy-14 -p build/debug -quiet -j "$(nproc)" "${args[@]}" "${files[@]/#/$PWD/}" \
  >"$log" 2>&1 || status=$?
sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E -A3 "(warning|error): " || true
echo "clang-tidy: ${#files[@]} files, $(grep -c "warning: " "$log" || true) warnings," \
  "$(grep -c "error: " "$log" || true) errors"
exit "$status"
