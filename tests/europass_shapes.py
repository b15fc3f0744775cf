"""Every European Digital Credential the test suite produces is checked against the Commission's
SHACL shapes of the generic EDC profile (tests/europass/, sources and hashes in its SOURCES.md).

`violations(document)` reads the JSON-LD into RDF offline (the EDC context and the W3C VC v1
context given inline: nothing is fetched) and validates it with pyshacl against
`EDC-generic-no-cv.ttl` together with `EDC-generic-full.ttl` (the controlled-vocabulary
constraints, which check the scheme each concept names); it also names every JSON key that
neither context defines, which JSON-LD would otherwise drop without a word. `install()` wraps
issuance.edc.build_edc wherever a module imported it, once per session, so that the autouse
fixture in conftest.py fails a test whose EDC does not conform.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import pyshacl
from rdflib import Graph

import issuance.edc
from issuance.edc import EDC_CONTEXT, VC_V1_CONTEXT

__all__ = ["DIRECTORY", "install", "official", "take_problems", "undefined_terms", "violations"]

DIRECTORY: Final = Path(__file__).parent / "europass"
_VC_V1: Final = Path(__file__).parent.parent / "badges" / "contexts" / "credentials-v1.jsonld"

#: Each file and its sha256, as tests/europass/SOURCES.md records them.
HASHES: Final[dict[str, str]] = {
    "edc-ap-context.jsonld": "528f8a0e86dbbec7db2216c61806e6311feedac77a51d1a38b0a1d49e4c337fb",
    "EDC-generic-no-cv.ttl": "14e691293cad67283301f032b946fdf104687547327bfd0eef747afa3316115d",
    "EDC-generic-full.ttl": "5e409f5bb79e0013867f63b8e5174ae4013bb971a0d729fd77ba2fb531e1be8b",
    "Sample-CertOfPart-unsigned.jsonld": (
        "ad5f28cae5d1d57da89e0f6cf005b3c402c405901308b771720fb6c4617af6b8"
    ),
    "Sample-CertOfPart-unsigned-uploadable.json": (
        "4efc636045e0c5033724131534b29bb5b9a7de1348dc6b4e21c87508957f7035"
    ),
    "Sample-CertOfPart-signed.jsonld": (
        "084c407ca31a177f27144218dff482b98e814dbf506395d1af71f9cb3ce02b03"
    ),
    "LICENSE-EUPL-1.2.txt": "6e5399ad2f4548dc22dd9eff1c367d5d286efc15723894b3a3b772347b609d11",
}


def official(name: str) -> bytes:
    """One of the Commission's files, checked against its recorded hash."""
    data = (DIRECTORY / name).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == HASHES[name], f"tests/europass/{name} is not the recorded file ({digest})"
    return data


@functools.cache
def _contexts() -> dict[str, dict[str, Any]]:
    vc_v1 = json.loads(_VC_V1.read_bytes())["@context"]
    edc = json.loads(official("edc-ap-context.jsonld"))["@context"]
    return {VC_V1_CONTEXT: vc_v1, EDC_CONTEXT: edc}


@functools.cache
def shapes_graph() -> Graph:
    shapes = Graph()
    shapes.parse(data=official("EDC-generic-no-cv.ttl").decode(), format="turtle")
    shapes.parse(data=official("EDC-generic-full.ttl").decode(), format="turtle")
    return shapes


def _inline(document: Mapping[str, Any]) -> dict[str, Any]:
    named = document.get("@context")
    listed = named if isinstance(named, list) else [named]
    unknown = [c for c in listed if isinstance(c, str) and c not in _contexts()]
    assert not unknown, f"the document names contexts that are not bundled: {unknown}"
    return {**document, "@context": [_contexts().get(c, c) for c in listed]}


def graph(document: Mapping[str, Any]) -> Graph:
    """The document's RDF, read with the bundled contexts."""
    return Graph().parse(data=json.dumps(_inline(document)), format="json-ld")


def undefined_terms(document: Mapping[str, Any]) -> list[str]:
    """Every key (with where it is) that the EDC context does not define, nor the VC v1 context
    for the credential itself: JSON-LD would drop it from the credential's data."""
    edc = _contexts()[EDC_CONTEXT]
    credential_terms = set(_contexts()[VC_V1_CONTEXT]["VerifiableCredential"]["@context"])
    found: list[str] = []

    def walk(node: Any, path: str, top: bool) -> None:
        if isinstance(node, list):
            for n, item in enumerate(node):
                walk(item, f"{path}[{n}]", top)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key in ("@context", "id", "type"):
                continue
            if key not in edc and not (top and key in credential_terms):
                found.append(f"{path}.{key}")
            elif isinstance(edc.get(key), dict) and "@container" in edc[key]:
                continue  # a language map: its keys are languages
            walk(value, f"{path}.{key}", False)
        types = node.get("type")
        for name in types if isinstance(types, list) else [types] if types else []:
            if name not in edc and name not in ("VerifiableCredential",):
                found.append(f"{path}.type {name!r}")

    walk(document, "$", True)
    return found


def violations(document: Mapping[str, Any]) -> list[str]:
    """What is wrong with the document by the EDC generic profile's shapes (no-cv and the
    controlled-vocabulary constraints), and any key JSON-LD would drop; empty when it conforms."""
    problems = [f"undefined term: {where}" for where in undefined_terms(document)]
    conforms, _report, text = pyshacl.validate(
        graph(document), shacl_graph=shapes_graph(), inference="none", allow_warnings=False
    )
    if not conforms:
        problems.append(text)
    return problems


_lock = threading.Lock()
_problems: list[str] = []
_checked: list[int] = [0]
_installed: list[bool] = []


def take_problems() -> tuple[int, list[str]]:
    """(EDCs checked, their problems) since the last call; both reset."""
    with _lock:
        found = (_checked[0], list(_problems))
        _checked[0] = 0
        _problems.clear()
    return found


def _wrap(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(original)
    def build_edc(*args: Any, **kwargs: Any) -> dict[str, Any]:
        credential = original(*args, **kwargs)
        found = violations(credential)
        with _lock:
            _checked[0] += 1
            _problems.extend(f"EDC {credential.get('id')}: {problem}" for problem in found)
        return credential

    return build_edc


def install() -> None:
    """Wrap issuance.edc.build_edc in every loaded module that holds it (and in its own module,
    for anything imported later)."""
    if _installed:
        return
    _installed.append(True)
    original = issuance.edc.build_edc
    wrapped = _wrap(original)
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if value is original:
                namespace[name] = wrapped
