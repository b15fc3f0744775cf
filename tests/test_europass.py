"""The European Digital Credential of a certified internship, built from its records: its mapping
of the plan onto ELM v3, the Commission's shapes of the generic EDC profile (every EDC built here
is checked against them by the autouse fixture; tests/europass_shapes.py), the shapes themselves
against the Commission's own samples, and the institution's own JAdES seal with a self-signed test
certificate."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import NameOID
from rdflib import Literal, URIRef
from rdflib.namespace import XSD

from issuance.edc import (
    AssessmentRecord,
    CertifiedInternship,
    LegalIdentifierRefused,
    build_edc,
    edc_credential_id_for,
    legal_identifier_country,
    uploadable,
    workload_hours,
)
from issuance.seal import (
    ORGANIZATION_IDENTIFIER,
    SealCertificate,
    SealRefused,
    issuer_serial,
    load_seal,
    open_seal,
    seal,
)
from models.plan import InternshipPlan
from tests.europass_shapes import graph, official, undefined_terms, violations
from tests.helpers import EXAMPLE_PLAN

pytestmark = pytest.mark.pure

ELM = "http://data.europa.eu/snb/model/elm/"
BADGE_PNG = (Path(__file__).parent.parent / "badges" / "images" / "badge.png").read_bytes()
LEGAL_ID = "VATIT-01234567890"
ISSUED = datetime(2027, 6, 18, 10, 30, tzinfo=UTC)


def example_plan(**badge: Any) -> InternshipPlan:
    plan = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    if badge:
        plan = plan.model_copy(update={"badge": plan.badge.model_copy(update=badge)})
    return plan


def certified(plan: InternshipPlan | None = None, **changes: Any) -> CertifiedInternship:
    """The example internship as the records would give it after certification: the mentor
    rated the web outcome excellent and teamwork good, the tutor the other way round."""
    plan = plan or example_plan()
    facts: dict[str, Any] = {
        "plan": plan,
        "achieved_levels": {"lo-web": "good", "lo-team": "good"},
        "assessments": (
            AssessmentRecord(
                "mentor", {"lo-web": "excellent", "lo-team": "good"}, ISSUED - timedelta(days=9)
            ),
            AssessmentRecord(
                "tutor", {"lo-web": "good", "lo-team": "excellent"}, ISSUED - timedelta(days=8)
            ),
        ),
        "issued_at": ISSUED,
        "activity_start": plan.period.start,
        "activity_end": plan.period.end,
        "institution_name": plan.institution.name,
        "legal_identifier": LEGAL_ID,
    }
    facts.update(changes)
    return CertifiedInternship(**facts)


def claims(edc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the badge's achievement, the internship activity)."""
    achievement, activity = edc["credentialSubject"]["hasClaim"]
    assert achievement["type"] == "LearningAchievement"
    assert activity["type"] == "LearningActivity"
    return achievement, activity


def test_the_commissions_sealed_sample_conforms_and_its_unsigned_one_does_not() -> None:
    """The check can pass and fail: the sealed sample's payload conforms to the generic profile's
    shapes; the unsigned one lacks what the Europass issuer adds when it seals (`issued`, and the
    issuer's eIDAS legal identifier), and the shapes say so."""
    sealed = json.loads(official("Sample-CertOfPart-signed.jsonld"))
    assert violations(json.loads(sealed["payload"])) == []

    unsigned = json.loads(official("Sample-CertOfPart-unsigned.jsonld"))
    found = "\n".join(violations(unsigned))
    assert "cred:issued" in found
    assert "elm:eidasLegalIdentifier" in found
    assert found.count("Constraint Violation") == 3  # issued; the issuer's node shape, its path


def test_the_uploadable_form_is_the_europass_issuers() -> None:
    """The Commission's uploadable sample is its unsigned credential under `credential`, and
    nothing else: `uploadable()` gives that form."""
    sample = json.loads(official("Sample-CertOfPart-unsigned-uploadable.json"))
    unsigned = json.loads(official("Sample-CertOfPart-unsigned.jsonld"))
    assert sample == {"credential": unsigned}
    edc = build_edc(certified(), image_png=BADGE_PNG)
    assert uploadable(edc) == {"credential": edc}


