"""Tests for badges.rdfc and badges.ldquads: the fast canonical forms equal pyld's RDFC-1.0
output, or defer to it."""

from __future__ import annotations

import contextlib
import copy
import json
import random
import string
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pyoxigraph as ox
import pytest
from pydantic import TypeAdapter, ValidationError
from structlog.testing import capture_logs

from activities.badge import BadgeActivities
from badges import jsonld, ldquads, rdfc
from badges.jsonld import BUNDLED_CONTEXTS, canonicalize, load_document
from badges.keyring import KeyRing
from badges.proof import sign
from badges.status import StatusList, build_status_list_credential, credential_status
from embedded.ports import throwaway_settings
from issuance.award import build_credential
from issuance.issuers import issuer_id
from mail.sending import Mailer
from models.activities import BadgeRequest
from models.base import Name, Text
from models.plan import InternshipPlan
from operations.status_lists import STATUS_LIST_TTL
from operations.wallet_claims import _claimed_document
from runtime.settings import Settings
from tests.test_badges_proof import RICH_CREDENTIAL, VECTOR_PROOF_OPTIONS, VECTOR_UNSIGNED
from tests.test_badges_support import (
    EXAMPLE_PLAN,
    IMAGE_URL,
    ISSUED_AT,
    ISSUER_ID,
    REVOCATION_LIST,
    Issuer,
    example_plan,
)

pytestmark = pytest.mark.pure

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
    """pyld's expansion, then badges.rdfc straight from the expanded form."""
    expanded = jsonld._Processor(safe=True).expand_object(document)
    return rdfc.canonical_nquads(expanded)


def direct_path(document: dict[str, Any]) -> str:
    """badges.ldquads straight from the document (no expansion), then badges.rdfc."""
    return jsonld._direct(document)


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
    options = {"@context": built["@context"], **signed["proof"][0]}
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


XSD = "http://www.w3.org/2001/XMLSchema#"
SCOPED_CONTEXT = {
    **EX_CONTEXT,
    "size": {"@id": "ex:size", "@type": XSD + "integer"},
    "check": {"@id": "ex:check", "@type": XSD + "boolean"},
    "kind": {"@id": "ex:kind", "@type": "@vocab"},
    "Small": "ex:Small",
    # Type-scoped: applies to the node of that type only (not propagated to nested nodes).
    "Box": {"@id": "ex:Box", "@context": {"name": "ex:boxName", "size": "ex:boxSize"}},
    # Type-scoped and propagated.
    "Crate": {"@id": "ex:Crate", "@context": {"@propagate": True, "name": "ex:crateName"}},
    # Property-scoped: applies to the values of holder, and to everything below them.
    "holder": {"@id": "ex:holder", "@context": {"name": "ex:holderName", "Small": "ex:Tiny"}},
    "untagged": {"@id": "ex:untagged", "@language": None},
    "childOf": {"@reverse": "ex:part"},
    "graphed": {"@id": "ex:graphed", "@container": "@graph"},
}


def scoped(**properties: Any) -> dict[str, Any]:
    return {"@context": SCOPED_CONTEXT, "id": "https://example.org/things/1", **properties}


