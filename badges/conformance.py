"""1EdTech's official JSON Schema for an Open Badges 3.0 AchievementCredential, applied offline.

The schema (draft 2019-09) is bundled in badges/schema/ with its source and sha256; validation
needs the `jsonschema` package (a development dependency: the test suite checks every credential
it issues with it)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

__all__ = ["SCHEMA_FILE", "SCHEMA_SHA256", "achievement_credential_schema", "schema_errors"]

SCHEMA_FILE: Final = "ob_v3p0_achievementcredential_schema.json"
SCHEMA_SHA256: Final = "5753fb3ecf7d024ed273dd364bd683f483eb47257e718e6618832cf89eb2083a"


@functools.cache
def achievement_credential_schema() -> dict[str, Any]:
    """The bundled schema, parsed after checking its sha256."""
    data = resources.files("badges").joinpath("schema", SCHEMA_FILE).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != SCHEMA_SHA256:
        raise ValueError(f"bundled schema {SCHEMA_FILE} has sha256 {actual}, not {SCHEMA_SHA256}")
    schema = json.loads(data)
    if not isinstance(schema, dict):
        raise ValueError(f"bundled schema {SCHEMA_FILE} is not a JSON object")
    return schema


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft201909Validator, FormatChecker

    schema = achievement_credential_schema()
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema, format_checker=FormatChecker())


def schema_errors(credential: Mapping[str, Any]) -> list[str]:
    """Every way credential (a JSON-LD credential, or the payload of a VC-JWT) fails the official
    AchievementCredential schema, as 'path: message'; empty if it conforms.

    Applied strictly, as verifiers that follow `credentialSchema` apply it: nothing is
    normalised first (a single `proof` object fails, "is not of type 'array'")."""
    errors = sorted(_validator().iter_errors(dict(credential)), key=lambda error: list(error.path))
    found: list[str] = []
    for error in errors:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        found.append(f"{where}: {error.message}")
    return found
