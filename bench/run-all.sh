#!/usr/bin/env bash
# Runs every chat-bench workload against release builds on Postgres: the figures of
# BENCHMARKS.md. Reports go to stdout and, one file each, to $OUT.
#
#   bench/run-all.sh                 # needs Postgres; PG_ADMIN_URL says where
#
# It creates (and drops first) the database chat_bench, starts the servers it measures on
# ports 18101-18103, and stops them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_URL=${PG_ADMIN_URL%/*}/chat_bench
OUT=${OUT:-target/bench-results}
B=target/release/chat-bench
SERVER=target/release/chat-server
A=http://127.0.0.1:18101   # the server measured
A2=http://127.0.0.1:18102  # a second instance on the same database
BASE=http://127.0.0.1:18103 # the bare async-graphql baseline
SECRET=$(head -c 48 /dev/urandom | base64)

mkdir -p "$OUT"
cargo build --release -q -p chat-server -p chat-bench

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

fresh_database() {
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS chat_bench WITH (FORCE)" -c "CREATE DATABASE chat_bench" >/dev/null
}

# start_server PORT: a server on the shared database, with the limits a load generator on
# one address trips off (it registers thousands of users, logs in thousands of times, sends
# 10 messages/s as one user, and shares a few users among thousands of sockets), quiet logs.
# Prints its pid.
start_server() {
    DATABASE_URL=$DB_URL JWT_SECRET=$SECRET BIND_ADDR=127.0.0.1:$1 RUST_LOG=warn \
        env $(grep -v '^#' bench/unlimited.env) "$SERVER" >"$OUT/server-$1.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && break
        sleep 0.1
    done
    echo "$pid"
}

stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# run_once NAME ARGS...: one workload; its report goes to stdout and $OUT/NAME.txt.
run_once() {
    local name=$1
    shift
    echo "== $name: chat-bench $*"
    "$B" "$@" 2>/dev/null | tee "$OUT/$name.txt"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)"
fresh_database
pid=$(start_server 18101)
"$B" baseline --bind 127.0.0.1:18103 >"$OUT/baseline.log" 2>&1 &
bpid=$!
pids+=("$bpid")
sleep 1

for i in 1 2 3; do
    run_once "typename-baseline-$i" --url $BASE --server-pid "$bpid" http --connections 64 --duration 10 --query typename
    run_once "typename-server-$i" --url $A --server-pid "$pid" http --connections 64 --duration 10 --query typename
done
stop "$bpid"
run_once me --url $A --server-pid "$pid" http --connections 64 --duration 10 --query me
for i in 1 2 3; do
    run_once "login-$i" --url $A --server-pid "$pid" login --connections 8 --duration 15 --calibrate
done
stop "$pid"

# Memory per socket on a fresh server each time: what set-up leaves behind is not the
# sockets' doing.
pid=$(start_server 18101)
run_once idle-1000 --url $A --server-pid "$pid" idle --sockets 1000 --users 10 --settle 6 --hold 2
stop "$pid"
pid=$(start_server 18101)
run_once idle-19500 --url $A --server-pid "$pid" idle --sockets 19500 --users 20 --settle 6 --hold 5
stop "$pid"

pid=$(start_server 18101)
pid2=$(start_server 18102)
# The second instance serves a few requests first, so its first sends are not cold.
"$B" --url $A2 http --connections 4 --duration 2 --query me >/dev/null 2>&1
for threads in 1 2; do
    run_once "fanout-1000x10-t$threads" --threads $threads --url $A --server-pid "$pid" fanout --subscribers 1000 --users 10 --rate 10 --duration 30
    run_once "fanout-1000x10-via-second-t$threads" --threads $threads --url $A --server-pid "$pid" fanout --url2 $A2 --subscribers 1000 --users 10 --rate 10 --duration 30
done
run_once fanout-5000x5 --threads 2 --url $A --server-pid "$pid" fanout --subscribers 5000 --users 20 --rate 5 --duration 30
run_once fanout-5000x10 --threads 2 --url $A --server-pid "$pid" fanout --subscribers 5000 --users 20 --rate 10 --duration 30
stop "$pid2"
stop "$pid"

# The same fan-out against the two baselines, one at a time on the same port: async-graphql's
# stock subscription handler, and the floor (prepared frames, no GraphQL per delivery).
for mode in stock prepared; do
    flag=()
    [ "$mode" = prepared ] && flag=(--prepared-frames)
    "$B" baseline --bind 127.0.0.1:18103 "${flag[@]}" >"$OUT/baseline-$mode.log" 2>&1 &
    bpid=$!
    pids+=("$bpid")
    sleep 1
    run_once "fanout-1000x10-baseline-$mode" --threads 1 --url $BASE --server-pid "$bpid" fanout --subscribers 1000 --users 10 --rate 10 --duration 30
    run_once "fanout-5000x5-baseline-$mode" --threads 2 --url $BASE --server-pid "$bpid" fanout --subscribers 5000 --users 20 --rate 5 --duration 30
    run_once "fanout-5000x10-baseline-$mode" --threads 2 --url $BASE --server-pid "$bpid" fanout --subscribers 5000 --users 20 --rate 10 --duration 30
    stop "$bpid"
done
echo "results in $OUT"
