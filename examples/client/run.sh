#!/usr/bin/env bash
# Installs, generates the SDK from schema.graphql, type-checks, and runs the client against
# the server at URL (examples/with-server.sh starts one).
#
#   examples/client/run.sh http://127.0.0.1:8000/graphql
set -euo pipefail
url=${1:?usage: $0 GRAPHQL_URL}
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

# Parts of @graphql-codegen/cli's dependency tree declare Node >= 22 while running on 20:
# --loglevel=error keeps those EBADENGINE warnings out of the log (see README.md).
step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "npm run codegen"
npm run --silent codegen

step "npm run typecheck"
npm run --silent typecheck
echo "ok"

step "npm start -- $url"
npm start --silent -- "$url"
