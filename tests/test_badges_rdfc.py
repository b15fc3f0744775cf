"""Tests for badges.rdfc: the fast canonical form equals pyld's RDFC-1.0 output, or defers to it."""

from __future__ import annotations

import copy
import json
import random
import string
from typing import Any

import pytest

from badges import jsonld, rdfc
from badges.jsonld import canonicalize
from tests.test_badges_proof import RICH_CREDENTIAL, VECTOR_PROOF_OPTIONS, VECTOR_UNSIGNED
from tests.test_badges_support import Issuer

EX_CONTEXT = {
    "ex": "https://example.org/vocab#",
    "id": "@id",
    "type": "@type",
    "Thing": "ex:Thing",
    "name": "ex:name",
    "label": {"@id": "ex:label", "@language": "en"},
    "count": "ex:count",
    "flag": "ex:flag",
    "ratio": "ex:ratio",
    "precise": {"@id": "ex:precise", "@type": "http://www.w3.org/2001/XMLSchema#double"},
    "when": {"@id": "ex:when", "@type": "http://www.w3.org/2001/XMLSchema#dateTime"},
    "link": {"@id": "ex:link", "@type": "@id"},
    "part": "ex:part",
    "steps": {"@id": "ex:steps", "@container": "@list"},
    "data": {"@id": "ex:data", "@type": "@json"},
    "knows": {"@id": "ex:knows", "@type": "@id"},
}


def pyld_reference(document: dict[str, Any]) -> str:
    """pyld's own to_rdf + URDNA2015, without this project's fast path or memoization."""
    processor = jsonld._Processor(safe=False, memoize=False)
    return str(processor.normalize(copy.deepcopy(document), jsonld._options()))


def fast_path(document: dict[str, Any]) -> str:
    expanded = jsonld._Processor(safe=True).expand_object(document)
    return rdfc.canonical_nquads(expanded)


def ex(**properties: Any) -> dict[str, Any]:
    return {"@context": EX_CONTEXT, "id": "https://example.org/things/1", **properties}


def credentials() -> list[dict[str, Any]]:
    issuer = Issuer.create()
    built = issuer.credential(
        evidence=[("Report", 'Line one\nline two\t"quoted" \\ back\r')],
        subject_id="did:example:intern",
        issuer_image_url="https://badges.example.org/logo.png",
    )
    signed = issuer.signed(built)
    options = {"@context": built["@context"], **signed["proof"]}
    del options["proofValue"]
    status = issuer.status_lists()
    return [
        VECTOR_UNSIGNED,
        {"@context": VECTOR_UNSIGNED["@context"], **VECTOR_PROOF_OPTIONS},
        RICH_CREDENTIAL,
        built,
        {key: value for key, value in signed.items() if key != "proof"},
        options,
        *({k: v for k, v in doc.items() if k != "proof"} for doc in status.values()),
    ]


FAST_DOCUMENTS = {
    "plain literals": ex(name="Zoë 🎓", count=42, flag=True, ratio=-7),
    "escapes": ex(name='tab\there "quote" back\\slash\nnewline\rreturn'),
    "language": ex(label="Hello"),
    "typed": ex(when="2027-01-01T00:00:00Z", link="https://example.org/x"),
    "nested blank nodes": ex(part=[{"name": "a", "part": {"name": "b"}}, {"name": "c"}]),
    "types": ex(type=["Thing", "https://example.org/vocab#Other"]),
    "shared blank node label": ex(part={"@id": "_:shared", "name": "s"}, knows="_:shared"),
    "no blank nodes": ex(name="x"),
    "empty": {"@context": EX_CONTEXT},
    "blank node cycle": ex(
        part={"@id": "_:a", "knows": "_:b"}, knows={"@id": "_:b", "knows": "_:a"}
    ),
    "top-level graph": {
        "@context": EX_CONTEXT,
        "@graph": [{"id": "https://example.org/a", "name": "a"}, {"name": "b"}],
    },
}

DEFERRED_DOCUMENTS = {
    "list": ex(steps=["one", "two"]),
    "json literal": ex(data={"b": [1, 2], "a": None}),
    "double": ex(ratio=0.5),
    "typed double": ex(precise=5),
    "big integer": ex(count=10**22),
    "twin blank nodes": ex(part=[{"name": "same"}, {"name": "same"}]),
    "symmetric blank nodes": ex(
        part=[{"@id": "_:a", "knows": "_:b"}, {"@id": "_:b", "knows": "_:a"}]
    ),
    "reverse": ex(**{"@reverse": {"ex:part": {"id": "https://example.org/things/2"}}}),
    "named graph": ex(**{"@graph": [{"id": "https://example.org/a", "name": "a"}]}),
}


@pytest.mark.parametrize("document", credentials())
def test_credentials_take_the_fast_path_with_the_same_result(document: dict[str, Any]) -> None:
    assert fast_path(document) == pyld_reference(document)
    assert canonicalize(document) == pyld_reference(document)


@pytest.mark.parametrize("name", FAST_DOCUMENTS)
def test_fast_path_matches_pyld(name: str) -> None:
    document = FAST_DOCUMENTS[name]
    assert fast_path(document) == pyld_reference(document)


@pytest.mark.parametrize("name", DEFERRED_DOCUMENTS)
def test_unusual_documents_defer_to_pyld(name: str) -> None:
    document = DEFERRED_DOCUMENTS[name]
    with pytest.raises(rdfc.Unsupported):
        fast_path(document)
    assert canonicalize(document) == pyld_reference(document)


def test_random_credentials_match_pyld() -> None:
    rng = random.Random(20270610)
    alphabet = string.ascii_letters + string.digits + " \t\n\r\"\\'<>&]]{}àéîõü€😀"
    issuer = Issuer.create()
    for _ in range(25):

        def text(rng: random.Random = rng) -> str:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))

        evidence = [(text(), text()) for _ in range(rng.randint(0, 3))]
        credential = issuer.credential(
            index=rng.randrange(131072),
            evidence=evidence,
            salt=text(),
            subject_id=rng.choice([None, "did:example:" + str(rng.randrange(10**6))]),
        )
        assert canonicalize(credential) == pyld_reference(credential)


def test_canonicalize_does_not_modify_its_input() -> None:
    for document in [*credentials(), *FAST_DOCUMENTS.values(), *DEFERRED_DOCUMENTS.values()]:
        before = json.dumps(document, sort_keys=True)
        canonicalize(document)
        assert json.dumps(document, sort_keys=True) == before


def test_iri_memoization_survives_being_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tiny memo is cleared and refilled again and again: results stay right.
    monkeypatch.setattr(jsonld, "_EXPANDED_IRIS_MAX", 5)
    jsonld._EXPANDED_IRIS.clear()
    for index in range(20):
        document = ex(name=str(index), part={"id": f"https://example.org/p/{index}"})
        assert canonicalize(document) == pyld_reference(document)
        assert len(jsonld._EXPANDED_IRIS) <= 5
    for document in credentials()[:3]:
        assert canonicalize(document) == pyld_reference(document)
