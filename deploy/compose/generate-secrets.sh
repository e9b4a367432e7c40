#!/usr/bin/env bash
# Generates this Compose deployment's local secrets into deploy/compose/secrets/ (git-ignored): database
# passwords and URLs for each role, a CA and one certificate per role (SPIFFE identity
# spiffe://cardhold/<role> plus the service's DNS names). cardhold ships no default key or password:
# nothing starts until this has run. Existing files are kept, so re-running never rotates by surprise;
# delete the directory to start again (that also abandons every token encrypted under the old keys).
# Files are 0644 inside a 0700 directory: bind-mounted secrets keep the host file's mode, and the
# containers' users (65532, postgres 999) must read them; on the host only root gets past the directory.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
cd "$dir"

password() { [ -s "$1" ] || openssl rand -hex 32 | tr -d '\n' >"$1"; }
password postgres-superuser-password
password postgres-admin-password
password vault-db-password
password api-db-password
password redis-password

url() { # file user password-file
  [ -s "$1" ] || printf 'postgres://%s:%s@postgres:5432/cardhold' "$2" "$(cat "$3")" >"$1"
}
url admin-db-url cardhold_admin postgres-admin-password
url vault-db-url cardhold_vault vault-db-password
url api-db-url cardhold_api api-db-password
[ -s redis-url ] || printf 'redis://:%s@redis:6379/0' "$(cat redis-password)" >redis-url
# Redis reads its password from a configuration file (it has no *_FILE convention).
[ -s redis.conf ] || printf 'requirepass %s\n' "$(cat redis-password)" >redis.conf

if [ ! -s ca.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj '/CN=cardhold compose local CA' -keyout ca.key -out ca.crt 2>/dev/null
fi
for role in vault api acquirer; do
  [ -s "$role.crt" ] && continue
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$role" \
    -keyout "$role.key" -out "$role.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:cardhold-%s,DNS:localhost,IP:127.0.0.1,URI:spiffe://cardhold/%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\n' \
    "$role" "$role" "$role" >"$role.ext"
  openssl x509 -req -in "$role.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 90 \
    -extfile "$role.ext" -out "$role.crt" 2>/dev/null
  rm -f "$role.csr" "$role.ext"
done
chmod 0644 ./*
chmod 0600 ca.key
echo "secrets in $dir"
