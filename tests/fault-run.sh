#!/usr/bin/env bash
# One fault-injection run against a local alliance in network namespaces (needs root):
#   tests/fault-run.sh [SCENARIO] [SEED] [SECONDS] [MEMBERS] [CLIENTS]
# SCENARIO is crash, partition, slow, clock or mixed (default). Prints a SUMMARY line and any
# VIOLATION lines; exits non-zero if a check failed. See docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/setup.sh
source tests/setup.sh
export FAULT_SCENARIO="${1:-mixed}" FAULT_SEED="${2:-1}" FAULT_SECS="${3:-120}"
export FAULT_MEMBERS="${4:-4}" FAULT_CLIENTS="${5:-6}" CAIHONG_FAULTS_REQUIRED=1
cargo test --locked --release -p caihong-cli --test faults -- --ignored --exact fault_run --nocapture 2>&1 \
  | grep -E '^(SUMMARY|VIOLATION|fault:|test |thread|SKIPPED)|panicked'
exit "${PIPESTATUS[0]}"
