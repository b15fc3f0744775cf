"""Where and how every client connects to Temporal (runtime/clients.py, temporal_connection):
INTERNFLOW_TEMPORAL_ADDRESS/_NAMESPACE when set, else Temporal's own client configuration
(TEMPORAL_* variables over the config file's profile), else the defaults; TLS, client
certificates and API keys from Temporal's configuration only; none of it in the embedded
stack. No server here: tests/test_temporal_tls.py connects through real TLS endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from temporalio.service import TLSConfig

from embedded.ports import throwaway_settings
from embedded.stack import child_environment
from runtime import clients
from runtime.clients import (
    TemporalConfigError,
    for_embedded_stack,
    temporal_connection,
)
from runtime.settings import Settings
from tests.grpc_proxy import make_pki

SECRET_KEY = "tcak_this-is-the-api-key-0123456789"


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    target = temporal_connection(Settings(state_dir=tmp_path), environ={})
    assert (target.address, target.namespace) == ("127.0.0.1:7233", "internflow")
    # Empty variables are unset ones (a compose file's `${TEMPORAL_API_KEY:-}`).
    empty = dict.fromkeys(("TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_ADDRESS"), "")
    empty["TEMPORAL_TLS_CLIENT_CERT_PATH"] = ""
    assert temporal_connection(Settings(state_dir=tmp_path), environ=empty) == target
    assert target.address_from == target.namespace_from == "the default"
    assert target.tls is False and target.api_key is None and not target.rpc_metadata
    assert target.describe() == "127.0.0.1:7233 (namespace internflow; clear text)"


def test_temporal_variables_apply_when_internflow_ones_are_not_set(tmp_path: Path) -> None:
    environ = {
        "TEMPORAL_ADDRESS": "school-a.a1b2c.tmprl.cloud:7233",
        "TEMPORAL_NAMESPACE": "school-a.a1b2c",
        "TEMPORAL_API_KEY": SECRET_KEY,
        "TEMPORAL_GRPC_META_X_TEAM": "internships",
    }
    target = temporal_connection(Settings(state_dir=tmp_path), environ=environ)
    assert target.address == "school-a.a1b2c.tmprl.cloud:7233"
    assert target.namespace == "school-a.a1b2c"
    assert (target.address_from, target.namespace_from) == (
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
    )
    # An API key means TLS (the SDK's rule), with the system's trusted authorities.
    assert target.tls is True and target.api_key == SECRET_KEY
    assert target.rpc_metadata == {"x-team": "internships"}
    # TEMPORAL_TLS=false turns TLS off even with a key (a plain-text proxy on loopback).
    plain = temporal_connection(
        Settings(state_dir=tmp_path), environ={**environ, "TEMPORAL_TLS": "false"}
    )
    assert plain.tls is False and plain.api_key == SECRET_KEY


def test_internflow_variables_win_and_the_conflict_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project's own names are the more specific: the embedded stack and the tests set them
    for their processes, and a TEMPORAL_ADDRESS in a developer's shell must not redirect those.
    TLS and the API key still come from Temporal's configuration."""
    monkeypatch.setenv("INTERNFLOW_TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("INTERNFLOW_TEMPORAL_NAMESPACE", "internflow-prod")
    settings = Settings(state_dir=tmp_path)  # read from the environment, as every process does
    environ = {
        "TEMPORAL_ADDRESS": "elsewhere:7233",
        "TEMPORAL_API_KEY": SECRET_KEY,
    }
    monkeypatch.setattr(clients, "_warned", set())
    with structlog.testing.capture_logs() as logs:
        target = temporal_connection(settings, environ=environ)
        temporal_connection(settings, environ=environ)
    assert (target.address, target.namespace) == ("temporal.internal:7233", "internflow-prod")
    assert target.address_from == "INTERNFLOW_TEMPORAL_ADDRESS"
    assert target.namespace_from == "INTERNFLOW_TEMPORAL_NAMESPACE"
    assert target.api_key == SECRET_KEY and target.tls is True
    warnings = [entry for entry in logs if entry["event"] == "temporal.setting_overridden"]
    assert len(warnings) == 1, logs
    assert warnings[0]["detail"] == (
        "INTERNFLOW_TEMPORAL_ADDRESS (temporal.internal:7233) is used, not TEMPORAL_ADDRESS "
        "(elsewhere:7233): unset one of them"
    )
    assert SECRET_KEY not in str(logs)


def test_a_config_file_profile_with_mtls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "temporal.toml"
    config.write_text(
        f"""
[profile.default]
address = "default.example:7233"

[profile.prod]
address = "temporal.school.example:7233"
namespace = "internflow"

[profile.prod.tls]
server_name = "temporal.school.example"
server_ca_cert_path = "{pki.ca_cert}"
client_cert_path = "{pki.client_cert}"
client_key_path = "{pki.client_key}"
"""
    )
    environ = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "prod"}
    target = temporal_connection(Settings(state_dir=tmp_path), environ=environ)
    assert target.address == "temporal.school.example:7233"
    assert target.address_from == f"profile 'prod' of {config}"
    assert isinstance(target.tls, TLSConfig)
    assert target.tls.domain == "temporal.school.example"
    assert target.tls.server_root_ca_cert == pki.ca_cert.read_bytes()
    assert target.tls.client_cert == pki.client_cert.read_bytes()
    assert target.tls.client_private_key == pki.client_key.read_bytes()
    assert target.client_certificate and target.uses_tls
    described = target.describe()
    assert described == (
        "temporal.school.example:7233 (namespace internflow; TLS, client certificate)"
    )
    # Nothing secret in its repr either: not the private key, not the API key.
    key_text = pki.client_key.read_text()
    for shown in (repr(target), described):
        assert "PRIVATE KEY" not in shown and key_text[40:80] not in shown
    # The variables override the file's profile, as Temporal's CLI and SDKs do.
    moved = temporal_connection(
        Settings(state_dir=tmp_path), environ={**environ, "TEMPORAL_ADDRESS": "other:7233"}
    )
    assert (moved.address, moved.address_from) == ("other:7233", "TEMPORAL_ADDRESS")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "{missing}", "TEMPORAL_TLS_CLIENT_KEY_PATH": "{key}"},
            "TEMPORAL_TLS_CLIENT_CERT_PATH names {missing}, the client certificate, which cannot "
            "be read (No such file or directory)",
        ),
        (
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": "{cert}"},
            "Temporal's client configuration has a client certificate but not its private key: "
            "set TEMPORAL_TLS_CLIENT_KEY_PATH (or TEMPORAL_TLS_CLIENT_KEY_DATA) too",
        ),
        (
            {"TEMPORAL_TLS_CLIENT_KEY_PATH": "{key}"},
            "Temporal's client configuration has a client private key but not its certificate: "
            "set TEMPORAL_TLS_CLIENT_CERT_PATH (or TEMPORAL_TLS_CLIENT_CERT_DATA)",
        ),
        (
            {"TEMPORAL_CONFIG_FILE": "{config}", "TEMPORAL_PROFILE": "staging"},
            "TEMPORAL_PROFILE names the profile 'staging', which {config} does not have: add it, "
            "or unset TEMPORAL_PROFILE",
        ),
        (
            {"TEMPORAL_CONFIG_FILE": "{broken}"},
            "{broken} cannot be read (line 3 is not valid TOML): fix it, or set "
            "TEMPORAL_CONFIG_FILE to another file",
        ),
    ],
    ids=["missing certificate", "no key", "no certificate", "unknown profile", "broken file"],
)
def test_an_unusable_configuration_is_one_line_naming_what_to_change(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.default]\naddress = "a:7233"\n')
    broken = tmp_path / "broken.toml"
    # The SDK's own message quotes the broken line: here, the key. Ours never does.
    broken.write_text(f'[profile.default]\naddress = "a:7233"\napi_key = "{SECRET_KEY}\n')
    names = {
        "missing": str(tmp_path / "nowhere.pem"),
        "cert": str(pki.client_cert),
        "key": str(pki.client_key),
        "config": str(config),
        "broken": str(broken),
    }
    environ = {k: v.format(**names) for k, v in environ.items()}
    with pytest.raises(TemporalConfigError) as refused:
        temporal_connection(Settings(state_dir=tmp_path), environ=environ)
    assert str(refused.value) == expected.format(**names)
    assert "\n" not in str(refused.value) and SECRET_KEY not in str(refused.value)


