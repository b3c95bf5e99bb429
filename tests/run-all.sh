#!/usr/bin/env bash
# Sets up what the build needs (only when missing) and runs the whole test suite.
# This is the README's test command and what .ci/run calls after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/setup.sh
source tests/setup.sh
# As root the fault lab must run, not skip.
if [ "$(id -u)" -eq 0 ]; then export CAIHONG_FAULTS_REQUIRED=1; fi
cargo test --workspace --all-targets --locked
# The Byzantine member exists only in a build with the test-only `byzantine` feature.
cargo test --locked -p caihong-cli --features byzantine --test byzantine
# Doc tests are not part of --all-targets.
cargo test --workspace --doc --locked
