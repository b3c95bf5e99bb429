#!/bin/bash
# Measures a new member joining by state sync against joining by replay (docs/STORAGE.md):
# a one-member alliance is loaded with `caihong bench`, admits a second city by vote, and the
# new city's node is started with --state-sync, then again with an empty data/ without it.
# Usage: tests/state-sync-measure.sh [BENCH_SECONDS] (default 400: about 1.3 million state keys
# on a debug build of a 2-core machine). Needs ports 27900-27991 free.
set -euo pipefail
SECONDS_OF_LOAD=${1:-400}
C=${CAIHONG:-${CARGO_TARGET_DIR:-$HOME/.cache/caihong/target}/debug/caihong}
D=$(mktemp -d /tmp/caihong-state-sync.XXXXXX)
trap 'pkill -f "caihong start --home $D" || true' EXIT
"$C" bench --members 1 --duration "$SECONDS_OF_LOAD" --warmup 5 --dir "$D/net" --base-port 27900 | tail -2
M="$D/net/hohhot"
nohup "$C" start --home "$M" > "$M/restart.log" 2>&1 &
until curl -sf http://127.0.0.1:27901/v1/status >/dev/null; do sleep 1; done
"$C" init --home "$D/joiner" --member lanzhou --genesis "$M/genesis.json" \
  --p2p-listen /ip4/127.0.0.1/tcp/27990 --api-listen 127.0.0.1:27991 >/dev/null
"$C" tx --home "$M" --wait governance propose-add-member --id lanzhou --name 兰州市公共资源交易中心 \
  --region 620100 --new-home "$D/joiner" --p2p /ip4/127.0.0.1/tcp/27990 >/dev/null
sleep 3
height() { curl -s "$1/v1/status" | grep -o '"height":[0-9]*' | cut -d: -f2; }
echo "tip $(height http://127.0.0.1:27901)"
t0=$(date +%s.%N)
nohup "$C" start --home "$D/joiner" --state-sync > "$D/joiner/sync.log" 2>&1 &
until curl -s http://127.0.0.1:27991/v1/status 2>/dev/null | grep -q '"validator":true'; do sleep 0.5; done
echo "state sync: a validator after $(echo "$(date +%s.%N) - $t0" | bc) s"
grep -a "started from a state snapshot" "$D/joiner/sync.log" | sed 's/\x1b\[[0-9;]*m//g'
H=$(height http://127.0.0.1:27991)
pkill -f "caihong start --home $D/joiner"; sleep 2
echo "state-synced data/ $(du -sb "$D/joiner/data" | cut -f1) bytes"
rm -rf "$D/joiner/data"
t0=$(date +%s.%N)
nohup "$C" start --home "$D/joiner" > "$D/joiner/replay.log" 2>&1 &
until [ "$(height http://127.0.0.1:27991 2>/dev/null || echo 0)" -ge "$H" ] 2>/dev/null; do sleep 0.5; done
echo "replay: height $H after $(echo "$(date +%s.%N) - $t0" | bc) s"
pkill -f "caihong start --home $D/joiner"; sleep 1
echo "replayed data/ $(du -sb "$D/joiner/data" | cut -f1) bytes"
rm -rf "$D"
