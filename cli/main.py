"""The `internflow` command: run the stack, start and inspect internships, verify badges.

The commands live in one module per group (cli/stack.py, cli/backup.py, cli/internships.py,
cli/companies.py, cli/organisations.py, cli/verify.py, cli/badge.py, cli/keys.py); importing them
registers them on the app, in the order `--help` lists them. The console entry point is
`cli.main:app`."""

from __future__ import annotations

# The order of these imports is the order `internflow --help` lists the commands in.
# isort: off
from cli import stack
from cli import backup
from cli import internships
from cli import companies
from cli import organisations
from cli import verify
from cli import badge, keys
from cli.app import app, badge_app, company_app, institution_app, keys_app

# isort: on

__all__ = [
    "app",
    "backup",
    "badge",
    "badge_app",
    "companies",
    "company_app",
    "institution_app",
    "internships",
    "keys",
    "keys_app",
    "organisations",
    "stack",
    "verify",
]