# Documents that badges.ldquads writes itself: each reaches a branch of pyld's expansion.
DIRECT_DOCUMENTS = {
    "type-scoped context, reverted below": scoped(
        type="Box", name="outer", size=3, part={"name": "inner", "size": 4}
    ),
    "type-scoped context kept for a bare reference": scoped(
        type="Box", part={"id": "ex:referenced"}, knows="ex:known"
    ),
    "propagated type-scoped context": scoped(type="Crate", part={"name": "inner"}),
    "two scoped types": scoped(type=["Crate", "Box"], name="both", part={"name": "below"}),
    "property-scoped context, propagated": scoped(
        holder={"name": "h", "kind": "Small", "part": {"name": "deep", "kind": "Small"}},
        kind="Small",
    ),
    "vocab-typed values": scoped(kind=["Small", "https://example.org/other#K", "ex:Big"]),
    "compact and absolute keys, ids and types": {
        "@context": EX_CONTEXT,
        "id": "ex:thing-1",
        "type": ["ex:Thing", "https://example.org/types#T"],
        "ex:custom": "v",
        "https://example.org/vocab#absolute": 1,
        "link": "ex:linked",
    },
    "default language from an inline context": {
        "@context": [SCOPED_CONTEXT, {"@language": "it"}],
        "id": "https://example.org/things/2",
        "name": "ciao",
        "count": 3,
        "untagged": "nessuna lingua",
        "label": "English wins",
    },
    "a nested node's own context": scoped(
        part={"@context": {"name": "ex:otherName"}, "name": "n", "part": {"name": "m"}}
    ),
    "nulls and empty nodes": scoped(
        name=None, part=[None, {}, {"name": None, "count": 1}], count=0
    ),
    "typed numbers and booleans": scoped(
        size=7, check=True, flag=False, count=-12, link=5, when="2027-06-10T09:00:00Z"
    ),
    "a blank node that refers to itself": scoped(
        part={"@id": "_:self", "knows": "_:self", "name": "me"}
    ),
    "unicode, escapes and line breaks": scoped(
        name='Zoë \u00e9\u0301 日本語 🎓 "q" \\ \t\r\n end\u2028\u00a0',
        label="multi\nline\n\ndescription\r\n",
        part={"name": "\\n is not a line break; <a href='x'>&amp;</a>"},
    ),
    # pyld writes control characters other than tab, CR and LF as they are: so does this.
    "control characters": scoped(name="a\bb\x0cc\x00d\x7fe\x1ff"),
    "many blank nodes": scoped(
        part=[
            {"name": f"n{i}", "part": {"name": f"m{i}", "knows": {"name": f"k{i}"}}}
            for i in range(40)
        ]
    ),
    "the same node named twice": scoped(
        part=[{"id": "https://example.org/a", "name": "a"}, {"id": "https://example.org/a"}],
        knows="https://example.org/a",
    ),
}

# Documents badges.ldquads leaves to pyld's expansion (badges.rdfc or pyld then decide).
DIRECT_DEFERRED = {
    "value object": scoped(name={"@value": "x", "@language": "en"}),
    "two keys for @type": {**scoped(type="Thing"), "@type": "ex:Other"},
    "array in an array": scoped(name=[["a", "b"], "c"]),
    "base direction": {
        "@context": [EX_CONTEXT, {"@direction": "rtl"}],
        "id": "https://example.org/x",
        "name": "x",
    },
    "reverse term": scoped(childOf={"id": "https://example.org/parent"}),
    "graph container": scoped(graphed={"name": "inside"}),
    "included": scoped(**{"@included": [{"id": "https://example.org/i", "name": "i"}]}),
    "top-level graph": FAST_DOCUMENTS["top-level graph"],
    "empty": FAST_DOCUMENTS["empty"],
    **DEFERRED_DOCUMENTS,
}


def rich_plan(outcomes: int = 12) -> InternshipPlan:
    """The example plan with many outcomes (so many alignments, results and rubric levels),
    and names and descriptions full of unicode, quotes, backslashes and line breaks."""
    data = json.loads(EXAMPLE_PLAN.read_text(encoding="utf-8"))
    data["badge"]["name"] = 'Tirocinio: sviluppo web — «Zoë» "quoted" \\ 🎓'
    data["badge"]["description"] = "Line one.\nLine two,\ttabbed.\r\nÜber 日本語 — end."
    data["badge"]["criteria"] = 'Criteria with "quotes",\nbackslash \\ and a line break.'
    data["rubric"]["levels"][1]["description"] = "Con guida.\nWith guidance."
    data["learning_outcomes"] = [
        {
            "id": f"lo-{index}",
            "title": f'Outcome {index}: «ç» "{index}"',
            "description": f"Does thing {index}.\nThen the next\tthing \\ {index}.",
            "eqf_level": 1 + index % 8,
            **({"esco_uri": f"http://data.europa.eu/esco/skill/{index:04d}"} if index % 2 else {}),
            "required_level": "basic",
        }
        for index in range(outcomes)
    ]
    return InternshipPlan.model_validate(data)


def rich_credentials() -> list[dict[str, Any]]:
    plan = rich_plan()
    achieved = {outcome.id: "good" for outcome in plan.learning_outcomes}
    credential = build_credential(
        plan,
        achieved,
        issuer_id=ISSUER_ID,
        image_url=IMAGE_URL,
        issued_at=ISSUED_AT,
        credential_status=credential_status((REVOCATION_LIST, 77)),
        evidence=[
            ("Relazione «finale»", 'Line one\nline two\t"quoted" \\ back\r'),
            ("Mid-term", "Second\n\nparagraph with 🎓 and <html> & ampersands."),
        ],
        subject_id="did:example:ünïcode",
    )
    signed = Issuer.create().signed(credential)
    options = {"@context": credential["@context"], **signed["proof"][0]}
    del options["proofValue"]
    return [credential, options]


