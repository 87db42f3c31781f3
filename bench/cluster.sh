#!/usr/bin/env bash
# Two instances on one Postgres, carrying events with LISTEN/NOTIFY and then with NATS, one
# after the other in one session (ROUNDS times, alternating):
#   - the sendMessage ceiling: 16 sender connections on instance B as fast as it answers,
#     one subscriber on instance A (messages stored, and fanned out across instances);
#   - cross-instance fan-out: 1,000 subscribers on A, 10 messages/s sent through B;
#   - events each instance hears when subscribers spread over 100 rooms (room i watched on
#     instance i mod 2), 2,000 messages sent through A.
#
#   bench/cluster.sh [target/release/chat-server]
#
# A fresh database chat_cluster on PG_ADMIN_URL's server each time, ports 18401-18402, limits
# off; NATS is a private nats-server on port 18422 (Debian's package).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/chat-server}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL=${PG_ADMIN_URL%/*}/chat_cluster
B=${B:-target/release/chat-bench}
ROUNDS=${ROUNDS:-2}
SECRET=$(head -c 48 /dev/urandom | base64)
A=http://127.0.0.1:18401
BB=http://127.0.0.1:18402
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

nats-server -a 127.0.0.1 -p 18422 >/dev/null 2>&1 &
pids+=($!)

start() { # engine port
  local broker=()
  [ "$1" = nats ] && broker=(BROKER_URL=nats://127.0.0.1:18422)
  env DATABASE_URL=$DB_URL JWT_SECRET=$SECRET BIND_ADDR=127.0.0.1:$2 RUST_LOG=warn "${broker[@]}" \
    $(grep -v '^#' bench/unlimited.env) "$BIN" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return; sleep 0.1; done
  echo "instance on $2 not ready" >&2; exit 1
}

for round in $(seq "$ROUNDS"); do
  for engine in notify nats; do
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS chat_cluster WITH (FORCE)" -c "CREATE DATABASE chat_cluster" >/dev/null
    start $engine 18401
    pid_a=${pids[-1]}
    start $engine 18402
    pid_b=${pids[-1]}
    echo "=== round $round: $engine"
    echo "--- sendMessage ceiling (16 senders on B, 1 subscriber on A)"
    $B --url $A --server-pid "$pid_b" fanout --url2 $BB --subscribers 1 --users 1 \
      --rate 20000 --senders 16 --duration 10 2>/dev/null | grep -E "sent:|sendMessage|end-to-end|deliveries|lost:|cpu"
    echo "--- fan-out: 1,000 subscribers on A, 10 msg/s through B"
    $B --url $A --server-pid "$pid_a" fanout --url2 $BB --subscribers 1000 --users 20 \
      --rate 10 --duration 20 2>/dev/null | grep -E "sendMessage|end-to-end|deliveries|lost:|cpu"
    echo "--- 100 rooms spread over both, 2,000 messages through A"
    $B --url $A spread --also $BB --rooms 100 --messages 2000 2>/dev/null
    kill "$pid_a" "$pid_b"; wait "$pid_a" "$pid_b" 2>/dev/null || true
  done
done
