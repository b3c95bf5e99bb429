#!/usr/bin/env bash
# A throwaway PostgreSQL cluster from Debian's `postgresql` package, for the sink tests and for
# trying `caihong sync credit --to` by hand:
#   tests/postgres.sh start PORT   prints "DIR URL" (a new cluster in a new directory under /tmp)
#   tests/postgres.sh stop DIR     stops it and removes the directory
# As root the cluster runs as the `postgres` user (the server refuses to run as root).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed: run tests/setup.sh (it installs Debian's postgresql)" >&2
  exit 2
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-}" in
start)
  port=$2
  dir=$(mktemp -d /tmp/caihong-pg.XXXXXX)
  chmod 755 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  as_owner "$bin/initdb" -D "$dir/data" -U caihong --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$dir postgresql://caihong@127.0.0.1:$port/postgres"
  ;;
stop)
  dir=$2
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: tests/postgres.sh start PORT | stop DIR" >&2
  exit 2
  ;;
esac
