#!/usr/bin/env bash
# Runs an example against a server of its own: starts SERVER_BINARY on SQLite in a temporary
# directory on a free port, waits for /readyz, then runs SCRIPT with the GraphQL endpoint's
# URL (and ARGs after it). Each NAME=value before SERVER_BINARY is set in the server's
# environment only (it runs in the temporary directory: give paths absolute). The server is
# stopped, and the directory removed, however it ends.
#
#   examples/with-server.sh target/release/chat-server examples/client/run.sh
#   examples/with-server.sh target/release/chat-server examples/http-audit/run.sh
#   examples/with-server.sh PERSISTED_OPERATIONS_FILE="$PWD/manifest.json" \
#       target/release/chat-server examples/client/run.sh --persisted=allow-list
set -euo pipefail

usage() {
    echo "usage: $0 [NAME=value ...] SERVER_BINARY SCRIPT [ARG ...]" >&2
    exit 2
}
server_env=()
while [[ $# -gt 0 && "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    server_env+=("$1")
    shift
done
[[ $# -ge 2 ]] || usage
script=$(realpath "$2")
server_bin=$(realpath "$1")
shift 2
if [[ ! -x "$server_bin" ]]; then
    echo "not an executable: $server_bin" >&2
    exit 2
fi

step() { printf '\n==> %s\n' "$*"; }

tmp=$(mktemp -d)
server_pid=
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# A port nobody listens on now (the server binds it a moment later).
port=$(node -e '
    const server = require("node:net").createServer();
    server.listen(0, "127.0.0.1", () => { console.log(server.address().port); server.close(); });')
url="http://127.0.0.1:$port"

step "starting $server_bin on $url (SQLite in $tmp)${server_env[*]:+ with ${server_env[*]}}"
# Run in the temporary directory, so that no .env of the checkout is read. The default rate
# limits let the examples through: the client registers once and sends one message, the
# audit sends some 70 requests.
(
    cd "$tmp"
    exec env \
        APP_ENV=development \
        BIND_ADDR="127.0.0.1:$port" \
        DATABASE_URL="sqlite://$tmp/chat.db?mode=rwc" \
        JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w0)" \
        MAIL_OUTBOX_DIR="$tmp/mail" \
        SHUTDOWN_GRACE_SECONDS=2 \
        LOG_FORMAT=pretty \
        ${server_env[@]+"${server_env[@]}"} \
        "$server_bin" serve
) >"$tmp/server.log" 2>&1 &
server_pid=$!

server_failed() {
    echo "$*; the server's log:" >&2
    sed 's/^/    /' "$tmp/server.log" >&2
    exit 1
}

ready() {
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
        "$url/readyz"
}
for _ in $(seq 1 150); do
    kill -0 "$server_pid" 2>/dev/null || server_failed "the server exited"
    ready && break
    sleep 0.2
done
ready || server_failed "the server was not ready after 30 s"
echo "ready"

step "$script $url/graphql $*"
"$script" "$url/graphql" "$@" || server_failed "$script failed"
