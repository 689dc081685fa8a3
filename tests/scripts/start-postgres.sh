#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests (installing Debian's postgresql when missing) and prints
# the connection string for TINYOPS_TEST_POSTGRES on its last line. Listens on 127.0.0.1 only.
set -euo pipefail
PORT="${TINYOPS_PG_PORT:-55432}"
DIR="${TINYOPS_PG_DIR:-/tmp/tinyops-pg-$PORT}"

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

run_as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

if ! run_as_pg "$bindir/pg_ctl -D $DIR status" >/dev/null 2>&1; then
  if [ ! -f "$DIR/PG_VERSION" ]; then
    mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
    run_as_pg "$bindir/initdb -D $DIR -U postgres --auth=trust -E UTF8" >/dev/null
  fi
  run_as_pg "$bindir/pg_ctl -D $DIR -l $DIR/server.log -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off' -w start" >/dev/null
fi
echo "Host=127.0.0.1;Port=$PORT;Username=postgres;Database=postgres;Pooling=true;Maximum Pool Size=20"