def test_the_embedded_stack_reads_none_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A developer's Temporal Cloud settings must not reach the embedded stack: its processes,
    the commands beside it, and the tests' throwaway stacks connect to the dev server in clear
    text, even with a Temporal configuration that could not be used at all."""
    environ = {
        "TEMPORAL_ADDRESS": "school-a.a1b2c.tmprl.cloud:7233",
        "TEMPORAL_API_KEY": SECRET_KEY,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "nowhere.pem"),
        "TEMPORAL_PROFILE": "no-such-profile",
    }
    for settings in (
        for_embedded_stack(Settings(state_dir=tmp_path)),
        throwaway_settings(tmp_path),
    ):
        target = temporal_connection(settings, environ=environ)
        assert target.address == settings.temporal_address
        assert target.tls is False and target.api_key is None
    # Children of `internflow up` get it switched off in their environment, and keep it off.
    stack = Settings(state_dir=tmp_path)
    env = child_environment(stack)
    assert env["INTERNFLOW_TEMPORAL_CLIENT_CONFIG"] == "false"
    assert env["INTERNFLOW_TEMPORAL_ADDRESS"] == stack.temporal_address
    for key, value in env.items():
        if key.startswith("INTERNFLOW_"):
            monkeypatch.setenv(key, value)
    child = Settings()
    assert child.temporal_client_config is False
    assert temporal_connection(child, environ=environ).tls is False
    # Without the switch, the same configuration is read, and refused in one line.
    with pytest.raises(TemporalConfigError, match="TEMPORAL_PROFILE names the profile"):
        temporal_connection(child.model_copy(update={"temporal_client_config": True}), environ)
