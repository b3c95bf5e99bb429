#!/usr/bin/env bash
# Step 2, once, by the coordinator: write genesis.json from cities.tsv and the public keys the
# cities sent, one file per city in PUBKEYS (PUBKEYS/<id>.node, PUBKEYS/<id>.admin and
# PUBKEYS/<id>.encryption, each holding one hex key). Every city then receives the same genesis.json; compare the printed
# hash by phone or letter before starting.
#   usage: 2-genesis.sh CHAIN_ID PUBKEYS_DIR OUT
set -euo pipefail
CHAIN=${1:?chain id, e.g. mengning-ggzy}
PUBKEYS=${2:?directory with <id>.node and <id>.admin}
OUT=${3:-genesis.json}
HERE=$(dirname "$0")
args=()
while IFS=$'\t' read -r id name region p2p _api; do
  case "$id" in ''|'#'*) continue ;; esac
  node=$(tr -d '[:space:]' < "$PUBKEYS/$id.node")
  admin=$(tr -d '[:space:]' < "$PUBKEYS/$id.admin")
  member="id=$id,name=$name,region=$region,node_key=$node,admin_key=$admin,p2p=$p2p"
  if [ -f "$PUBKEYS/$id.encryption" ]; then
    member="$member,encryption_key=$(tr -d '[:space:]' < "$PUBKEYS/$id.encryption")"
  fi
  args+=(--member "$member")
done < "$HERE/cities.tsv"
caihong genesis --chain-id "$CHAIN" --out "$OUT" "${args[@]}"