def test_an_edc_conforms_to_the_generic_profile_and_defines_every_term() -> None:
    edc = build_edc(certified(), image_png=BADGE_PNG)
    assert violations(edc) == []
    assert undefined_terms(edc) == []
    # The check sees what it should: without the issue date or a grade, it fails.
    missing_issued = {k: v for k, v in edc.items() if k != "issued"}
    assert any("cred:issued" in v for v in violations(missing_issued))
    no_grade = copy.deepcopy(edc)
    achievement, _ = claims(no_grade)
    del achievement["hasPart"][0]["provenBy"]["grade"]
    assert any("elm:grade" in v for v in violations(no_grade))
    with_typo = {**edc, "validfrom": edc["validFrom"]}
    assert undefined_terms(with_typo) == ["$.validfrom"]


def test_each_learning_outcome_is_an_achievement_with_its_esco_skill_eqf_level_and_result() -> None:
    edc = build_edc(certified(), image_png=BADGE_PNG)
    achievement, activity = claims(edc)
    plan = example_plan()
    assert achievement["title"] == {"en": plan.badge.name}
    web, team = achievement["hasPart"]
    assert web["title"] == {"en": "Develop responsive web pages"}
    spec = web["specifiedBy"]
    assert spec["learningOutcome"]["relatedESCOSkill"]["id"] == plan.learning_outcomes[0].esco_uri
    assert spec["educationLevel"]["id"] == "http://data.europa.eu/snb/eqf/4"
    assert spec["educationLevel"]["inScheme"]["id"] == "http://data.europa.eu/snb/eqf/25831c2"
    assert "relatedESCOSkill" not in team["specifiedBy"]["learningOutcome"]  # the plan has none

    result = web["provenBy"]
    assert result["grade"]["noteLiteral"] == {"en": "Good"}  # the lower of the two
    assert "Required: Good" in result["description"]["en"]
    by = {part["title"]["en"]: part for part in result["hasPart"]}
    mentor = by["Develop responsive web pages: assessment by the company mentor"]
    tutor = by["Develop responsive web pages: assessment by the institution tutor"]
    assert mentor["grade"]["noteLiteral"] == {"en": "Excellent"}
    assert mentor["assessedBy"]["type"] == "Agent"
    assert mentor["assessedBy"]["prefLabel"] == {"en": "Webwerk GmbH"}
    assert mentor["dateIssued"] == "2027-06-09T10:30:00Z"
    assert tutor["grade"]["noteLiteral"] == {"en": "Good"}
    assert tutor["assessedBy"]["legalName"] == {"en": plan.institution.name}
    grading = result["specifiedBy"]["gradingScheme"]["description"]["en"]
    assert grading.startswith("Levels from lowest to highest: Insufficient (")

    # The internship: dates, workload, the host company that directed it, the institution that
    # awarded everything, with its eIDAS legal identifier and the country that identifier names.
    assert activity["title"] == {"en": "Internship at Webwerk GmbH"}
    assert activity["temporal"]["startDate"] == "2027-03-01T08:00:00Z"
    assert activity["temporal"]["endDate"] == "2027-05-28T15:00:00Z"
    assert activity["workload"] == "PT468H"  # 36 h a week, 65 weekdays
    assert activity["directedBy"]["prefLabel"] == {"en": "Webwerk GmbH"}
    assert activity["identifier"]["notation"] == plan.internship_id
    body = activity["awardedBy"]["awardingBody"]
    assert body == edc["issuer"]
    assert body["eIDASIdentifier"]["notation"] == LEGAL_ID
    assert body["eIDASIdentifier"]["spatial"]["id"].endswith("/country/ITA")
    assert body["homepage"]["contentURL"] == plan.institution.url

    subject = edc["credentialSubject"]
    assert subject["fullName"] == {"en": plan.intern.name}
    assert subject["contactPoint"]["emailAddress"]["id"] == f"mailto:{plan.intern.email}"
    assert edc["issued"] == edc["validFrom"] == "2027-06-18T10:30:00Z"
    assert "validUntil" not in edc


