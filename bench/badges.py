"""Benchmark badges: build+sign, verify and bake per second on one core, against plain pyld.

Canonicalization is most of a Data Integrity proof's cost. The adopted path is badges.ldquads
(the credential's RDF statements straight from the document) with badges.rdfc (RDFC-1.0); the
alternative measured beside it is pyoxigraph's native RDFC-1.0, both fed with the statements
badges.ldquads writes and parsing the JSON-LD itself (the bundled contexts inlined: it has no
document loader, and nothing is fetched). Each alternative must sign exactly as the adopted
path does before it is timed; the pyld baseline too.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as `python bench/badges.py`: this file's folder would shadow the badges package.
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [str(_ROOT)] + [
        p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"
    ]

import argparse
import copy
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from pyld import jsonld as pyld_jsonld

from badges import jsonld
from badges.bake import bake_png, bake_svg
from badges.jsonld import BUNDLED_CONTEXTS, load_document
from badges.keyring import KeyRing
from badges.keys import RsaSigningKey, SigningKey, b58decode, b58encode
from badges.proof import sign, verify
from badges.status import credential_status
from badges.vcjwt import sign_jwt
from badges.verify import verify_badge
from issuance.award import build_credential
from models.plan import InternshipPlan

PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.json"
ISSUER_ID = "https://badges.example.org/issuers/ipsia-bassano"
BASE = "https://badges.example.org"
ISSUED_AT = datetime(2027, 6, 10, 9, 0, tzinfo=UTC)
ACHIEVED = {"lo-web": "good", "lo-team": "excellent"}
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle r="4"/></svg>'
TARGET_PER_SECOND = 1000.0
TARGET_SPEEDUP = 3.0


def pin_to_one_core() -> str:
    """Run on a single CPU (the first one this process may use), where the OS allows it."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


class Fixture:
    """A realistic credential from the example plan and an issuer with both kinds of key."""

    def __init__(self) -> None:
        self.plan = InternshipPlan.model_validate_json(PLAN.read_text(encoding="utf-8"))
        self.ring = KeyRing([SigningKey.generate("key-1")], [RsaSigningKey.generate("rsa-1")])
        self.key = self.ring.signing_key
        self.method = KeyRing.verification_method(ISSUER_ID, self.key)
        self.keys = self.ring.public_keys()
        self.png = resources.files("badges").joinpath("images", "badge.png").read_bytes()

    def credential(self, salt: str | None = None) -> dict[str, Any]:
        """Every optional part the project emits: status entry, evidence, schema, images.
        Each gets a fresh random salt, as in production, unless one is given."""
        return build_credential(
            self.plan,
            ACHIEVED,
            issuer_id=ISSUER_ID,
            image_url=f"{BASE}/images/badge.png",
            issued_at=ISSUED_AT,
            issuer_image_url=f"{BASE}/images/institution.png",
            evidence=[
                ("Mid-term review", "Delivered the responsive booking pages on schedule."),
                ("Final report", "Built and tested the site with the team in English."),
            ],
            credential_status=credential_status((f"{BASE}/status/revocation/1", 94567)),
            valid_until=ISSUED_AT + timedelta(days=3650),
            salt=salt,
        )

    def build_and_sign(self, salt: str | None = None) -> dict[str, Any]:
        return sign(self.credential(salt), self.key, self.method, ISSUED_AT)


# ---------------------------------------------------------------------------------------------
# The baseline: pyld as it comes, with a plain loader over the same bundled context files.


def plain_loader() -> Callable[[str, Any], dict[str, Any]]:
    documents: dict[str, Any] = {}
    contexts = resources.files("badges").joinpath("contexts")
    for url, (filename, _) in BUNDLED_CONTEXTS.items():
        documents[url] = json.loads(contexts.joinpath(filename).read_bytes())

    def load(url: str, options: Any = None) -> dict[str, Any]:
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": copy.deepcopy(documents[url]),
        }

    return load


