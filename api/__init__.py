"""HTTP for operators, parties, admins and public verification (FastAPI)."""