@pytest.mark.parametrize("document", credentials() + rich_credentials())
def test_credentials_take_the_direct_path_with_the_same_result(document: dict[str, Any]) -> None:
    reference = pyld_reference(document)
    assert direct_path(document) == reference
    assert canonicalize(document) == reference


@pytest.mark.parametrize("name", DIRECT_DOCUMENTS)
def test_direct_path_matches_pyld(name: str) -> None:
    document = DIRECT_DOCUMENTS[name]
    reference = pyld_reference(document)
    assert direct_path(document) == reference
    assert canonicalize(document) == reference


@pytest.mark.parametrize("name", DIRECT_DEFERRED)
def test_direct_path_defers_what_it_does_not_do(name: str) -> None:
    document = DIRECT_DEFERRED[name]
    with pytest.raises(rdfc.Unsupported):
        direct_path(document)
    assert canonicalize(document) == pyld_reference(document)


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (ex(unknown="x"), jsonld.UndefinedTermError),
        (ex(type="Undefined"), jsonld.UndefinedTermError),
        (ex(part={"unknown": 1}), jsonld.UndefinedTermError),
        (ex(link="relative/path"), jsonld.RelativeIriError),
        ({**ex(), "id": "things/1", "name": "x"}, jsonld.RelativeIriError),
    ],
)
def test_direct_path_leaves_unsafe_documents_to_the_safe_mode_check(
    document: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(rdfc.Unsupported):
        direct_path(document)
    with pytest.raises(error):
        canonicalize(document)


def test_direct_path_memo_survives_being_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tiny memo is cleared again and again while documents are written: results stay right.
    monkeypatch.setattr(jsonld, "_LDQUADS_CONTEXTS", ldquads.Contexts(maxsize=5))
    documents = [*credentials()[:4], *DIRECT_DOCUMENTS.values()]
    for document in documents + documents:
        assert direct_path(document) == pyld_reference(document)
        assert jsonld._LDQUADS_CONTEXTS.size() <= 5


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
        reference = pyld_reference(credential)
        assert direct_path(credential) == reference
        assert canonicalize(credential) == reference


def test_canonicalize_does_not_modify_its_input() -> None:
    documents = [*credentials(), *FAST_DOCUMENTS.values(), *DEFERRED_DOCUMENTS.values()]
    for document in [*documents, *DIRECT_DOCUMENTS.values(), *DIRECT_DEFERRED.values()]:
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


def test_a_fault_in_the_direct_path_is_told_and_the_longer_way_gives_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected exception of badges.ldquads (here forced) is counted and logged, with its
    type and where it was raised, never the document; the canonical form is the longer way's,
    the same as the direct path's would have been."""
    document = Issuer.create().credential(
        evidence=[("Report", "Private words of the intern.")], subject_id="did:example:intern"
    )
    expected = canonicalize(document)
    assert direct_path(document) == expected

    def broken(*args: Any, **kwargs: Any) -> rdfc.Statements:
        raise KeyError("lo-web")

    monkeypatch.setattr(ldquads, "statements", broken)
    before = jsonld.fast_path_failures()
    with capture_logs() as logs:
        assert canonicalize(document) == expected == pyld_reference(document)
    assert jsonld.fast_path_failures() == before + 1
    assert logs == [
        {
            "event": "jsonld.fast_path_failed",
            "log_level": "error",
            "error": "KeyError",
            "where": f"test_badges_rdfc.broken:{broken.__code__.co_firstlineno + 1}",
            "failures": before + 1,
        }
    ]


def test_a_document_the_direct_path_leaves_to_the_longer_way_is_not_a_fault() -> None:
    before = jsonld.fast_path_failures()
    with capture_logs() as logs:
        for document in [*DIRECT_DEFERRED.values(), ex(unknown="x"), {"@context": 5}]:
            with contextlib.suppress(jsonld.DocumentError):  # unsafe, or not JSON-LD
                canonicalize(document)
    assert jsonld.fast_path_failures() == before
    assert logs == []


# ----------------------------------------------------------------- a second, independent oracle
# pyld is the reference above, and the direct path takes its decisions by design: a mistake in
# pyld's JSON-LD to RDF, or in its URDNA2015, would be copied, and the comparison would not see
# it. pyoxigraph (Rust; its own JSON-LD parser and its own RDFC-1.0) shares no code with either,
# and is compared on what the product issues, built by the product's own code.

BUNDLED = {url: load_document(url)["document"]["@context"] for url in BUNDLED_CONTEXTS}
HOLDER_DID_KEY = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
HOLDER_DID_JWK = (
    "did:jwk:eyJjcnYiOiJQLTI1NiIsImt0eSI6IkVDIiwieCI6ImFjYklRaXVNczNpOF91c3pFakoydHBUdFJNNEVVM3l6"
    "OTFQSDZDZEgyVjAiLCJ5IjoiX0tjeUxqOXZXTXB0bm1LdG00NkdxRHo4d2Y3NEk1TEtncmwyR3pIM25TRSJ9"
)


def oxigraph_from_json_ld(document: dict[str, Any]) -> str:
    """pyoxigraph alone: its JSON-LD parser (it loads no documents: the bundled contexts are
    inlined, the same bytes the product reads), then its RDFC-1.0."""
    context = document["@context"]
    inlined = [
        BUNDLED[item] if isinstance(item, str) else item
        for item in (context if isinstance(context, list) else [context])
    ]
    data = json.dumps({**document, "@context": inlined})
    return _oxigraph_canonical(ox.Dataset(ox.parse(data, format=ox.RdfFormat.JSON_LD)))


def oxigraph_recanonicalized(nquads: str) -> str:
    """pyoxigraph's RDFC-1.0 of the same statements: a canonical form is its own canonical form
    (the labels and the order depend only on the graph)."""
    return _oxigraph_canonical(ox.Dataset(ox.parse(nquads, format=ox.RdfFormat.N_QUADS)))


def _oxigraph_canonical(dataset: Any) -> str:
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return "".join(sorted(f"{quad} .\n" for quad in dataset))


def _with_options(name: str, signed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What signing canonicalizes: the document without its proof, and the proof's options
    (with the document's context)."""
    options = {"@context": signed["@context"], **signed["proof"][0]}
    del options["proofValue"]
    unsigned = {key: value for key, value in signed.items() if key != "proof"}
    return {name: unsigned, f"{name}: proof options": options}


def _issued_by_the_badge_activity(
    settings: Settings, plan: InternshipPlan, **request: Any
) -> dict[str, Any] | str:
    """A badge as the badge activity signs it (issuer, keys, image and status entry from the
    deployment's settings)."""
    badge_request = BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=ISSUED_AT,
        workflow_id=f"internship-{plan.internship_id}",
        **request,
    )
    ring = KeyRing.load_or_create(settings.keys_path)
    activities = BadgeActivities(cast(Any, None), Mailer(settings), ring, settings)
    status = credential_status((f"{settings.public_base_url}/status/revocation", 4242))
    return activities._sign(badge_request, status)


def _claimed(settings: Settings, stored: dict[str, Any] | str, holder: str) -> dict[str, Any]:
    """The badge as a wallet claims it: the stored badge with the holder as subject, signed as
    the credential endpoint signs it."""
    document = _claimed_document(stored, holder, "urn:uuid:0b9a3c52-1f0e-4c1e-9d43-2c0a8f6f2a77")
    issuer = document["issuer"]
    key = KeyRing.load_or_create(settings.keys_path).signing_key
    method = KeyRing.verification_method(issuer["id"] if isinstance(issuer, dict) else issuer, key)
    return sign(document, key, verification_method=method, created=ISSUED_AT)


def issued_shapes(folder: Path) -> dict[str, dict[str, Any]]:
    """Every shape of document the product signs, each built by its own code."""
    https = throwaway_settings(folder / "https")
    did_web = throwaway_settings(
        folder / "did-web",
        public_base_url="https://badges.example.org",
        did_web_institutions="*",
    )
    plan = example_plan()
    evidence = (("Mid-term review", 'Delivered the booking pages.\n"On time", \\ tabbed\tend'),)
    italian = plan.model_copy(
        update={
            "badge": plan.badge.model_copy(
                update={
                    "name": "Tirocinio: sviluppo web — «Zoë»",
                    "language": "it",
                    "achievement_type": "Certificate",
                    "valid_for": timedelta(days=5 * 365),
                    "tags": ("mobilità", "web"),
                }
            )
        }
    )
    as_jwt = plan.model_copy(
        update={"badge": plan.badge.model_copy(update={"proof_format": "vc-jwt"})}
    )
    badge = _issued_by_the_badge_activity(https, plan, evidence=evidence)
    badge_as_jwt = _issued_by_the_badge_activity(https, as_jwt)
    assert isinstance(badge, dict) and isinstance(badge_as_jwt, str)
    shapes: dict[str, dict[str, Any]] = {}
    for name, signed in {
        "the badge, https issuer, evidence": badge,
        "the badge, did:web issuer, no evidence": _issued_by_the_badge_activity(did_web, plan),
        "the badge with the intern's shared self-assessment": _issued_by_the_badge_activity(
            https, plan, self_assessed_levels={"lo-web": "excellent", "lo-team": "basic"}
        ),
        "a certificate in Italian with validUntil": _issued_by_the_badge_activity(
            did_web, italian, evidence=evidence
        ),
        "the badge claimed into a wallet (did:key)": _claimed(https, badge, HOLDER_DID_KEY),
        "a VC-JWT badge claimed into a wallet (did:jwk)": _claimed(
            https, badge_as_jwt, HOLDER_DID_JWK
        ),
    }.items():
        assert isinstance(signed, dict)
        shapes.update(_with_options(name, signed))
    rich, rich_options = rich_credentials()
    shapes["twelve outcomes, unicode and escapes everywhere"] = rich
    shapes["twelve outcomes: proof options"] = rich_options
    for purpose, revoked in (("revocation", (3, 4242)), ("suspension", ())):
        bits = StatusList()
        for index in revoked:
            bits.set(index)
        unsigned = build_status_list_credential(
            f"{https.public_base_url}/status/{purpose}",
            issuer_id(https, plan.institution.id),
            purpose,  # type: ignore[arg-type]
            bits,
            valid_from=ISSUED_AT,
            ttl=STATUS_LIST_TTL,
        )
        key = KeyRing.load_or_create(https.keys_path).signing_key
        method = KeyRing.verification_method(issuer_id(https, plan.institution.id), key)
        shapes.update(
            _with_options(
                f"the {purpose} list",
                sign(unsigned, key, verification_method=method, created=ISSUED_AT),
            )
        )
    return shapes


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return issued_shapes(tmp_path_factory.mktemp("issued"))


ISSUED_SHAPES = [
    *(
        name
        for base in (
            "the badge, https issuer, evidence",
            "the badge, did:web issuer, no evidence",
            "the badge with the intern's shared self-assessment",
            "a certificate in Italian with validUntil",
            "the badge claimed into a wallet (did:key)",
            "a VC-JWT badge claimed into a wallet (did:jwk)",
        )
        for name in (base, f"{base}: proof options")
    ),
    "twelve outcomes, unicode and escapes everywhere",
    "twelve outcomes: proof options",
    *(
        name
        for purpose in ("revocation", "suspension")
        for name in (f"the {purpose} list", f"the {purpose} list: proof options")
    ),
]


def test_the_shapes_compared_are_every_one_built_and_what_their_names_say(
    issued: dict[str, dict[str, Any]],
) -> None:
    assert sorted(ISSUED_SHAPES) == sorted(issued)
    subject = {name: shape.get("credentialSubject", {}) for name, shape in issued.items()}
    assert issued["the badge, https issuer, evidence"]["issuer"]["id"].startswith("http")
    assert issued["the badge, https issuer, evidence"]["evidence"]
    assert issued["the badge, did:web issuer, no evidence"]["issuer"]["id"].startswith("did:web:")
    assert "evidence" not in issued["the badge, did:web issuer, no evidence"]
    assert any(
        "self" in json.dumps(result).lower()
        for result in subject["the badge with the intern's shared self-assessment"]["result"]
    )
    italian = issued["a certificate in Italian with validUntil"]
    assert "validUntil" in italian
    assert italian["credentialSubject"]["achievement"]["achievementType"] == "Certificate"
    assert subject["the badge claimed into a wallet (did:key)"]["id"] == HOLDER_DID_KEY
    assert subject["a VC-JWT badge claimed into a wallet (did:jwk)"]["id"] == HOLDER_DID_JWK
    assert "BitstringStatusListCredential" in issued["the revocation list"]["type"]
    assert all(issued[name]["type"] == "DataIntegrityProof" for name in issued if "options" in name)


@pytest.mark.parametrize("name", ISSUED_SHAPES)
def test_what_the_product_signs_is_pyoxigraphs_rdfc(
    issued: dict[str, dict[str, Any]], name: str
) -> None:
    document = issued[name]
    signed_form = canonicalize(document)  # what badges.proof hashes and signs
    assert signed_form.count("\n") >= 5, signed_form
    assert oxigraph_recanonicalized(signed_form) == signed_form
    assert oxigraph_from_json_ld(document) == signed_form


def test_random_credentials_are_pyoxigraphs_rdfc() -> None:
    """Texts of every kind the product's models accept (tab and line breaks included; no other
    control character: see the test below)."""
    rng = random.Random(20270611)
    alphabet = string.ascii_letters + string.digits + " \t\n\r\"\\'<>&]]{}àéîõü€😀\u2028\u00a0"
    issuer = Issuer.create()
    for _ in range(25):

        def text(rng: random.Random = rng) -> str:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))

        credential = issuer.credential(
            index=rng.randrange(131072),
            evidence=[(text(), text()) for _ in range(rng.randint(0, 3))],
            salt=text(),
            subject_id=rng.choice([None, "did:example:" + str(rng.randrange(10**6))]),
        )
        assert oxigraph_from_json_ld(credential) == canonicalize(credential)