class ProofOnly:
    """eddsa-rdfc-2022 over some canonicalization: sign, and check the proof alone."""

    name = ""

    def __init__(self, fixture: Fixture) -> None:
        self.fixture = fixture

    def canonical(self, document: dict[str, Any]) -> str:
        raise NotImplementedError

    def _hashes(self, document: Mapping[str, Any], proof: Mapping[str, Any]) -> bytes:
        options = {"@context": document["@context"], **proof}
        return (
            hashlib.sha256(self.canonical(options).encode()).digest()
            + hashlib.sha256(self.canonical(dict(document)).encode()).digest()
        )

    def build_and_sign(self, salt: str | None = None) -> dict[str, Any]:
        credential = self.fixture.credential(salt)
        proof = {
            "type": "DataIntegrityProof",
            "created": ISSUED_AT.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verificationMethod": self.fixture.method,
            "cryptosuite": "eddsa-rdfc-2022",
            "proofPurpose": "assertionMethod",
        }
        signature = self.fixture.key.sign(self._hashes(credential, proof))
        return {**credential, "proof": {**proof, "proofValue": "z" + b58encode(signature)}}

    def verify(self, text: str) -> bool:
        signed = json.loads(text)
        proof = dict(signed.pop("proof"))
        signature = b58decode(proof.pop("proofValue")[1:])
        self.fixture.key.public_key.verify(signature, self._hashes(signed, proof))
        return True


class Baseline(ProofOnly):
    """eddsa-rdfc-2022 over plain pyld.jsonld.normalize (URDNA2015), nothing else."""

    name = "pyld baseline"

    def __init__(self, fixture: Fixture) -> None:
        super().__init__(fixture)
        self.options = {
            "algorithm": "URDNA2015",
            "format": "application/n-quads",
            "documentLoader": plain_loader(),
        }

    def canonical(self, document: dict[str, Any]) -> str:
        return str(pyld_jsonld.normalize(document, self.options))


# ---------------------------------------------------------------------------------------------
# The alternative: pyoxigraph's native RDFC-1.0 (Rust), in two ways.


class OxigraphStatements(ProofOnly):
    """pyoxigraph's RDFC-1.0 over the statements badges.ldquads writes (N-Quads in, out)."""

    name = "pyoxigraph RDFC-1.0 on our statements"

    def __init__(self, fixture: Fixture) -> None:
        super().__init__(fixture)
        import pyoxigraph

        self.ox = pyoxigraph

    def canonical(self, document: dict[str, Any]) -> str:
        ox = self.ox
        with jsonld._LOCK:
            graph = jsonld._direct_statements(document)
        text = "".join(f"{s} {p} {o} .\n" for s, p, o in graph.quads)
        dataset = ox.Dataset(ox.parse(text, format=ox.RdfFormat.N_QUADS))
        dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
        return "".join(sorted([f"{quad} .\n" for quad in dataset]))


class OxigraphJsonLd(OxigraphStatements):
    """pyoxigraph end to end: its JSON-LD parser, then its RDFC-1.0. It has no document
    loader, so the document's context URLs are replaced by the bundled contexts themselves."""

    name = "pyoxigraph JSON-LD + RDFC-1.0"

    def __init__(self, fixture: Fixture) -> None:
        super().__init__(fixture)
        self.contexts = {
            url: load_document(url)["document"]["@context"] for url in BUNDLED_CONTEXTS
        }

    def canonical(self, document: dict[str, Any]) -> str:
        ox = self.ox
        context = document["@context"]
        inlined = [
            self.contexts[c] if isinstance(c, str) else c
            for c in (context if isinstance(context, list) else [context])
        ]
        data = json.dumps({**document, "@context": inlined})
        dataset = ox.Dataset(ox.parse(data, format=ox.RdfFormat.JSON_LD))
        dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
        return "".join(sorted([f"{quad} .\n" for quad in dataset]))


def alternatives(fixture: Fixture) -> tuple[list[ProofOnly], dict[str, str]]:
    """The pyoxigraph alternatives that can run here, and why any could not."""
    try:
        import pyoxigraph  # noqa: F401
    except ImportError:
        return [], {"pyoxigraph": "not installed (pip install -e '.[dev]')"}
    return [OxigraphStatements(fixture), OxigraphJsonLd(fixture)], {}


