#!/usr/bin/env bash
# sendMessage throughput of several server binaries, one after the other in one session:
# 16 sender connections as fast as the server answers (chat-bench fanout at a rate no server
# reaches), one subscriber, 10 s, on a fresh database each time.
#
#   bench/sends.sh sqlite /tmp/chat-server-old target/release/chat-server
#   bench/sends.sh postgres /tmp/chat-server-old target/release/chat-server
#
# SQLite goes to a file in a temporary directory (on the disk, where fsync costs what it
# costs); Postgres to a database chat_sends on PG_ADMIN_URL's server. Port 18301, limits off.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
B=${B:-target/release/chat-bench}
SENDERS=${SENDERS:-16}
backend=$1
shift
SECRET=$(head -c 48 /dev/urandom | base64)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for bin in "$@"; do
  case $backend in
    sqlite)
      rm -f "$dir"/chat.db*
      url="sqlite://$dir/chat.db?mode=rwc" ;;
    postgres)
      psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS chat_sends WITH (FORCE)" -c "CREATE DATABASE chat_sends" >/dev/null
      url=${PG_ADMIN_URL%/*}/chat_sends ;;
    *) echo "sqlite or postgres" >&2; exit 2 ;;
  esac
  DATABASE_URL=$url JWT_SECRET=$SECRET BIND_ADDR=127.0.0.1:18301 RUST_LOG=warn \
    env $(grep -v '^#' bench/unlimited.env) "$bin" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:18301/readyz >/dev/null && break; sleep 0.1; done
  echo "=== $bin ($backend)"
  $B --url http://127.0.0.1:18301 --server-pid $pid fanout --subscribers 1 --users 1 \
    --rate 20000 --senders "$SENDERS" --duration 10 2>/dev/null | grep -E "sent:|sendMessage|cpu"
  kill $pid; wait $pid 2>/dev/null || true
done