def test_only_an_esco_skills_own_uri_is_its_related_skill() -> None:
    """A plan may link a page of the ESCO portal instead of the skill's URI: that is no ESCO
    concept, and is left out rather than named as one."""
    plan = example_plan()
    portal = "https://esco.ec.europa.eu/en/classification/skill?uri=x"
    outcome = plan.learning_outcomes[0].model_copy(update={"esco_uri": portal})
    plan = plan.model_copy(update={"learning_outcomes": (outcome, *plan.learning_outcomes[1:])})
    achievement, _ = claims(build_edc(certified(plan), image_png=BADGE_PNG))
    assert "relatedESCOSkill" not in achievement["hasPart"][0]["specifiedBy"]["learningOutcome"]


def test_the_rdf_says_what_the_json_says() -> None:
    """Read as RDF with the Commission's context, the ESCO skill, the EQF level and the workload
    are there with their ELM properties and types (a term the context does not define would be
    dropped here)."""
    rdf = graph(build_edc(certified(), image_png=BADGE_PNG))
    plan = example_plan()
    esco = URIRef(str(plan.learning_outcomes[0].esco_uri))
    assert (None, URIRef(ELM + "relatedESCOSkill"), esco) in rdf
    assert (None, URIRef(ELM + "educationLevel"), URIRef("http://data.europa.eu/snb/eqf/4")) in rdf
    workloads = list(rdf.objects(None, URIRef(ELM + "workload")))
    assert workloads == [Literal("PT468H", datatype=XSD.duration)]


def test_the_same_records_give_the_same_credential_in_the_badges_language() -> None:
    first = build_edc(certified(), image_png=BADGE_PNG)
    assert build_edc(certified(), image_png=BADGE_PNG) == first
    assert first["id"] == edc_credential_id_for(example_plan().internship_id)

    italian = build_edc(certified(example_plan(language="it")), image_png=BADGE_PNG)
    _, activity = claims(italian)
    assert activity["title"] == {"it": "Tirocinio presso Webwerk GmbH"}
    assert italian["displayParameter"]["primaryLanguage"]["id"].endswith("/language/ITA")
    result = claims(italian)[0]["hasPart"][0]["provenBy"]
    assert set(result["title"]) == {"it"}


def test_an_expiring_badge_gives_an_expiring_credential() -> None:
    until = ISSUED + timedelta(days=365)
    edc = build_edc(certified(valid_until=until), image_png=BADGE_PNG)
    assert edc["validUntil"] == edc["expirationDate"] == "2028-06-17T10:30:00Z"  # a leap year


def test_workload_counts_weekdays_of_the_period_not_paused() -> None:
    start = datetime(2027, 3, 1, 9, tzinfo=UTC)  # a Monday
    assert workload_hours(40, start, start + timedelta(days=4)) == 40
    assert workload_hours(40, start, start + timedelta(days=6)) == 40  # the weekend counts none
    three_weeks = start + timedelta(days=18)  # to the third Friday
    assert workload_hours(40, start, three_weeks) == 120
    paused = [(start + timedelta(days=7), start + timedelta(days=14))]  # the second week
    assert workload_hours(40, start, three_weeks, paused=paused) == 80
    assert workload_hours(36, start, start, time_zone="Europe/Rome") == 7  # one day: 36 / 5


@pytest.mark.parametrize(
    ("value", "country"),
    [("VATIT-01234567890", "ITA"), ("NTRDE-HRB12345", "DEU"), ("VATEL-123456789", "GRC")],
)
def test_legal_identifiers_name_their_country(value: str, country: str) -> None:
    assert legal_identifier_country(value)[0] == country


@pytest.mark.parametrize(
    "value", ["01234567890", "LEIXG-5493001KJTIIGC8Y1R12", "VATUS-123", "VATIT 0123", "VATit-1"]
)
def test_other_legal_identifiers_are_refused(value: str) -> None:
    with pytest.raises(LegalIdentifierRefused):
        legal_identifier_country(value)


# ---- the institution's own seal ---------------------------------------------------------


