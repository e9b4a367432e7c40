#!/bin/sh
# PostgreSQL first-start script (/docker-entrypoint-initdb.d), used by the dev overlay and compose.yaml: the cardhold database and one login per
# role, with passwords from the secret files. Each login gets its runtime group, which the migrations
# fill with exactly the privileges that role's code uses (src/storage/migrations/); the groups are
# created here first so that the grants exist before the first migration runs (the migrations tolerate
# existing groups). Neither login owns anything or can change the schema; cardhold_admin migrates.
set -eu
vault_password=$(cat /run/secrets/vault-db-password)
api_password=$(cat /run/secrets/api-db-password)
admin_password=$(cat /run/secrets/postgres-admin-password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v vault_password="$vault_password" -v api_password="$api_password" -v admin_password="$admin_password" <<'SQL'
CREATE ROLE cardhold_admin LOGIN PASSWORD :'admin_password' CREATEROLE;
CREATE DATABASE cardhold OWNER cardhold_admin;
REVOKE ALL ON DATABASE cardhold FROM PUBLIC;
CREATE ROLE cardhold_vault_runtime NOLOGIN;
CREATE ROLE cardhold_api_runtime NOLOGIN;
GRANT cardhold_vault_runtime, cardhold_api_runtime TO cardhold_admin WITH ADMIN OPTION;
CREATE ROLE cardhold_vault LOGIN PASSWORD :'vault_password' IN ROLE cardhold_vault_runtime;
CREATE ROLE cardhold_api LOGIN PASSWORD :'api_password' IN ROLE cardhold_api_runtime;
GRANT CONNECT ON DATABASE cardhold TO cardhold_vault, cardhold_api;
SQL
