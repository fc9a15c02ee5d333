#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (Debian's postgresql package), on a unix socket
# only (no TCP port), in a folder of its own:
#
#   scripts/postgres-test-server.sh start DIR   initdb + start; prints the admin URL
#   scripts/postgres-test-server.sh stop DIR    stop and remove DIR
#   scripts/postgres-test-server.sh url DIR     prints the admin URL
#
# ctest starts and stops it as the fixture "postgres" (tests/CMakeLists.txt) around the tests
# that need it; scripts/fleet-test.sh and scripts/with-postgres.sh use it too. DIR holds the
# cluster (DIR/data), its log (DIR/log) and its socket; DIR's path must be short (a unix socket
# path has at most 107 bytes). The cluster trusts local connections (no password) and its
# superuser is "troupe"; each test makes a database of its own. fsync is off: the tests kill
# troupe, never this server. initdb refuses to run as root, so under root the server runs as
# `nobody`.
set -euo pipefail

usage() { echo "usage: $0 start|stop|url DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$2
[[ $dir == /* ]] || dir="$PWD/$dir"

url() { echo "postgresql:///postgres?host=$dir&user=troupe"; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z $bindir || ! -x $bindir/initdb ]]; then
  echo "postgres-test-server: no PostgreSQL server found under /usr/lib/postgresql (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  as_owner=(runuser -u nobody --)
fi
run() { (cd / && "${as_owner[@]}" "$@"); }

case $action in
  url) url ;;
  start)
    if [[ -f $dir/data/postmaster.pid ]] && run "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      url
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [[ ${#as_owner[@]} -gt 0 ]] && chown nobody:nogroup "$dir"
    chmod 700 "$dir"
    run "$bindir/initdb" -D "$dir/data" -U troupe --auth=trust -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    run "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-k $dir -c listen_addresses= -c fsync=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || {
      cat "$dir/log" >&2
      exit 1
    }
    url
    ;;
  stop)
    if [[ -d $dir/data ]]; then
      run "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
