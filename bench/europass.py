"""Benchmark European Digital Credentials: the CPU time to produce one EDC from the records of a
certified internship (the example plan, two assessments), in each form operators and interns get
it: built (issuance.edc.build_edc, the badge image inside), written as the Europass issuer's
uploadable JSON, and sealed with an institution's own seal (JAdES, RSA 2048 and EC P-256, a
self-signed certificate made here). Beside them, what it would cost to check each EDC against the
Commission's SHACL shapes at issuance, which the product does not do (decision 0036): reading
the shapes once, and each validation. Reading the records from PostgreSQL (four queries) is not
in these figures. Run: `python -m bench.europass [--count N] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from issuance.edc import AssessmentRecord, CertifiedInternship, build_edc, uploadable
from issuance.seal import ORGANIZATION_IDENTIFIER, SealCertificate, open_seal, payload_text, seal
from mail.badge import local_artwork
from models.plan import InternshipPlan

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.json"
LEGAL_ID = "VATIT-01234567890"
ISSUED = datetime(2027, 6, 18, 10, 30, tzinfo=UTC)


def certified() -> CertifiedInternship:
    plan = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text(encoding="utf-8"))
    return CertifiedInternship(
        plan=plan,
        achieved_levels={"lo-web": "good", "lo-team": "good"},
        assessments=(
            AssessmentRecord("mentor", {"lo-web": "excellent", "lo-team": "good"}, ISSUED),
            AssessmentRecord("tutor", {"lo-web": "good", "lo-team": "excellent"}, ISSUED),
        ),
        issued_at=ISSUED,
        activity_start=plan.period.start,
        activity_end=plan.period.end,
        institution_name=plan.institution.name,
        legal_identifier=LEGAL_ID,
    )


def test_seal(kind: str) -> SealCertificate:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Benchmark school"),
            x509.NameAttribute(ORGANIZATION_IDENTIFIER, LEGAL_ID),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return SealCertificate(key=key, chain=(certificate,))


def timed(operation: Callable[[], object], count: int) -> dict[str, float]:
    """Per call, in milliseconds: the median and the 95th percentile of `count` calls (after
    a few warm-up calls), and the CPU time per call."""
    for _ in range(min(5, count)):
        operation()
    wall: list[float] = []
    cpu_start = time.process_time()
    for _ in range(count):
        start = time.perf_counter()
        operation()
        wall.append((time.perf_counter() - start) * 1000)
    cpu = (time.process_time() - cpu_start) * 1000 / count
    wall.sort()
    return {
        "median_ms": round(statistics.median(wall), 3),
        "p95_ms": round(wall[int(0.95 * (len(wall) - 1))], 3),
        "cpu_ms_per_call": round(cpu, 3),
        "calls": count,
    }


def run(count: int) -> dict[str, Any]:
    facts = certified()
    image = local_artwork(facts.plan).png
    assert image is not None
    rsa_seal, ec_seal = test_seal("rsa"), test_seal("ec")
    edc = build_edc(facts, image_png=image)
    for certificate in (rsa_seal, ec_seal):
        if open_seal(seal(edc, certificate, ISSUED)).credential != edc:
            raise AssertionError("a sealed EDC does not open to the credential it seals")
    figures: dict[str, Any] = {
        "edc_bytes": len(payload_text(edc).encode()),
        "operations": {
            "build": timed(lambda: build_edc(facts, image_png=image), count),
            "build_and_write_uploadable": timed(
                lambda: json.dumps(uploadable(build_edc(facts, image_png=image)), indent=2),
                count,
            ),
            "build_and_seal_rsa2048": timed(
                lambda: seal(build_edc(facts, image_png=image), rsa_seal, ISSUED), count
            ),
            "build_and_seal_ec_p256": timed(
                lambda: seal(build_edc(facts, image_png=image), ec_seal, ISSUED), count
            ),
        },
    }
    try:
        from tests.europass_shapes import shapes_graph, violations  # the dev group's pyshacl
    except ImportError:
        figures["shacl"] = "not measured: pyshacl is in the dev group only"
        return figures
    start = time.perf_counter()
    shapes_graph()
    read_once = (time.perf_counter() - start) * 1000
    if violations(edc):
        raise AssertionError("the benchmark's EDC does not conform to the shapes")
    figures["shacl"] = {
        "read_shapes_once_ms": round(read_once, 1),
        "validate": timed(lambda: violations(edc), max(10, count // 20)),
    }
    return figures


def print_table(figures: dict[str, Any]) -> None:
    print(f"EDC of the example plan: {figures['edc_bytes']} bytes (the badge image inside)")
    print(f"{'operation':<30} {'median ms':>10} {'p95 ms':>10} {'CPU ms':>10}")
    rows = dict(figures["operations"])
    if isinstance(figures.get("shacl"), dict):
        rows["shacl validation (not done)"] = figures["shacl"]["validate"]
    for name, row in rows.items():
        print(f"{name:<30} {row['median_ms']:>10} {row['p95_ms']:>10} {row['cpu_ms_per_call']:>10}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument("--count", type=int, default=1000, help="calls per operation")
    args = parser.parse_args(argv)
    figures = run(args.count)
    figures["environment"] = {"python": platform.python_version(), "machine": platform.machine()}
    print_table(figures)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
