-- Two roles. The tables' owner runs these migrations. The application role, internflow_app (the
-- worker, the API and the CLI connect as it, or as a role that is a member of it), may read
-- everything it needs and append to the audit trail and the submissions, but never change or
-- remove a row of them: no UPDATE, DELETE or TRUNCATE there, and since it owns no table it can
-- neither ALTER one nor disable or drop a trigger (both need ownership).
-- Elsewhere it may change only the columns the code changes (the read model's, a notification's
-- delivery, a credential's status and delivery, a status list's bits, a key's revocation).

DO $$
BEGIN
    IF current_user = 'internflow_app' THEN
        RAISE EXCEPTION 'the migrations run as the tables'' owner, not as internflow_app'
            USING HINT = 'set INTERNFLOW_DATABASE_OWNER_URL to the owner''s DSN for `internflow migrate`';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'internflow_app') THEN
        BEGIN
            CREATE ROLE internflow_app NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'the role internflow_app does not exist, and % may not create it', current_user
                USING HINT = 'create it once as a superuser: CREATE ROLE internflow_app LOGIN PASSWORD ''...'' '
                    '(deploy/postgres/10-internflow-databases.sh does on a new volume)';
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'internflow_app' AND (rolsuper OR rolbypassrls))
       OR pg_has_role('internflow_app', current_user, 'MEMBER') THEN
        RAISE EXCEPTION 'internflow_app is a superuser or may act as %, the tables'' owner: it would '
            'be able to rewrite the audit trail', current_user
            USING HINT = 'ALTER ROLE internflow_app NOSUPERUSER NOBYPASSRLS, and REVOKE the owner '
                'role from it';
    END IF;
    IF NOT has_database_privilege('internflow_app', current_database(), 'CONNECT') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO internflow_app', current_database());
    END IF;
    IF NOT has_schema_privilege('internflow_app', 'public', 'USAGE') THEN
        GRANT USAGE ON SCHEMA public TO internflow_app;
    END IF;
    IF has_schema_privilege('internflow_app', 'public', 'CREATE') THEN
        BEGIN
            REVOKE CREATE ON SCHEMA public FROM PUBLIC, internflow_app;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'internflow_app may create tables in schema public: revoke it as a superuser';
        END;
    END IF;
END
$$;

-- From a clean slate, whatever was granted before.
REVOKE ALL ON internships, plan_versions, parties, audit_events, submissions, notifications,
    credentials, status_lists, api_keys, schema_migrations FROM internflow_app;
REVOKE ALL ON SEQUENCE audit_events_seq_seq FROM internflow_app;

-- The record: read and append, nothing else.
GRANT SELECT, INSERT ON audit_events, submissions, plan_versions TO internflow_app;
GRANT USAGE ON SEQUENCE audit_events_seq_seq TO internflow_app;

-- The read model and what the workflow keeps up to date.
GRANT SELECT, INSERT ON internships, parties, notifications, credentials, status_lists, api_keys
    TO internflow_app;
GRANT UPDATE (phase, plan_version, start_at, end_at, updated_at, record_seq, status, overdue)
    ON internships TO internflow_app;
GRANT UPDATE (party_id, name, email, language, plan_version) ON parties TO internflow_app;
GRANT UPDATE (attempts, status, error, sent_at) ON notifications TO internflow_app;
GRANT UPDATE (emailed_at, email_error, revoked_at, suspended_at, reason)
    ON credentials TO internflow_app;
GRANT UPDATE (bits, updated_at) ON status_lists TO internflow_app;
GRANT UPDATE (revoked_at) ON api_keys TO internflow_app;

-- Tables and sequences later migrations create (as this owner) can be read and appended to;
-- anything more is granted by the migration that creates them (tests/test_db_roles.py checks
-- every table has its privileges decided).
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT ON TABLES TO internflow_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO internflow_app;
