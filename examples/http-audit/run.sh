#!/usr/bin/env bash
# graphql-http's audit of the GraphQL-over-HTTP spec against the server at URL: fails unless
# every MUST and every SHOULD passes (examples/with-server.sh starts a server).
#
#   examples/http-audit/run.sh http://127.0.0.1:8000/graphql
set -euo pipefail
url=${1:?usage: $0 GRAPHQL_URL}
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node audit.mjs "$url"
