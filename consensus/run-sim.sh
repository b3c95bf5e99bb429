#!/usr/bin/env bash
# The consensus simulator at scale: many seeds over n = 4, 7 and 10 validators, f of them
# Byzantine with every behaviour, all faults on (crashes and restarts, partitions, loss,
# duplication, reordering, validator-set changes), spread over the cores.
#
#   consensus/run-sim.sh                      # 100,000 seeds from seed 1,000,000
#   consensus/run-sim.sh --seeds 2000         # a quick look
#   consensus/run-sim.sh --seed-start 1100000 # the next 100,000: new runs, never CI's seeds
#   consensus/run-sim.sh --plan "10:40:6 7:60:6" # n:percent-of-seeds:heights, in job order
#
# Prints one line per n, `n=<n> seeds= heights= safety_violations= liveness_failures=`, then
# every failing seed with the command that replays it. Exits 1 when anything failed.
# CI runs seeds below 10,000 (tests/simulation.rs); the default start keeps a long run's seeds
# apart from them. docs/CONSENSUS.md says what a run costs.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=100000
start=1000000
jobs=$(nproc)
chunk=250
out=""
# Per n: its share of the seeds (percent) and heights per seed. Larger alliances cost more per
# height (messages grow with n squared), so they get fewer seeds; every run still covers the
# faults before GST (4 s), the restarts after them and a validator-set change (every 5 heights).
# Jobs run in this order; the last entry takes what rounding leaves.
plan="4:60:10 7:25:6 10:15:6"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --seed-start) start=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --chunk) chunk=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --plan) plan=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run-sim.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$seeds$start$jobs$chunk" in
  *[!0-9]*) echo "run-sim.sh: --seeds, --seed-start, --jobs and --chunk take whole numbers" >&2; exit 2 ;;
esac
if [ "$seeds" -lt 15 ] || [ "$jobs" -lt 1 ] || [ "$chunk" -lt 1 ]; then
  echo "run-sim.sh: need --seeds >= 15 (a share per n and behaviour), --jobs >= 1, --chunk >= 1" >&2
  exit 2
fi

# shellcheck source=../tests/setup.sh
source tests/setup.sh
cargo build --quiet -p caihong-consensus --release --example simulate --locked
sim="$CARGO_TARGET_DIR/release/examples/simulate"
out=${out:-$(mktemp -d -t caihong-sim.XXXXXX)}
mkdir -p "$out"

for entry in $plan; do
  case "$entry" in
    *[!0-9:]*|*:*:*:*|:*|*::*|*:) ok=no ;;
    *:*:*) ok=yes ;;
    *) ok=no ;;
  esac
  if [ "$ok" = no ]; then
    echo "run-sim.sh: --plan entries are n:percent:heights (e.g. \"4:60:10 7:40:6\"), not $entry" >&2
    exit 2
  fi
done
behaviours="silent equivocate split-vote amnesia mixed"

# One line per job: n heights behaviour first-seed count. Seed ranges never overlap.
next=$start
joblist="$out/jobs"
: > "$joblist"
nb=$(echo "$behaviours" | wc -w)
assigned=0
for entry in $plan; do
  IFS=: read -r n share heights <<< "$entry"
  per_n=$((seeds * share / 100))
  [ "$entry" = "${plan##* }" ] && per_n=$((seeds - assigned)) # the last takes the rest
  assigned=$((assigned + per_n))
  i=0
  for b in $behaviours; do
    left=$((per_n / nb + (i < per_n % nb ? 1 : 0)))
    i=$((i + 1))
    while [ "$left" -gt 0 ]; do
      c=$((left < chunk ? left : chunk))
      echo "$n $heights $b $next $c" >> "$joblist"
      next=$((next + c))
      left=$((left - c))
    done
  done
done
total=$(awk '{ s += $5 } END { print s }' "$joblist")
echo "run-sim: $total seeds from $start to $((next - 1)), $(wc -l < "$joblist") jobs on $jobs cores, logs in $out"

began=$(date +%s)
export sim out
# Each job writes its own log; a failing run exits 1, which is not an error of the job.
xargs -P "$jobs" -L 1 sh -c \
  '"$sim" --validators "$0" --heights "$1" --behavior "$2" --faults --seed-start "$3" --seeds "$4" \
     > "$out/n$0-$2-$3.log" 2>&1 || true' < "$joblist"
wall=$(( $(date +%s) - began ))

status=0
for entry in $plan; do
  n=${entry%%:*}
  files=$(ls "$out"/n"$n"-*.log 2>/dev/null || true)
  [ -n "$files" ] || continue
  # shellcheck disable=SC2086
  summary=$(grep -h '^seeds=' $files | awk -v n="$n" '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); t[kv[1]] += kv[2] } runs++ }
    END { printf "n=%d seeds=%d heights=%d safety_violations=%d liveness_failures=%d", n, t["seeds"], t["heights"], t["safety_violations"], t["liveness_failures"] }')
  # shellcheck disable=SC2086
  finished=$(grep -l '^seeds=' $files | wc -l)
  expected=$(echo "$files" | wc -l)
  if [ "$finished" -ne "$expected" ]; then
    summary="$summary unfinished_jobs=$((expected - finished))"
    status=1
  fi
  echo "$summary"
  case "$summary" in
    *"safety_violations=0 liveness_failures=0"*) ;;
    *) status=1 ;;
  esac
done
echo "wall=${wall}s jobs=$jobs"
if [ "$status" -ne 0 ]; then
  echo "failures (each with its replay command):"
  grep -h -A25 '^FAIL seed=' "$out"/*.log | grep -E '^(FAIL|  )' || true
  grep -L '^seeds=' "$out"/*.log | sed 's/^/unfinished: /' || true
fi
exit "$status"
