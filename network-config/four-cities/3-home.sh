#!/usr/bin/env bash
# Step 3, on each city's machine: make the member home from the shared genesis and the keys of
# step 1, then start the node (as a systemd service in production).
#   usage: 3-home.sh CITY_ID GENESIS [KEY_DIR] [HOME]
set -euo pipefail
CITY=${1:?city id}
GENESIS=${2:?genesis.json from the coordinator}
KEYS=${3:-/etc/caihong/keys}
HOME_DIR=${4:-/var/lib/caihong/$CITY}
API=$(awk -F'\t' -v id="$CITY" '$1 == id { print $5 }' "$(dirname "$0")/cities.tsv")
caihong init --home "$HOME_DIR" --member "$CITY" --genesis "$GENESIS" \
  --p2p-listen /ip4/0.0.0.0/tcp/26656 --api-listen "${API:-127.0.0.1:26657}" \
  --node-key "$KEYS/$CITY-node.json" --admin-key "$KEYS/$CITY-admin.json" \
  --encryption-key "$KEYS/$CITY-encryption.json"
echo "start it with: caihong start --home $HOME_DIR"