# ---------------------------------------------------------------------------------------------


def rate(operation: Callable[[], object], seconds: float, rounds: int = 3) -> dict[str, float]:
    """Operations per second: the median of `rounds` timed runs of about `seconds` each.

    Also the CPU time this process spent per call (the median round's), which other load on a
    shared machine disturbs less than the wall clock."""
    operation()  # warm up
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < min(0.3, seconds / 4):
        operation()
        calls += 1
    per_call = (time.perf_counter() - start) / max(calls, 1)
    batch = max(1, int(seconds / per_call))
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        cpu_start = time.process_time()
        for _ in range(batch):
            operation()
        cpu = time.process_time() - cpu_start
        results.append((batch / (time.perf_counter() - start), cpu / batch))
    per_second, cpu_per_call = sorted(results)[len(results) // 2]
    return {
        "per_second": per_second,
        "ms": 1000.0 / per_second,
        "cpu_ms": 1000.0 * cpu_per_call,
        "calls": batch * rounds,
    }


def run(seconds: float) -> dict[str, Any]:
    fixture = Fixture()
    baseline = Baseline(fixture)

    signed = fixture.build_and_sign()
    text = json.dumps(signed)
    token = sign_jwt(
        fixture.credential(), fixture.ring.rsa_key, KeyRing.kid(ISSUER_ID, fixture.ring.rsa_key)
    )
    report = verify_badge(text, issuer_keys=fixture.keys, now=ISSUED_AT + timedelta(days=1))
    if not report.verified:
        raise SystemExit(f"the benchmark credential does not verify: {report.errors}")
    same_salt = "5f1c0e9a2b7d4c38a6e1f0b2d3c4a5e6"
    if baseline.build_and_sign(same_salt) != fixture.build_and_sign(same_salt):
        raise SystemExit("the pyld baseline signs differently: the comparison would be unfair")
    baseline.verify(text)
    public_key = fixture.key.public_key
    if not verify(json.loads(text), lambda method: public_key).verified:
        raise SystemExit("the benchmark credential's proof does not verify")
    others, skipped = alternatives(fixture)
    measured: list[ProofOnly] = []
    for other in others:
        if other.build_and_sign(same_salt) != fixture.build_and_sign(same_salt):
            skipped[other.name] = "signs differently from the adopted path: not timed"
            continue
        other.verify(text)
        measured.append(other)

    now = ISSUED_AT + timedelta(days=1)
    operations: dict[str, Callable[[], object]] = {
        "build+sign (eddsa-rdfc-2022)": fixture.build_and_sign,
        "verify (verify_badge, JSON)": lambda: verify_badge(
            text, issuer_keys=fixture.keys, now=now
        ),
        "bake PNG": lambda: bake_png(fixture.png, text),
        "build+sign (VC-JWT RS256)": lambda: sign_jwt(
            fixture.credential(), fixture.ring.rsa_key, KeyRing.kid(ISSUER_ID, fixture.ring.rsa_key)
        ),
        "verify (verify_badge, VC-JWT)": lambda: verify_badge(
            token, issuer_keys=fixture.keys, now=now
        ),
        "bake SVG": lambda: bake_svg(SVG, text),
        "verify (proof only, badges.proof)": lambda: verify(
            json.loads(text), lambda method: public_key
        ),
        "pyld baseline build+sign": baseline.build_and_sign,
        "pyld baseline verify (proof only)": lambda: baseline.verify(text),
    }
    for other in measured:
        operations[f"{other.name} build+sign"] = other.build_and_sign
        operations[f"{other.name} verify (proof only)"] = lambda other=other: other.verify(text)
    results = {name: rate(operation, seconds) for name, operation in operations.items()}
    sign_rate = results["build+sign (eddsa-rdfc-2022)"]["per_second"]
    verify_rate = results["verify (verify_badge, JSON)"]["per_second"]
    base_sign = results["pyld baseline build+sign"]["per_second"]
    base_verify = results["pyld baseline verify (proof only)"]["per_second"]
    proof_rate = results["verify (proof only, badges.proof)"]["per_second"]
    compared: dict[str, Any] = {name: {"skipped": why} for name, why in skipped.items()}
    for other in measured:
        other_sign = results[f"{other.name} build+sign"]["per_second"]
        other_verify = results[f"{other.name} verify (proof only)"]["per_second"]
        compared[other.name] = {
            "sign_per_second": other_sign,
            "verify_proof_per_second": other_verify,
            "adopted_sign_speedup": sign_rate / other_sign,
            "adopted_verify_proof_speedup": proof_rate / other_verify,
        }
    summary: dict[str, Any] = {
        "sign_per_second": sign_rate,
        "verify_per_second": verify_rate,
        "verify_proof_per_second": proof_rate,
        "bake_png_per_second": results["bake PNG"]["per_second"],
        "sign_speedup_vs_pyld": sign_rate / base_sign,
        "verify_speedup_vs_pyld": verify_rate / base_verify,
        "credential_bytes": len(text),
        "canonicalization": {
            "adopted": "badges.ldquads + badges.rdfc (Python; pyld's context processing)",
            "alternatives": compared,
        },
        "targets": {
            "sign_per_second": TARGET_PER_SECOND,
            "verify_per_second": TARGET_PER_SECOND,
            "speedup_vs_pyld": TARGET_SPEEDUP,
        },
    }
    summary["targets_met"] = (
        sign_rate >= TARGET_PER_SECOND
        and verify_rate >= TARGET_PER_SECOND
        and summary["sign_speedup_vs_pyld"] >= TARGET_SPEEDUP
        and summary["verify_speedup_vs_pyld"] >= TARGET_SPEEDUP
    )
    return {"operations": results, "summary": summary}


def print_table(figures: dict[str, Any], environment: dict[str, str]) -> None:
    print(f"badges benchmark - {environment['python']} on {environment['machine']}, ", end="")
    print(f"{environment['cpu']}, credential {figures['summary']['credential_bytes']} bytes")
    width = max(len(name) for name in figures["operations"])
    print(f"{'operation':<{width}}  {'per second':>10}  {'ms each':>8}  {'CPU ms':>8}")
    print(f"{'-' * width}  {'-' * 10}  {'-' * 8}  {'-' * 8}")
    for name, result in figures["operations"].items():
        print(
            f"{name:<{width}}  {result['per_second']:>10.0f}  {result['ms']:>8.3f}  "
            f"{result['cpu_ms']:>8.3f}"
        )
    summary = figures["summary"]
    print()
    print(
        f"sign: {summary['sign_per_second']:.0f}/s, "
        f"{summary['sign_speedup_vs_pyld']:.1f}x the pyld baseline; "
        f"verify: {summary['verify_per_second']:.0f}/s, "
        f"{summary['verify_speedup_vs_pyld']:.1f}x; "
        f"targets (>= {TARGET_PER_SECOND:.0f}/s, >= {TARGET_SPEEDUP:.0f}x): "
        f"{'met' if summary['targets_met'] else 'NOT met'}"
    )
    canonicalization = summary["canonicalization"]
    print(f"canonicalization adopted: {canonicalization['adopted']}")
    for name, figures_of in canonicalization["alternatives"].items():
        if "skipped" in figures_of:
            print(f"  {name}: {figures_of['skipped']}")
            continue
        print(
            f"  {name}: sign {figures_of['sign_per_second']:.0f}/s, "
            f"verify (proof only) {figures_of['verify_proof_per_second']:.0f}/s; "
            f"adopted path {figures_of['adopted_sign_speedup']:.1f}x / "
            f"{figures_of['adopted_verify_proof_speedup']:.1f}x as fast"
        )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measured round")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args(argv)
    environment = {
        "python": f"Python {platform.python_version()}",
        "machine": platform.machine(),
        "cpu": "not pinned" if args.no_pin else pin_to_one_core(),
    }
    figures = run(args.seconds)
    figures["environment"] = environment
    print_table(figures, environment)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