def make_seal(
    legal_identifier: str = LEGAL_ID,
    kind: str = "rsa",
    valid_days: int = 365,
) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed test seal certificate for the organisation: what a qualified one is not
    (no qualified trust service provider, no QSCD; docs/badges/europass.md)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istituto Professionale Bassano"),
            x509.NameAttribute(ORGANIZATION_IDENTIFIER, legal_identifier),
            x509.NameAttribute(NameOID.COMMON_NAME, "Test seal"),
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
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def write_seal(path: Path, passphrase: bytes | None = None, **options: Any) -> Path:
    key, certificate = make_seal(**options)
    encryption: serialization.KeySerializationEncryption = (
        BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(b"seal", key, certificate, None, encryption)
    )
    return path


@pytest.fixture
def test_seal(tmp_path: Path) -> Iterator[SealCertificate]:
    yield load_seal(write_seal(tmp_path / "school.p12", b"secret"), b"secret")


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_sealed_edc_opens_to_the_same_credential(kind: str, tmp_path: Path) -> None:
    certificate = load_seal(write_seal(tmp_path / "seal.p12", kind=kind))
    edc = build_edc(certified(), image_png=BADGE_PNG)
    now = datetime.now(UTC).replace(microsecond=0)
    certificate.check(LEGAL_ID, now)
    sealed = seal(edc, certificate, now)

    assert set(sealed) == {"payload", "signatures"}
    assert json.loads(sealed["payload"]) == edc  # unencoded: the credential's JSON itself
    opened = open_seal(sealed)
    assert opened.credential == edc
    assert opened.signed_at == now
    assert opened.certificate == certificate.certificate
    header = json.loads(base64.urlsafe_b64decode(sealed["signatures"][0]["protected"] + "=="))
    assert header["alg"] == ("RS256" if kind == "rsa" else "ES256")
    assert header["b64"] is False and header["crit"] == ["b64", "sigT"]
    kid = base64.b64decode(header["kid"])
    assert kid == issuer_serial(certificate.certificate)


def test_a_changed_sealed_credential_does_not_open(test_seal: SealCertificate) -> None:
    sealed = seal(build_edc(certified(), image_png=BADGE_PNG), test_seal, datetime.now(UTC))
    tampered = {**sealed, "payload": sealed["payload"].replace("Webwerk", "Webwerx")}
    with pytest.raises(SealRefused, match="does not hold"):
        open_seal(tampered)
    _, other = make_seal()
    signature = dict(sealed["signatures"][0])
    header = json.loads(base64.urlsafe_b64decode(signature["protected"] + "==").decode())
    header["x5c"] = [base64.b64encode(other.public_bytes(serialization.Encoding.DER)).decode()]
    signature["protected"] = (
        base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    )
    with pytest.raises(SealRefused):
        open_seal({**sealed, "signatures": [signature]})


def test_the_commissions_seal_opens_with_the_same_reading(test_seal: SealCertificate) -> None:
    """The Europass issuer's own seal (JAdES B-LTA, RS256 over the unencoded payload) opens with
    the code that reads ours, once its archive time-stamp is accepted unprocessed; without that,
    a critical parameter it does not understand is refused, as JWS requires."""
    sample = json.loads(official("Sample-CertOfPart-signed.jsonld"))
    with pytest.raises(SealRefused, match="adoTst"):
        open_seal(sample)
    opened = open_seal(sample, understood=("adoTst", "etsiU"))
    assert opened.credential["id"] == "urn:credential:43662fb0-c31c-4afb-b501-e85aea91c0a8"
    assert opened.signed_at == datetime(2023, 9, 27, 12, 7, 1, tzinfo=UTC)
    identifier = opened.certificate.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)
    # The Europass issuer names the sealing organisation by its certificate's identifier.
    assert identifier[0].value == opened.credential["issuer"]["eIDASIdentifier"]["notation"]


def test_a_seal_certificate_must_be_the_institutions_and_valid(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    other = load_seal(write_seal(tmp_path / "other.p12", legal_identifier="VATIT-99999999999"))
    with pytest.raises(SealRefused, match="not for 'VATIT-01234567890'"):
        other.check(LEGAL_ID, now)
    expired = load_seal(write_seal(tmp_path / "old.p12"))
    with pytest.raises(SealRefused, match="not valid now"):
        expired.check(LEGAL_ID, now + timedelta(days=400))
    with pytest.raises(SealRefused, match="cannot read"):
        load_seal(write_seal(tmp_path / "locked.p12", b"right"), b"wrong")
