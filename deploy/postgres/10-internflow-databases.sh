#!/bin/sh
# First start of the postgres volume only (docker-entrypoint-initdb.d): the roles of Temporal and
# internflow, and internflow's database. Temporal's own two databases are made by admin-tools.
set -eu
: "${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD}"
: "${INTERNFLOW_DB_PASSWORD:?set INTERNFLOW_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" \
    -v internflow_password="$INTERNFLOW_DB_PASSWORD" <<'SQL'
-- Temporal creates and owns `temporal` and `temporal_visibility` (temporal-sql-tool create).
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
-- The application owns its database; migrations run as this role.
CREATE ROLE internflow LOGIN PASSWORD :'internflow_password';
CREATE DATABASE internflow OWNER internflow;
REVOKE ALL ON DATABASE internflow FROM PUBLIC;
SQL
