#!/usr/bin/env bash
# Runs once when the Postgres volume is new: the dashboard's read-only role.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader_password="$READER_PASSWORD" <<'SQL'
CREATE ROLE pricemyride_reader LOGIN PASSWORD :'reader_password';
ALTER ROLE pricemyride_reader SET default_transaction_read_only = on;
CREATE DATABASE mlflow OWNER CURRENT_USER;
SQL
