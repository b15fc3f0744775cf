"""The database URLs as internflow rewrites them keep their TLS settings (the query asyncpg reads
`sslmode` and `sslrootcert` from), and a server that is merely down is not taken for a setting
to change (the worker waits for it)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from runtime.database import (
    PASSWORD_FILE,
    application_dsn,
    password_of,
    refused_connection,
    with_password,
)
from runtime.settings import Settings

pytestmark = pytest.mark.pure

TLS = "sslmode=verify-full&sslrootcert=/etc/internflow/postgres-ca.pem"
APP = f"postgresql://internflow_app@db.school.example:5433/internflow?{TLS}"


def test_the_generated_password_goes_in_and_the_tls_settings_stay(tmp_path: Path) -> None:
    password = "p@ss/w:rd?&="
    rewritten = with_password(APP, password)
    assert password_of(rewritten) == password
    assert urlsplit(rewritten).query == TLS
    assert rewritten.startswith("postgresql://internflow_app:p%40ss%2Fw%3Ard%3F%26%3D@")

    (tmp_path / PASSWORD_FILE).write_text("generated-one\n")
    settings = Settings(state_dir=tmp_path, database_url=APP)
    assert application_dsn(settings) == (
        f"postgresql://internflow_app:generated-one@db.school.example:5433/internflow?{TLS}"
    )


def test_the_owners_default_url_keeps_the_applications_tls_settings() -> None:
    assert Settings(database_url=APP).database_owner_dsn == (
        f"postgresql://postgres@db.school.example:5433/internflow?{TLS}"
    )
    owner = f"postgresql://internflow:secret@db.school.example:5433/internflow?{TLS}"
    assert Settings(database_url=APP, database_owner_url=owner).database_owner_dsn == owner


@pytest.mark.parametrize(
    "error",
    [ConnectionRefusedError(111, "Connection refused"), TimeoutError(), OSError(113, "No route")],
)
def test_a_server_that_is_down_is_not_a_setting_to_change(error: OSError) -> None:
    assert refused_connection(error, with_password(APP, "pw"), "INTERNFLOW_DATABASE_URL") is None
