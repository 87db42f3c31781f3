#!/usr/bin/env bash
# Runs the client against the server at URL (examples/with-server.sh starts one), after
# setup.sh. ARGs go to the script: --persisted=apq (the default) or --persisted=allow-list,
# and --fresh-server (see src/main.ts).
#
#   examples/client/run.sh http://127.0.0.1:8000/graphql --persisted=allow-list
set -euo pipefail
url=${1:?usage: $0 GRAPHQL_URL [ARG ...]}
shift
cd "$(dirname "$0")"

if [[ ! -d node_modules || ! -f src/generated/graphql.ts ]]; then
    echo "$PWD: not set up: run setup.sh first (npm ci, codegen, typecheck)" >&2
    exit 1
fi
npm start --silent -- "$url" "$@"
