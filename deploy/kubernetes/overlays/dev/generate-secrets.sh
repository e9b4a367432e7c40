#!/usr/bin/env bash
# Throwaway secrets for the dev overlay, into ./secrets/ (git-ignored), which the kustomization's
# secretGenerator reads: nothing with a value is ever committed. Run once before `kubectl kustomize`:
#   deploy/kubernetes/overlays/dev/generate-secrets.sh && kubectl apply -k deploy/kubernetes/overlays/dev
# It also seals a development master key (local-sealed, 2 of 3 shares) with this repository's CLI and
# keeps the shares in secrets/unseal-shares.txt, DEVELOPMENT ONLY, to unseal the dev pods with
# `kubectl exec` (docs/deployment.md). Existing files are kept; delete the directory to start again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../../.." && pwd)"
dir="$here/secrets"
umask 077
mkdir -p "$dir"
cd "$dir"

password() { [ -s "$1" ] || openssl rand -hex 32 | tr -d '\n' >"$1"; }
password postgres-superuser-password
password postgres-admin-password
password vault-db-password
password api-db-password
password redis-password
db=postgres.cardhold-cde.svc:5432/cardhold
[ -s admin-db-url ] || printf 'postgres://cardhold_admin:%s@%s' "$(cat postgres-admin-password)" "$db" >admin-db-url
[ -s vault-db-url ] || printf 'postgres://cardhold_vault:%s@%s' "$(cat vault-db-password)" "$db" >vault-db-url
[ -s api-db-url ] || printf 'postgres://cardhold_api:%s@%s' "$(cat api-db-password)" "$db" >api-db-url
[ -s redis-url ] || printf 'redis://:%s@redis.cardhold-cde.svc:6379/0' "$(cat redis-password)" >redis-url
[ -s redis.conf ] || printf 'requirepass %s\n' "$(cat redis-password)" >redis.conf
if [ ! -s master.sealed.json ]; then
  scratch=$(mktemp -d)
  CARDHOLD_MODE=development CARDHOLD_LOG_LEVEL=silent CARDHOLD_DATA_DIR="$scratch" \
    CARDHOLD_SEALED_KEY_FILE="$dir/master.sealed.json" \
    node "$repo/bin/cardhold.js" keys init --shares 3 --threshold 2 >unseal-shares.txt
  rm -rf "$scratch"
fi
echo "dev secrets in $dir (unseal shares: $dir/unseal-shares.txt, DEVELOPMENT ONLY)"
