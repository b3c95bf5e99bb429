#!/usr/bin/env bash
# The main job: builds caihong (release), writes a four-member alliance on 127.0.0.1, starts
# every member, loads demo data, shows that the members answer alike, and keeps the alliance
# running until Ctrl-C. DIR (default /tmp/caihong-local) is recreated; BASE_PORT (default
# 26600) is the first of 8 ports used.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/setup.sh
source tests/setup.sh
DIR=${DIR:-/tmp/caihong-local}
BASE_PORT=${BASE_PORT:-26600}
cargo build --release --locked -p caihong-cli
BIN="$CARGO_TARGET_DIR/release/caihong"

rm -rf "$DIR"
# Every member's API serves HTTPS with a certificate of the alliance's own CA ($DIR/ca.pem).
"$BIN" testnet --members 4 --out "$DIR" --base-port "$BASE_PORT" --tls
export CAIHONG_CA_CERT="$DIR/ca.pem"
"$BIN" localnet --dir "$DIR" &
LOCALNET=$!
stop() { kill -INT "$LOCALNET" 2>/dev/null || true; wait "$LOCALNET" 2>/dev/null || true; }
trap stop EXIT

"$BIN" demo --dir "$DIR"
echo
for member in hohhot yinchuan; do
  echo "== caihong status --home $DIR/$member"
  "$BIN" status --home "$DIR/$member"
done
echo
echo "Next, the README's \"A day at the terminal\": source $DIR/env.sh (caihong on PATH, H=$DIR,"
echo "CAIHONG_CA_CERT=$DIR/ca.pem)."
echo "Ask any member, e.g.:"
echo "  $BIN query block latest --home $DIR/baotou"
echo "  curl -s --cacert $DIR/ca.pem https://127.0.0.1:$((BASE_PORT + 1))/v1/status"
echo
echo "Web console (控制台) in a browser on this machine: https://127.0.0.1:$((BASE_PORT + 1))/console"
echo "  (each member serves its own on its API port; the certificate is the alliance's own CA,"
echo "  $DIR/ca.pem: import it into the browser, or accept its warning. Loopback needs no login;"
echo "  from another machine, log in with a token from caihong api-client add.)"
echo "Logs: $DIR/<member>/node.log. Ctrl-C stops every member."
wait "$LOCALNET"
