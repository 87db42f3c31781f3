#!/usr/bin/env bash
# Installs, generates the SDK (and the persisted-documents manifest) from schema.graphql, and
# type-checks: what run.sh needs, done once however many servers it then runs against.
#
#   examples/client/setup.sh
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

# Parts of @graphql-codegen/cli's dependency tree declare Node >= 22 while running on 20:
# --loglevel=error keeps those EBADENGINE warnings out of the log (see README.md).
step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "npm run codegen"
npm run --silent codegen
manifest=src/generated/persisted-documents.json
echo "$(node -p "Object.keys(require('./$manifest')).length") documents in $PWD/$manifest"

step "npm run typecheck"
npm run --silent typecheck
echo "ok"
