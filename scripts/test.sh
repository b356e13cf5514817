#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this): installs what it needs,
# builds three times (plain; AddressSanitizer + UndefinedBehaviorSanitizer; ThreadSanitizer),
# runs the unit and integration tests of the first two with CTest, and under ThreadSanitizer
# the unit tests plus the integration tests that run more than one thread of the daemon
# (CTest label tsan: the list TD_TSAN_INTEGRATION in tests/CMakeLists.txt), and checks the
# formatting.
# Every server a test needs (redis-server, the test function) is started by that test on
# loopback ports of its own and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-debian.sh

jobs=${TD_TEST_JOBS:-2}

echo "== format"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests (RelWithDebInfo)"
(cd build && ctest --output-on-failure -j"$jobs")

if [ "${TD_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTD_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== tests (ASan + UBSan)"
  # The chaos runs (label chaos) are skipped here: their schedules and bounds are timed for the
  # plain build, and under ASan the 2-core machine would spend minutes on them for no new coverage
  # (the same daemon code paths run in the integration tests under ASan).
  (cd build-asan && ctest --output-on-failure -j"$jobs" -LE '^chaos$')
fi

if [ "${TD_SKIP_TSAN:-0}" != 1 ]; then
  tsan_t0=$SECONDS
  echo "== build (ThreadSanitizer)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTD_TSAN=ON >/dev/null
  cmake --build build-tsan -j"$jobs"
  # TSan's shadow memory needs the address space layout it was built for; on kernels with more
  # mmap randomisation (vm.mmap_rnd_bits above 28, e.g. some 6.x defaults) a TSan binary dies
  # with "FATAL: ThreadSanitizer: unexpected memory mapping". Without ASLR (setarch -R, which
  # every child inherits) it runs, so the tests run that way when the plain start fails.
  tsan_run=()
  if ! build-tsan/triggerd version >/dev/null 2>&1; then
    if setarch "$(uname -m)" -R build-tsan/triggerd version >/dev/null 2>&1; then
      echo "(TSan binaries need ASLR off on this kernel: running under setarch -R)"
      tsan_run=(setarch "$(uname -m)" -R)
    else
      echo "ThreadSanitizer binaries do not start on this machine" >&2
      exit 1
    fi
  fi
  echo "== tests (ThreadSanitizer: unit tests, and the multi-threaded integration tests)"
  (cd build-tsan && "${tsan_run[@]}" ctest --output-on-failure -j"$jobs" -L 'unit|tsan')
  echo "(ThreadSanitizer step: $((SECONDS - tsan_t0)) s)"
fi

# Fuzzing that runs, not only replays: every libFuzzer target of tests/fuzz for 15 s, two at a
# time, seeded from the committed corpus; a new crash, leak, UBSan report, timeout or broken
# invariant fails the build (run.sh exits 1; the input is kept in
# build-fuzz/fuzz-work/artifacts/<target>/). Measured on the shared 2-core machine: about 3 min
# to build the instrumented tree from scratch, then 17 targets x 15 s / 2 plus linking, about
# 2.5 min: under 6 min in all. TD_FUZZ_SECONDS sets the time per target; TD_SKIP_FUZZ=1 skips.
if [ "${TD_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz (libFuzzer, ${TD_FUZZ_SECONDS:-15}s per target)"
  TD_FUZZ_JOBS=${TD_FUZZ_JOBS:-2} tests/fuzz/run.sh "${TD_FUZZ_SECONDS:-15}"
fi
