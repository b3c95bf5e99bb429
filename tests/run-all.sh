#!/usr/bin/env bash
# Sets up what the build needs (only when missing) and runs the whole test suite.
# This is the README's test command and what .ci/run calls after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/setup.sh
source tests/setup.sh
# Say up front whether the fault lab (tests/faults.rs) can run here; where it cannot, its tests
# print SKIPPED with the reason. CAIHONG_FAULTS_REQUIRED=1 turns a skip into a failure.
if [ "$(id -u)" -eq 0 ] && ip netns add caihong-preflight 2>/dev/null; then
  ip netns del caihong-preflight
  echo "fault lab: network namespaces available, the fault scenarios will run" >&2
else
  echo "fault lab: SKIPPED (needs root and network namespaces); the scenarios will not run" >&2
fi
# Imports flow one way: no module cycles in any crate.
python3 tests/module-deps.py
cargo test --workspace --all-targets --locked
# The Byzantine member, and the crash right after locking, exist only in a build with the
# test-only `byzantine` feature. `--workspace` as above, so that dependencies keep the features
# they were built with (with `-p caihong-cli` alone many resolve differently and are built
# again, RocksDB's C++ among them: twenty minutes of a cold run).
cargo test --locked --workspace --features caihong-cli/byzantine --test byzantine --test locked
# Doc tests are not part of --all-targets.
cargo test --workspace --doc --locked
