"""`python -m api`: serve the HTTP API on the configured host and port (what `internflow serve`
and the embedded stack run)."""

from api.server import main

main()
