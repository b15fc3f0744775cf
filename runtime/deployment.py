"""No deployment with public secrets: every process checks, at its start, that the secrets it
needs are its deployment's own, not missing and not one of the public placeholders (the compose
file's former fallbacks, deploy/env.example, the example codec key).

The embedded stack generates its own secrets and runs without payload encryption: its processes
are a trial (it starts them with INTERNFLOW_DEMO=true), and so is the CLI beside a running
embedded stack. INTERNFLOW_DEMO=true says the same for any other trial: what would be refused is
logged as a warning instead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Literal

import structlog

from runtime.codec import CodecConfigError, codec_from_settings
from runtime.database import password_of
from runtime.errors import StackError
from runtime.settings import Settings

log = structlog.get_logger(__name__)

Need = Literal["secret_key", "codec_keys", "database", "database_owner"]
#: What a worker and an API process need.
SERVER_NEEDS: tuple[Need, ...] = ("secret_key", "codec_keys", "database")

#: Values published with internflow (compose's former fallbacks, deploy/env.example) or that
#: anyone would guess. Compared case-insensitively.
PLACEHOLDERS = frozenset(
    {
        "secret-key-placeholder-not-secret",
        "replace-me",
        "replace-me-with-32-random-bytes",
        "internflow-placeholder",
        "postgres-placeholder",
        "temporal-placeholder",
        "example-not-secret",
        "changeme",
        "change-me",
        "password",
        "secret",
        "internflow",
        "postgres",
        "temporal",
    }
)
#: Words that mark a value as a placeholder wherever they appear in it.
_PLACEHOLDER_WORDS = ("placeholder", "replace-me", "replace_me", "not-secret", "changeme")
#: Codec keys published with internflow (deploy/secrets/codec-keys.example.json): never secret.
PUBLIC_CODEC_KEYS = frozenset({"qB2x68dNdlodaCHsmXwT+CJSWvsPbsluGkt2SBTw9vM="})
_PUBLIC_CODEC_KEY_BYTES = frozenset(base64.b64decode(key) for key in PUBLIC_CODEC_KEYS)


class InsecureConfiguration(StackError):
    """A secret is missing or public: the process refuses to start. The message names every
    variable to set."""


def is_placeholder(value: str) -> bool:
    folded = value.strip().lower()
    return folded in PLACEHOLDERS or any(word in folded for word in _PLACEHOLDER_WORDS)


def problems(settings: Settings, needs: Iterable[Need]) -> list[str]:
    """What is wrong with the secrets `needs` names, one sentence each naming the variable; empty
    when each is set to a value of the deployment's own."""
    found: list[str] = []
    wanted = set(needs)
    if "secret_key" in wanted:
        found += _secret_key_problems(settings)
    if "codec_keys" in wanted:
        found += _codec_problems(settings)
    if "database" in wanted:
        found += _password_problems(settings.database_url, "INTERNFLOW_DATABASE_URL")
    if "database_owner" in wanted:
        if settings.database_owner_url:
            found += _password_problems(
                settings.database_owner_url, "INTERNFLOW_DATABASE_OWNER_URL"
            )
        else:
            found.append(
                "INTERNFLOW_DATABASE_OWNER_URL is not set: the migrations connect as the tables' "
                "owner (postgresql://<owner>:<password>@<host>/<database>)"
            )
    return found


def _secret_key_problems(settings: Settings) -> list[str]:
    if settings.secret_key is None:
        return [
            "INTERNFLOW_SECRET_KEY is not set: every worker and API process must sign and check "
            "party links with the same secret (`openssl rand -base64 32`)"
        ]
    value = settings.secret_key.get_secret_value()
    if is_placeholder(value):
        return [
            "INTERNFLOW_SECRET_KEY is a public placeholder: anyone could forge party links with "
            "it; set your own (`openssl rand -base64 32`)"
        ]
    if len(value) < 16:
        return ["INTERNFLOW_SECRET_KEY is too short: use at least 16 characters"]
    return []


def _codec_problems(settings: Settings) -> list[str]:
    if not (settings.codec_keys and settings.codec_keys.get_secret_value().strip()) and not (
        settings.codec_keys_file
    ):
        return [
            "INTERNFLOW_CODEC_KEYS_FILE (or INTERNFLOW_CODEC_KEYS) is not set: without codec keys "
            "names, e-mail addresses and comments reach Temporal in clear "
            '({"<key id>": "<base64 of 32 random bytes>"}; `openssl rand -base64 32`)'
        ]
    try:
        codec = codec_from_settings(settings)
    except CodecConfigError as error:
        return [str(error)]
    if codec is None:
        return ["INTERNFLOW_CODEC_KEYS_FILE (or INTERNFLOW_CODEC_KEYS) holds no key"]
    public = sorted(
        key_id
        for key_id, key in _configured_keys(settings).items()
        if key in _PUBLIC_CODEC_KEY_BYTES or is_placeholder(key_id)
    )
    if public:
        return [
            f"the codec keys {', '.join(public)} (INTERNFLOW_CODEC_KEYS_FILE or "
            "INTERNFLOW_CODEC_KEYS) are the public example: anyone could decrypt the payloads; "
            "make your own (`openssl rand -base64 32`) and set INTERNFLOW_CODEC_KEY_ID to its id"
        ]
    return []


def _configured_keys(settings: Settings) -> dict[str, bytes]:
    """The configured keys by id (already checked readable by codec_from_settings)."""
    if settings.codec_keys is not None and settings.codec_keys.get_secret_value().strip():
        text = settings.codec_keys.get_secret_value()
    else:
        assert settings.codec_keys_file is not None
        text = settings.codec_keys_file.read_text(encoding="utf-8")
    return {str(k): base64.b64decode(str(v)) for k, v in json.loads(text).items()}


def _password_problems(dsn: str, variable: str) -> list[str]:
    password = password_of(dsn)
    if password is None or not password:
        return [
            f"{variable} has no password: put the role's password in it "
            "(postgresql://<role>:<password>@<host>/<database>)"
        ]
    if is_placeholder(password):
        return [f"{variable} has a public placeholder password: set the role's own password"]
    return []


def require_secrets(
    settings: Settings,
    needs: Iterable[Need],
    *,
    trial_because: str | None = None,
    command: bool = False,
) -> None:
    """Refuse to start (InsecureConfiguration, naming each variable) when a secret in `needs` is
    missing or public, unless this is a trial: INTERNFLOW_DEMO=true, or `trial_because` (e.g.
    the CLI found a running embedded stack), when the problems are only logged: a warning for a
    server process, an info line for a `command` (once per CLI call), a debug line beside the
    embedded stack (which made its own secrets)."""
    found = problems(settings, needs)
    if not found:
        return
    if settings.demo:
        say = log.info if command else log.warning
        say("secrets.trial_only", reason="INTERNFLOW_DEMO=true", problems=found)
        return
    if trial_because is not None:
        log.debug("secrets.trial_only", reason=trial_because, problems=found)
        return
    raise InsecureConfiguration(
        "refusing to start with missing or public secrets: "
        + "; ".join(found)
        + ". For a trial with no real data, set INTERNFLOW_DEMO=true (or use the embedded "
        "stack: `internflow up`)"
    )
