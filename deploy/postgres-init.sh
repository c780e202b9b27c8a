#!/usr/bin/env bash
# PriceMyRide's Postgres roles and databases. The official image runs it once, as its superuser, when the
# volume is new; it is idempotent, so running it again (docker compose exec postgres bash
# /docker-entrypoint-initdb.d/10-roles.sh) sets every password from the secret files: how a password is
# rotated (OPERATIONS.md, "Secrets"). No role it makes is a superuser or may create roles or databases:
#   pricemyride_owner    owns the tables: `pricemyride prepare` (migrations) only
#   pricemyride_writer   scoring workers and the drift monitor (the grants are in pricemyride/storage.py)
#   pricemyride_trainer  the retrain flow and listener: reads, records the gate's decisions
#   pricemyride_reader   the dashboard: read-only, every statement cut at 5 s
#   mlflow               owns the registry's own database
# Passwords come from files (Compose secrets): $SECRETS_DIR/<role>_db_password.
set -euo pipefail
SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
APP_DB=${PRICEMYRIDE_DB:-pricemyride}
MLFLOW_DB=${MLFLOW_DB:-mlflow}
secret() {
  local file="$SECRETS_DIR/$1"
  [[ -s $file ]] || { echo "postgres-init: expected a password in $file, found none" >&2; exit 1; }
  tr -d '\r\n' < "$file"
}
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v owner_password="$(secret owner_db_password)" -v writer_password="$(secret writer_db_password)" \
  -v trainer_password="$(secret trainer_db_password)" -v reader_password="$(secret reader_db_password)" \
  -v mlflow_password="$(secret mlflow_db_password)" -v app_db="$APP_DB" -v mlflow_db="$MLFLOW_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', name)
FROM unnest(ARRAY['pricemyride_owner', 'pricemyride_writer', 'pricemyride_trainer', 'pricemyride_reader',
                  'mlflow']) AS name
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec
ALTER ROLE pricemyride_owner PASSWORD :'owner_password';
ALTER ROLE pricemyride_writer PASSWORD :'writer_password';
ALTER ROLE pricemyride_trainer PASSWORD :'trainer_password';
ALTER ROLE pricemyride_reader PASSWORD :'reader_password';
ALTER ROLE mlflow PASSWORD :'mlflow_password';
ALTER ROLE pricemyride_reader SET default_transaction_read_only = on;
ALTER ROLE pricemyride_reader SET statement_timeout = '5s';
SELECT format('CREATE DATABASE %I OWNER pricemyride_owner', :'app_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
SELECT format('CREATE DATABASE %I OWNER mlflow', :'mlflow_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'app_db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO pricemyride_writer, pricemyride_trainer, pricemyride_reader',
              :'app_db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'mlflow_db') \gexec
SQL
