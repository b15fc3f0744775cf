"""The application's database schema: plain SQL migrations in `migrations/`, applied in order."""
