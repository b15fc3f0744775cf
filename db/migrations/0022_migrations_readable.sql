-- The worker and the API check at their start that the database's migrations are as far as the
-- code's (runtime/readiness.py): the application role may read which have run, nothing more.
GRANT SELECT ON schema_migrations TO internflow_app;
