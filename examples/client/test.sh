#!/usr/bin/env bash
# The client against SERVER_BINARY twice, as CI runs it: set up once (npm ci, codegen, which
# also writes the persisted-documents manifest, typecheck); then against a fresh server, with
# urql speaking automatic persisted queries; then against a server that takes codegen's
# manifest as its allow-list (PERSISTED_OPERATIONS_FILE), every document sent by hash alone.
#
#   examples/client/test.sh target/release/chat-server
set -euo pipefail
server_bin=${1:?usage: $0 SERVER_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
with_server=$here/../with-server.sh

"$here/setup.sh"
"$with_server" "$server_bin" "$here/run.sh" --persisted=apq --fresh-server
"$with_server" PERSISTED_OPERATIONS_FILE="$here/src/generated/persisted-documents.json" \
    "$server_bin" "$here/run.sh" --persisted=allow-list
