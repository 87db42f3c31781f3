#!/usr/bin/env bash
# Measures several server binaries one after the other in one session, on the same machine
# state: `me` and `{ __typename }` over HTTP, and fan-out to 1,000 subscribers at 10 msg/s.
#
#   bench/compare.sh /tmp/chat-server-old target/release/chat-server
#
# Each gets a fresh database chat_cmp on PG_ADMIN_URL's server, port 18201, limits off.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL=${PG_ADMIN_URL%/*}/chat_cmp
B=${B:-target/release/chat-bench}
SECRET=$(head -c 48 /dev/urandom | base64)
for bin in "$@"; do
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS chat_cmp WITH (FORCE)" -c "CREATE DATABASE chat_cmp" >/dev/null
  DATABASE_URL=$DB_URL JWT_SECRET=$SECRET BIND_ADDR=127.0.0.1:18201 RUST_LOG=warn \
    env $(grep -v '^#' bench/unlimited.env) "$bin" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:18201/healthz >/dev/null && break; sleep 0.1; done
  echo "=== $bin"
  $B --url http://127.0.0.1:18201 --server-pid $pid http --connections 64 --duration 10 --query me 2>/dev/null | grep -E "throughput|latency|cpu"
  $B --url http://127.0.0.1:18201 --server-pid $pid http --connections 64 --duration 10 --query typename 2>/dev/null | grep -E "throughput|latency|cpu"
  $B --url http://127.0.0.1:18201 --server-pid $pid fanout --subscribers 1000 --users 10 --rate 10 --duration 20 2>/dev/null | grep -E "sendMessage|end-to-end|deliveries|cpu"
  kill $pid; wait $pid 2>/dev/null || true
done