RDFC_1_0_ECHAR = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}


def rdfc_1_0_literal_character(character: str) -> str:
    """A character of a literal as RDFC-1.0's canonical N-Quads writes it (as rdf-canonize 5,
    the library of the Node.js verifiers in tests/interop, does): backspace, tab, line feed,
    form feed, carriage return, double quote and backslash as ECHAR; the other characters up to
    U+001F, and U+007F, as UCHAR (upper-case hex); any other as it is."""
    if character in RDFC_1_0_ECHAR:
        return RDFC_1_0_ECHAR[character]
    if ord(character) <= 0x1F or ord(character) == 0x7F:
        return f"\\u{ord(character):04X}"
    return character


#: Where this project's canonical form (pyld 3's, which the direct path copies) is not RDFC-1.0's:
#: these control characters are written as they are instead of escaped.
WRITTEN_AS_PYLD_WRITES_THEM = {*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F}
#: Where pyoxigraph 0.5 is not: it escapes these two noncharacters (\uFFFE, \uFFFF).
ESCAPED_BY_PYOXIGRAPH = {0xFFFE, 0xFFFF}


def test_literal_characters_against_rdfc_1_0_and_none_the_product_issues_differs() -> None:
    """Character by character, a literal as the product canonicalizes it and as pyoxigraph does,
    against RDFC-1.0's rule. The product differs on control characters (written as pyld writes
    them): a credential signed elsewhere by RDFC-1.0 with one of them does not verify here, and
    one signed here would not verify elsewhere. None can be in a badge the product issues: every
    text and name it takes refuses them (models/base.py)."""

    def literal(nquads: str) -> str:
        line = next(line for line in nquads.split("\n") if "vocab#name>" in line)
        return line.split('"', 1)[1].rsplit('"', 1)[0]

    points = [*range(0xA1), 0x2028, 0x2029, 0xFEFF, 0xFFFD, 0xFFFE, 0xFFFF, 0x1F393]
    product_differs, pyoxigraph_differs = set(), set()
    for point in points:
        document = ex(name=f"a{chr(point)}b")
        rdfc_1_0 = f"a{rdfc_1_0_literal_character(chr(point))}b"
        if literal(canonicalize(document)) != rdfc_1_0:
            product_differs.add(point)
        if literal(oxigraph_from_json_ld(document)) != rdfc_1_0:
            pyoxigraph_differs.add(point)
    assert product_differs == WRITTEN_AS_PYLD_WRITES_THEM
    assert pyoxigraph_differs == ESCAPED_BY_PYOXIGRAPH
    for point in product_differs:
        for kind in (Text, Name):
            with pytest.raises(ValidationError):
                TypeAdapter(kind).validate_python(f"a{chr(point)}b")
