"""Every Open Badge the test suite issues is checked against 1EdTech's official
AchievementCredential JSON Schema (badges/schema/, via badges.conformance).

`install()` wraps badges.proof.sign and badges.vcjwt.sign_jwt, wherever a module imported them,
once per session: each signed credential whose type says it is an Open Badge (the JSON-LD
document with its proof, or the payload of the VC-JWT) is validated, and its problems are kept.
The autouse fixture in conftest.py fails the test that issued a non-conforming badge (at its
teardown, so a badge signed inside an activity cannot make the activity retry instead). A test
that signs a deliberately odd credential says so with @pytest.mark.schema_exempt(reason=...).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

import badges.proof
import badges.vcjwt
from badges.conformance import schema_errors
from badges.vcjwt import decode_jwt

__all__ = ["assert_conforms", "install", "take_problems"]

_OB_TYPES = frozenset({"OpenBadgeCredential", "AchievementCredential"})
_lock = threading.Lock()
_problems: list[str] = []
_checked: list[int] = [0]
_installed: list[bool] = []


def _is_open_badge(document: Mapping[str, Any]) -> bool:
    types = document.get("type")
    types = [types] if isinstance(types, str) else types
    return isinstance(types, list) and bool(_OB_TYPES.intersection(types))


def _record(document: Mapping[str, Any], what: str) -> None:
    if not _is_open_badge(document):
        return
    errors = schema_errors(document)
    with _lock:
        _checked[0] += 1
        _problems.extend(f"{what} {document.get('id')}: {error}" for error in errors)


def assert_conforms(document: Mapping[str, Any] | str) -> None:
    """Assert that a credential (a JSON-LD document, or a compact VC-JWT whose payload is one)
    passes the official schema."""
    payload = decode_jwt(document).payload if isinstance(document, str) else document
    errors = schema_errors(payload)
    assert not errors, "not conformant to 1EdTech's AchievementCredential schema:\n" + "\n".join(
        errors
    )


def take_problems() -> tuple[int, list[str]]:
    """(credentials checked, their problems) since the last call; both reset."""
    with _lock:
        found = (_checked[0], list(_problems))
        _checked[0] = 0
        _problems.clear()
    return found


def _wrap_sign(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def sign(*args: Any, **kwargs: Any) -> dict[str, Any]:
        signed = original(*args, **kwargs)
        _record(signed, "Data Integrity badge")
        return signed

    return sign


def _wrap_sign_jwt(original: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(original)
    def sign_jwt(*args: Any, **kwargs: Any) -> str:
        token = original(*args, **kwargs)
        _record(decode_jwt(token).payload, "VC-JWT payload")
        return token

    return sign_jwt


def install() -> None:
    """Wrap the two signing functions in every loaded module that holds them (and in their own
    modules, for anything imported later)."""
    if _installed:
        return
    _installed.append(True)
    replacements = {
        id(badges.proof.sign): _wrap_sign(badges.proof.sign),
        id(badges.vcjwt.sign_jwt): _wrap_sign_jwt(badges.vcjwt.sign_jwt),
    }
    originals = {id(badges.proof.sign), id(badges.vcjwt.sign_jwt)}
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if callable(value) and id(value) in originals:
                namespace[name] = replacements[id(value)]
