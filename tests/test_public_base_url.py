"""The public base URL goes into every badge: settings refuse one verifiers could not reach
safely (plain http on a host other than loopback), and say why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runtime.settings import Settings, public_base_url_problem

pytestmark = pytest.mark.pure


@pytest.mark.parametrize(
    "url",
    [
        "https://badges.school.example",
        "https://badges.school.example:8443/internflow",
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "http://127.0.0.2",
    ],
)
def test_https_or_loopback_is_accepted(url: str) -> None:
    assert public_base_url_problem(url) is None
    assert Settings(public_base_url=url).public_base_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url", ["http://badges.school.example", "http://10.0.0.5:8000", "http://0.0.0.0:8000"]
)
def test_plain_http_elsewhere_is_refused_with_the_reason(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(public_base_url=url)
    message = str(refused.value)
    assert "public_base_url" in message
    assert "must be https://" in message
    assert "part of every badge" in message and "cannot change afterwards" in message
    assert "loopback" in message


def test_the_default_follows_the_api_address_and_is_refused_off_loopback() -> None:
    assert Settings().public_base_url == "http://127.0.0.1:8000"
    with pytest.raises(ValidationError, match="INTERNFLOW_PUBLIC_BASE_URL"):
        Settings(api_host="0.0.0.0")  # noqa: S104 - listening everywhere needs a real URL
    assert Settings(api_host="0.0.0.0", public_base_url="https://b.example").public_base_url  # noqa: S104


@pytest.mark.parametrize(
    "url", ["ftp://badges.example", "badges.example", "https://b.example/?x=1"]
)
def test_not_a_base_url(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(public_base_url=url)


def test_did_web_needs_https() -> None:
    with pytest.raises(ValidationError, match="did:web needs an https://"):
        Settings(did_web_institutions="school-a")
    settings = Settings(public_base_url="https://b.example", did_web_institutions="school-a")
    assert settings.did_web_institutions == "school-a"
