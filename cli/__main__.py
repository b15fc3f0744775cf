"""`python -m cli`: the same as the `internflow` command."""

from cli.main import app

app(prog_name="internflow")
