#!/usr/bin/env bash
# Sets up what the build needs (only when missing) and runs the whole test suite.
# This is the README's test command and what .ci/run calls after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/setup.sh
source tests/setup.sh
cargo test --workspace --all-targets --locked
# Doc tests are not part of --all-targets.
cargo test --workspace --doc --locked
