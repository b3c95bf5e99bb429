#!/usr/bin/env bash
# Step 1, on each city's own machine: make the node key, the admin key and the encryption key
# (sealed extraction notices). Secret keys never leave the machine; send the three printed
# public keys to the coordinator.
#   usage: 1-keys.sh CITY_ID [KEY_DIR]
set -euo pipefail
CITY=${1:?city id, e.g. baotou}
KEYS=${2:-/etc/caihong/keys}
mkdir -p "$KEYS"
echo "$CITY node key:  $(caihong keygen --out "$KEYS/$CITY-node.json")"
echo "$CITY admin key: $(caihong keygen --out "$KEYS/$CITY-admin.json")"
echo "$CITY encryption key: $(caihong keygen --encryption --out "$KEYS/$CITY-encryption.json")"
