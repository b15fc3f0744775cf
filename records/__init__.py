"""The records in PostgreSQL: what the workflow writes and what everyone reads."""
