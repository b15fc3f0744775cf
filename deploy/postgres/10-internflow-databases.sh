#!/bin/sh
# First start of the postgres volume only (docker-entrypoint-initdb.d): the roles of Temporal and
# internflow, and internflow's database. Temporal's own two databases are made by admin-tools.
set -eu
: "${TEMPORAL_DB_PASSWORD:?set TEMPORAL_DB_PASSWORD}"
: "${INTERNFLOW_DB_PASSWORD:?set INTERNFLOW_DB_PASSWORD}"
: "${INTERNFLOW_APP_DB_PASSWORD:?set INTERNFLOW_APP_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" \
    -v internflow_password="$INTERNFLOW_DB_PASSWORD" \
    -v app_password="$INTERNFLOW_APP_DB_PASSWORD" <<'SQL'
-- Temporal creates and owns `temporal` and `temporal_visibility` (temporal-sql-tool create).
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
-- The owner of internflow's database and tables; the migrations (and only they) run as it.
CREATE ROLE internflow LOGIN PASSWORD :'internflow_password';
-- The application role the worker and the API connect as: no superuser, no member of the
-- owner; the migrations grant it what it may do with each table (db/migrations/0013_roles.sql).
CREATE ROLE internflow_app LOGIN PASSWORD :'app_password';
CREATE DATABASE internflow OWNER internflow;
REVOKE ALL ON DATABASE internflow FROM PUBLIC;
GRANT CONNECT ON DATABASE internflow TO internflow_app;
SQL
