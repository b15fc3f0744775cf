#!/bin/sh
# Create Temporal's two PostgreSQL databases and bring their schemas to this server version.
# Idempotent: an existing database is kept, a schema already at the version is left alone.
# Connection from the environment: SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD.
set -eu
schemas=/etc/temporal/schema/postgresql/v12
for database in temporal temporal_visibility; do
    case "$database" in
        temporal) versioned="$schemas/temporal/versioned" ;;
        *) versioned="$schemas/visibility/versioned" ;;
    esac
    echo "schema: $database"
    temporal-sql-tool --plugin postgres12 --db "$database" create
    temporal-sql-tool --plugin postgres12 --db "$database" setup-schema -v 0.0
    temporal-sql-tool --plugin postgres12 --db "$database" update-schema -d "$versioned"
done
echo "schema: done"
